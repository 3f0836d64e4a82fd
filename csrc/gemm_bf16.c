/* gemm_bf16.c - the bf16 products (see engine_bf16.h): kernel choice, bf16 panels, the portable
 * emulation, AVX2 micro-kernels (AVX512-BF16's: gemm_bf16_512.h), the blocked team product. */
#include <stdlib.h>
#include <string.h>
#include "bf16.h"
#include "engine_bf16.h"
#include "amx.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define FRNN_BF16_X86 1
#include <immintrin.h>
#else
#define FRNN_BF16_X86 0
#endif

/* A kernel: C[q][0:M, 0:width[q]) (+)= bf16(A)[0:M, 0:K] @ panel q for np panels at P + q * pstride
 * (words), panel row pair j at + j * nr. The ISA kernels are instantiated for fixed M and np. */
typedef void (*bk_fn)(int M, int np, int nr, int K, const float *A, size_t rsa, size_t csa, int round_a,
                      const uint32_t *P, size_t pstride, float *const *C, size_t ldc, const int *width, int acc);

/* ---- the portable emulation: bf16.h's arithmetic element by element ---- */

static void bk_emulated(int M, int np, int nr, int K, const float *A, size_t rsa, size_t csa, int round_a,
                        const uint32_t *P, size_t pstride, float *const *C, size_t ldc, const int *width, int acc)
{
    for (int q = 0; q < np; q++)
        for (int i = 0; i < M; i++) {
            const float *a = A + (size_t)i * rsa;
            float *c = C[q] + (size_t)i * ldc;
            for (int n = 0; n < width[q]; n++) {
                const uint32_t *w = P + (size_t)q * pstride + n;
                float s = 0.0f;
                for (int k = 0; k < K; k += 2) {
                    const uint32_t pair = w[(size_t)(k / 2) * nr];
                    float ae = a[(size_t)k * csa], ao = k + 1 < K ? a[(size_t)(k + 1) * csa] : 0.0f;
                    if (round_a) ae = frnn_bf16_round(ae), ao = frnn_bf16_round(ao);
                    s = frnn_bf16_fma(ao, frnn_bits_f32(pair & 0xffff0000u), s);
                    s = frnn_bf16_fma(ae, frnn_bits_f32(pair << 16), s);
                }
                c[n] = acc ? c[n] + s : s;
            }
        }
}

#if FRNN_BF16_X86
/* ---- AVX2 + FMA: the pair's two halves as float32 (and / shift), two FMAs, odd first, under
 * MXCSR.FTZ|DAZ (restored before C is added: that addition is plain float32). Every row's odd
 * FMAs come before the even ones: an accumulator's two FMAs of a pair are then MR * NV FMAs
 * apart, which hides their latency, and only one half of the weights is live at a time. ---- */
/* One pair of k for MR rows (ROUND: round A as read; ODD: A's odd element, or 0 past K). */
#define BK_AVX2_PAIR(ROUND, ODD)                                                                   \
    do {                                                                                           \
        const uint32_t *w = P + (size_t)(k / 2) * NR;                                              \
        __m256 wv[NV];                                                                             \
        for (int v = 0; v < NV; v++)                      /* the odd halves */                     \
            wv[v] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_loadu_si256(                       \
                (const __m256i *)(w + (size_t)(v / VPP) * pstride + (v % VPP) * 8)), hi));         \
        for (int i = 0; i < ROWS; i++) {                                                             \
            float ao = ODD;                                                                        \
            if (ROUND) ao = frnn_bf16_round(ao);                                                   \
            const __m256 x = _mm256_set1_ps(ao);                                                   \
            for (int v = 0; v < NV; v++) c[i][v] = _mm256_fmadd_ps(x, wv[v], c[i][v]);             \
        }                                                                                          \
        for (int v = 0; v < NV; v++)                      /* the even halves */                    \
            wv[v] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256(                      \
                (const __m256i *)(w + (size_t)(v / VPP) * pstride + (v % VPP) * 8)), 16));         \
        for (int i = 0; i < ROWS; i++) {                                                             \
            float ae = A[(size_t)i * rsa + (size_t)k * csa];                                       \
            if (ROUND) ae = frnn_bf16_round(ae);                                                   \
            const __m256 x = _mm256_set1_ps(ae);                                                   \
            for (int v = 0; v < NV; v++) c[i][v] = _mm256_fmadd_ps(x, wv[v], c[i][v]);             \
        }                                                                                          \
    } while (0)

