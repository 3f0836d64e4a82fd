/* gemm_int8.c - the int8 products of int8.h: rows quantized to u8 once per call, s32 sums over
 * W's packed panels by one of four paths (plain C, AVX2 vpmaddubsw + vpmaddwd, AVX-VNNI and
 * AVX512-VNNI vpdpbusd, all on the same panels), then one shared float epilogue. The paths differ only in how they add
 * up the same integers, so they give the same bits (csrc/test_kernels.c, tests/test_int8.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "int8.h"
#include "amx.h"
#include "engine.h"
#include "team.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define FRNN_Q8_X86 1
#include <immintrin.h>
#else
#define FRNN_Q8_X86 0
#endif

#define PW FRNN_Q8_PW          /* columns per panel */
#define NP (FRNN_Q8_NC / PW)    /* panels per kernel call (32 columns) */
#define MR 2                    /* rows per kernel call */

/* acc[i][c] = sum_k a_i[k] * w[c][k] for i < mr <= MR and the NP * PW columns of the NP panels
 * starting at `panel` (panel j at panel + j * Kp * PW); a (mr, Kp) with leading dimension lda. */
typedef void (*blk_fn)(const uint8_t *a, size_t lda, int mr, const int8_t *panel, int Kp,
                       int32_t acc[MR][FRNN_Q8_NC]);

/* The reference: the definition, one product at a time, read through the packed layout. */
static void blk_ref(const uint8_t *a, size_t lda, int mr, const int8_t *panel, int Kp, int32_t acc[MR][FRNN_Q8_NC])
{
    for (int i = 0; i < mr; i++)
        for (int c = 0; c < FRNN_Q8_NC; c++) {
            const int8_t *p = panel + (size_t)(c / PW) * Kp * PW + (c % PW) * 4;
            int32_t s = 0;
            for (int k = 0; k < Kp; k++) s += (int32_t)a[i * lda + k] * (int32_t)p[(k / 4) * 32 + k % 4];
            acc[i][c] = s;
        }
}

#if FRNN_Q8_X86
/* A 256-bit path: per 4 values of k, one broadcast of each row's 4 activation bytes and one
 * 32-byte load of each of the NP panels feed R x NP accumulators of 8 s32 lanes (a lane per
 * column): no horizontal sums, the panels read once per R rows. STEP(acc, x, w) adds the four
 * u8 x s8 products of each lane into it. Instantiated for R = 1 and R = MR. */
#define BLK256(name, R, tgt, STEP)                                                                 \
    __attribute__((target(tgt))) static void name(const uint8_t *a, size_t lda, const int8_t *panel, \
                                                  int Kp, int32_t acc[MR][FRNN_Q8_NC])              \
    {                                                                                               \
        const size_t ps = (size_t)Kp * PW;                                                          \
        __m256i s[R][NP];                                                                           \
        for (int i = 0; i < R; i++)                                                                 \
            for (int j = 0; j < NP; j++) s[i][j] = _mm256_setzero_si256();                          \
        for (int k = 0; k < Kp; k += 4) {                                                           \
            __m256i x[R];                                                                           \
            for (int i = 0; i < R; i++) {                                                           \
                int32_t v;                                                                          \
                memcpy(&v, a + i * lda + k, 4);                                                     \
                x[i] = _mm256_set1_epi32(v);                                                        \
            }                                                                                       \
            const int8_t *pk = panel + (size_t)k * PW;                                              \
            for (int j = 0; j < NP; j++) {                                                          \
                const __m256i w = _mm256_loadu_si256((const __m256i *)(pk + j * ps));               \
                for (int i = 0; i < R; i++) s[i][j] = STEP(s[i][j], x[i], w);                       \
            }                                                                                       \
        }                                                                                           \
        for (int i = 0; i < R; i++)                                                                 \
            for (int j = 0; j < NP; j++) _mm256_storeu_si256((__m256i *)&acc[i][j * PW], s[i][j]); \
    }

