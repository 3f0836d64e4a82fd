/* lm_products.c - the whole-sequence products of one fused LM training step (B 50, T 50, V 65,
 * LSTM, one thread) alone, each the fastest of `reps` calls in thread CPU time (preemption on a
 * busy machine is not counted, so it reads sensibly under load; a cold-cache pass is optional):
 *
 *   cc -O3 -std=c99 -pthread -fno-math-errno -fno-trapping-math -Icsrc bench/lm_products.c \
 *      csrc/gemm.c csrc/team.c -lm -o /tmp/lm_products
 *   /tmp/lm_products 128 40          # H, reps [, 1 = flush the caches before each call]
 *
 * Per layer >= 1 (N = T*B = 2500 rows, G = 4 gates): the weight gradients dW += dG^T h (A = dG^T,
 * which frnn_team_gemm transposes block by block) -- also timed with A already row-major, to show
 * what the transpose costs --, the input projection pre += x W_ih^T and dx = dG W_ih; and the
 * head's three products (logits = y W^T, dW_head += dlogits^T y, dy = dlogits W). Compare with
 * the one-thread float32 peak (bench/step_products.c does the per-step products). */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "engine.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static float *filled(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (!p) exit(1);
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 7919) % 1000) / 1000.f - 0.5f;
    return p;
}

int main(int argc, char **argv)
{
    const int H = argc > 1 ? atoi(argv[1]) : 128, reps = argc > 2 ? atoi(argv[2]) : 40;
    const int cold = argc > 3 ? atoi(argv[3]) : 0;
    const int N = 2500, GH = 4 * H, P = H, V = 65;
    if (H < 1 || reps < 1) return fprintf(stderr, "usage: lm_products H reps [cold]\n"), 2;
    float *dG = filled((size_t)N * GH), *dGT = filled((size_t)N * GH), *h = filled((size_t)N * P);
    float *dW = filled((size_t)GH * P), *W = filled((size_t)GH * P), *pre = filled((size_t)N * GH);
    float *dx = filled((size_t)N * P), *Wh = filled((size_t)V * P), *lg = filled((size_t)N * V);
    float *dWh = filled((size_t)V * P), *flush = cold ? filled((size_t)16 << 20) : NULL;
    const frnn_gemm_args cases[] = {
        {GH, P, N, dG, 1, GH, h, P, 0, dW, P, 1},     /* dW_hh += dG^T h: A^T, transposed in blocks */
        {GH, P, N, dGT, N, 1, h, P, 0, dW, P, 1},     /* the same shape with A row-major */
        {N, GH, P, h, P, 1, W, P, 1, pre, GH, 1},     /* pre += x W_ih^T */
        {N, P, GH, dG, GH, 1, W, P, 0, dx, P, 0},     /* dx = dG W_ih */
        {N, V, P, h, P, 1, Wh, P, 1, lg, V, 0},       /* logits = y W_head^T */
        {V, P, N, lg, 1, V, h, P, 0, dWh, P, 1},      /* dW_head += dlogits^T y */
        {N, P, V, lg, V, 1, Wh, P, 0, dx, P, 0},      /* dy = dlogits W_head */
    };
    const char *names[] = {"dW += dG^T h", "  same, A row-major", "pre += x W_ih^T", "dx = dG W_ih",
                           "logits = y W^T", "dW_head += dl^T y", "dy = dl W"};
    printf("H %d, B 50, T 50, V %d, one thread, best of %d (thread CPU time)%s\n", H, V, reps,
           cold ? ", caches flushed" : "");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            if (flush)
                for (size_t i = 0; i < ((size_t)16 << 20); i += 16) flush[i] += 1;
            const double t = cpu_now();
            frnn_engine_gemm(1, &cases[c]);
            const double dt = cpu_now() - t;
            if (dt < best) best = dt;
        }
        const double fl = 2.0 * cases[c].M * cases[c].N * cases[c].K;
        printf("  %-20s M %5d N %5d K %5d  %9.1f us  %6.1f GFLOP/s\n", names[c], cases[c].M, cases[c].N,
               cases[c].K, best * 1e6, fl / best / 1e9);
    }
    return 0;
}
