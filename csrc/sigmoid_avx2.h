/* sigmoid_avx2.h - float32 sigmoid in place with AVX2 intrinsics, giving exactly the bits of
 * frnn_sigmoid_f (activations.h; tests/c/activations_ref.h defines them), NaN payloads included.
 *
 * The same operations in the same order as frnn_exp_nonpos_f / frnn_sigmoid_f, each one a single
 * rounding (no FMA: target "avx2" only), written so the dependent chain is shorter than the
 * auto-vectorised loop's: vmaxps for the clamp (max(-104, NaN) returns the NaN, like the select),
 * an FP-domain blend for the select, and ONE 2^n scaling when every lane's n >= -126 -- then
 * p * 2^n1 is exact (2^n1 normal, p in [0.7, 1.5)) and p * 2^n1 * 2^(n-n1) rounds once, to
 * p * 2^n; the two-factor scaling otherwise (results down in the subnormal range).
 * x86-64 only; the caller checks the CPU (common.h: frnn_isa_active() == FRNN_ISA_AVX2). Checked
 * against the reference over the float32 bit patterns by tests/c/sweep_activations.c. */
#ifndef FRNN_SIGMOID_AVX2_H
#define FRNN_SIGMOID_AVX2_H

#include "activations.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define FRNN_HAVE_SIGMOID_AVX2 1
#include <immintrin.h>

/* exp(x) of 8 lanes, x <= 0 or NaN (NaN propagates): frnn_exp_nonpos_f's operations in its order.
 * Shared with tanh_avx2.h. */
__attribute__((target("avx2"), always_inline)) static inline __m256 frnn_exp_nonpos_avx2(__m256 x)
{
    const __m256 magic = _mm256_set1_ps(12582912.0f), one = _mm256_set1_ps(1.0f);
    const __m256 bias = _mm256_set1_ps(127.0f + 8388608.0f);
    const __m256 xc = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);         /* NaN stays NaN */
    const __m256 nn = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                                  magic), magic);
    const __m256 r = _mm256_sub_ps(_mm256_sub_ps(xc, _mm256_mul_ps(nn, _mm256_set1_ps(0.693359375f))),
                                   _mm256_mul_ps(nn, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 q = _mm256_set1_ps(1.9875691500e-4f);
    q = _mm256_add_ps(_mm256_mul_ps(q, r), _mm256_set1_ps(1.3981999507e-3f));
    q = _mm256_add_ps(_mm256_mul_ps(q, r), _mm256_set1_ps(8.3334519073e-3f));
    q = _mm256_add_ps(_mm256_mul_ps(q, r), _mm256_set1_ps(4.1665795894e-2f));
    q = _mm256_add_ps(_mm256_mul_ps(q, r), _mm256_set1_ps(1.6666665459e-1f));
    q = _mm256_add_ps(_mm256_mul_ps(q, r), _mm256_set1_ps(5.0000001201e-1f));
    q = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(q, r), r), r), one);
    if (!_mm256_movemask_ps(_mm256_cmp_ps(nn, _mm256_set1_ps(-126.0f), _CMP_LT_OQ))) {
        const __m256i b = _mm256_slli_epi32(_mm256_castps_si256(_mm256_add_ps(nn, bias)), 23);
        return _mm256_mul_ps(q, _mm256_castsi256_ps(b));
    }
    const __m256 n1 = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(nn, _mm256_set1_ps(0.5f)), magic), magic);
    const __m256i b1 = _mm256_slli_epi32(_mm256_castps_si256(_mm256_add_ps(n1, bias)), 23);
    const __m256i b2 = _mm256_slli_epi32(_mm256_castps_si256(_mm256_add_ps(_mm256_sub_ps(nn, n1), bias)), 23);
    return _mm256_mul_ps(_mm256_mul_ps(q, _mm256_castsi256_ps(b1)), _mm256_castsi256_ps(b2));
}

/* out[j] = sigmoid(in[j]) for j < n; out == in allowed (each vector is loaded before it is stored). */
__attribute__((target("avx2"))) static void frnn_sigmoid_avx2(float *out, const float *in, int n)
{
    const __m256 one = _mm256_set1_ps(1.0f), sgn = _mm256_set1_ps(-0.0f);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 x = _mm256_loadu_ps(in + j);
        const __m256 e = frnn_exp_nonpos_avx2(_mm256_or_ps(x, sgn));       /* exp(-|x|) */
        const __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
        _mm256_storeu_ps(out + j, _mm256_div_ps(num, _mm256_add_ps(one, e)));
    }
    for (; j < n; j++) out[j] = frnn_sigmoid_f(in[j]);
}

static inline void frnn_sigmoid_avx2_inplace(float *p, int n) { frnn_sigmoid_avx2(p, p, n); }
#else
#define FRNN_HAVE_SIGMOID_AVX2 0
#endif

#endif