#define BLK_PAIR(name, tgt, STEP)                                                                  \
    BLK256(name##_1, 1, tgt, STEP)                                                                  \
    BLK256(name##_2, MR, tgt, STEP)                                                                 \
    static void name(const uint8_t *a, size_t lda, int mr, const int8_t *panel, int Kp,             \
                     int32_t acc[MR][FRNN_Q8_NC])                                                   \
    {                                                                                               \
        if (mr == MR) name##_2(a, lda, panel, Kp, acc);                                             \
        else name##_1(a, lda, panel, Kp, acc);                                                      \
    }

/* AVX2: u8 x s8 pairs summed into s16 (no saturation: the activations have 7 bits, so a pair
 * is at most 2 * 127 * 127 < 2^15), then pairs of s16 into s32 by vpmaddwd with ones. */
#define STEP_AVX2(acc, x, b) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((x), (b)), _mm256_set1_epi16(1)))
BLK_PAIR(blk_avx2, "avx2", STEP_AVX2)

#if defined(__GNUC__) && __GNUC__ >= 11
/* AVX-VNNI: vpdpbusd, groups of four u8 x s8 into s32 in one instruction. */
#define STEP_AVXVNNI(acc, x, b) _mm256_dpbusd_avx_epi32((acc), (x), (b))
BLK_PAIR(blk_avxvnni, "avx2,avxvnni", STEP_AVXVNNI)
#define HAVE_AVXVNNI 1
#endif

/* AVX512-VNNI: the EVEX vpdpbusd on the same 256-bit panels (AVX512-VL). */
#define STEP_AVX512VNNI(acc, x, b) _mm256_dpbusd_epi32((acc), (x), (b))
BLK_PAIR(blk_avx512vnni, "avx2,avx512f,avx512vl,avx512vnni", STEP_AVX512VNNI)
#endif

int frnn_q8_isa_supported(int isa)
{
    if (isa == FRNN_Q8_REF) return 1;
#if FRNN_Q8_X86
    /* frnn_isa_supported also checks that the OS saves the vector state */
    if (isa == FRNN_Q8_AVX2) return frnn_isa_supported(FRNN_ISA_AVX2);
#ifdef HAVE_AVXVNNI
    if (isa == FRNN_Q8_AVXVNNI) return frnn_isa_supported(FRNN_ISA_AVX2) && __builtin_cpu_supports("avxvnni");
#endif
    if (isa == FRNN_Q8_AVX512VNNI)
        return frnn_isa_supported(FRNN_ISA_AVX512) && __builtin_cpu_supports("avx512vl")
               && __builtin_cpu_supports("avx512vnni");
#endif
    return 0;
}

static int Q8_ISA = -1;

static int q8_default(void)
{
    const char *env = getenv("FASTRNN_INT8_ISA");
    static const char *const names[] = {"ref", NULL, "avx2", NULL, "avxvnni", "avx512vnni"};
    if (env)
        for (int i = 0; i < 6; i++)
            if (names[i] && !strcmp(env, names[i]) && frnn_q8_isa_supported(i)) return i;
    const int engine = frnn_isa_active();   /* FASTRNN_ISA=none|avx2 caps the int8 path too */
    if (engine == FRNN_ISA_NONE) return FRNN_Q8_REF;
    const int order[] = {FRNN_Q8_AVX512VNNI, FRNN_Q8_AVXVNNI, FRNN_Q8_AVX2};
    for (int i = engine == FRNN_ISA_AVX2 ? 1 : 0; i < 3; i++)
        if (frnn_q8_isa_supported(order[i])) return order[i];
    return FRNN_Q8_REF;
}

int frnn_q8_isa_active(void)
{
    int isa = __atomic_load_n(&Q8_ISA, __ATOMIC_ACQUIRE);
    if (isa < 0) {
        isa = q8_default();
        __atomic_store_n(&Q8_ISA, isa, __ATOMIC_RELEASE);
    }
    return isa;
}

int frnn_q8_set_isa(int isa)
{
    if (frnn_q8_isa_supported(isa)) __atomic_store_n(&Q8_ISA, isa, __ATOMIC_RELEASE);
    return frnn_q8_isa_active();
}

static blk_fn q8_kernel(void)
{
    switch (frnn_q8_isa_active()) {
#if FRNN_Q8_X86
    case FRNN_Q8_AVX2: return blk_avx2;
#ifdef HAVE_AVXVNNI
    case FRNN_Q8_AVXVNNI: return blk_avxvnni;
#endif
    case FRNN_Q8_AVX512VNNI: return blk_avx512vnni;
#endif
    default: return blk_ref;
    }
}

size_t frnn_q8_packed_bytes(int N, int Kp)
{
    return (size_t)((N + FRNN_Q8_NC - 1) / FRNN_Q8_NC * FRNN_Q8_NC) * (size_t)Kp;
}

void frnn_q8_pack(const int8_t *q, size_t ldq, int N, int K, int Kp, int8_t *out)
{
    memset(out, 0, frnn_q8_packed_bytes(N, Kp));
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            out[(size_t)(n / PW) * Kp * PW + (size_t)(k / 4) * 32 + (n % PW) * 4 + k % 4] = q[(size_t)n * ldq + k];
}

static float quantize_row_ref(const float *a, int K, int Kp, uint8_t *q)
{
    float m = 0;
    int finite = 1;
    for (int k = 0; k < K; k++) {
        const float v = fabsf(a[k]);
        finite &= v <= 3.402823466e38f;           /* false for inf and NaN */
        m = v > m ? v : m;
    }
    if (!finite || m == 0) {
        memset(q, 64, (size_t)Kp);
        return finite ? 0.0f : NAN;
    }
    const float inv = 63.0f / m;
    for (int k = 0; k < K; k++) {
        float r = a[k] * inv;                     /* in [-63, 63] up to rounding */
        r = (r + 12582912.0f) - 12582912.0f;      /* rint (half to even): 1.5 * 2^23 */
        r = r > 63.0f ? 63.0f : r < -63.0f ? -63.0f : r;
        q[k] = (uint8_t)(64 + (int)r);
    }
    memset(q + K, 64, (size_t)(Kp - K));
    return m / 63.0f;
}

#if FRNN_Q8_X86
/* The same row quantization, 32 values at a time: max is exact in any order, and the multiply,
 * the rint by adding and subtracting 1.5 * 2^23, and the clamp are the scalar operations lane
 * by lane (no FMA in this target), so the bytes are the reference's. */
__attribute__((target("avx2"))) static float quantize_row_avx2(const float *a, int K, int Kp, uint8_t *q)
{
    const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 big = _mm256_set1_ps(3.402823466e38f);
    __m256 vm = _mm256_setzero_ps();
    int k = 0, finite = 1;
    for (; k + 8 <= K; k += 8) {
        const __m256 v = _mm256_and_ps(_mm256_loadu_ps(a + k), abs);
        finite &= _mm256_movemask_ps(_mm256_cmp_ps(v, big, _CMP_LE_OQ)) == 0xff;
        vm = _mm256_max_ps(vm, v);
    }
    float lanes[8], m = 0;
    _mm256_storeu_ps(lanes, vm);
    for (int i = 0; i < 8; i++) m = lanes[i] > m ? lanes[i] : m;
    for (; k < K; k++) {
        const float v = fabsf(a[k]);
        finite &= v <= 3.402823466e38f;
        m = v > m ? v : m;
    }
    if (!finite || m == 0) {
        memset(q, 64, (size_t)Kp);
        return finite ? 0.0f : NAN;
    }
    const float inv = 63.0f / m;
    const __m256 vinv = _mm256_set1_ps(inv), magic = _mm256_set1_ps(12582912.0f);
    const __m256 hi = _mm256_set1_ps(63.0f), lo = _mm256_set1_ps(-63.0f);
    const __m256i off = _mm256_set1_epi32(64), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
#define Q8_LANES(p) _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(_mm256_sub_ps( \
        _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(p), vinv), magic), magic), hi), lo)), off)
    for (k = 0; k + 32 <= K; k += 32) {
        const __m256i w0 = _mm256_packs_epi32(Q8_LANES(a + k), Q8_LANES(a + k + 8));
        const __m256i w1 = _mm256_packs_epi32(Q8_LANES(a + k + 16), Q8_LANES(a + k + 24));
        const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(w0, w1), order);
        _mm256_storeu_si256((__m256i *)(q + k), b);
    }
