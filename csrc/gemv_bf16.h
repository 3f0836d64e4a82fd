/* gemv_bf16.h - the bf16 product of ONE row on AVX2 (a batch-1 step, a sampling step), included
 * by gemm_bf16.c: C[0, panels) (+)= bf16(a) @ packed bf16 panels.
 *
 * A batch-1 step reads every weight once per step and does one multiply-add per weight, so its
 * speed is the rate at which the weights stream in. bf16 panels halve those bytes; the kernel must
 * then not cost more instructions per weight than the float32 one does, or it is bound by its own
 * instructions instead (the generic kernels of gemm_bf16.c round the row to bf16 per element and
 * per call -- scalar code in the inner loop -- and reload each weight vector twice: ~5x the float32
 * kernel's instructions per step of a 2x512 LSTM, measured with callgrind). Here:
 *   - the row is rounded to bf16 once per call, 8 lanes at a time (bg_round), not per panel;
 *   - one 32-byte load (16 bf16 weights: 8 columns x a pair of k) feeds 16 products: vpand (odd k: the high halves) and vpslld 16 (even k), two FMAs -- 5 uops per
 *     16 products; 4 panels (64 columns, 8 independent accumulators) per call, which covers the FMA
 *     latency of the two dependent FMAs of a pair;
 *   - MXCSR.FTZ|DAZ is set once per group of panels, and C is added after it is restored (that
 *     addition is plain float32).
 * The bits are those of bf16.h's emulation (frnn_bf16_dot order: per column, from +0, the odd
 * element of each pair first, then the even one; one FMA each under FTZ|DAZ), as in every other
 * kernel: each column is one accumulator lane whatever the panel grouping or the thread split.
 */

#define BG_STACK 2048       /* floats of rounded rows kept on the stack (more: malloc) */

#if FRNN_BF16_X86
#define BG_GROUP 32         /* panels per MXCSR switch (out buffer: BG_GROUP x 16 floats) */

/* 8 floats rounded to bf16 (RNE; NaN quieted, denormals to signed zero), as float32 bits. */
__attribute__((target("avx2"))) static inline __m256i bg_round8(__m256i u)
{
    const __m256i expo = _mm256_set1_epi32(0x7f800000), mag = _mm256_set1_epi32(0x7fffffff);
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u), top = _mm256_set1_epi32((int)0xffff0000u);
    const __m256i quiet = _mm256_set1_epi32(0x00400000), half = _mm256_set1_epi32(0x7fff);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(u, half), lsb), top);   /* RNE */
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, mag), expo);
    r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_and_si256(u, top), quiet), nan);
    const __m256i den = _mm256_cmpeq_epi32(_mm256_and_si256(u, expo), _mm256_setzero_si256());
    return _mm256_blendv_epi8(r, _mm256_and_si256(u, sign), den);
}

/* out[0:n) = x[0:n) (stride csx) rounded to bf16 (frnn_bf16_round: RNE, quiet NaNs, DAZ). */
__attribute__((target("avx2"))) static void bg_round_avx2(const float *x, size_t csx, int n, float *out)
{
    int i = 0;
    if (csx == 1)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_si256((__m256i *)(out + i), bg_round8(_mm256_loadu_si256((const __m256i *)(x + i))));
    for (; i < n; i++) out[i] = frnn_bf16_round(x[(size_t)i * csx]);
}

/* One pair of k of 8 columns: the odd halves then the even halves of the word vector W. */
#define BG_PAIR(W, C)                                                                              \
    do {                                                                                           \
        const __m256i w_ = (W);                                                                    \
        C = _mm256_fmadd_ps(xo, _mm256_castsi256_ps(_mm256_and_si256(w_, hi)), C);                \
        C = _mm256_fmadd_ps(xe, _mm256_castsi256_ps(_mm256_slli_epi32(w_, 16)), C);                \
    } while (0)

#define BG_LOAD(W) _mm256_loadu_si256((const __m256i *)(W))
/* A pair of k (xo, xe) for 4 panels (w + q * ps) or 1 panel, into named accumulators: an array
 * here made GCC 12 store every accumulator to the stack once per pair. */
