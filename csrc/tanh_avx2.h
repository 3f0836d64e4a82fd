/* tanh_avx2.h - float32 tanh with AVX2 intrinsics, giving exactly the bits of frnn_tanh_f
 * (activations.h; tests/c/activations_ref.h defines them), NaN payloads included.
 *
 * The same operations in the same order as frnn_tanh_f, each one a single rounding (no FMA:
 * target "avx2" only): Cephes' odd polynomial for |x| < 0.625, (1 - e) / (1 + e) with
 * e = exp(-2|x|) (sigmoid_avx2.h's frnn_exp_nonpos_avx2) otherwise, the sign put back by a blend
 * on x < 0 (so -NaN keeps the positive sign of |x|'s NaN, as the scalar select does), and the
 * final choice by a blend on |x| < 0.625 (false for NaN: the big branch, as in the scalar code).
 * x86-64 only; the caller checks the CPU (common.h: frnn_isa_active() == FRNN_ISA_AVX2). Checked
 * against the reference over the float32 bit patterns by tests/c/sweep_activations.c. */
#ifndef FRNN_TANH_AVX2_H
#define FRNN_TANH_AVX2_H

#include "activations.h"
#include "sigmoid_avx2.h"

#if FRNN_HAVE_SIGMOID_AVX2
#define FRNN_HAVE_TANH_AVX2 1

/* out[j] = tanh(in[j]) for j < n; out == in allowed (each vector is loaded before it is stored). */
__attribute__((target("avx2"))) static void frnn_tanh_avx2(float *out, const float *in, int n)
{
    const __m256 one = _mm256_set1_ps(1.0f), sgn = _mm256_set1_ps(-0.0f);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 x = _mm256_loadu_ps(in + j);
        const __m256 a = _mm256_andnot_ps(sgn, x);                            /* |x| */
        const __m256 z = _mm256_mul_ps(x, x);
        __m256 p = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(-5.70498872745e-3f), z),
                                 _mm256_set1_ps(2.06390887954e-2f));
        p = _mm256_sub_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(5.37397155531e-2f));
        p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(1.33314422036e-1f));
        p = _mm256_sub_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(3.33332819422e-1f));
        const __m256 small = _mm256_mul_ps(x, _mm256_add_ps(one, _mm256_mul_ps(z, p)));
        const __m256 e = frnn_exp_nonpos_avx2(_mm256_mul_ps(_mm256_set1_ps(-2.0f), a));
        __m256 big = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
        big = _mm256_blendv_ps(big, _mm256_xor_ps(big, sgn), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
        _mm256_storeu_ps(out + j, _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ)));
    }
    for (; j < n; j++) out[j] = frnn_tanh_f(in[j]);
}
#else
#define FRNN_HAVE_TANH_AVX2 0
#endif

#endif
