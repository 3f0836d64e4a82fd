/* bench_util.h - what the C bench drivers (lstm_steps.c, gen_steps.c, act_steps.c,
 * int8_steps.c) share: the BLAS stand-in that stops the run when the float32 engine (AVX2) did
 * not make a product itself, and their random values (an LCG's byte). The including file defines
 * BENCH_NAME ("lstm_steps") first. */
#include <stdio.h>
#include <stdlib.h>

static void no_sgemm(char *ta, char *tb, int *m, int *n, int *k, float *al, float *a, int *lda, float *b,
                     int *ldb, float *be, float *c, int *ldc)
{
    (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)al, (void)a, (void)lda, (void)b, (void)ldb, (void)be;
    (void)c, (void)ldc;
    fprintf(stderr, BENCH_NAME ": BLAS called (no AVX2 engine?)\n");
    exit(1);
}

/* The next byte of the LCG state *s, 0..255. */
static inline float lcg_byte(unsigned *s) { return (float)((*s = *s * 1103515245u + 12345u) >> 16 & 0xff); }

/* n values in [-scale, scale) on a grid of scale / 128. */
static inline float *rnd(size_t n, unsigned *s, float scale)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = (lcg_byte(s) / 128.0f - 1.0f) * scale;
    return p;
}
