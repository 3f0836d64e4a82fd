/* The 8 x 8 float transpose in AVX2 registers shared by gemm.c's packing (transpose_avx2) and the
 * bf16 operand transposes (gemm_bf16_f32.h bf32_trans, which rounds each row as it loads it and
 * exchanges row pairs in its own loads or stores): x[j] holds source row j on entry, column j on
 * exit. x86 only, called from functions compiled for AVX2. */
#ifndef FRNN_TRANSPOSE8_AVX2_H
#define FRNN_TRANSPOSE8_AVX2_H
#include <immintrin.h>

__attribute__((target("avx2"), always_inline)) static inline void frnn_transpose8x8(__m256 x[8])
{
    __m256 y[8];
    for (int j = 0; j < 8; j += 2) {
        y[j] = _mm256_unpacklo_ps(x[j], x[j + 1]);
        y[j + 1] = _mm256_unpackhi_ps(x[j], x[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
        x[j] = _mm256_shuffle_ps(y[j], y[j + 2], _MM_SHUFFLE(1, 0, 1, 0));
        x[j + 1] = _mm256_shuffle_ps(y[j], y[j + 2], _MM_SHUFFLE(3, 2, 3, 2));
        x[j + 2] = _mm256_shuffle_ps(y[j + 1], y[j + 3], _MM_SHUFFLE(1, 0, 1, 0));
        x[j + 3] = _mm256_shuffle_ps(y[j + 1], y[j + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; j++) {
        y[j] = _mm256_permute2f128_ps(x[j], x[j + 4], 0x20);
        y[j + 4] = _mm256_permute2f128_ps(x[j], x[j + 4], 0x31);
    }
    for (int j = 0; j < 8; j++) x[j] = y[j];
}
#endif
