/* gemm_int8.c - the int8 products of int8.h: rows quantized to u8 once per call, s32 dot
 * products by one of four paths (plain C, AVX2 vpmaddubsw + vpmaddwd, AVX-VNNI and
 * AVX512-VNNI vpdpbusd), then one shared float epilogue. The paths differ only in how they add
 * up the same integers, so they give the same bits (csrc/test_kernels.c, tests/test_int8.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "int8.h"
#include "engine.h"
#include "team.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define FRNN_Q8_X86 1
#include <immintrin.h>
#else
#define FRNN_Q8_X86 0
#endif

#define MB 4   /* rows per block (their quantized copies live on the stack) */
#define NB 4   /* columns per kernel call */

/* acc[i][j] = sum_k a_i[k] * w_j[k] for i < mr <= MB, j < nr <= NB; a (mr, Kp) with leading
 * dimension lda, w (nr, Kp) with leading dimension ldw. */
typedef void (*dot_fn)(const uint8_t *a, size_t lda, int mr, const int8_t *w, size_t ldw, int nr, int Kp,
                       int32_t acc[MB][NB]);

/* The reference: the definition, one product at a time. */
static void dot_ref(const uint8_t *a, size_t lda, int mr, const int8_t *w, size_t ldw, int nr, int Kp,
                    int32_t acc[MB][NB])
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            int32_t s = 0;
            for (int k = 0; k < Kp; k++) s += (int32_t)a[i * lda + k] * (int32_t)w[j * ldw + k];
            acc[i][j] = s;
        }
}

#if FRNN_Q8_X86
/* Sum of the 8 s32 lanes (exact). */
__attribute__((target("avx2"))) static int32_t hsum8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* A 256-bit path: per 32 values of k, 4 rows x 2 columns of accumulators; STEP adds
 * a (u8) . w (s8) in groups of four into the s32 lanes of acc. Rows past mr repeat the last row
 * and columns past nr the last column (their sums are dropped). */
#define DOT256(name, tgt, STEP)                                                                  \
    __attribute__((target(tgt))) static void name(const uint8_t *a, size_t lda, int mr,           \
                                                      const int8_t *w, size_t ldw, int nr, int Kp,  \
                                                      int32_t acc[MB][NB])                          \
    {                                                                                               \
        const uint8_t *ar[MB];                                                                      \
        for (int i = 0; i < MB; i++) ar[i] = a + (i < mr ? i : mr - 1) * lda;                       \
        for (int j0 = 0; j0 < nr; j0 += 2) {                                                        \
            const int8_t *w0 = w + j0 * ldw, *w1 = j0 + 1 < nr ? w0 + ldw : w0;                     \
            __m256i s[MB][2];                                                                       \
            for (int i = 0; i < MB; i++) s[i][0] = s[i][1] = _mm256_setzero_si256();                \
            for (int k = 0; k < Kp; k += 32) {                                                      \
                const __m256i b0 = _mm256_loadu_si256((const __m256i *)(w0 + k));                   \
                const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w1 + k));                   \
                for (int i = 0; i < MB; i++) {                                                      \
                    const __m256i x = _mm256_loadu_si256((const __m256i *)(ar[i] + k));             \
                    s[i][0] = STEP(s[i][0], x, b0);                                                 \
                    s[i][1] = STEP(s[i][1], x, b1);                                                 \
                }                                                                                   \
            }                                                                                       \
            for (int i = 0; i < mr; i++) {                                                          \
                acc[i][j0] = hsum8(s[i][0]);                                                        \
                if (j0 + 1 < nr) acc[i][j0 + 1] = hsum8(s[i][1]);                                   \
            }                                                                                       \
        }                                                                                           \
    }

/* AVX2: u8 x s8 pairs summed into s16 (no saturation: the activations have 7 bits), then pairs
 * of s16 into s32. */
#define STEP_AVX2(acc, x, b) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((x), (b)), _mm256_set1_epi16(1)))
DOT256(dot_avx2, "avx2", STEP_AVX2)

#if defined(__GNUC__) && __GNUC__ >= 11
/* AVX-VNNI: vpdpbusd, groups of four u8 x s8 into s32 in one instruction. */
#define STEP_AVXVNNI(acc, x, b) _mm256_dpbusd_avx_epi32((acc), (x), (b))
DOT256(dot_avxvnni, "avx2,avxvnni", STEP_AVXVNNI)
#define HAVE_AVXVNNI 1
#endif