#undef Q8_LANES
    for (; k < K; k++) {
        float r = a[k] * inv;
        r = (r + 12582912.0f) - 12582912.0f;
        r = r > 63.0f ? 63.0f : r < -63.0f ? -63.0f : r;
        q[k] = (uint8_t)(64 + (int)r);
    }
    memset(q + K, 64, (size_t)(Kp - K));
    return m / 63.0f;
}
#endif

float frnn_q8_quantize_row(const float *a, int K, int Kp, uint8_t *q)
{
#if FRNN_Q8_X86
    if (frnn_q8_isa_active() != FRNN_Q8_REF) return quantize_row_avx2(a, K, Kp, q);
#endif
    return quantize_row_ref(a, K, Kp, q);
}

/* Static rows (int8.h): the scalar definition. */
static void quantize_static_ref(const float *a, int n, uint8_t *q)
{
    for (int k = 0; k < n; k++) {
        if (!(fabsf(a[k]) <= 3.402823466e38f)) {  /* inf or NaN */
            q[k] = 0;
            continue;
        }
        float r = a[k] * 63.0f;
        r = r > 63.0f ? 63.0f : r < -63.0f ? -63.0f : r;   /* clamp first: the rint trick needs |r| < 2^22 */
        r = (r + 12582912.0f) - 12582912.0f;
        q[k] = (uint8_t)(64 + (int)r);
    }
}

