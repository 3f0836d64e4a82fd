#define _POSIX_C_SOURCE 200112L   /* posix_memalign (kept_area.h) */
/* gemm.c - the float32 GEMM engine (see engine.h): ISA choice, packing, blocked team products. */
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include "engine.h"
#include "engine_bf16.h"     /* frnn_engine_gemm_bf16 */
#include "glibc_compat.h"     /* pthread symbols bound to the old glibc version */

#define KEPT_PACK_FLOATS ((size_t)1 << 20)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FRNN_X86 1
#include <immintrin.h>
#else
#define FRNN_X86 0
#endif

typedef void (*panel_fn)(int M, int K, const float *A, size_t rsa, size_t csa, size_t tsa,
                         const float *P, float *C, size_t ldc, int width, int acc);
typedef void (*direct_fn)(int M, int K, const float *A, size_t rsa, size_t csa, const float *W,
                          size_t ldw, int trans, float *C, size_t ldc, int n0, int n1, int acc);
typedef void (*wide_fn)(int K, const float *A, size_t rsa, size_t csa, const float *P, size_t pstride,
                        float *const *C, size_t ldc, const int *width, int acc);

#if FRNN_X86
/* ---- AVX2 + FMA: 6 x 16 ---- */
#define ISA(name) name##_avx2
#define TARGET __attribute__((target("avx2,fma")))
#define VEC __m256
#define VL 8
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#include "microkernel.h"   /* (undefines the ISA macros at its end) */

/* ---- AVX-512: 6 x 32 ---- */
#define ISA(name) name##_avx512
#define TARGET __attribute__((target("avx512f")))
#define VEC __m512
#define VL 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#include "microkernel.h"   /* (undefines the ISA macros at its end) */
#endif

/* ---- which ISA ---- */

int frnn_isa_supported(int isa)
{
    if (isa == FRNN_ISA_NONE) return 1;
#if FRNN_X86
    __builtin_cpu_init();
    if (isa == FRNN_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == FRNN_ISA_AVX512) return __builtin_cpu_supports("avx512f");
#endif
    return 0;
}

static int ACTIVE = -1;          /* -1: not chosen yet */

static int default_isa(void)
{
    const char *env = getenv("FASTRNN_ISA");
    if (env && *env && strncmp(env, "amx", 3)) {   /* amx, amx-emulated: the best vector ISA (gemm_amx.c) */
        int want = !strcmp(env, "avx512") ? FRNN_ISA_AVX512 : !strcmp(env, "avx2") ? FRNN_ISA_AVX2
                   : FRNN_ISA_NONE;
        return frnn_isa_supported(want) ? want : FRNN_ISA_NONE;
    }
    if (frnn_isa_supported(FRNN_ISA_AVX512)) return FRNN_ISA_AVX512;
    if (frnn_isa_supported(FRNN_ISA_AVX2)) return FRNN_ISA_AVX2;
    return FRNN_ISA_NONE;
}

int frnn_isa_active(void)
{
    int isa = __atomic_load_n(&ACTIVE, __ATOMIC_ACQUIRE);
    if (isa < 0) {
        isa = default_isa();
        __atomic_store_n(&ACTIVE, isa, __ATOMIC_RELEASE);
    }
    return isa;
}

int frnn_set_isa(int isa)
{
    if (frnn_isa_supported(isa)) __atomic_store_n(&ACTIVE, isa, __ATOMIC_RELEASE);
    return frnn_isa_active();
}

int frnn_nr(void) { return frnn_isa_active() == FRNN_ISA_AVX512 ? 32 : 16; }

static panel_fn panel_kernel(int nr)
{
#if FRNN_X86
    return nr == 32 ? panel_rows_avx512 : panel_rows_avx2;
#else
    (void)nr;
    return NULL;
#endif
}

/* ---- areas kept between calls ---- */

/* Areas a thread keeps between products (a malloc per product cost page faults: ~1.6 % of an
 * LM step): the member's copy of its block of A, and the caller's pack buffer of
 * frnn_engine_gemm (kept_area.h). */
enum { KEPT_APK, KEPT_PACK, FRNN_KEPT_N };
#include "kept_area.h"

/* ---- packing ---- */

/* dst[c * ldd + r] = src[r * lds + c] for r < R, c < C: a plain copy (the bits cannot change),
 * in 8 x 8 tiles held in registers on AVX2 (a scalar strided copy was 4 % of an LM step). */