/* AVX512-VNNI: 64 values of k per instruction (Kp is a multiple of 64). */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
dot_avx512vnni(const uint8_t *a, size_t lda, int mr, const int8_t *w, size_t ldw, int nr, int Kp,
               int32_t acc[MB][NB])
{
    const uint8_t *ar[MB];
    for (int i = 0; i < MB; i++) ar[i] = a + (i < mr ? i : mr - 1) * lda;
    const int8_t *wc[NB];
    for (int j = 0; j < NB; j++) wc[j] = w + (j < nr ? j : nr - 1) * ldw;
    __m512i s[MB][NB];
    for (int i = 0; i < MB; i++)
        for (int j = 0; j < NB; j++) s[i][j] = _mm512_setzero_si512();
    for (int k = 0; k < Kp; k += 64) {
        __m512i b[NB];
        for (int j = 0; j < NB; j++) b[j] = _mm512_loadu_si512((const void *)(wc[j] + k));
        for (int i = 0; i < MB; i++) {
            const __m512i x = _mm512_loadu_si512((const void *)(ar[i] + k));
            for (int j = 0; j < NB; j++) s[i][j] = _mm512_dpbusd_epi32(s[i][j], x, b[j]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_reduce_add_epi32(s[i][j]);
}
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
        return frnn_isa_supported(FRNN_ISA_AVX512) && __builtin_cpu_supports("avx512bw")
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

static dot_fn q8_kernel(void)
{
    switch (frnn_q8_isa_active()) {
#if FRNN_Q8_X86
    case FRNN_Q8_AVX2: return dot_avx2;
#ifdef HAVE_AVXVNNI
    case FRNN_Q8_AVXVNNI: return dot_avxvnni;
#endif
    case FRNN_Q8_AVX512VNNI: return dot_avx512vnni;
#endif
    default: return dot_ref;
    }
}

float frnn_q8_quantize_row(const float *a, int K, int Kp, uint8_t *q)
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

frnn_q8_mat frnn_q8_rows(const frnn_q8_mat *W, int r0, int m)
{
    frnn_q8_mat v = *W;
    v.w += (size_t)r0 * W->Kp, v.scale += r0, v.comp += r0, v.N = m;
    return v;
}

void frnn_q8_mul(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const float *A, size_t lda,
                 int beta, float *C, size_t ldc)
{
    if (u1 <= u0 || M <= 0 || W->N <= 0) return;
    const dot_fn dot = q8_kernel();
    const int Kp = W->Kp;
    uint8_t qa[MB * FRNN_Q8_KMAX] __attribute__((aligned(64)));
    float sa[MB];
    int32_t acc[MB][NB];
    for (int m0 = 0; m0 < M; m0 += MB) {
        const int mr = M - m0 < MB ? M - m0 : MB;
        for (int i = 0; i < mr; i++) sa[i] = frnn_q8_quantize_row(A + (size_t)(m0 + i) * lda, W->K, Kp, qa + (size_t)i * Kp);
        for (int q = 0; q < W->N / seg; q++) {
            const int n1 = q * seg + u1;
            for (int n = q * seg + u0; n < n1; n += NB) {
                const int nr = n1 - n < NB ? n1 - n : NB;
                dot(qa, (size_t)Kp, mr, W->w + (size_t)n * Kp, (size_t)Kp, nr, Kp, acc);
                for (int i = 0; i < mr; i++) {
                    float *c = C + (size_t)(m0 + i) * ldc + n;
                    for (int j = 0; j < nr; j++) {
                        const float v = (float)(acc[i][j] - W->comp[n + j]) * (sa[i] * W->scale[n + j]);
                        c[j] = beta ? c[j] + v : v;
                    }
                }
            }
        }
    }
}

void frnn_q8_input_projection(const frnn_par *par, size_t rows, int GH, const float *x, const frnn_q8_mat *W,
                              const float *b_ih, const float *b_hh, int fold, float *out)
{
    const size_t r0 = rows * par->tid / par->nth, r1 = rows * (par->tid + 1) / par->nth;
    const size_t I = (size_t)W->K;
    for (size_t r = r0; r < r1; r++)       /* the biases first, as the float path folds them */
        for (int j = 0; j < GH; j++)
            out[r * GH + j] = (b_ih ? b_ih[j] : 0) + (b_hh && j < fold ? b_hh[j] : 0);
    for (size_t m0 = r0; m0 < r1; m0 += 1 << 30) {
        const int m = (int)(r1 - m0 < (1u << 30) ? r1 - m0 : 1u << 30);
        frnn_q8_mul(W, GH, 0, GH, m, x + m0 * I, I, 1, out + m0 * GH, (size_t)GH);
    }
    frnn_sync(par);               /* each step reads its units' columns of every row */
}
