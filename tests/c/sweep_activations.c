/* sweep_activations.c - the library's sigmoid/tanh (frnn_sigmoid_f32/_f64, frnn_tanh_f32/_f64:
 * the same inline functions and FRNN_CLONES loops the gate loops use, so on an AVX2 CPU the
 * vectorised arch=x86-64-v3 clone, run with the engine ISA set to none; and the AVX2 intrinsics
 * sigmoid_avx2.h / tanh_avx2.h and activations_avx512.h, directly and through the exported
 * functions at the default ISA)
 * against the scalar reference of tests/c/activations_ref.h, bit for bit (NaN payloads included).
 *
 *   sweep_activations [STRIDE [DSAMPLES]]
 *
 * float32: every STRIDE-th bit pattern from 0 (STRIDE 1 = all 2^32 floats); float64: DSAMPLES
 * random bit patterns plus every 64th float32 sample widened to double, plus edge values.
 * Built by tests/test_c_kernels.py (full sweep at the extension's -O3 flags; sampled under
 * ASan+UBSan). Prints "passed" and exits 0, or the first mismatches and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include "fastrnn.h"
#include "engine.h"                  /* FRNN_ISA_NONE */
#include "activations_ref.h"
#include "sigmoid_avx2.h"            /* the gate loops' AVX2 intrinsics sigmoid (x86-64) */
#include "tanh_avx2.h"               /* and tanh */

#include "activations_avx512.h"     /* and their AVX-512 forms */

#if FRNN_HAVE_TANH_AVX2 && FRNN_HAVE_ACT_AVX512
static int have(const char *isa)
{
    __builtin_cpu_init();
    return !strcmp(isa, "avx2") ? __builtin_cpu_supports("avx2") : __builtin_cpu_supports("avx512f");
}

/* An intrinsics activation over x (n) into out, in pieces of 0, 1, ..., 31, 0, 1, ... values:
 * every length 0..15 (and every tail length after 1-3 vectors) from unaligned starts; out of
 * place (inplace 0) or in place on a copy (inplace 1). */
static void act_copy(void (*act)(float *, const float *, int), float *out, const float *x, size_t n, int inplace)
{
    if (inplace) memcpy(out, x, n * sizeof *x);
    for (size_t i = 0, len = 0; i < n; i += len, len = (len + 1) % 32) {
        len = len < n - i ? len : n - i;
        act(out + i, inplace ? out + i : x + i, (int)len);
    }
}
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define SCALAR __attribute__((noinline, optimize("no-tree-vectorize")))
#else
#define SCALAR __attribute__((noinline))
#endif

enum { CHUNK = 1 << 16 };

SCALAR static void ref_loop_f(float *sig, float *th, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) { sig[i] = ref_sigmoid_f(x[i]); th[i] = ref_tanh_f(x[i]); }
}

SCALAR static void ref_loop_d(double *sig, double *th, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) { sig[i] = ref_sigmoid_d(x[i]); th[i] = ref_tanh_d(x[i]); }
}

static long failures;

static void report(const char *what, const void *x, const void *want, const void *got, size_t size)
{
    if (failures++ >= 10) return;
    uint64_t bx = 0, bw = 0, bg = 0;
    memcpy(&bx, x, size), memcpy(&bw, want, size), memcpy(&bg, got, size);
    printf("MISMATCH %s: x=0x%llx want 0x%llx got 0x%llx\n", what, (unsigned long long)bx,
           (unsigned long long)bw, (unsigned long long)bg);
}

static void check_f(const float *x, size_t n)
{
    static float rs[CHUNK], rt[CHUNK], gs[CHUNK], gt[CHUNK];
    ref_loop_f(rs, rt, x, n);
    frnn_sigmoid_f32(gs, x, n);
    frnn_tanh_f32(gt, x, n);
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&rs[i], &gs[i], sizeof(float))) report("sigmoid_f32", &x[i], &rs[i], &gs[i], sizeof(float));
        if (memcmp(&rt[i], &gt[i], sizeof(float))) report("tanh_f32", &x[i], &rt[i], &gt[i], sizeof(float));
    }
#if FRNN_HAVE_TANH_AVX2 && FRNN_HAVE_ACT_AVX512
    static const struct {
        const char *isa, *name;
        void (*act)(float *, const float *, int);
        int tanh;
    } acts[] = {{"avx2", "sigmoid_avx2", frnn_sigmoid_avx2, 0}, {"avx2", "tanh_avx2", frnn_tanh_avx2, 1},
                {"avx512", "sigmoid_avx512", frnn_sigmoid_avx512, 0}, {"avx512", "tanh_avx512", frnn_tanh_avx512, 1}};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        if (!have(acts[a].isa)) continue;
        const float *want = acts[a].tanh ? rt : rs;
        for (int inplace = 0; inplace < 2; inplace++) {
            act_copy(acts[a].act, gs, x, n, inplace);
            for (size_t i = 0; i < n; i++)
                if (memcmp(&want[i], &gs[i], sizeof(float))) report(acts[a].name, &x[i], &want[i], &gs[i], sizeof(float));
        }
    }
