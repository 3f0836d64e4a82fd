/* shared_steps.c - the units split's shared steps (csrc/timeloop.h, team.c frnn_share) against
 * a stalled member: tests/test_shared_steps.py runs it with and without FASTRNN_TEST_STALL and
 * compares the lines. For each case -- cell, shape, lengths or not, inference or training --
 * it runs the layer at 1, 2 and 3 threads and prints one line: the case, the FNV-1a hash of
 * every output (y, h_T, c_T; in training also dx, dh0, dc0 and the weight gradients), whether
 * the three thread counts gave the same bytes, and the barriers (shared steps) of the 2-thread
 * call. Last line: the parts taken from a stalled member (frnn_steal_count).
 *   shared_steps                          every case at 1, 2, 3 threads
 *   shared_steps time cell T B I H train  one case at 2 threads: milliseconds of wall time a call */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fastrnn.h"
#include "team.h"

static float *rnd(size_t n, unsigned *s, float sc)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        p[i] = sc * ((float)(*s >> 8) / 16777216.0f - 0.5f);
    }
    return p;
}

static unsigned long long fnv(unsigned long long h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

/* One run at nth threads: the hash of every output. */
static unsigned long long run(int cell, int T, int B, int I, int H, int peep, int lens, int train, int nth, int reps,
                              unsigned long *syncs)
{
    const frnn_dims d = {cell, T, B, I, H, H, peep};
    const int G = frnn_gates(cell);
    unsigned s = 11;
    const size_t nx = (size_t)T * B * I, ny = (size_t)T * B * H, nih = (size_t)G * H * I, nhh = (size_t)G * H * H;
    float *x = rnd(nx, &s, 2), *Wih = rnd(nih, &s, 0.3f), *Whh = rnd(nhh, &s, 0.3f), *bih = rnd(G * H, &s, 0.2f);
    float *bhh = rnd(G * H, &s, 0.2f), *dy = rnd(ny, &s, 1), *h0 = rnd((size_t)B * H, &s, 1), *c0 = rnd((size_t)B * H, &s, 1);
    float *wp = rnd(3 * H, &s, 0.3f);
    int *lengths = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) lengths[b] = T - (b * 7) % (T + 1);
    float *y = calloc(ny, 4), *hT = calloc((size_t)B * H, 4), *cT = calloc((size_t)B * H, 4);
    float *tape = calloc(train ? frnn_tape_size(&d) : frnn_work_size(&d), 4);
    float *dx = calloc(nx, 4), *dh0 = calloc((size_t)B * H, 4), *dc0 = calloc((size_t)B * H, 4);
    float *dWih = calloc(nih, 4), *dWhh = calloc(nhh, 4), *dbih = calloc(G * H, 4), *dbhh = calloc(G * H, 4);
    float *dwp = calloc(3 * H, 4);
    frnn_buffers bf;
    memset(&bf, 0, sizeof bf);
    bf.x = x, bf.h0 = h0, bf.c0 = cell == FRNN_LSTM ? c0 : NULL, bf.lengths = lens ? lengths : NULL;
    bf.W_ih = Wih, bf.W_hh = Whh, bf.b_ih = bih, bf.b_hh = bhh, bf.w_peep = peep ? wp : NULL;
    bf.y = y, bf.h_T = hT, bf.c_T = cT, bf.tape = tape, bf.dy = dy, bf.dx = dx, bf.dh0 = dh0, bf.dc0 = dc0;
    bf.dW_ih = dWih, bf.dW_hh = dWhh, bf.db_ih = dbih, bf.db_hh = dbhh, bf.dw_peep = peep ? dwp : NULL;
    const frnn_blas blas = {NULL, NULL};
    frnn_set_threads(nth);
    const unsigned long s0 = frnn_sync_count();
    for (int r = 0; r < reps; r++) {
        memset(dWih, 0, nih * 4), memset(dWhh, 0, nhh * 4), memset(dbih, 0, G * H * 4), memset(dbhh, 0, G * H * 4);
        memset(dwp, 0, 3 * H * 4);
        frnn_forward_f32(&blas, &d, &bf, train);
        if (train) frnn_backward_f32(&blas, &d, &bf);
    }
    *syncs = (frnn_sync_count() - s0) / reps;
    unsigned long long h = fnv(1469598103934665603ull, y, ny * 4);
    h = fnv(h, hT, (size_t)B * H * 4), h = fnv(h, cT, (size_t)B * H * 4);
    if (train) {
        h = fnv(h, dx, nx * 4), h = fnv(h, dh0, (size_t)B * H * 4), h = fnv(h, dc0, (size_t)B * H * 4);
        h = fnv(h, dWih, nih * 4), h = fnv(h, dWhh, nhh * 4), h = fnv(h, dbih, G * H * 4), h = fnv(h, dbhh, G * H * 4);
        h = fnv(h, dwp, 3 * H * 4);
    }
    free(x), free(Wih), free(Whh), free(bih), free(bhh), free(dy), free(h0), free(c0), free(wp), free(lengths);
    free(y), free(hT), free(cT), free(tape), free(dx), free(dh0), free(dc0), free(dWih), free(dWhh), free(dbih);
    free(dbhh), free(dwp);
    return h;
}

int main(int argc, char **argv)
{
    const int reps = 1;
    if (argc == 8 && strcmp(argv[1], "time") == 0) {
        unsigned long sy;
        struct timespec a, b;
        run(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), 0, 0, atoi(argv[7]), 2, 1, &sy);
        clock_gettime(CLOCK_MONOTONIC, &a);      /* after a warm-up call */
        run(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), 0, 0, atoi(argv[7]), 2, 1, &sy);
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("ms %.3f barriers %lu steals %lu\n", 1e3 * (b.tv_sec - a.tv_sec) + 1e-6 * (b.tv_nsec - a.tv_nsec), sy,
               frnn_steal_count());
        return 0;
    }
    static const int cases[][6] = {     /* cell, T, B, I, H, peephole */
        {FRNN_RNN_TANH, 24, 8, 16, 128, 0}, {FRNN_LSTM, 24, 1, 16, 128, 0}, {FRNN_LSTM, 20, 6, 12, 96, 1},
        {FRNN_GRU, 20, 6, 12, 96, 0}, {FRNN_RNN_RELU, 16, 4, 8, 128, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int lens = 0; lens < 2; lens++)
            for (int train = 0; train < 2; train++) {
                const int *c = cases[i];
                unsigned long sy[4];
                unsigned long long h[4];
                for (int n = 1; n <= 3; n++) h[n] = run(c[0], c[1], c[2], c[3], c[4], c[5], lens, train, n, reps, &sy[n]);
                if (sy[2] == 0) printf("FAIL: the case ran on one member\n");
                printf("cell %d T %d B %d I %d H %d peep %d lengths %d train %d: hash %016llx threads-equal %d "
                       "barriers %lu\n", c[0], c[1], c[2], c[3], c[4], c[5], lens, train, h[1],
                       h[1] == h[2] && h[1] == h[3], sy[2]);
            }
    printf("steals %lu\n", frnn_steal_count());
    return 0;
}
