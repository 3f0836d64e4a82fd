/* bf16.h - bfloat16 numerics in plain C: the conversions and the exact emulation of the products
 * of VDPBF16PS, the oracle every bf16 kernel of gemm_bf16.c is tested against.
 *
 * bfloat16 is the top half of a float32 (sign, 8 exponent bits, 7 mantissa bits).
 *   - float32 -> bf16 rounds to nearest even, keeps NaNs quiet NaNs, and treats denormal inputs
 *     as zero (VCVTNEPS2BF16: "DAZ, FTZ, RNE always on"); bf16 -> float32 is a 16-bit shift.
 *   - VDPBF16PS (Intel SDM, "FP32 FMA with daz in, ftz out and RNE rounding; MXCSR neither
 *     consulted nor updated"), per float32 lane i of the accumulator:
 *         acc += make_fp32(a.bf16[2i+1]) * make_fp32(b.bf16[2i+1])    (the odd pair first)
 *         acc += make_fp32(a.bf16[2i+0]) * make_fp32(b.bf16[2i+0])
 *     each += one fused multiply-add, denormal inputs read as zero, a denormal result flushed to
 *     zero (keeping the sign of the true result).
 * A product of two bf16 values has at most 16 significant bits, so it is exact in float32 (a
 * denormal product is flushed by the FMA's own FTZ or is below every normal accumulator): an AVX2
 * FMA on the converted values, with MXCSR.FTZ|DAZ set, gives these bits too. MXCSR's FTZ detects
 * tininess after rounding to 24 bits with an unbounded exponent (measured on AMD Zen 3:
 * 2^-126 - 2^-150 is flushed, 2^-126 - 2^-151 rounds to 2^-126 and is kept); frnn_bf16_fma
 * emulates exactly that. VDPBF16PS detects tininess the same way: on AMD Zen 4 the vdpbf16ps
 * kernels give these bits on test_bf16.c's cases around FLT_MIN (test_flush_rows, the `tiny`
 * operands of test_kernels_vs_emulation), as VCVTNE2PS2BF16 gives frnn_bf16_from_f32's.
 */
#ifndef FASTRNN_BF16_H
#define FASTRNN_BF16_H
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t frnn_f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float frnn_bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* float32 -> bf16: round to nearest even; NaN -> a quiet NaN of the same sign and top payload;
 * a denormal (or zero) -> zero of the same sign. Infinities stay infinite; values that round
 * past the largest bf16 become infinities (RNE overflow). */
static inline uint16_t frnn_bf16_from_f32(float x)
{
    uint32_t u = frnn_f32_bits(x);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);        /* DAZ */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);  /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                              /* RNE */
    return (uint16_t)(u >> 16);
}

static inline float frnn_bf16_to_f32(uint16_t b) { return frnn_bits_f32((uint32_t)b << 16); }

/* x rounded to bf16, as a float32 (the value every bf16 product reads). */
static inline float frnn_bf16_round(float x) { return frnn_bf16_to_f32(frnn_bf16_from_f32(x)); }

/* A denormal float32 read as zero (the sign kept). */
static inline float frnn_daz(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }

/* One step of VDPBF16PS: acc + a * b as one fused multiply-add with DAZ on every input and FTZ on
 * the result (tininess after rounding, as MXCSR.FTZ). a and b hold bf16 values. */
static inline float frnn_bf16_fma(float a, float b, float acc)
{
    a = frnn_daz(a), b = frnn_daz(b), acc = frnn_daz(acc);
    const float r = fmaf(a, b, acc);
    const float m = fabsf(r);
    if (m < FLT_MIN) return copysignf(0.0f, r);       /* zero or denormal: tiny after rounding */
    if (m == FLT_MIN) {
        /* gradual underflow may have rounded a result just below FLT_MIN up to it; rounding to
         * 24 bits with an unbounded exponent is what decides: the same sum scaled by 2^64, exact
         * unless a * 2^64 or acc * 2^64 overflows -- and then (b, acc normal) the true sum is a
         * nonzero multiple of 2^-85 or zero, never near FLT_MIN, so r is kept */
        const float s = fmaf(ldexpf(a, 64), b, ldexpf(acc, 64));
        if (isfinite(s) && fabsf(s) < ldexpf(FLT_MIN, 64)) return copysignf(0.0f, r);
    }
    return r;
}

/* The dot product a . b of K bf16 values (strides sa, sb) as VDPBF16PS forms it in one lane,
 * starting from +0: pairs (k, k+1) for k = 0, 2, ..., the odd element first; an odd K's last pair
 * has a zero odd element (the zero padding of the packed panels). */
static inline float frnn_bf16_dot(int K, const float *a, size_t sa, const float *b, size_t sb)
{
    float acc = 0.0f;
    for (int k = 0; k < K; k += 2) {
        const float ao = k + 1 < K ? a[(size_t)(k + 1) * sa] : 0.0f, bo = k + 1 < K ? b[(size_t)(k + 1) * sb] : 0.0f;
        acc = frnn_bf16_fma(ao, bo, acc);
        acc = frnn_bf16_fma(a[(size_t)k * sa], b[(size_t)k * sb], acc);
    }
    return acc;
}

#endif