#endif
}

static void check_d(const double *x, size_t n)
{
    static double rs[CHUNK], rt[CHUNK], gs[CHUNK], gt[CHUNK];
    ref_loop_d(rs, rt, x, n);
    frnn_sigmoid_f64(gs, x, n);
    frnn_tanh_f64(gt, x, n);
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&rs[i], &gs[i], sizeof(double))) report("sigmoid_f64", &x[i], &rs[i], &gs[i], sizeof(double));
        if (memcmp(&rt[i], &gt[i], sizeof(double))) report("tanh_f64", &x[i], &rt[i], &gt[i], sizeof(double));
    }
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    const uint64_t stride = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    const uint64_t dsamples = argc > 2 ? strtoull(argv[2], NULL, 10) : 1u << 24;
    static float xf[CHUNK];
    static double xd[CHUNK];
    if (stride < 1) { fprintf(stderr, "STRIDE must be >= 1\n"); return 2; }
    /* the exported float32 functions run the intrinsics on an AVX2 engine ISA (checked directly
     * below): with ISA none they run the FRNN_CLONES loops the other ISAs use */
    const int isa0 = frnn_isa_active();
    frnn_set_isa(FRNN_ISA_NONE);
    size_t n = 0, nd = 0;
    uint64_t count = 0;
    for (uint64_t b = 0; b <= UINT32_MAX; b += stride) {
        uint32_t u = (uint32_t)b;
        memcpy(&xf[n++], &u, sizeof u);
        if (count++ % 64 == 0) {               /* every 64th float value (NaNs quieted) as a double too */
            xd[nd++] = (double)xf[n - 1];
            if (nd == CHUNK) check_d(xd, nd), nd = 0;
        }
        if (n == CHUNK) check_f(xf, n), n = 0;
    }
    check_f(xf, n);
    /* the intrinsics sigmoid (and tanh's exp) takes one 2^n scaling when all 8 lanes have n >= -126
     * and two otherwise: lanes mixing the saturation/subnormal range (|x| 87-104) with ordinary values,
     * zeros, infinities and NaNs, so both branches see every kind of neighbour */
    uint64_t fseed = 777;
    const float special[] = {0.0f, -0.0f, __builtin_inff(), -__builtin_inff(), __builtin_nanf(""), -__builtin_nanf(""),
                             87.0f, -87.3365f, 88.0f, -103.9f, 104.0f, -104.0f, 1e-45f, -1e-38f, 0.5f, -2.0f,
                             /* tanh: its branch point 0.625 (and the float below), exp(-2|x|)'s two-scaling range */
                             0.625f, -0.625f, 0.62499994f, -0.62499994f, 43.7f, -44.0f, 52.0f, -52.5f};
    const size_t nspecial = sizeof special / sizeof special[0];
    for (size_t i = 0; i < CHUNK; i++) {
        const uint64_t u = splitmix(&fseed);
        const float v = (float)(u >> 40) / (float)(1 << 24) * 220.0f - 110.0f;    /* uniform in [-110, 110) */
        const uint32_t w = (uint32_t)u;                                             /* any bit pattern */
        if (u >> 62 == 0) xf[i] = special[(u >> 32) % nspecial];
        else if (u >> 62 == 1) memcpy(&xf[i], &w, sizeof w);
        else xf[i] = v;
    }
    check_f(xf, CHUNK);
    frnn_set_isa(isa0);                 /* the exported functions' default route, on the same values */
    check_f(xf, CHUNK - 3);             /* (a scalar tail of 5) */
    frnn_set_isa(FRNN_ISA_NONE);
    uint64_t seed = 12345;
    for (uint64_t i = 0; i < dsamples; i++) {
        uint64_t u = splitmix(&seed);
        /* half the draws near the interesting range |x| < 2^6, the rest over every exponent */
        if (i & 1) u = (u & 0x800FFFFFFFFFFFFFull) | ((0x3C0ull + (u >> 52) % 0x46) << 52);
        memcpy(&xd[nd++], &u, sizeof u);
        if (nd == CHUNK) check_d(xd, nd), nd = 0;
    }
    const double edges[] = {0.0, -0.0, 0.625, -0.625, 0.6249999999999999, 746.0, -746.0, 745.9, 1e308,
                            -1e308, 5e-324, -5e-324, 2.2250738585072014e-308, __builtin_inf(), -__builtin_inf()};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        xd[nd++] = edges[i];
        if (nd == CHUNK) check_d(xd, nd), nd = 0;
    }
    check_d(xd, nd);
    if (failures) {
        printf("%ld mismatches\n", failures);
        return 1;
    }
    printf("sweep_activations: %llu float32 and %llu float64 inputs bit-identical: passed\n",
           (unsigned long long)count, (unsigned long long)((count + 63) / 64 + dsamples + sizeof edges / sizeof edges[0]));
    return 0;
}
