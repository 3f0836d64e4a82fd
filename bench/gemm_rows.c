/* gemm_rows.c - the engine's packed product of M rows (frnn_pk_mul: the row tiles of
 * panel_rows in microkernel.h) timed as the best of many short calls, so that a loaded machine
 * still gives a usable figure (a call of ~100 us mostly runs undisturbed). The generation task's
 * products are (32 rows) x (K 256) x (512 columns a member) at 2 members:
 *
 *   cc -O3 -std=c99 -pthread -fno-math-errno -fno-trapping-math -Icsrc bench/gemm_rows.c \
 *      csrc/gemm.c csrc/team.c -lm -o /tmp/gemm_rows
 *   /tmp/gemm_rows 32 512 2000        # M N TRIALS (K 256): best us and GFLOP/s of one core */
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

int main(int argc, char **argv)
{
    if (argc != 4) return fprintf(stderr, "usage: gemm_rows M N TRIALS\n"), 2;
    const int M = atoi(argv[1]), K = 256, N = atoi(argv[2]), trials = atoi(argv[3]);
    float *W = malloc(sizeof(float) * N * K), *A = malloc(sizeof(float) * M * K), *C = malloc(sizeof(float) * M * N);
    for (int i = 0; i < N * K; i++) W[i] = (i % 13) * 0.01f;
    for (int i = 0; i < M * K; i++) A[i] = (i % 7) * 0.1f;
    void *mem;
    if (posix_memalign(&mem, 64, sizeof(float) * frnn_pk_floats(K, N, N) + 64)) return 1;
    frnn_pk pk;
    frnn_pk_init(&pk, K, N, N, mem);
    frnn_pk_pack(&pk, W, K, 1, 0, 0, pk.panels);
    double best = 1e9, sum = 0;
    for (int t = 0; t < trials; t++) {
        const double t0 = now();
        frnn_pk_mul(&pk, 0, pk.panels, M, A, K, 1, C, N, 0);
        const double d = now() - t0;
        if (d < best) best = d;
        sum += C[t % (M * N)];
    }
    printf("M %d K %d N %d: best %.1f us, %.1f GFLOP/s (checksum %g)\n", M, K, N, 1e6 * best,
           2.0 * M * N * K / best * 1e-9, sum);
    return 0;
}