#define BK_AVX2(MR, NPAN, NVP)                                                                     \
    __attribute__((target("avx2,fma"))) static void bk_avx2_##MR##_##NPAN##_##NVP(                 \
        int M, int np, int nr, int K, const float *A, size_t rsa, size_t csa, int round_a,         \
        const uint32_t *P, size_t pstride, float *const *C, size_t ldc, const int *width, int acc) \
    {                                                                                              \
        enum { NV = NPAN * NVP, NR = 8 * NVP, ROWS = MR, VPP = NVP };                              \
        (void)M, (void)np, (void)nr;                                                               \
        __m256 c[MR][NV];                                                                          \
        for (int i = 0; i < MR; i++)                                                               \
            for (int v = 0; v < NV; v++) c[i][v] = _mm256_setzero_ps();                            \
        for (int q = 0; q < NPAN; q++)       /* C is read and written after the k loop */          \
            for (int i = 0; i < MR; i++) {                                                         \
                __builtin_prefetch(C[q] + (size_t)i * ldc, 1, 3);                                  \
                __builtin_prefetch(C[q] + (size_t)i * ldc + NR - 1, 1, 3);                         \
            }                                                                                      \
        const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);                                    \
        const unsigned csr = _mm_getcsr();                                                         \
        _mm_setcsr(csr | 0x8040u);                                                                 \
        const int K2 = K & ~1;                           /* whole pairs; an odd K's last below */   \
        int k = 0;                                                                                 \
        if (round_a)                                                                               \
            for (; k < K2; k += 2) BK_AVX2_PAIR(1, A[(size_t)i * rsa + (size_t)(k + 1) * csa]);   \
        else                                                                                       \
            for (; k < K2; k += 2) BK_AVX2_PAIR(0, A[(size_t)i * rsa + (size_t)(k + 1) * csa]);   \
        if (k < K) BK_AVX2_PAIR(round_a, 0.0f);                                                    \
        float out[MR][NV * 8];                                                                     \
        for (int i = 0; i < MR; i++)                                                               \
            for (int v = 0; v < NV; v++) _mm256_storeu_ps(out[i] + v * 8, c[i][v]);                \
        _mm_setcsr(csr);                                                                           \
        for (int q = 0; q < NPAN; q++)                                                             \
            for (int i = 0; i < MR; i++) {                                                         \
                float *cq = C[q] + (size_t)i * ldc;                                                \
                const float *o = out[i] + q * NR;                                                  \
                for (int j = 0; j < width[q]; j++) cq[j] = acc ? cq[j] + o[j] : o[j];              \
            }                                                                                      \
    }

/* NR 16 (two vectors a panel) */
BK_AVX2(1, 4, 2) BK_AVX2(1, 1, 2) BK_AVX2(2, 2, 2) BK_AVX2(2, 1, 2) BK_AVX2(3, 2, 2) BK_AVX2(3, 1, 2)
BK_AVX2(4, 1, 2) BK_AVX2(5, 1, 2)   /* (6 rows: 12 accumulators spill) */
/* NR 32 (four) */
BK_AVX2(1, 2, 4) BK_AVX2(1, 1, 4) BK_AVX2(2, 1, 4) BK_AVX2(3, 1, 4)

#endif

#include "gemv_bf16.h"    /* one row on AVX2 */
#include "gemm_bf16_f32.h"    /* many rows on AVX2: the float32 kernels */
#include "gemm_bf16_rec.h"    /* recurrent operands of many rows: float32 panels packed once */
#include "gemm_bf16_512.h"    /* AVX512-BF16: staged A, vdpbf16ps tiles */

