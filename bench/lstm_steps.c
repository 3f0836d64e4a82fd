/* lstm_steps.c - an LSTM (or GRU/RNN) layer forward (and optionally backward), float32 or bf16,
 * repeated `calls` times, for instruction counts under callgrind (timings on a loaded machine mean
 * nothing):
 *
 *   cc -O3 -std=c99 -pthread -fno-math-errno -fno-trapping-math -Icsrc bench/lstm_steps.c csrc/kernels.c \
 *      csrc/gemm.c csrc/team.c csrc/gemm_int8.c csrc/gemm_bf16.c csrc/gemm_amx.c -lm -o /tmp/lstm_steps
 *   valgrind --tool=callgrind --toggle-collect=frnn_forward_f32 /tmp/lstm_steps fwd 100 32 128 256 1 2
 *
 * Arguments: fwd|train, T, B, I, H, threads, calls (LSTM_STEPS_PACKED=1: a forward with the weights
 * prepacked, W_ih^T included, as the Python layers' inference runs). Prints a hash of the outputs' bits (train: the
 * gradients summed over the calls too), the barriers opened, the minor page faults and the CPU time
 * of a call (after one warm-up call). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include "fastrnn.h"
#include "team.h"

#define BENCH_NAME "lstm_steps"
#include "bench_util.h"

int main(int argc, char **argv)
{
    if (argc < 8 || argc > 10)
        return fprintf(stderr, "usage: lstm_steps fwd|train T B I H threads calls [lstm|gru|rnn] [f32|bf16]\n"), 2;
    const char *cname = argc > 8 ? argv[8] : "lstm", *prec = argc > 9 ? argv[9] : "f32";
    const int cell = !strcmp(cname, "gru") ? FRNN_GRU : !strcmp(cname, "rnn") ? FRNN_RNN_TANH : FRNN_LSTM;
    const int gates = cell == FRNN_LSTM ? 4 : cell == FRNN_GRU ? 3 : 1;
    const int train = !strcmp(argv[1], "train"), T = atoi(argv[2]), B = atoi(argv[3]), I = atoi(argv[4]);
    const int H = atoi(argv[5]), threads = atoi(argv[6]), calls = atoi(argv[7]), GH = gates * H;
    const frnn_blas blas = {no_sgemm, NULL};
    frnn_dims d = {cell, T, B, I, H, H, 0};
    unsigned s = 1;
    float *W_ih = rnd((size_t)GH * I, &s, 0.06f), *W_hh = rnd((size_t)GH * H, &s, 0.06f);
    float *b = rnd(2 * GH, &s, 0.06f), *x = rnd((size_t)T * B * I, &s, 1.0f);
    float *h0 = rnd((size_t)B * H, &s, 0.5f), *c0 = rnd((size_t)B * H, &s, 0.5f);
    float *dy = rnd((size_t)T * B * H, &s, 0.1f);
    float *y = malloc(sizeof(float) * T * B * H), *hT = malloc(sizeof(float) * B * H), *cT = malloc(sizeof(float) * B * H);
    float *tape = malloc(sizeof(float) * (train ? frnn_tape_size(&d) : frnn_work_size(&d)));
    float *dx = malloc(sizeof(float) * T * B * I), *dh0 = malloc(sizeof(float) * B * H), *dc0 = malloc(sizeof(float) * B * H);
    float *dW_ih = calloc((size_t)GH * I, sizeof(float)), *dW_hh = calloc((size_t)GH * H, sizeof(float));
    float *db = calloc(2 * GH, sizeof(float));
    frnn_buffers bf;
    memset(&bf, 0, sizeof bf);
    bf.x = x, bf.W_ih = W_ih, bf.W_hh = W_hh, bf.b_ih = b, bf.b_hh = b + GH, bf.h0 = h0, bf.c0 = c0;
    bf.y = y, bf.h_T = hT, bf.c_T = cT, bf.tape = tape, bf.threads = threads;
    bf.dy = dy, bf.dx = dx, bf.dh0 = dh0, bf.dc0 = dc0, bf.dW_ih = dW_ih, bf.dW_hh = dW_hh;
    bf.db_ih = db, bf.db_hh = db + GH;
    bf.precision = !strcmp(prec, "bf16") ? FRNN_PRECISION_BF16 : FRNN_PRECISION_F32;
    if (cell != FRNN_LSTM) bf.c0 = bf.c_T = bf.dc0 = NULL;
    /* LSTM_STEPS_PACKED=1, fwd: W_hh and W_ih^T prepacked once, as the Python layers' inference
     * passes them (fastrnn._packs): the input projection then reads the packed W_ih^T */
    float *packed = NULL;
    const char *pk = getenv("LSTM_STEPS_PACKED");
    if (pk && *pk == '1' && !train) {
        const int bf16 = bf.precision == FRNN_PRECISION_BF16;
        packed = malloc(sizeof(float) * ((bf16 ? frnn_packed_size_bf16(&d, 1) : frnn_packed_size_f32_ih(&d, 1)) + 1));
        if (packed && (bf16 ? frnn_pack_forward_bf16(&d, W_ih, W_hh, NULL, packed)
                            : frnn_pack_forward_f32_ih(&d, W_ih, W_hh, NULL, packed)) == 0)
            bf.packed = packed;
    }
    frnn_set_threads(threads);
    unsigned long s0 = frnn_sync_count();
    struct timespec t0, t1;
    struct rusage r0, r1;
    frnn_forward_f32(&blas, &d, &bf, train);   /* warm: the team, first-touch pages */
    if (train) frnn_backward_f32(&blas, &d, &bf);
    s0 = frnn_sync_count();
    getrusage(RUSAGE_SELF, &r0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int c = 0; c < calls; c++) {
        frnn_forward_f32(&blas, &d, &bf, train);
        if (train) frnn_backward_f32(&blas, &d, &bf);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &r1);
    double sum = 0;
    for (int i = 0; i < B * H; i++) sum += hT[i] + (train ? dh0[i] : 0);
    /* the bits of every output (FNV-1a), to compare builds and thread counts exactly */
    unsigned long long fnv = 1469598103934665603ULL;
    const float *outs[] = {y, hT, cT, dx, dh0, dc0, dW_ih, dW_hh, db};
    const size_t lens[] = {(size_t)T * B * H, (size_t)B * H, (size_t)B * H, (size_t)T * B * I, (size_t)B * H,
                           (size_t)B * H, (size_t)GH * I, (size_t)GH * H, (size_t)2 * GH};
    for (int o = 0; o < (train ? 9 : 3); o++)
        if ((outs[o] != cT && outs[o] != dc0) || cell == FRNN_LSTM)
        for (size_t i = 0; i < lens[o] * sizeof(float); i++) fnv = (fnv ^ ((const unsigned char *)outs[o])[i]) * 1099511628211ULL;
    printf("%s %s %s T %d B %d I %d H %d threads %d: sum %.6f, bits %016llx, barriers/call %.1f, %.3f ms/call, minor faults/call %.1f, cpu ms/call %.3f\n", cname, prec, argv[1], T, B, I, H,
           threads, sum, fnv, (double)(frnn_sync_count() - s0) / calls,
           ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6) / calls,
           (double)(r1.ru_minflt - r0.ru_minflt) / calls,
           ((r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e3 + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) * 1e-3) / calls);
    return 0;
}