static void transpose_plain(int R, int C, const float *src, size_t lds, float *dst, size_t ldd, int r0, int c0)
{
    for (int r = r0; r < R; r++)
        for (int c = 0; c < C; c++) dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c];
    for (int r = 0; r < r0; r++)          /* the columns right of the 8 x 8 tiles */
        for (int c = c0; c < C; c++) dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c];
}

#if FRNN_X86
#include "transpose8_avx2.h"
__attribute__((target("avx2"))) static void transpose_avx2(int R, int C, const float *src, size_t lds,
                                                            float *dst, size_t ldd)
{
    const int R8 = R & ~7, C8 = C & ~7;
    for (int r = 0; r < R8; r += 8)       /* 8 source rows, read along their length */
        for (int c = 0; c < C8; c += 8) {
            const float *s = src + (size_t)r * lds + c;
            __m256 x[8];
            for (int j = 0; j < 8; j++) x[j] = _mm256_loadu_ps(s + (size_t)j * lds);
            frnn_transpose8x8(x);
            float *d = dst + (size_t)c * ldd + r;
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(d + (size_t)j * ldd, x[j]);
        }
    transpose_plain(R, C, src, lds, dst, ldd, R8, C8);
}
#endif

void frnn_transpose(int R, int C, const float *src, size_t lds, float *dst, size_t ldd)
{
#if FRNN_X86
    if (frnn_isa_active() != FRNN_ISA_NONE) {
        transpose_avx2(R, C, src, lds, dst, ldd);
        return;
    }
#endif
    transpose_plain(R, C, src, lds, dst, ldd, 0, C);
}

size_t frnn_pk_floats(int K, int N, int seg)
{
    const int nr = frnn_nr(), ppseg = (seg + nr - 1) / nr;
    return (size_t)(N / seg) * ppseg * (size_t)K * nr;
}

void frnn_pk_init(frnn_pk *pk, int K, int N, int seg, float *mem)
{
    pk->K = K;
    pk->N = N;
    pk->seg = seg;
    pk->nr = frnn_nr();
    pk->ppseg = (seg + pk->nr - 1) / pk->nr;
    pk->panels = (N / seg) * pk->ppseg;
    pk->data = mem;
}

void frnn_pk_pack(const frnn_pk *pk, const float *W, size_t ldw, int trans, int k0, int p0, int p1)
{
    const int K = pk->K, nr = pk->nr;
    for (int p = p0; p < p1; p++) {
        float *panel = pk->data + (size_t)p * K * nr;
        const int col = frnn_pk_col(pk, p), width = frnn_pk_width(pk, p);
        if (trans)         /* op(W)[k][n] = W[n][k]: W's rows become panel columns */
            frnn_transpose(width, K, W + (size_t)col * ldw + k0, ldw, panel, nr);
        else if (width == 16 && nr == 16)   /* op(W)[k][n] = W[k][n]: row pieces; whole panels in */
            for (int k = 0; k < K; k++)     /* inline moves (a libc call per 64 bytes was ~1 % of a bi-LSTM) */
                __builtin_memcpy(panel + (size_t)k * 16, W + (size_t)(k0 + k) * ldw + col, sizeof(float) * 16);
        else if (width == 32 && nr == 32)
            for (int k = 0; k < K; k++)
                __builtin_memcpy(panel + (size_t)k * 32, W + (size_t)(k0 + k) * ldw + col, sizeof(float) * 32);
        else
            for (int k = 0; k < K; k++)
                memcpy(panel + (size_t)k * nr, W + (size_t)(k0 + k) * ldw + col, sizeof(float) * width);
        if (width < nr)    /* zero padding: the kernels read whole panels */
            for (int k = 0; k < K; k++) memset(panel + (size_t)k * nr + width, 0, sizeof(float) * (nr - width));
    }
}

/* The few-row kernels: M rows (1..3) of `np` panels at once (see WIDE in microkernel.h). */
static wide_fn wide_kernel(int nr, int M, int *np)
{
    *np = M == 1 ? 4 : 2;
#if FRNN_X86
    if (nr == 32) return M == 1 ? wide1x4_avx512 : M == 2 ? wide2x2_avx512 : wide3x2_avx512;
    return M == 1 ? wide1x4_avx2 : M == 2 ? wide2x2_avx2 : wide3x2_avx2;
#else
    (void)nr;
    return NULL;
#endif
}

