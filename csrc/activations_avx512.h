/* activations_avx512.h - float32 sigmoid and tanh with AVX-512 intrinsics, giving exactly the bits
 * of frnn_sigmoid_f / frnn_tanh_f (activations.h), NaN payloads included: sigmoid_avx2.h and
 * tanh_avx2.h 16 lanes wide, the blends on mask registers.
 *
 * On an AVX-512 engine the gate loops ran the compiler's x86-64-v4 clone of the scalar code, which
 * scales every lane by 2^n in two factors (two integer-built powers and two multiplies) and keeps
 * the selects as compares and blends on the full chain; here, as in the AVX2 versions, ONE scaling
 * when every lane's n >= -126 (p * 2^n1 exact, so p * 2^n1 * 2^(n - n1) rounds once, to p * 2^n),
 * the two-factor one otherwise. Every operation is one rounding (no FMA: the target has none named
 * and the intrinsics are separate mul/add). x86-64 only; the caller checks the CPU (common.h:
 * frnn_isa_active() == FRNN_ISA_AVX512). Checked against the reference over the float32 bit
 * patterns by tests/c/sweep_activations.c. */
#ifndef FRNN_ACTIVATIONS_AVX512_H
#define FRNN_ACTIVATIONS_AVX512_H

#include "activations.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define FRNN_HAVE_ACT_AVX512 1
#include <immintrin.h>
#define FRNN_T512 __attribute__((target("avx512f")))

/* exp(x) of 16 lanes, x <= 0 or NaN (NaN propagates): frnn_exp_nonpos_f's operations in its order. */
FRNN_T512 __attribute__((always_inline)) static inline __m512 frnn_exp_nonpos_512(__m512 x)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f), one = _mm512_set1_ps(1.0f);
    const __m512 bias = _mm512_set1_ps(127.0f + 8388608.0f);
    const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);         /* NaN stays NaN */
    const __m512 nn = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)), magic), magic);
    const __m512 r = _mm512_sub_ps(_mm512_sub_ps(xc, _mm512_mul_ps(nn, _mm512_set1_ps(0.693359375f))),
                                   _mm512_mul_ps(nn, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 q = _mm512_set1_ps(1.9875691500e-4f);
    q = _mm512_add_ps(_mm512_mul_ps(q, r), _mm512_set1_ps(1.3981999507e-3f));
    q = _mm512_add_ps(_mm512_mul_ps(q, r), _mm512_set1_ps(8.3334519073e-3f));
    q = _mm512_add_ps(_mm512_mul_ps(q, r), _mm512_set1_ps(4.1665795894e-2f));
    q = _mm512_add_ps(_mm512_mul_ps(q, r), _mm512_set1_ps(1.6666665459e-1f));
    q = _mm512_add_ps(_mm512_mul_ps(q, r), _mm512_set1_ps(5.0000001201e-1f));
    q = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(q, r), r), r), one);
    if (!_mm512_cmp_ps_mask(nn, _mm512_set1_ps(-126.0f), _CMP_LT_OQ)) {
        const __m512i b = _mm512_slli_epi32(_mm512_castps_si512(_mm512_add_ps(nn, bias)), 23);
        return _mm512_mul_ps(q, _mm512_castsi512_ps(b));
    }
    const __m512 n1 = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(nn, _mm512_set1_ps(0.5f)), magic), magic);
    const __m512i b1 = _mm512_slli_epi32(_mm512_castps_si512(_mm512_add_ps(n1, bias)), 23);
    const __m512i b2 = _mm512_slli_epi32(_mm512_castps_si512(_mm512_add_ps(_mm512_sub_ps(nn, n1), bias)), 23);
    return _mm512_mul_ps(_mm512_mul_ps(q, _mm512_castsi512_ps(b1)), _mm512_castsi512_ps(b2));
}

FRNN_T512 __attribute__((always_inline)) static inline __m512 frnn_xor_512(__m512 a, __m512 b)
{
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}

/* out[j] = sigmoid(in[j]) for j < n; out == in allowed (each vector is loaded before it is stored). */
FRNN_T512 static void frnn_sigmoid_avx512(float *out, const float *in, int n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sgn = _mm512_set1_epi32((int)0x80000000u);
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m512 x = _mm512_loadu_ps(in + j);
        const __m512 e = frnn_exp_nonpos_512(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(x), sgn)));
        const __m512 num = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), e, one);
        _mm512_storeu_ps(out + j, _mm512_div_ps(num, _mm512_add_ps(one, e)));
    }
    for (; j < n; j++) out[j] = frnn_sigmoid_f(in[j]);
}

/* out[j] = tanh(in[j]) for j < n; out == in allowed. */
FRNN_T512 static void frnn_tanh_avx512(float *out, const float *in, int n)
{
    const __m512 one = _mm512_set1_ps(1.0f), sgn = _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u));
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m512 x = _mm512_loadu_ps(in + j);
        const __m512 a = _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_castps_si512(sgn), _mm512_castps_si512(x)));
        const __m512 z = _mm512_mul_ps(x, x);
        __m512 p = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(-5.70498872745e-3f), z), _mm512_set1_ps(2.06390887954e-2f));
        p = _mm512_sub_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(5.37397155531e-2f));
        p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(1.33314422036e-1f));
        p = _mm512_sub_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(3.33332819422e-1f));
        const __m512 small = _mm512_mul_ps(x, _mm512_add_ps(one, _mm512_mul_ps(z, p)));
        const __m512 e = frnn_exp_nonpos_512(_mm512_mul_ps(_mm512_set1_ps(-2.0f), a));
        __m512 big = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
        big = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), big, frnn_xor_512(big, sgn));
        _mm512_storeu_ps(out + j, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.625f), _CMP_LT_OQ), big, small));
    }
    for (; j < n; j++) out[j] = frnn_tanh_f(in[j]);
}
#else
#define FRNN_HAVE_ACT_AVX512 0
#endif

#endif