/* A kernel family: fn[MR][NPAN] for MR 1..mrmax, NPAN 1 or wide[MR]. */
typedef struct {
    int mrmax, wide[7];
    bk_fn fn[7][5];
} bk_table;

static void table_of(int kernel, int nr, bk_table *t)
{
    memset(t, 0, sizeof *t);
#if FRNN_BF16_X86
    if (kernel != FRNN_BF16_EMULATED && nr == 16) {
        *t = (bk_table){5, {0, 4, 2, 2, 1, 1}, {{0}, {0, bk_avx2_1_1_2, 0, 0, bk_avx2_1_4_2},
                                                {0, bk_avx2_2_1_2, bk_avx2_2_2_2}, {0, bk_avx2_3_1_2, bk_avx2_3_2_2},
                                                {0, bk_avx2_4_1_2}, {0, bk_avx2_5_1_2}}};
        return;
    }
    /* (AVX512-BF16 products run on gemm_bf16_512.h's staged tiles; without memory for the staged
       rows they come here, to the AVX2 kernels: an AVX512-BF16 CPU has AVX2, and the bits are the same) */
    if (kernel != FRNN_BF16_EMULATED && nr == 32) {
        *t = (bk_table){3, {0, 2, 1, 1, 0}, {{0}, {0, bk_avx2_1_1_4, bk_avx2_1_2_4}, {0, bk_avx2_2_1_4},
                                             {0, bk_avx2_3_1_4}}};
        return;
    }
#endif
    (void)kernel, (void)nr;
    t->mrmax = 4;
    for (int m = 1; m <= 4; m++) t->wide[m] = 4, t->fn[m][1] = t->fn[m][4] = bk_emulated;
}

/* ---- which kernel ---- */

int frnn_bf16_kernel_supported(int kernel)
{
    static int has[5] = {-1, -1, -1, -1, -1};    /* CPUID once (a race only repeats the query) */
    if (kernel == FRNN_BF16_EMULATED) return 1;
    if (kernel != FRNN_BF16_AVX2 && kernel != FRNN_BF16_AVX512BF16) return 0;
    int v = __atomic_load_n(&has[kernel], __ATOMIC_RELAXED);
    if (v < 0) {
        v = 0;
#if FRNN_BF16_X86
        __builtin_cpu_init();
        if (kernel == FRNN_BF16_AVX2) v = frnn_isa_supported(FRNN_ISA_AVX2);
        else v = frnn_isa_supported(FRNN_ISA_AVX512) && __builtin_cpu_supports("avx512bf16");
#endif
        __atomic_store_n(&has[kernel], v, __ATOMIC_RELAXED);
    }
    return v;
}

static int BF16_KERNEL = -1;      /* -1: the default */

const char *frnn_bf16_kernel_name(int kernel)
{
    return kernel == FRNN_BF16_AVX512BF16 ? "avx512bf16" : kernel == FRNN_BF16_AVX2 ? "avx2" : "emulated";
}

/* The kernel for the active float32 ISA: vdpbf16ps needs the AVX-512 panels (nr 32). */
static int usable(int kernel)
{
    const int isa = frnn_isa_active();
    if (!frnn_bf16_kernel_supported(kernel)) return 0;
    if (kernel == FRNN_BF16_AVX512BF16) return isa == FRNN_ISA_AVX512;
    if (kernel == FRNN_BF16_AVX2) return isa != FRNN_ISA_NONE;
    return 1;
}

int frnn_bf16_kernel(void)
{
    int k = __atomic_load_n(&BF16_KERNEL, __ATOMIC_ACQUIRE);
    if (k < 0) {
        const char *env = getenv("FASTRNN_BF16");
        if (env && *env)
            k = !strcmp(env, "avx512bf16") ? FRNN_BF16_AVX512BF16 : !strcmp(env, "avx2") ? FRNN_BF16_AVX2
                : FRNN_BF16_EMULATED;
        else
            k = FRNN_BF16_AVX512BF16;
    }
    /* the best usable one at or below the request */
    if (k == FRNN_BF16_AVX512BF16 && !usable(k)) k = FRNN_BF16_AVX2;
    if (k == FRNN_BF16_AVX2 && !usable(k)) k = FRNN_BF16_EMULATED;
    return k;
}

