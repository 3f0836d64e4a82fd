/* activations_avx2.c - best-of-N time of the gate loops' float32 tanh and sigmoid over n values
 * (default 12,800 = B 50 x H 128 x 2 gates): the auto-vectorised C loop the arch=x86-64-v3 clone
 * runs (frnn_tanh_f / frnn_sigmoid_f, the same code compiled for avx2+fma; no contraction in
 * -std=c99) against the AVX2 intrinsics versions (tanh_avx2.h, sigmoid_avx2.h), with a check
 * that both give the same bits. Minimum over N calls: on a loaded machine it filters preemption.
 *
 *   cc -O3 -std=c99 -fno-math-errno -fno-trapping-math -Icsrc bench/activations_avx2.c -lm -o /tmp/act
 *   /tmp/act 12800 3000 */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tanh_avx2.h"

#if FRNN_HAVE_TANH_AVX2
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

__attribute__((target("avx2,fma"), noinline)) static void tanh_loop(float *restrict out, const float *restrict in, int n)
{
    for (int j = 0; j < n; j++) out[j] = frnn_tanh_f(in[j]);
}

__attribute__((target("avx2,fma"), noinline)) static void sigmoid_loop(float *p, int n)
{
    for (int j = 0; j < n; j++) p[j] = frnn_sigmoid_f(p[j]);
}

__attribute__((noinline)) static void tanh_x(float *out, const float *in, int n) { frnn_tanh_avx2(out, in, n); }
__attribute__((noinline)) static void sigmoid_x(float *p, int n) { frnn_sigmoid_avx2_inplace(p, n); }

int main(int argc, char **argv)
{
    const int n = argc > 1 ? atoi(argv[1]) : 12800, reps = argc > 2 ? atoi(argv[2]) : 3000;
    __builtin_cpu_init();
    if (n < 1 || reps < 1 || !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return fprintf(stderr, "usage: activations_avx2 [n >= 1] [reps >= 1] (needs AVX2+FMA)\n"), 2;
    float *x = malloc(sizeof(float) * n), *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = (float)((i * 37) % 2000 - 1000) * 0.005f;   /* [-5, 5): gate-like */
    double t[4] = {1e9, 1e9, 1e9, 1e9};
    long bad = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        tanh_loop(a, x, n);
        double t1 = now();
        tanh_x(b, x, n);
        double t2 = now();
        t[0] = t1 - t0 < t[0] ? t1 - t0 : t[0], t[1] = t2 - t1 < t[1] ? t2 - t1 : t[1];
        if (r == 0) for (int i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
        memcpy(a, x, sizeof(float) * n), memcpy(b, x, sizeof(float) * n);
        t0 = now();
        sigmoid_loop(a, n);
        t1 = now();
        sigmoid_x(b, n);
        t2 = now();
        t[2] = t1 - t0 < t[2] ? t1 - t0 : t[2], t[3] = t2 - t1 < t[3] ? t2 - t1 : t[3];
        if (r == 0) for (int i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    }
    printf("n %d, best of %d: tanh C loop %.2f us, intrinsics %.2f us (%+.1f %%); sigmoid C loop %.2f us, "
           "intrinsics %.2f us (%+.1f %%); differing bits %ld\n", n, reps, t[0] * 1e6, t[1] * 1e6,
           100.0 * (t[1] / t[0] - 1), t[2] * 1e6, t[3] * 1e6, 100.0 * (t[3] / t[2] - 1), bad);
    free(x), free(a), free(b);
    return bad != 0;
}
#else
int main(void) { fprintf(stderr, "activations_avx2: x86-64 GCC/clang only\n"); return 2; }
#endif
