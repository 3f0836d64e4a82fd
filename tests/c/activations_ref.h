/* activations_ref.h - the scalar sigmoid/tanh of csrc/activations.h as they were before the
 * bitwise selects (fastrnn 7d872f2), renamed ref_*: the reference tests/c/sweep_activations.c
 * compares the shipped (vectorised) functions against, bit for bit. Do not "fix" this file: it is
 * the definition the library must keep reproducing. */
#ifndef FASTRNN_ACTIVATIONS_REF_H
#define FASTRNN_ACTIVATIONS_REF_H

#include <stdint.h>
#include <string.h>

static inline double ref_bits_to_double(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
static inline uint64_t ref_double_to_bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

/* 2^k for integral k in [-1100, 1100] given as a double, without an int conversion (which
 * AVX2 lacks for 64-bit lanes): adding 1023 + 2^52 puts k + 1023 in the low mantissa bits. */
static inline double ref_pow2i(double k)
{
    uint64_t bits = ref_double_to_bits(k + (1023.0 + 4503599627370496.0));
    return ref_bits_to_double(bits << 52);
}

/* exp(x) for x <= 0 (NaN propagates), relative error ~2 ulp for normal results. */
static inline double ref_exp_nonpos(double x)
{
    const double log2e = 1.4426950408889634074;
    const double ln2_hi = 6.93147180369123816490e-01;   /* ln 2 split so n*ln2_hi is exact */
    const double ln2_lo = 1.90821492927058770002e-10;
    const double round_magic = 6755399441055744.0;       /* 1.5 * 2^52: adding rounds to integer */
    x = x < -746.0 ? -746.0 : x;                          /* exp(-746) already rounds to 0 */
    double n = (x * log2e + round_magic) - round_magic;  /* nearest integer to x / ln 2 */
    double r = (x - n * ln2_hi) - n * ln2_lo;            /* |r| <= ln(2)/2 */
    /* Taylor series of exp(r) to r^12: truncation error < 2e-17 for |r| <= 0.347 */
    double p = 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    /* 2^n in two factors so results down in the subnormal range round only once */
    double n1 = (n * 0.5 + round_magic) - round_magic;
    return p * ref_pow2i(n1) * ref_pow2i(n - n1);
}

/* sigmoid(x) = 1 / (1 + e^-x) = e^x / (1 + e^x), with e = exp(-|x|) in (0, 1]. */
static inline double ref_sigmoid_d(double x)
{
    double e = ref_exp_nonpos(-__builtin_fabs(x));
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}

/* tanh(x): a rational approximation near 0 (where 1 - 2/(e^2x + 1) would cancel),
 * (1 - e) / (1 + e) with e = exp(-2|x|) elsewhere. Coefficients: Cephes' tanh (|x| < 0.625). */
static inline double ref_tanh_d(double x)
{
    double a = __builtin_fabs(x);
    double z = x * x;
    double p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
               - 1.61468768441708447952e3;
    double q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
               + 4.84406305325125486048e3;
    double small = x * (1.0 + z * p / q);               /* keeps the sign of -0.0 */
    double e = ref_exp_nonpos(-2.0 * a);
    double big = (1.0 - e) / (1.0 + e);
    big = x < 0.0 ? -big : big;
    return a < 0.625 ? small : big;
}

static inline float ref_bits_to_float(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t ref_float_to_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* 2^k for integral k in [-120, 120] given as a float (same trick as ref_pow2i). */
static inline float ref_pow2i_f(float k)
{
    return ref_bits_to_float(ref_float_to_bits(k + (127.0f + 8388608.0f)) << 23);
}

/* expf(x) for x <= 0: Cephes' expf polynomial, relative error ~1e-7 for normal results. */
static inline float ref_exp_nonpos_f(float x)
{
    const float round_magic = 12582912.0f;               /* 1.5 * 2^23 */
    x = x < -104.0f ? -104.0f : x;                        /* expf(-104) already rounds to 0 */
    float n = (x * 1.44269504088896341f + round_magic) - round_magic;
    float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  /* ln 2 = 0.693359375 - 2.12e-4 */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    float n1 = (n * 0.5f + round_magic) - round_magic;
    return p * ref_pow2i_f(n1) * ref_pow2i_f(n - n1);
}

static inline float ref_sigmoid_f(float x)
{
    float e = ref_exp_nonpos_f(-__builtin_fabsf(x));
    return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}

/* tanhf: Cephes' odd polynomial below 0.625, (1 - e) / (1 + e) with e = exp(-2|x|) above. */
static inline float ref_tanh_f(float x)
{
    float a = __builtin_fabsf(x), z = x * x;
    float p = (((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
               + 1.33314422036e-1f) * z - 3.33332819422e-1f;
    float small = x * (1.0f + z * p);                    /* keeps the sign of -0.0 */
    float e = ref_exp_nonpos_f(-2.0f * a);
    float big = (1.0f - e) / (1.0f + e);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? small : big;
}

#endif