int frnn_set_bf16_kernel(int kernel)
{
    if (kernel < 0 || frnn_bf16_kernel_supported(kernel)) __atomic_store_n(&BF16_KERNEL, kernel, __ATOMIC_RELEASE);
    return frnn_bf16_kernel();
}

/* ---- packing ---- */

size_t frnn_bpk_floats(int K, int N, int seg)
{
    const int nr = frnn_nr(), ppseg = (seg + nr - 1) / nr;
    return (size_t)(N / seg) * ppseg * (size_t)((K + 1) / 2) * nr;
}

void frnn_bpk_init(frnn_bpk *pk, int K, int N, int seg, void *mem)
{
    pk->K = K, pk->Kp = K + (K & 1), pk->N = N, pk->seg = seg;
    pk->nr = frnn_nr();
    pk->ppseg = (seg + pk->nr - 1) / pk->nr;
    pk->panels = (N / seg) * pk->ppseg;
    pk->data = mem;
}

void frnn_bpk_pack(const frnn_bpk *pk, const float *W, size_t ldw, int trans, int k0, int p0, int p1)
{
#if FRNN_BF16_X86
    if (frnn_bf16_kernel_supported(FRNN_BF16_AVX512BF16)) { bb_pack(pk, W, ldw, trans, k0, p0, p1); return; }   /* the same words */
#endif
    const int K = pk->K, nr = pk->nr;
    for (int p = p0; p < p1; p++) {
        uint16_t *panel = (uint16_t *)(pk->data + (size_t)p * (pk->Kp / 2) * nr);
        const int col = frnn_bpk_col(pk, p), width = frnn_bpk_width(pk, p);
        memset(panel, 0, sizeof(uint16_t) * (size_t)pk->Kp * nr);   /* odd K, narrow panels: zeros */
        for (int k = 0; k < K; k++) {
            uint16_t *row = panel + (size_t)(k / 2) * nr * 2 + (k & 1);
            if (trans) {   /* op(W)[k][n] = W[n][k] */
                for (int j = 0; j < width; j++) row[2 * j] = frnn_bf16_from_f32(W[(size_t)(col + j) * ldw + k0 + k]);
            } else {
                const float *w = W + (size_t)(k0 + k) * ldw + col;
                for (int j = 0; j < width; j++) row[2 * j] = frnn_bf16_from_f32(w[j]);
            }
        }
    }
}