void frnn_pk_mul(const frnn_pk *pk, int p0, int p1, int M, const float *A, size_t rsa, size_t csa,
                 float *C, size_t ldc, int accumulate)
{
    panel_fn run = panel_kernel(pk->nr);
    if (M >= 1 && M <= 3) {                 /* a small batch: several panels per kernel call */
        int np;
        wide_fn wide = wide_kernel(pk->nr, M, &np);
        const size_t pstride = (size_t)pk->K * pk->nr;
        for (; p0 + np <= p1; p0 += np) {
            float *out[4];
            int width[4];
            for (int q = 0; q < np; q++) {
                out[q] = C + frnn_pk_col(pk, p0 + q);
                width[q] = frnn_pk_width(pk, p0 + q);
            }
            wide(pk->K, A, rsa, csa, pk->data + (size_t)p0 * pstride, pstride, out, ldc, width, accumulate);
        }
    }
    for (int p = p0; p < p1; p++)
        run(M, pk->K, A, rsa, csa, FRNN_MR * rsa, pk->data + (size_t)p * pk->K * pk->nr,
            C + frnn_pk_col(pk, p), ldc, frnn_pk_width(pk, p), accumulate);
}

/* ---- whole products on the team ---- */

size_t frnn_team_gemm_floats(int N) { return frnn_pk_floats(FRNN_KC, N, N); }

/* A few rows read op(W) in place (no pack buffer) -- except A^T against W^T, which packs. */
static int reads_w_directly(const frnn_gemm_args *g)
{
    return g->M < FRNN_SMALL_M && (g->csa == 1 || !g->trans_w);
}

/* This member's block of A (rows x K, row-major) copied to apk (what frnn_team_gemm does before
 * the kernels read it); returns the A the kernels read and its strides. */
static const float *copy_a(const float *a, size_t *rsa, size_t *csa, size_t *tsa, int rows, int K, float *apk)
{
    /* A in contiguous rows of exactly the block's depth (an input projection with I <= FRNN_KC)
     * is read in place: the copy would be the same rows (-2 % time there); strided rows (dx: dG's
     * rows 4H apart) are still copied: it measured 1.5-3 % faster */
    if (apk == NULL || (*csa == 1 && *rsa == (size_t)K)) return a;
    if (*rsa == 1)                  /* A^T: a transpose of its (K, rows) block */
        frnn_transpose(K, rows, a, *csa, apk, K);
    else if (*csa == 1)
        for (int i = 0; i < rows; i++) memcpy(apk + (size_t)i * K, a + (size_t)i * *rsa, sizeof(float) * K);
    else
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < K; k++) apk[(size_t)i * K + k] = a[(size_t)i * *rsa + (size_t)k * *csa];
    *rsa = K, *csa = 1, *tsa = (size_t)FRNN_MR * K;
    return apk;
}

/* A few rows (M <= FRNN_MC) and a deep K (several FRNN_KC blocks), e.g. the LM head's
 * dW = dlogits^T y (65 x P, K = T * B): shared out by panels of columns instead of rows. Each
 * member packs only its own panels, into its own part of `pack` (panel p at p * FRNN_KC * nr
 * for every block, so a member's next block never lands on a panel another member still reads),
 * and runs all M rows over them: no barrier between the K blocks (the row split needs two a
 * block, the pack being shared), one at the end. Every element of C is still made by one member
 * from the same panel and the same row tiles (rows 0.. in FRNN_MC blocks of FRNN_MR tiles, as
 * one member runs them), in the same k order: the bits of the row split, at any member count. */
