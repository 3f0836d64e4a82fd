/* bwd_steps.c - one layer's training forward + backward through the C API, for callgrind
 * instruction counts of the pointwise backward loops (lstm/gru/mgu cell_backward) and a hash of
 * every output to check that two builds give the same bits:
 *
 *   cc -O3 -std=c99 -pthread -fno-math-errno -fno-trapping-math -Icsrc bench/bwd_steps.c \
 *      csrc/kernels.c csrc/gemm.c csrc/team.c csrc/gemm_int8.c csrc/gemm_bf16.c csrc/gemm_amx.c -lm -o /tmp/bwd_steps
 *   /tmp/bwd_steps cell T B I H [P peephole f64 threads]     # cell: fastrnn.h's frnn_cell number
 *   valgrind --tool=callgrind --toggle-collect=frnn_backward_f32 /tmp/bwd_steps 5 50 50 128 128
 *
 * Sequence b has length T - b % 3 (finished rows take their own branch); float64 runs on a
 * naive BLAS (the same in every build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastrnn.h"

static void naive_dgemm(char *ta, char *tb, int *m, int *n, int *k, double *alpha, double *a, int *lda,
                        double *b, int *ldb, double *beta, double *c, int *ldc)
{
    for (int i = 0; i < *m; i++)
        for (int j = 0; j < *n; j++) {
            double s = 0;
            for (int p = 0; p < *k; p++)
                s += (*ta == 'N' ? a[i + p * *lda] : a[p + i * *lda]) * (*tb == 'N' ? b[p + j * *ldb] : b[j + p * *ldb]);
            double *cv = &c[i + j * *ldc];
            *cv = *alpha * s + (*beta == 0 ? 0 : *beta * *cv);
        }
}

static unsigned SEED = 1;
static void *fill(size_t n, size_t elem, double scale)
{
    char *p = calloc(n ? n : 1, elem);
    for (size_t i = 0; i < n; i++) {
        SEED = SEED * 1103515245u + 12345u;
        const double v = scale * (((SEED >> 16) & 0xff) / 128.0 - 1.0);
        if (elem == sizeof(double)) ((double *)p)[i] = v;
        else ((float *)p)[i] = (float)v;
    }
    return p;
}

static unsigned long long hash(unsigned long long h, const void *p, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 6) return fprintf(stderr, "usage: bwd_steps cell T B I H [P peephole f64 threads]\n"), 2;
    const int cell = atoi(argv[1]), T = atoi(argv[2]), B = atoi(argv[3]), I = atoi(argv[4]), H = atoi(argv[5]);
    const int P = argc > 6 && atoi(argv[6]) > 0 ? atoi(argv[6]) : H, peep = argc > 7 ? atoi(argv[7]) : 0;
    const int f64 = argc > 8 ? atoi(argv[8]) : 0, nth = argc > 9 ? atoi(argv[9]) : 1;
    const int G = frnn_gates(cell), GH = G * H;
    const size_t e = f64 ? sizeof(double) : sizeof(float);
    const frnn_blas blas = {NULL, naive_dgemm};
    frnn_dims d = {cell, T, B, I, H, P, peep};
    int *lengths = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) lengths[b] = T - b % 3;
    frnn_buffers bf = {0};
    bf.x = fill((size_t)T * B * I, e, 1), bf.lengths = lengths;
    bf.W_ih = fill((size_t)GH * I, e, 0.1), bf.W_hh = fill((size_t)GH * P, e, 0.1);
    bf.b_ih = fill(GH, e, 0.1), bf.b_hh = fill(GH, e, 0.1);
    bf.w_peep = peep ? fill(3 * H, e, 0.1) : NULL, bf.W_hr = P != H ? fill((size_t)P * H, e, 0.1) : NULL;
    bf.y = fill((size_t)T * B * P, e, 0), bf.h_T = fill((size_t)B * P, e, 0), bf.c_T = fill((size_t)B * H, e, 0);
    bf.tape = fill(frnn_tape_size(&d), e, 0), bf.dy = fill((size_t)T * B * P, e, 1);
    bf.dx = fill((size_t)T * B * I, e, 0), bf.dh0 = fill((size_t)B * P, e, 0), bf.dc0 = fill((size_t)B * H, e, 0);
    bf.dW_ih = fill((size_t)GH * I, e, 0), bf.dW_hh = fill((size_t)GH * P, e, 0);
    bf.db_ih = fill(GH, e, 0), bf.db_hh = fill(GH, e, 0);
    bf.dw_peep = peep ? fill(3 * H, e, 0) : NULL, bf.dW_hr = P != H ? fill((size_t)P * H, e, 0) : NULL;
    frnn_set_threads(nth);
    if (f64) frnn_forward_f64(&blas, &d, &bf, 1), frnn_backward_f64(&blas, &d, &bf);
    else frnn_forward_f32(&blas, &d, &bf, 1), frnn_backward_f32(&blas, &d, &bf);
    unsigned long long h = 1469598103934665603ull;
    h = hash(h, bf.dx, (size_t)T * B * I * e), h = hash(h, bf.dh0, (size_t)B * P * e);
    h = hash(h, bf.dc0, (size_t)B * H * e), h = hash(h, bf.dW_ih, (size_t)GH * I * e);
    h = hash(h, bf.dW_hh, (size_t)GH * P * e), h = hash(h, bf.db_ih, GH * e), h = hash(h, bf.db_hh, GH * e);
    if (peep) h = hash(h, bf.dw_peep, 3 * H * e);
    if (P != H) h = hash(h, bf.dW_hr, (size_t)P * H * e);
    printf("cell %d T %d B %d I %d H %d P %d peephole %d f64 %d threads %d: outputs' hash %016llx\n",
           cell, T, B, I, H, P, peep, f64, nth, h);
    return 0;
}