void frnn_bpk_mul(const frnn_bpk *pk, int p0, int p1, int M, const float *A, size_t rsa, size_t csa,
                  int round_a, float *C, size_t ldc, int accumulate)
{
    if (frnn_amx_bf16_rows(M)) { frnn_amx_bpk_mul(pk, p0, p1, M, A, rsa, csa, round_a, C, ldc, accumulate); return; }
    /* round A once here rather than in every panel's kernel (the same values; without the memory
     * the kernels round as they read): on the stack for a few rows, else over several panels */
    const int kernel = frnn_bf16_kernel();
    if (pk->K > 0 && bf32_on(kernel, pk->nr, M) && bf32_bpk_mul(pk, p0, p1, M, A, rsa, csa, round_a, C, ldc, accumulate))
        return;
#if FRNN_BF16_X86
    if (pk->K > 0 && M > 0 && bb_on(kernel, pk->nr) && bb_bpk_mul(pk, p0, p1, M, A, rsa, csa, C, ldc, accumulate, NULL)) return;
#endif
    if (round_a && pk->K > 0 && ((size_t)M * pk->K <= BG_STACK || p1 - p0 > 1)) {
        float stack[BG_STACK], *a = (size_t)M * pk->K <= BG_STACK ? stack : malloc(sizeof(float) * (size_t)M * pk->K);
        if (a != NULL) {
            for (int i = 0; i < M; i++) {
#if FRNN_BF16_X86
                if (frnn_bf16_kernel_supported(FRNN_BF16_AVX2)) {
                    bg_round_avx2(A + (size_t)i * rsa, csa, pk->K, a + (size_t)i * pk->K);
                    continue;
                }
#endif
                for (int k = 0; k < pk->K; k++) a[(size_t)i * pk->K + k] = frnn_bf16_round(A[(size_t)i * rsa + (size_t)k * csa]);
            }
            frnn_bpk_mul(pk, p0, p1, M, a, pk->K, 1, 0, C, ldc, accumulate);
            if (a != stack) free(a);
            return;
        }
    }
#if FRNN_BF16_X86
    /* one row on AVX2 (a batch-1 step): the streaming kernel of gemv_bf16.h */
    if (M == 1 && !round_a && csa == 1 && kernel != FRNN_BF16_EMULATED && pk->nr == 16) {
        bg_mul_avx2(pk, p0, p1, A, C, accumulate);
        return;
    }
#endif
    bk_table t;
    table_of(kernel, pk->nr, &t);
    const size_t pstride = (size_t)(pk->Kp / 2) * pk->nr;
    for (int i = 0; i < M;) {
        const int mr = M - i < t.mrmax ? M - i : t.mrmax, np = t.wide[mr];
        const float *a = A + (size_t)i * rsa;
        float *c = C + (size_t)i * ldc;
        int p = p0;
        for (; np > 1 && p + np <= p1; p += np) {
            float *out[4];
            int width[4];
            for (int q = 0; q < np; q++) out[q] = c + frnn_bpk_col(pk, p + q), width[q] = frnn_bpk_width(pk, p + q);
            t.fn[mr][np](mr, np, pk->nr, pk->K, a, rsa, csa, round_a, pk->data + (size_t)p * pstride, pstride,
                         out, ldc, width, accumulate);
        }
        for (; p < p1; p++) {
            float *out[1] = {c + frnn_bpk_col(pk, p)};
            const int width[1] = {frnn_bpk_width(pk, p)};
            t.fn[mr][1](mr, 1, pk->nr, pk->K, a, rsa, csa, round_a, pk->data + (size_t)p * pstride, pstride,
                        out, ldc, width, accumulate);
        }
        i += mr;
    }
}

void frnn_bpk_mul_units(const frnn_bpk *pk, int u0, int u1, int M, const float *A, size_t lda, float *C, size_t ldc,
                        int accumulate)
{
    const int nq = pk->N / pk->seg;
#if FRNN_BF16_X86
    uint32_t *a = NULL;
    if (u1 > u0 && M > 0 && pk->K > 0 && !frnn_amx_bf16_rows(M) && bb_on(frnn_bf16_kernel(), pk->nr))
        a = frnn_kept_grow(BB_ROWS, sizeof(uint32_t) * (size_t)M * (pk->Kp / 2));
    if (a != NULL) {                   /* A staged once for every segment */
        bb_stage(M, pk->K, A, lda, 1, a, (size_t)pk->Kp / 2);
        for (int q = 0; q < nq; q++) {
            int p0, p1;
            frnn_bpk_units(pk, q, u0, u1, &p0, &p1);
            bb_mul(pk, p0, p1, M, a, (size_t)pk->Kp / 2, C, ldc, accumulate, NULL);
        }
        return;
    }
#endif
    for (int q = 0; q < nq; q++) {
        int p0, p1;
        frnn_bpk_units(pk, q, u0, u1, &p0, &p1);
        frnn_bpk_mul(pk, p0, p1, M, A, lda, 1, 1, C, ldc, accumulate);
    }
}

/* ---- a whole product on the team ---- */

#if FRNN_BF16_X86
/* A team product of this shape runs on the float32 kernels (bf32_team_gemm): by the whole
 * product's shape; not for an odd K < FRNN_KC: callers size `pack` for min(K, FRNN_KC) rows of
 * panel (template.h), and the float32 panels need an even Kp rows. */
static int bf32_team_on(const frnn_gemm_args *g)
{
    return !frnn_amx_bf16_rows(g->M) && bf32_on(frnn_bf16_kernel(), frnn_nr(), g->M) && (g->K >= FRNN_KC || !(g->K & 1));
}

