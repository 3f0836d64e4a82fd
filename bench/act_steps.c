/* act_steps.c - a float32 LSTM forward through the C API, one thread, for callgrind instruction
 * counts of the gate activations (csrc/activations.h) under different build flags:
 *
 *   cc -O3 -std=c99 -pthread [-fno-math-errno -fno-trapping-math] -Icsrc bench/act_steps.c \
 *      csrc/kernels.c csrc/gemm.c csrc/team.c csrc/gemm_int8.c csrc/gemm_bf16.c csrc/gemm_amx.c -lm -o /tmp/act_steps
 *   valgrind --tool=callgrind --toggle-collect=frnn_forward_f32 /tmp/act_steps T B I H
 *
 * (50 50 128 128: the char-rnn layer; 1 1 128 128: one batch-1 step.) */
#include <stdio.h>
#include <stdlib.h>
#include "fastrnn.h"

#define BENCH_NAME "act_steps"
#include "bench_util.h"

int main(int argc, char **argv)
{
    if (argc != 5) return fprintf(stderr, "usage: act_steps T B I H\n"), 2;
    const int T = atoi(argv[1]), B = atoi(argv[2]), I = atoi(argv[3]), H = atoi(argv[4]), GH = 4 * H;
    const frnn_blas blas = {no_sgemm, NULL};
    frnn_dims d = {FRNN_LSTM, T, B, I, H, H, 0};
    unsigned s = 1;
    float *W_ih = malloc(sizeof(float) * GH * I), *W_hh = malloc(sizeof(float) * GH * H);
    float *b = calloc(2 * GH, sizeof(float)), *x = malloc(sizeof(float) * T * B * I);
    for (int i = 0; i < GH * I; i++) W_ih[i] = lcg_byte(&s) / 1280.0f - 0.1f;
    for (int i = 0; i < GH * H; i++) W_hh[i] = lcg_byte(&s) / 1280.0f - 0.1f;
    for (int i = 0; i < T * B * I; i++) x[i] = lcg_byte(&s) / 128.0f - 1.0f;
    frnn_buffers bf = {0};
    float *y = malloc(sizeof(float) * T * B * H), *hT = malloc(sizeof(float) * B * H), *cT = malloc(sizeof(float) * B * H);
    float *work = malloc(sizeof(float) * frnn_work_size(&d));
    bf.x = x, bf.W_ih = W_ih, bf.W_hh = W_hh, bf.b_ih = b, bf.b_hh = b + GH;
    bf.y = y, bf.h_T = hT, bf.c_T = cT, bf.tape = work, bf.threads = 1;
    frnn_set_threads(1);
    frnn_forward_f32(&blas, &d, &bf, 0);
    double sum = 0;
    for (int i = 0; i < B * H; i++) sum += hT[i];
    printf("T %d B %d I %d H %d: sum h_T %.6f\n", T, B, I, H, sum);
    return 0;
}