static void cols_gemm(const frnn_par *par, const frnn_gemm_args *g, float *pack)
{
    const int nr = frnn_nr(), panels = (g->N + nr - 1) / nr;
    int q0, q1;
    frnn_split(panels, 1, par->tid, par->nth, &q0, &q1);
    const int c0 = q0 * nr, c1 = q1 * nr < g->N ? q1 * nr : g->N;
    panel_fn run = panel_kernel(nr);
    float *apk = c1 > c0 ? frnn_kept_grow(KEPT_APK, sizeof(float) * FRNN_MC * FRNN_KC) : NULL;
    float *mine = pack + (size_t)q0 * FRNN_KC * nr;
    for (int k0 = 0; k0 < g->K && c1 > c0; k0 += FRNN_KC) {
        frnn_pk blk;                       /* columns c0..c1 of op(W) as a product of their own */
        frnn_pk_init(&blk, g->K - k0 < FRNN_KC ? g->K - k0 : FRNN_KC, c1 - c0, c1 - c0, mine);
        frnn_pk_pack(&blk, g->trans_w ? g->W + (size_t)c0 * g->ldw : g->W + c0, g->ldw, g->trans_w,
                     k0, 0, blk.panels);
        const int acc = g->beta || k0 > 0;
        size_t rsa = g->rsa, csa = g->csa, tsa = FRNN_MR * rsa;
        const float *a = copy_a(g->A + (size_t)k0 * g->csa, &rsa, &csa, &tsa, g->M, blk.K, apk);
        for (int p = 0; p < blk.panels; p++)
            run(g->M, blk.K, a, rsa, csa, tsa, blk.data + (size_t)p * blk.K * nr,
                g->C + c0 + frnn_pk_col(&blk, p), g->ldc, frnn_pk_width(&blk, p), acc);
    }
    frnn_sync(par);
}

void frnn_team_gemm(const frnn_par *par, const frnn_gemm_args *g, float *pack)
{
    const int tid = par->tid, nth = par->nth;
    if (reads_w_directly(g)) {
        /* a few rows: straight from W, the columns shared out (each element still computed by
         * one member, the same way whatever the member count) */
        int n0, n1;
        frnn_split(g->N, 4 * 16, tid, nth, &n0, &n1);
#if FRNN_X86
        direct_fn run = frnn_nr() == 32 ? direct_avx512 : direct_avx2;
        if (g->K > 0 && n1 > n0)
            run(g->M, g->K, g->A, g->rsa, g->csa, g->W, g->ldw, g->trans_w, g->C, g->ldc, n0, n1, g->beta);
        else
#endif
        for (int m = 0; m < g->M && !g->beta; m++)      /* K == 0: C = 0 (or kept when beta) */
            memset(g->C + (size_t)m * g->ldc + n0, 0, sizeof(float) * (n1 > n0 ? n1 - n0 : 0));
        frnn_sync(par);
        return;
    }
    if (g->K > FRNN_KC && g->M <= FRNN_MC && nth > 1) {
        cols_gemm(par, g, pack);
        return;
    }
    int m0, m1;
    frnn_split(g->M, FRNN_MR, tid, nth, &m0, &m1);       /* rows: aligned to the kernel's blocks */
    if (g->K == 0) {                                     /* C = beta C */
        if (!g->beta)
            for (int i = m0; i < m1; i++) memset(g->C + (size_t)i * g->ldc, 0, sizeof(float) * g->N);
        frnn_sync(par);
        return;
    }
    panel_fn run = panel_kernel(frnn_nr());
    /* this member's copy of its block of A (rows x FRNN_KC, row-major): the kernels then read
     * it as contiguous rows whatever A's strides (A^T read in place strides through a page per
     * k); the values and the order of the sums are the same either way. (Tiles of 6 rows
     * interleaved by k, BLIS's layout, measured no faster here: the kernel's path for csa == 1
     * is the tighter loop.) */
    float *apk = m1 > m0 ? frnn_kept_grow(KEPT_APK, sizeof(float) * FRNN_MC * FRNN_KC) : NULL;
    for (int k0 = 0; k0 < g->K; k0 += FRNN_KC) {
        frnn_pk blk;
        frnn_pk_init(&blk, g->K - k0 < FRNN_KC ? g->K - k0 : FRNN_KC, g->N, g->N, pack);
        int q0, q1;
        frnn_split(blk.panels, 1, tid, nth, &q0, &q1);   /* packing is shared out by panels */
        frnn_pk_pack(&blk, g->W, g->ldw, g->trans_w, k0, q0, q1);
        frnn_sync(par);
        const int acc = g->beta || k0 > 0;
        const float *A = g->A + (size_t)k0 * g->csa;
        /* A's rows in blocks that stay in L2 while each panel (in L1) sweeps them */
        for (int i0 = m0; i0 < m1; i0 += FRNN_MC) {
            const int rows = m1 - i0 < FRNN_MC ? m1 - i0 : FRNN_MC;
            size_t rsa = g->rsa, csa = g->csa, tsa = FRNN_MR * rsa;
            const float *a = copy_a(A + (size_t)i0 * g->rsa, &rsa, &csa, &tsa, rows, blk.K, apk);
            for (int p = 0; p < blk.panels; p++)
                run(rows, blk.K, a, rsa, csa, tsa, blk.data + (size_t)p * blk.K * blk.nr,
                    g->C + (size_t)i0 * g->ldc + frnn_pk_col(&blk, p), g->ldc, frnn_pk_width(&blk, p), acc);
        }
        frnn_sync(par);                                   /* the pack buffer is reused next */
    }
}

