/* int8_steps.c - a fixed int8 (or float32) LSTM forward for instruction counts under callgrind,
 * so two builds of csrc/gemm_int8.c can be compared on a loaded machine (timings there mean
 * nothing; instruction counts do not depend on the load):
 *
 *   cc -O3 -std=c99 -pthread -fno-math-errno -fno-trapping-math -Icsrc bench/int8_steps.c csrc/kernels.c csrc/gemm.c csrc/team.c \
 *      csrc/gemm_int8.c csrc/gemm_bf16.c csrc/gemm_amx.c -lm -o /tmp/int8_steps
 *   valgrind --tool=callgrind --toggle-collect=frnn_forward_f32 /tmp/int8_steps q8 1 20
 *
 * Arguments: q8|q8s|f32, batch B, steps T [threads, default 1] (LSTM, input 256, hidden 512);
 * q8s: static rows of h (int8.h; builds before them run q8). Builds without frnn_q8_pack
 * (before the packed panels) read W row-major, padded to Kp. Callgrind counts every thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "fastrnn.h"
#include "int8.h"

#define BENCH_NAME "int8_steps"
#include "bench_util.h"

static frnn_q8_mat quantize(float *W, int N, int K)     /* W becomes its dequantized values */
{
    const int Kp = (K + FRNN_Q8_ALIGN - 1) / FRNN_Q8_ALIGN * FRNN_Q8_ALIGN;
    int8_t *q = calloc((size_t)N * Kp, 1);
    float *scale = malloc(sizeof(float) * N);
    int32_t *comp = malloc(sizeof(int32_t) * N);
    for (int n = 0; n < N; n++) {
        float m = 0;
        for (int k = 0; k < K; k++) m = fmaxf(m, fabsf(W[n * K + k]));
        scale[n] = m / 127.0f;
        int32_t sum = 0;
        for (int k = 0; k < K; k++) {
            const int v = m > 0 ? (int)rintf(W[n * K + k] / scale[n]) : 0;
            q[(size_t)n * Kp + k] = (int8_t)v, sum += v, W[n * K + k] = v * scale[n];
        }
        comp[n] = 64 * sum;
    }
    frnn_q8_mat m;
    memset(&m, 0, sizeof m);
    m.scale = scale, m.comp = comp, m.N = N, m.K = K, m.Kp = Kp;
#ifdef FRNN_Q8_PW
    int8_t *p = malloc(frnn_q8_packed_bytes(N, Kp));
    frnn_q8_pack(q, (size_t)Kp, N, K, Kp, p);
    m.w = p, m.Np = (int)(frnn_q8_packed_bytes(N, Kp) / Kp);
#else
    m.w = q;
#endif
    return m;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) return fprintf(stderr, "usage: int8_steps q8|q8s|f32 B T [threads]\n"), 2;
    const int q8 = !strncmp(argv[1], "q8", 2), B = atoi(argv[2]), T = atoi(argv[3]);
    const int threads = argc == 5 ? atoi(argv[4]) : 1;
    const int I = 256, H = 512, G = 4, GH = G * H;
    const frnn_blas blas = {no_sgemm, NULL};
    frnn_dims d = {FRNN_LSTM, T, B, I, H, H, 0};
    unsigned s = 1;
    float *W_ih = malloc(sizeof(float) * GH * I), *W_hh = malloc(sizeof(float) * GH * H);
    float *b = calloc(2 * GH, sizeof(float)), *x = malloc(sizeof(float) * T * B * I);
    for (int i = 0; i < GH * I; i++) W_ih[i] = lcg_byte(&s) / 1280.0f - 0.1f;
    for (int i = 0; i < GH * H; i++) W_hh[i] = lcg_byte(&s) / 1280.0f - 0.1f;
    for (int i = 0; i < T * B * I; i++) x[i] = lcg_byte(&s) / 128.0f - 1.0f;
    frnn_q8_layer layer;
    memset(&layer, 0, sizeof layer);
    layer.ih = quantize(W_ih, GH, I), layer.hh = quantize(W_hh, GH, H);
#ifdef FRNN_Q8_STATIC_SCALE
    layer.hstatic = !strcmp(argv[1], "q8s");
#endif
    frnn_buffers bf;
    memset(&bf, 0, sizeof bf);
    float *y = malloc(sizeof(float) * T * B * H), *hT = malloc(sizeof(float) * B * H), *cT = malloc(sizeof(float) * B * H);
    float *work = malloc(sizeof(float) * frnn_work_size(&d));
    bf.x = x, bf.W_ih = W_ih, bf.W_hh = W_hh, bf.b_ih = b, bf.b_hh = b + GH;
    bf.y = y, bf.h_T = hT, bf.c_T = cT, bf.tape = work, bf.threads = threads, bf.q8 = q8 ? &layer : NULL;
    frnn_set_threads(threads);
    frnn_forward_f32(&blas, &d, &bf, 0);
    double sum = 0;
    for (int i = 0; i < B * H; i++) sum += hT[i];
    printf("%s B %d T %d: sum h_T %.6f\n", argv[1], B, T, sum);
    return 0;
}