#if FRNN_Q8_X86
/* The same, 16 values at a time (clamp, rint by 1.5 * 2^23, lane by lane; non-finite lanes 0). */
__attribute__((target("avx2"))) static void quantize_static_avx2(const float *a, int n, uint8_t *q)
{
    const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), big = _mm256_set1_ps(3.402823466e38f);
    const __m256 c63 = _mm256_set1_ps(63.0f), lo = _mm256_set1_ps(-63.0f), magic = _mm256_set1_ps(12582912.0f);
    const __m256i off = _mm256_set1_epi32(64);
#define Q8S_LANES(p, out) do {                                                                           \
        const __m256 v = _mm256_loadu_ps(p);                                                            \
        const __m256 ok = _mm256_cmp_ps(_mm256_and_ps(v, abs), big, _CMP_LE_OQ);                        \
        __m256 r = _mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(v, c63), c63), lo);                         \
        r = _mm256_sub_ps(_mm256_add_ps(r, magic), magic);                                                \
        out = _mm256_and_si256(_mm256_add_epi32(_mm256_cvtps_epi32(r), off), _mm256_castps_si256(ok));   \
    } while (0)
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        __m256i x0, x1;
        Q8S_LANES(a + k, x0);
        Q8S_LANES(a + k + 8, x1);
        const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(x0, x1), 0xd8);   /* 16 s16 in order */
        const __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128((__m128i *)(q + k), b);
    }
#undef Q8S_LANES
    quantize_static_ref(a + k, n - k, q + k);
}
#endif

void frnn_q8_quantize_static(const float *a, int n, uint8_t *q)
{
#if FRNN_Q8_X86
    if (frnn_q8_isa_active() != FRNN_Q8_REF) {
        quantize_static_avx2(a, n, q);
        return;
    }
#endif
    quantize_static_ref(a, n, q);
}

frnn_q8_mat frnn_q8_rows(const frnn_q8_mat *W, int r0, int m)
{
    frnn_q8_mat v = *W;
    v.n0 += r0, v.scale += r0, v.comp += r0, v.N = m;
    return v;
}

/* Rows [m0, m0 + mr) of C, view columns [c0, c1) from a kernel block whose first column is view
 * column cb: the one float epilogue of the scheme. */
static void epilogue_ref(const frnn_q8_mat *W, int32_t acc[MR][FRNN_Q8_NC], int mr, const float *sa, int cb,
                         int c0, int c1, int beta, const float *bias, float *C, size_t ldc)
{
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        for (int n = c0; n < c1; n++) {
            const float v = (float)(acc[i][n - cb] - W->comp[n]) * (sa[i] * W->scale[n]);
            c[n] = bias ? bias[n] + v : beta ? c[n] + v : v;
        }
    }
}

#if FRNN_Q8_X86
/* The same epilogue 8 columns at a time: the conversion, both products and the sum are the
 * scalar operations lane by lane (no FMA in this target), so the bits are the same. */