void frnn_direct_mul(int M, int K, const float *A, size_t lda, const float *W, size_t ldw, float *C,
                     size_t ldc, int n0, int n1, int acc)
{
#if FRNN_X86
    if (K > 0 && n1 > n0) {
        (frnn_nr() == 32 ? direct_avx512 : direct_avx2)(M, K, A, lda, 1, W, ldw, 1, C, ldc, n0, n1, acc);
        return;
    }
#endif
    for (int m = 0; m < M; m++)          /* no engine kernel: plain sums in k order */
        for (int n = n0; n < n1; n++) {
            float sum = 0;
            for (int k = 0; k < K; k++) sum += A[(size_t)m * lda + k] * W[(size_t)n * ldw + k];
            C[(size_t)m * ldc + n] = acc ? C[(size_t)m * ldc + n] + sum : sum;
        }
}

size_t frnn_kpk_floats(int K, int N)
{
    size_t n = 0;
    for (int k0 = 0; k0 < K; k0 += FRNN_KC) n += frnn_pk_floats(K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, N);
    return n;
}

void frnn_kpk_pack(float *mem, int K, int N, const float *W, size_t ldw, int trans_w)
{
    for (int k0 = 0; k0 < K; k0 += FRNN_KC) {
        frnn_pk blk;
        frnn_pk_init(&blk, K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, N, mem);
        frnn_pk_pack(&blk, W, ldw, trans_w, k0, 0, blk.panels);
        mem += frnn_pk_floats(blk.K, N, N);
    }
}

void frnn_kpk_mul(const frnn_par *par, const float *mem, int K, int N, int M, const float *A,
                  size_t lda, float *C, size_t ldc, int beta)
{
    int m0, m1;
    frnn_split(M, FRNN_MR, par->tid, par->nth, &m0, &m1);
    for (int k0 = 0; k0 < K && m1 > m0; k0 += FRNN_KC) {
        frnn_pk blk;
        frnn_pk_init(&blk, K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, N, (float *)mem);
        frnn_pk_mul(&blk, 0, blk.panels, m1 - m0, A + (size_t)m0 * lda + k0, lda, 1,
                    C + (size_t)m0 * ldc, ldc, beta || k0 > 0);
        mem += frnn_pk_floats(blk.K, N, N);
    }
    frnn_sync(par);
}

typedef struct {
    const frnn_gemm_args *g;
    float *pack;
    int bf16;
} gemm_job;

static void gemm_task(void *arg, const frnn_par *par)
{
    gemm_job *job = arg;
    if (job->bf16) frnn_team_gemm_bf16(par, job->g, job->pack);
    else frnn_team_gemm(par, job->g, job->pack);
}

static int engine_gemm(int nth, const frnn_gemm_args *g, int bf16)
{
    const int K = g->K < FRNN_KC ? g->K : FRNN_KC;
    /* (a few rows of A^T against W^T pack too: sized for it, not 16 floats -- a heap overrun;
     * bf16 packs whatever the rows, in half a float32 block) */
    const size_t n = reads_w_directly(g) && !bf16 ? 16 : frnn_pk_floats(K > 0 ? K : 1, g->N, g->N) + 16;
    /* kept for the next call up to 4 MB (a 256 x 4096 block); a bigger one is the call's own */
    int kept;
    float *pack = frnn_kept_get(KEPT_PACK, sizeof(float) * n, sizeof(float) * KEPT_PACK_FLOATS, &kept);
    if (pack == NULL) return -1;
    gemm_job job = {g, pack, bf16};
    frnn_team_run(nth, gemm_task, &job);
    frnn_kept_put(KEPT_PACK, pack, kept);
    return 0;
}

int frnn_engine_gemm(int nth, const frnn_gemm_args *g) { return engine_gemm(nth, g, 0); }

int frnn_engine_gemm_bf16(int nth, const frnn_gemm_args *g) { return engine_gemm(nth, g, 1); }
