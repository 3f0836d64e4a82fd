/* layer_step.c - one layer's forward (+ backward) through the C API: the median wall time of a
 * call, barriers (shared steps) a call, a hash of every output, and with -DFRNN_TEAM_STATS per
 * member and call the CPU time of work, the wall and CPU time waiting (wall >> CPU: asleep) and
 * the waits; -DPRINT_STEALS (builds with frnn_steal_count) also the parts taken from others.
 *   cc -O3 -std=c99 -pthread -fno-math-errno -fno-trapping-math -DFRNN_TEAM_STATS -Icsrc bench/layer_step.c \
 *      csrc/kernels.c csrc/gemm.c csrc/team.c csrc/gemm_int8.c csrc/gemm_bf16.c csrc/gemm_amx.c csrc/optim.c -lm -o /tmp/ls
 *   /tmp/ls cell T B I H threads reps train      # e.g. 0 100 32 128 256 2 10 1 (RNN fwd+bwd), 5 100 1 64 128 2 50 0
 * A busy machine on demand: `taskset -c 1 sh -c 'while :; do :; done' &` while it runs. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fastrnn.h"
#include "team.h"
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static float *rnd(size_t n, unsigned *s, float sc) { float *p = malloc(sizeof(float) * (n ? n : 1)); for (size_t i = 0; i < n; i++) { *s = *s * 1664525u + 1013904223u; p[i] = sc * ((*s >> 8) / 16777216.0f - 0.5f); } return p; }
static unsigned long long fnv(unsigned long long h, const void *p, size_t n) { const unsigned char *c = p; for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull; return h; }
int main(int argc, char **argv)
{
    if (argc < 9) return fprintf(stderr, "cell T B I H threads reps train\n"), 2;
    int cell = atoi(argv[1]), T = atoi(argv[2]), B = atoi(argv[3]), I = atoi(argv[4]), H = atoi(argv[5]);
    int nth = atoi(argv[6]), reps = atoi(argv[7]), train = atoi(argv[8]);
    frnn_dims d = {cell, T, B, I, H, H, 0};
    int G = frnn_gates(cell);
    unsigned s = 7;
    float *x = rnd((size_t)T * B * I, &s, 2), *Wih = rnd((size_t)G * H * I, &s, 0.2f), *Whh = rnd((size_t)G * H * H, &s, 0.2f);
    float *bih = rnd(G * H, &s, 0.2f), *bhh = rnd(G * H, &s, 0.2f), *dy = rnd((size_t)T * B * H, &s, 1);
    float *y = calloc((size_t)T * B * H, 4), *hT = calloc(B * H, 4), *cT = calloc(B * H, 4);
    size_t tn = train ? frnn_tape_size(&d) : frnn_work_size(&d);
    float *tape = calloc(tn, 4), *dx = calloc((size_t)T * B * I, 4), *dh0 = calloc(B * H, 4), *dc0 = calloc(B * H, 4);
    float *dWih = calloc((size_t)G * H * I, 4), *dWhh = calloc((size_t)G * H * H, 4), *dbih = calloc(G * H, 4), *dbhh = calloc(G * H, 4);
    frnn_buffers bf = {0};
    bf.x = x, bf.W_ih = Wih, bf.W_hh = Whh, bf.b_ih = bih, bf.b_hh = bhh, bf.y = y, bf.h_T = hT, bf.c_T = cT;
    bf.tape = tape, bf.dy = dy, bf.dx = dx, bf.dh0 = dh0, bf.dc0 = dc0, bf.dW_ih = dWih, bf.dW_hh = dWhh;
    bf.db_ih = dbih, bf.db_hh = dbhh;
    frnn_blas blas = {NULL, NULL};
    frnn_set_threads(nth);
    double *tw = malloc(sizeof(double) * reps), st0[20], st1[20];
    unsigned long long h = 1469598103934665603ull;
    unsigned long sy0 = 0;
    for (int r = -1; r < reps; r++) {
        if (r == 0) {
            sy0 = frnn_sync_count();
#ifdef FRNN_TEAM_STATS
            frnn_team_stats(4, st0);
#endif
        }
        memset(dWih, 0, (size_t)G * H * I * 4), memset(dWhh, 0, (size_t)G * H * H * 4);
        memset(dbih, 0, G * H * 4), memset(dbhh, 0, G * H * 4);
        double t0 = now();
        frnn_forward_f32(&blas, &d, &bf, train);
        if (train) frnn_backward_f32(&blas, &d, &bf);
        if (r >= 0) tw[r] = now() - t0;
    }
    h = fnv(h, y, (size_t)T * B * H * 4), h = fnv(h, hT, B * H * 4);
    if (train) h = fnv(h, dx, (size_t)T * B * I * 4), h = fnv(h, dWhh, (size_t)G * H * H * 4), h = fnv(h, dWih, (size_t)G * H * I * 4), h = fnv(h, dh0, B * H * 4);
    qsort(tw, reps, sizeof(double), cmp);
#ifdef PRINT_STEALS
    printf("steals %lu\n", frnn_steal_count());
#endif
    printf("cell %d T %d B %d I %d H %d thr %d %s: median %.3f ms min %.3f max %.3f syncs/call %.1f hash %016llx\n", cell, T, B, I, H, nth,
           train ? "fwd+bwd" : "fwd", 1e3 * tw[reps / 2], 1e3 * tw[0], 1e3 * tw[reps - 1], (double)(frnn_sync_count() - sy0) / reps, h);
#ifdef FRNN_TEAM_STATS
    frnn_team_stats(4, st1);
    for (int j = 0; j < nth && j < 4; j++) {
        double *a = st0 + 5 * j, *b = st1 + 5 * j;
        printf("  m%d per call: task wall %.3f ms, work cpu %.3f, wait wall %.3f, wait cpu %.3f, waits %.0f\n", j,
               1e-6 * (b[0] - a[0]) / reps, 1e-6 * ((b[1] - a[1]) - (b[3] - a[3])) / reps, 1e-6 * (b[2] - a[2]) / reps,
               1e-6 * (b[3] - a[3]) / reps, (b[4] - a[4]) / reps);
    }
#endif
    return 0;
}