#define BG_PAIRS4(XO, XE)                                                                          \
    do {                                                                                           \
        const __m256 xo = (XO), xe = (XE);                                                         \
        BG_PAIR(BG_LOAD(w), c0); BG_PAIR(BG_LOAD(w + 8), c1);                                      \
        BG_PAIR(BG_LOAD(w + ps), c2); BG_PAIR(BG_LOAD(w + ps + 8), c3);                            \
        BG_PAIR(BG_LOAD(w + 2 * ps), c4); BG_PAIR(BG_LOAD(w + 2 * ps + 8), c5);                    \
        BG_PAIR(BG_LOAD(w + 3 * ps), c6); BG_PAIR(BG_LOAD(w + 3 * ps + 8), c7);                    \
    } while (0)
#define BG_PAIRS1(XO, XE)                                                                          \
    do {                                                                                           \
        const __m256 xo = (XO), xe = (XE);                                                         \
        BG_PAIR(BG_LOAD(w), c0); BG_PAIR(BG_LOAD(w + 8), c1);                                      \
    } while (0)

/* out[0:64) = bf16 dot products of a (K values, bf16 already) with the 4 panels at P, P + ps, ...
 * (words); MXCSR.FTZ|DAZ set by the caller. An odd K's last pair has a zero odd element (and zero
 * padding in the panels), computed like the others, as the emulation does. */
__attribute__((target("avx2,fma"))) static void bg_avx2_4(int K, const float *a, const uint32_t *P, size_t ps,
                                                         float *out)
{
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    const int K2 = K & ~1;
    const uint32_t *w = P;
    for (int k = 0; k < K2; k += 2, w += 16) BG_PAIRS4(_mm256_broadcast_ss(a + k + 1), _mm256_broadcast_ss(a + k));
    if (K2 < K) BG_PAIRS4(_mm256_setzero_ps(), _mm256_broadcast_ss(a + K2));
    _mm256_storeu_ps(out, c0), _mm256_storeu_ps(out + 8, c1), _mm256_storeu_ps(out + 16, c2);
    _mm256_storeu_ps(out + 24, c3), _mm256_storeu_ps(out + 32, c4), _mm256_storeu_ps(out + 40, c5);
    _mm256_storeu_ps(out + 48, c6), _mm256_storeu_ps(out + 56, c7);
}

/* The same for one panel: out[0:16). */
__attribute__((target("avx2,fma"))) static void bg_avx2_1(int K, const float *a, const uint32_t *P, size_t ps,
                                                         float *out)
{
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 c0 = _mm256_setzero_ps(), c1 = c0;
    const int K2 = K & ~1;
    const uint32_t *w = P;
    (void)ps;
    for (int k = 0; k < K2; k += 2, w += 16) BG_PAIRS1(_mm256_broadcast_ss(a + k + 1), _mm256_broadcast_ss(a + k));
    if (K2 < K) BG_PAIRS1(_mm256_setzero_ps(), _mm256_broadcast_ss(a + K2));
    _mm256_storeu_ps(out, c0), _mm256_storeu_ps(out + 8, c1);
}

/* Panels [p0, p1) of C (1, N) (+)= a @ packed, a (K,) contiguous and bf16 already; NR 16. */
static void bg_mul_avx2(const frnn_bpk *pk, int p0, int p1, const float *a, float *C, int acc)
{
    const size_t pstride = (size_t)(pk->Kp / 2) * pk->nr;
    const unsigned csr = _mm_getcsr();
    float out[BG_GROUP * 16];
    for (int g0 = p0; g0 < p1; g0 += BG_GROUP) {
        const int g1 = p1 - g0 < BG_GROUP ? p1 : g0 + BG_GROUP;
        _mm_setcsr(csr | 0x8040u);
        int p = g0;
        for (; p + 4 <= g1; p += 4) bg_avx2_4(pk->K, a, pk->data + (size_t)p * pstride, pstride, out + (p - g0) * 16);
        for (; p < g1; p++) bg_avx2_1(pk->K, a, pk->data + (size_t)p * pstride, pstride, out + (p - g0) * 16);
        _mm_setcsr(csr);
        for (p = g0; p < g1; p++) {
            float *c = C + frnn_bpk_col(pk, p);
            const float *o = out + (p - g0) * 16;
            const int width = frnn_bpk_width(pk, p);
            for (int j = 0; j < width; j++) c[j] = acc ? c[j] + o[j] : o[j];
        }
    }
}
#endif