/* ... or on the AVX512-BF16 tiles (gemm_bf16_512.h) */
static int bb_team_on(const frnn_gemm_args *g) { return !frnn_amx_bf16_rows(g->M) && bb_on(frnn_bf16_kernel(), frnn_nr()); }
#endif

void frnn_team_gemm_bf16(const frnn_par *par, const frnn_gemm_args *g, float *pack)
{
    const int tid = par->tid, nth = par->nth;
    int m0, m1;
    frnn_split(g->M, FRNN_MR, tid, nth, &m0, &m1);
    if (g->K == 0) {                                     /* C = beta C */
        if (!g->beta)
            for (int i = m0; i < m1; i++) memset(g->C + (size_t)i * g->ldc, 0, sizeof(float) * g->N);
        frnn_sync(par);
        return;
    }
#if FRNN_BF16_X86
    if (bf32_team_on(g)) {
        bf32_team_gemm(par, g, 1, pack);
        return;
    }
    if (bb_team_on(g)) {
        bb_team_gemm(par, g, 1, pack);
        return;
    }
#endif
    /* this member's rows of A, rounded to bf16 once per block (each kernel reads them many times);
     * without the memory the kernels round as they read: the same values */
    /* AMX tiles by the whole product's rows, so every member (any thread count) makes one choice;
     * they round A themselves (vectorized), so no apk then */
    void (*const mul)(const frnn_bpk *, int, int, int, const float *, size_t, size_t, int, float *, size_t, int) =
        frnn_amx_bf16_rows(g->M) ? frnn_amx_bpk_mul : frnn_bpk_mul;
    float *apk = m1 > m0 && mul == frnn_bpk_mul ? malloc(sizeof(float) * FRNN_MC * FRNN_KC) : NULL;
    for (int k0 = 0; k0 < g->K; k0 += FRNN_KC) {
        frnn_bpk blk;
        frnn_bpk_init(&blk, g->K - k0 < FRNN_KC ? g->K - k0 : FRNN_KC, g->N, g->N, pack);
        int q0, q1;
        frnn_split(blk.panels, 1, tid, nth, &q0, &q1);
        frnn_bpk_pack(&blk, g->W, g->ldw, g->trans_w, k0, q0, q1);
        frnn_sync(par);
        const int acc = g->beta || k0 > 0;
        const float *A = g->A + (size_t)k0 * g->csa;
        for (int i0 = m0; i0 < m1; i0 += FRNN_MC) {
            const int rows = m1 - i0 < FRNN_MC ? m1 - i0 : FRNN_MC;
            const float *a = A + (size_t)i0 * g->rsa;
            size_t rsa = g->rsa, csa = g->csa;
            int round_a = 1;
            if (apk != NULL) {
                for (int i = 0; i < rows; i++)
                    for (int k = 0; k < blk.K; k++) apk[(size_t)i * blk.K + k] = frnn_bf16_round(a[(size_t)i * rsa + (size_t)k * csa]);
                a = apk, rsa = blk.K, csa = 1, round_a = 0;
            }
            float *c = g->C + (size_t)i0 * g->ldc;
            if (rows <= 3 || mul != frnn_bpk_mul)   /* a few rows: the wide kernels over every panel; tiles: A staged once */
                mul(&blk, 0, blk.panels, rows, a, rsa, csa, round_a, c, g->ldc, acc);
            else                /* a panel stays in cache while it sweeps the rows */
                for (int p = 0; p < blk.panels; p++)
                    mul(&blk, p, p + 1, rows, a, rsa, csa, round_a, c, g->ldc, acc);
        }
        frnn_sync(par);                                   /* the pack buffer is reused next */
    }
    free(apk);
}

/* ---- op(W) packed once, in K blocks ---- */

size_t frnn_bkpk_floats(int K, int N)
{
    size_t n = 0;
    for (int k0 = 0; k0 < K; k0 += FRNN_KC) n += frnn_bpk_floats(K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, N);
    return n;
}

