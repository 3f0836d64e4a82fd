/* gen_steps.c - frnn_generate_f32 of a one-hot 2-layer LSTM char model (V 65) through the C API,
 * for callgrind instruction counts of a sampled call: the team task (default) against the
 * per-step path (FASTRNN_GENERATE=steps), same build, same tokens (printed as a checksum):
 *
 *   cc -O3 -std=c99 -pthread -fno-math-errno -fno-trapping-math -Icsrc bench/gen_steps.c \
 *      csrc/kernels.c csrc/gemm.c csrc/team.c csrc/gemm_int8.c csrc/gemm_bf16.c csrc/gemm_amx.c -lm -o /tmp/gen_steps
 *   valgrind --tool=callgrind --toggle-collect=frnn_generate_f32 /tmp/gen_steps B H STEPS THREADS
 *   FASTRNN_GENERATE=steps valgrind --tool=callgrind --toggle-collect=frnn_generate_f32 /tmp/gen_steps ...
 *
 * (32 256 20 1: the 32-sequence 2x256 row, 20 tokens each.) The call's CPU time (all threads) and
 * wall time a step are printed too: on a shared machine the CPU time of a 1-thread run is the
 * steadier of the two. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fastrnn.h"

#define BENCH_NAME "gen_steps"
#include "bench_util.h"

static double secs(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 5) return fprintf(stderr, "usage: gen_steps B H STEPS THREADS\n"), 2;
    enum { V = 65, L = 2 };
    const int B = atoi(argv[1]), H = atoi(argv[2]), steps = atoi(argv[3]), GH = 4 * H;
    const frnn_blas blas = {no_sgemm, NULL};
    unsigned s = 7;
    frnn_dims dims[L];
    frnn_buffers run[L];
    memset(run, 0, sizeof run);
    for (int k = 0; k < L; k++) {
        dims[k] = (frnn_dims){FRNN_LSTM, 1, B, k == 0 ? GH : H, H, H, 0};
        run[k].W_ih = k == 0 ? NULL : rnd((size_t)GH * H, &s, 0.1f);
        run[k].W_hh = rnd((size_t)GH * H, &s, 0.1f), run[k].b_ih = rnd(GH, &s, 0.1f);
        run[k].tape = malloc(sizeof(float) * frnn_work_size(&dims[k]));
        float *packed = malloc(sizeof(float) * frnn_packed_size_f32(&dims[k]));   /* as the layers keep it */
        if (frnn_pack_forward_f32(&dims[k], run[k].W_hh, NULL, packed) == 0) run[k].packed = packed;
    }
    float *table = rnd((size_t)V * GH, &s, 0.5f), *W_head = rnd((size_t)V * H, &s, 0.3f), *b_head = rnd(V, &s, 0.1f);
    float *h = calloc((size_t)L * B * H, sizeof(float)), *c = calloc((size_t)L * B * H, sizeof(float));
    float *x = malloc(sizeof(float) * B * GH), *logits = malloc(sizeof(float) * B * V);
    double z[V], scratch[2 * V], *u = malloc(sizeof(double) * steps * B);
    for (int i = 0; i < steps * B; i++) u[i] = (((s = s * 1103515245u + 12345u) >> 8) & 0xffff) / 65536.0;
    int iscratch[2 * V], *token = calloc(B, sizeof(int)), *n_out = calloc(B, sizeof(int)), *done = calloc(B, sizeof(int));
    int *out = calloc((size_t)steps * B, sizeof(int));
    frnn_gen g = {L, B, V, dims, run, table, W_head, b_head, h, c, x, logits, z, scratch, iscratch,
                  1.0, 0.0, 0, 0, -1, NULL, NULL, 0, NULL, 0, 0, NULL, token, out, n_out, done, steps};
    frnn_set_threads(atoi(argv[4]));
    const double c0 = secs(CLOCK_PROCESS_CPUTIME_ID), w0 = secs(CLOCK_MONOTONIC);
    const int ran = frnn_generate_f32(&blas, &g, NULL, steps, u);
    const double cpu = secs(CLOCK_PROCESS_CPUTIME_ID) - c0, wall = secs(CLOCK_MONOTONIC) - w0;
    unsigned long sum = 0;
    for (int i = 0; i < steps * B; i++) sum = sum * 31 + (unsigned)out[i];
    printf("rounds %d, token checksum %lu, call: cpu %.1f us a step (all threads), wall %.1f us a step\n", ran, sum,
           1e6 * cpu / ran, 1e6 * wall / ran);
    return 0;
}
