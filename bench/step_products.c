/* step_products.c - the per-step recurrent products of one LSTM layer alone, at one thread, each
 * the fastest of `reps` calls (the minimum filters out preemption and a cold cache, so it reads
 * sensibly even on a busy machine):
 *
 *   cc -O3 -std=c99 -pthread -fno-math-errno -fno-trapping-math -Icsrc bench/step_products.c \
 *      csrc/gemm.c csrc/team.c -lm -o /tmp/step_products
 *   /tmp/step_products 50 128 3000        # B, H, reps
 *
 * forward:  g (B, 4H) += h_{t-1} (B, H) @ W_hh^T   (frnn_pk_mul over whole-K panels, as rec_mul)
 * backward: dh (B, H)  = dG_t (B, 4H) @ W_hh
 * Compare with the one-thread float32 peak: the gap between a step's time and these two is the
 * step's non-product work (gate maths, copies, the tape's memory traffic). */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "engine.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void one(const char *what, int M, int K, int N, int trans, int acc, int reps)
{
    float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * K * N), *C = calloc((size_t)M * N, 4);
    float *mem = NULL;
    for (int i = 0; i < M * K; i++) A[i] = (float)(i % 7) * 0.1f;
    for (int i = 0; i < K * N; i++) W[i] = (float)(i % 5) * 0.1f;
    if (posix_memalign((void **)&mem, 64, sizeof(float) * frnn_pk_floats(K, N, N / 4 * (trans ? 1 : 4))) != 0) exit(1);
    frnn_pk pk;
    frnn_pk_init(&pk, K, N, trans ? N / 4 : N, mem);         /* forward: the four gates are segments */
    frnn_pk_pack(&pk, W, trans ? K : N, trans, 0, 0, pk.panels);
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        frnn_pk_mul(&pk, 0, pk.panels, M, A, K, 1, C, N, acc);
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("%-8s (%d x %d) @ (%d x %d): %8.1f us, %6.1f GFLOP/s\n", what, M, K, K, N, best * 1e6,
           2.0 * M * K * N / best / 1e9);
    free(A), free(W), free(C), free(mem);
}

int main(int argc, char **argv)
{
    if (argc != 4) return fprintf(stderr, "usage: step_products B H reps\n"), 2;
    const int B = atoi(argv[1]), H = atoi(argv[2]), reps = atoi(argv[3]);
    one("forward", B, H, 4 * H, 1, 1, reps);
    one("backward", B, 4 * H, H, 0, 0, reps);
    return 0;
}