void frnn_bkpk_pack(float *mem, int K, int N, const float *W, size_t ldw, int trans_w)
{
    for (int k0 = 0; k0 < K; k0 += FRNN_KC) {
        frnn_bpk blk;
        frnn_bpk_init(&blk, K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, N, mem);
        frnn_bpk_pack(&blk, W, ldw, trans_w, k0, 0, blk.panels);
        mem += frnn_bpk_floats(blk.K, N, N);
    }
}

void frnn_bkpk_mul(const frnn_par *par, const float *mem, int K, int N, int M, const float *A,
                   size_t lda, float *C, size_t ldc, int beta)
{
    /* few rows (a step of a small batch): the panels are shared out, else the rows */
    const int by_cols = M < FRNN_SMALL_M && par->nth > 1;
    /* many rows: the float32 kernels, chosen by the whole product's rows (frnn_bpk_mul would
     * choose by this member's share; the bits are the same either way) */
    const int f32 = !frnn_amx_bf16_rows(M) && bf32_on(frnn_bf16_kernel(), frnn_nr(), M);
    (void)f32;
    int m0 = 0, m1 = M, q0 = 0, q1 = 0;
    if (!by_cols) frnn_split(M, FRNN_MR, par->tid, par->nth, &m0, &m1);
    for (int k0 = 0; k0 < K && m1 > m0; k0 += FRNN_KC) {
        frnn_bpk blk;
        frnn_bpk_init(&blk, K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, N, (float *)mem);
        if (by_cols) frnn_split(blk.panels, 1, par->tid, par->nth, &q0, &q1);
        else q0 = 0, q1 = blk.panels;
#if FRNN_BF16_X86
        if (f32 && bf32_bpk_mul(&blk, q0, q1, m1 - m0, A + (size_t)m0 * lda + k0, lda, 1, 1, C + (size_t)m0 * ldc, ldc,
                                beta || k0 > 0)) {
            mem += frnn_bpk_floats(blk.K, N, N);
            continue;
        }
#endif
        (frnn_amx_bf16_rows(M) ? frnn_amx_bpk_mul : frnn_bpk_mul)(&blk, q0, q1, m1 - m0, A + (size_t)m0 * lda + k0, lda, 1, 1,
                                                                  C + (size_t)m0 * ldc, ldc, beta || k0 > 0);
        mem += frnn_bpk_floats(blk.K, N, N);
    }
    frnn_sync(par);
}

int frnn_bkpk_mul_bias(const float *mem, int K, int N, int M, const float *A, size_t lda, float *C, size_t ldc,
                       const float *bias)
{
#if FRNN_BF16_X86
    if (K <= 0 || M <= 0 || frnn_amx_bf16_rows(M) || bf32_on(frnn_bf16_kernel(), frnn_nr(), M)
        || !bb_on(frnn_bf16_kernel(), frnn_nr()))
        return 0;
    for (int k0 = 0; k0 < K; k0 += FRNN_KC) {
        frnn_bpk blk;
        frnn_bpk_init(&blk, K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, N, (float *)mem);
        if (!bb_bpk_mul(&blk, 0, blk.panels, M, A + k0, lda, 1, C, ldc, k0 > 0, k0 == 0 ? bias : NULL))
            return 0;
        mem += frnn_bpk_floats(blk.K, N, N);
    }
    return 1;
#else
    (void)mem, (void)K, (void)N, (void)M, (void)A, (void)lda, (void)C, (void)ldc, (void)bias;
    return 0;
#endif
}

void frnn_team_gemm_bf16_pair(const frnn_par *par, const frnn_gemm_args g[2], float *pack)
{
#if FRNN_BF16_X86
    if (g[0].K > 0 && bf32_team_on(&g[0])) {            /* the path frnn_team_gemm_bf16 takes */
        bf32_team_gemm(par, g, 2, pack);
        return;
    }
    if (g[0].K > 0 && bb_team_on(&g[0])) {
        bb_team_gemm(par, g, 2, pack);
        return;
    }
#endif
    frnn_team_gemm_bf16(par, &g[0], pack);
    frnn_team_gemm_bf16(par, &g[1], pack);
}