__attribute__((target("avx2"))) static void epilogue_avx2(const frnn_q8_mat *W, int32_t acc[MR][FRNN_Q8_NC], int mr,
                                                          const float *sa, int cb, int c0, int c1, int beta,
                                                          const float *bias, float *C, size_t ldc)
{
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        const float *add = bias ? bias : beta ? c : NULL;   /* bias[n] + v == c[n] + v for c[n] == bias[n] */
        const __m256 si = _mm256_set1_ps(sa[i]);
        int n = c0;
        for (; n + 8 <= c1; n += 8) {
            const __m256i d = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)&acc[i][n - cb]),
                                               _mm256_loadu_si256((const __m256i *)(W->comp + n)));
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_mul_ps(si, _mm256_loadu_ps(W->scale + n)));
            if (add) v = _mm256_add_ps(_mm256_loadu_ps(add + n), v);
            _mm256_storeu_ps(c + n, v);
        }
        for (; n < c1; n++) {
            const float v = (float)(acc[i][n - cb] - W->comp[n]) * (sa[i] * W->scale[n]);
            c[n] = add ? add[n] + v : v;
        }
    }
}
#endif

/* The epilogue that goes with a kernel: the vector one beside every vector kernel. */
typedef void (*epi_fn)(const frnn_q8_mat *, int32_t[MR][FRNN_Q8_NC], int, const float *, int, int, int, int,
                       const float *, float *, size_t);

static epi_fn q8_epilogue(blk_fn blk)
{
    (void)blk;
#if FRNN_Q8_X86
    if (blk != blk_ref) return epilogue_avx2;
#endif
    return epilogue_ref;
}

/* Columns [q*seg + u0, q*seg + u1) of every segment of gr rows of C from gr quantized rows qa
 * (leading dimension ldq) with row scales sa: each block of W's panels meets every row. With a
 * bias (N values), C = bias + product (beta ignored): the sums of a beta-1 product onto rows
 * holding the bias, without writing and reading those rows first. */
static void mul_rows(const frnn_q8_mat *W, int seg, int u0, int u1, int gr, const uint8_t *qa, size_t ldq,
                     const float *sa, int beta, const float *bias, float *C, size_t ldc)
{
    const blk_fn blk = q8_kernel();
    const epi_fn epilogue = q8_epilogue(blk);
    const int Kp = W->Kp, last = W->Np / PW - NP;          /* the last panel a block may start at */
    int32_t acc[MR][FRNN_Q8_NC];
    for (int q = 0; q < W->N / seg; q++) {
        /* view columns [c0, c1) are packed columns [n0 + c0, n0 + c1): blocks of NP panels */
        const int c0 = q * seg + u0, c1 = q * seg + u1;
        for (int p = (W->n0 + c0) / PW; p * PW < W->n0 + c1; p += NP) {
            const int pb = p < last ? p : last;            /* stay inside the padded matrix */
            const int cb = pb * PW - W->n0;                /* view column of the block's first */
            const int lo = p * PW - W->n0 > c0 ? p * PW - W->n0 : c0;
            const int hi = (p + NP) * PW - W->n0 < c1 ? (p + NP) * PW - W->n0 : c1;
            const int8_t *panel = W->w + (size_t)pb * Kp * PW;
            for (int m0 = 0; m0 < gr; m0 += MR) {
                const int mr = gr - m0 < MR ? gr - m0 : MR;
                float *c = C + (size_t)m0 * ldc;
                if (beta && !bias)   /* the C lines the epilogue reads (often from memory: the step's
                                        projected rows), fetched while the kernel runs */
                    for (int i = 0; i < mr; i++) {
                        __builtin_prefetch(c + (size_t)i * ldc + lo, 1);
                        __builtin_prefetch(c + (size_t)i * ldc + hi - 1, 1);
                        if (hi - lo > 16) __builtin_prefetch(c + (size_t)i * ldc + lo + 16, 1);
                    }
                blk(qa + (size_t)m0 * ldq, ldq, mr, panel, Kp, acc);
                epilogue(W, acc, mr, sa + m0, cb, lo, hi, beta, bias, c, ldc);
            }
        }
    }
}

/* frnn_q8_mul, or with a bias (N values) C = bias + product (mul_rows; not on the AMX tiles). */
static void q8_mul_bias(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const float *A, size_t lda,
                        int beta, const float *bias, float *C, size_t ldc)
{
    const int Kp = W->Kp, rows = FRNN_Q8_ROWBUF / Kp;      /* rows quantized at a time (>= 4) */
    uint8_t qa[FRNN_Q8_ROWBUF] __attribute__((aligned(64)));
    float sa[FRNN_Q8_ROWBUF / FRNN_Q8_ALIGN];
    for (int g0 = 0; g0 < M; g0 += rows) {
        const int gr = M - g0 < rows ? M - g0 : rows;
        for (int i = 0; i < gr; i++) sa[i] = frnn_q8_quantize_row(A + (size_t)(g0 + i) * lda, W->K, Kp, qa + (size_t)i * Kp);
        mul_rows(W, seg, u0, u1, gr, qa, (size_t)Kp, sa, beta, bias, C + (size_t)g0 * ldc, ldc);
    }
}

void frnn_q8_mul(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const float *A, size_t lda,
                 int beta, float *C, size_t ldc)
{
    if (u1 <= u0 || M <= 0 || W->N <= 0) return;
    if (frnn_amx_q8_mul(W, seg, u0, u1, M, A, lda, beta, C, ldc)) return;    /* AMX tiles: the same integers */
    q8_mul_bias(W, seg, u0, u1, M, A, lda, beta, NULL, C, ldc);
}

void frnn_q8_mul_static(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const uint8_t *qa, size_t ldq,
                        int beta, float *C, size_t ldc)
{
    if (u1 <= u0 || M <= 0 || W->N <= 0) return;
    enum { G = 256 };                                      /* rows per group of scales */
    float sa[G];
    for (int g0 = 0; g0 < M; g0 += G) {
        const int gr = M - g0 < G ? M - g0 : G;
        for (int i = 0; i < gr; i++)   /* a 0 byte marks a non-finite value: the row's outputs are NaN */
            sa[i] = memchr(qa + (size_t)(g0 + i) * ldq, 0, (size_t)W->K) ? NAN : FRNN_Q8_STATIC_SCALE;
        mul_rows(W, seg, u0, u1, gr, qa + (size_t)g0 * ldq, ldq, sa, beta, NULL, C + (size_t)g0 * ldc, ldc);
    }
}

void frnn_q8_input_projection(const frnn_par *par, size_t rows, int GH, const float *x, const frnn_q8_mat *W,
                              const float *b_ih, const float *b_hh, int fold, float *out)
{
    const size_t r0 = rows * par->tid / par->nth, r1 = rows * (par->tid + 1) / par->nth;
    const size_t I = (size_t)W->K;
    /* the biases first, as the float path folds them: one row, then out = row + product (the
     * same sum as the product added onto rows holding the bias, without that pass over out) */
    float *bias = r1 > r0 ? malloc(sizeof(float) * GH) : NULL;
    const int tiles = bias && frnn_amx_mode() != FRNN_AMX_OFF && r1 - r0 >= FRNN_AMX_ROWS;
    float *o = bias && !tiles ? bias : out + r0 * GH;   /* no memory, or the tiles: the rows themselves */
    if (r1 > r0 && b_ih && b_hh) {              /* the same sums, without a branch per column */
        for (int j = 0; j < fold; j++) o[j] = b_ih[j] + b_hh[j];
        for (int j = fold; j < GH; j++) o[j] = b_ih[j] + 0.0f;
    } else if (r1 > r0)
        for (int j = 0; j < GH; j++) o[j] = (b_ih ? b_ih[j] : 0) + (b_hh && j < fold ? b_hh[j] : 0);
    if (o != bias)
        for (size_t r = r0 + 1; r < r1; r++) memcpy(out + r * GH, out + r0 * GH, sizeof(float) * GH);
    for (size_t m0 = r0; m0 < r1; m0 += 1 << 30) {
        const int m = (int)(r1 - m0 < (1u << 30) ? r1 - m0 : 1u << 30);
        if (o != bias) frnn_q8_mul(W, GH, 0, GH, m, x + m0 * I, I, 1, out + m0 * GH, (size_t)GH);
        else if (W->N > 0) q8_mul_bias(W, GH, 0, GH, m, x + m0 * I, I, 1, bias, out + m0 * GH, (size_t)GH);
    }
    free(bias);
    frnn_sync(par);               /* each step reads its units' columns of every row */
}
