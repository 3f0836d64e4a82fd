/* test_kernels.c - the kernels on their own: no Python, no SciPy, a naive BLAS.
 *
 * For every cell (and LSTM with peepholes and projection), with and without lengths, checks in
 * double precision that backward's gradients match central finite differences of
 *     loss = sum(y * dy) + sum(h_T * dh_T) [+ sum(c_T * dc_T)]
 * for a sample of entries of every input and parameter, that the float kernels agree with the
 * double ones, and that an inference forward gives the training forward's outputs.
 * Exits non-zero on the first failure (unlike llm.c's test_gpt2.c, a failure here fails).
 *
 * The float32 engine (on CPUs with AVX2 or AVX-512) must give bit-identical results on 1, 2 and 3
 * threads, with and without pre-packed weights.
 *
 * Build and run (tests/test_c_kernels.py does this, with -fsanitize=address,undefined and again
 * with -fsanitize=thread):
 *     cc -std=c99 -O1 -g -pthread -Icsrc csrc/test_kernels.c csrc/kernels.c csrc/gemm.c csrc/team.c \
 *        -lm -o test_kernels && ./test_kernels
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastrnn.h"
#include "amx.h"
#include "test_check.h"

/* Naive column-major GEMM with the Fortran BLAS signature: C = alpha op(A) op(B) + beta C. */
#define NAIVE_GEMM(NAME, REAL)                                                                   \
    static void NAME(char *ta, char *tb, int *m, int *n, int *k, REAL *alpha, REAL *a, int *lda, \
                     REAL *b, int *ldb, REAL *beta, REAL *c, int *ldc)                          \
    {                                                                                            \
        for (int i = 0; i < *m; i++)                                                             \
            for (int j = 0; j < *n; j++) {                                                       \
                double s = 0;                                                                    \
                for (int p = 0; p < *k; p++) {                                                   \
                    REAL av = *ta == 'N' ? a[i + p * *lda] : a[p + i * *lda];                    \
                    REAL bv = *tb == 'N' ? b[p + j * *ldb] : b[j + p * *ldb];                    \
                    s += (double)av * bv;                                                        \
                }                                                                                \
                REAL *cv = &c[i + j * *ldc];                                                     \
                *cv = (REAL)(*alpha * s + (*beta == 0 ? 0 : *beta * *cv));                       \
            }                                                                                    \
    }
NAIVE_GEMM(naive_sgemm, float)
NAIVE_GEMM(naive_dgemm, double)

static const frnn_blas BLAS = {naive_sgemm, naive_dgemm};
static int failures = 0;

/* One test case: sizes and every array, in double; floats are made from these. */
typedef struct {
    frnn_dims d;
    int G, lstm, use_lengths;
    double *arr[9];           /* x, h0, c0, W_ih, W_hh, b_ih, b_hh, w_peep, W_hr */
    size_t len[9];
    double *dy, *dh_T, *dc_T;
    int lengths[8];
} Case;
static const char *NAMES[9] = {"x", "h0", "c0", "W_ih", "W_hh", "b_ih", "b_hh", "w_peep", "W_hr"};

static double *rnd(size_t n, unsigned *s)
{
    double *a = malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) a[i] = 0.8 * urand(s);
    return a;
}

static void make(Case *c, int cell, int peep, int proj, int use_lengths, unsigned seed)
{
    memset(c, 0, sizeof *c);
    int T = 4, B = 3, I = 3, H = 4, P = proj ? 3 : H;
    c->G = frnn_gates(cell);
    c->lstm = cell == FRNN_LSTM;
    c->use_lengths = use_lengths;
    c->d = (frnn_dims){cell, T, B, I, H, P, peep};
    size_t GH = (size_t)c->G * H;
    size_t len[9] = {T * B * I, B * P, c->lstm ? B * H : 0, GH * I, GH * P, GH, GH, peep ? 3 * H : 0,
                     proj ? P * H : 0};
    for (int k = 0; k < 9; k++) { c->len[k] = len[k]; c->arr[k] = rnd(len[k], &seed); }
    c->dy = rnd(T * B * P, &seed);
    c->dh_T = rnd(B * P, &seed);
    c->dc_T = rnd(B * H, &seed);
    int lens[3] = {4, 0, 2};
    memcpy(c->lengths, lens, sizeof lens);
}

static void *opt(double *a, size_t n) { return n ? a : NULL; }

/* Run forward (and backward when grads != NULL) in double; returns the loss. */
static double run_f64(const Case *c, double **grads, int train)
{
    const frnn_dims *d = &c->d;
    size_t T = d->T, B = d->B, P = d->P, H = d->H;
    frnn_buffers bf;
    memset(&bf, 0, sizeof bf);
    bf.x = c->arr[0]; bf.h0 = c->arr[1]; bf.c0 = opt(c->arr[2], c->len[2]);
    bf.W_ih = c->arr[3]; bf.W_hh = c->arr[4]; bf.b_ih = c->arr[5]; bf.b_hh = c->arr[6];
    bf.w_peep = opt(c->arr[7], c->len[7]); bf.W_hr = opt(c->arr[8], c->len[8]);
    bf.lengths = c->use_lengths ? c->lengths : NULL;
    double *y = calloc(T * B * P, sizeof(double)), *h_T = calloc(B * P, sizeof(double));
    double *c_T = calloc(B * H, sizeof(double));
    size_t n = train ? frnn_tape_size(d) : frnn_work_size(d);
    double *tape = calloc(n, sizeof(double));
    bf.y = y; bf.h_T = h_T; bf.c_T = c->lstm ? c_T : NULL; bf.tape = tape;
    frnn_forward_f64(&BLAS, d, &bf, train);
    double loss = 0;
    for (size_t i = 0; i < T * B * P; i++) loss += y[i] * c->dy[i];
    for (size_t i = 0; i < B * P; i++) loss += h_T[i] * c->dh_T[i];
    if (c->lstm) for (size_t i = 0; i < B * H; i++) loss += c_T[i] * c->dc_T[i];
    if (grads) {
        bf.dy = c->dy; bf.dh_T = c->dh_T; bf.dc_T = c->lstm ? c->dc_T : NULL;
        bf.dx = grads[0]; bf.dh0 = grads[1]; bf.dc0 = c->lstm ? grads[2] : NULL;
        bf.dW_ih = grads[3]; bf.dW_hh = grads[4]; bf.db_ih = grads[5]; bf.db_hh = grads[6];
        bf.dw_peep = c->len[7] ? grads[7] : NULL; bf.dW_hr = c->len[8] ? grads[8] : NULL;
        frnn_backward_f64(&BLAS, d, &bf);
    }
    free(y); free(h_T); free(c_T); free(tape);
    return loss;
}

static void check(int ok, const char *what, int cell, int peep, int proj, int lens, double got, double want)
{
    if (!ok) {
        fprintf(stderr, "FAIL %s: cell %d peephole %d projection %d lengths %d: got %.10g, want %.10g\n",
                what, cell, peep, proj, lens, got, want);
        failures++;
    }
}

static void test_gradients(int cell, int peep, int proj, int lens)
{
    Case c;
    make(&c, cell, peep, proj, lens, 1234u + cell * 7 + peep * 3 + proj + lens * 11);
    double *grads[9];
    for (int k = 0; k < 9; k++) grads[k] = calloc(c.len[k] ? c.len[k] : 1, sizeof(double));
    double loss = run_f64(&c, grads, 1);
    check(fabs(run_f64(&c, NULL, 0) - loss) < 1e-12, "inference == training forward", cell, peep,
          proj, lens, run_f64(&c, NULL, 0), loss);
    for (int k = 0; k < 9; k++) {
        for (size_t i = 0; i < c.len[k]; i += 1 + c.len[k] / 5) {   /* ~5 entries of each */
            double old = c.arr[k][i], eps = 1e-6;
            c.arr[k][i] = old + eps;
            double plus = run_f64(&c, NULL, 0);
            c.arr[k][i] = old - eps;
            double minus = run_f64(&c, NULL, 0);
            c.arr[k][i] = old;
            double num = (plus - minus) / (2 * eps);
            check(fabs(num - grads[k][i]) <= 1e-6 * (1 + fabs(num)), NAMES[k], cell, peep, proj, lens,
                  grads[k][i], num);
        }
    }
    for (int k = 0; k < 9; k++) { free(grads[k]); free(c.arr[k]); }
    free(c.dy); free(c.dh_T); free(c.dc_T);
}

static void test_float_matches_double(int cell)
{
    Case c;
    make(&c, cell, 0, 0, 1, 99u + cell);
    const frnn_dims *d = &c.d;
    size_t T = d->T, B = d->B, P = d->P, H = d->H;
    double ref = run_f64(&c, NULL, 0);
    float *a[9];
    for (int k = 0; k < 9; k++) {
        a[k] = malloc(sizeof(float) * (c.len[k] ? c.len[k] : 1));
        for (size_t i = 0; i < c.len[k]; i++) a[k][i] = (float)c.arr[k][i];
    }
    frnn_buffers bf;
    memset(&bf, 0, sizeof bf);
    bf.x = a[0]; bf.h0 = a[1]; bf.c0 = c.len[2] ? a[2] : NULL; bf.W_ih = a[3]; bf.W_hh = a[4];
    bf.b_ih = a[5]; bf.b_hh = a[6]; bf.lengths = c.lengths;
    float *y = calloc(T * B * P, sizeof(float)), *h_T = calloc(B * P, sizeof(float));
    float *c_T = calloc(B * H, sizeof(float)), *work = calloc(frnn_work_size(d), sizeof(float));
    bf.y = y; bf.h_T = h_T; bf.c_T = c.lstm ? c_T : NULL; bf.tape = work;
    frnn_forward_f32(&BLAS, d, &bf, 0);
    double loss = 0;
    for (size_t i = 0; i < T * B * P; i++) loss += y[i] * c.dy[i];
    for (size_t i = 0; i < B * P; i++) loss += h_T[i] * c.dh_T[i];
    if (c.lstm) for (size_t i = 0; i < B * H; i++) loss += c_T[i] * c.dc_T[i];
    check(fabs(loss - ref) <= 1e-4 * (1 + fabs(ref)), "float32 forward == float64", cell, 0, 0, 1, loss, ref);
    for (int k = 0; k < 9; k++) { free(a[k]); free(c.arr[k]); }
    free(y); free(h_T); free(c_T); free(work); free(c.dy); free(c.dh_T); free(c.dc_T);
}

/* The float32 engine on its own team: forward (training and inference, with and without
 * pre-packed weights) and backward at 1, 2 and 3 threads must give bit-identical results. */
typedef struct {
    float *out;            /* y, h_T, c_T, then every gradient, concatenated */
    size_t n;
} Result;

static int PRECISION = FRNN_PRECISION_F32;     /* run_engine's buffers.precision */

static Result run_engine(int cell, int peep, int proj, int threads, int prepack, int train)
{
    const int T = 5, B = 30, I = 7, H = 37, P = proj ? 20 : H, G = frnn_gates(cell);
    const frnn_dims d = {cell, T, B, I, H, P, peep};
    const size_t GH = (size_t)G * H;
    size_t len[9] = {(size_t)T * B * I, (size_t)B * P, (size_t)B * H, GH * I, GH * P, GH, GH,
                     peep ? 3 * (size_t)H : 0, proj ? (size_t)P * H : 0};
    unsigned seed = 4321u + cell;
    float *a[9];
    for (int k = 0; k < 9; k++) {
        a[k] = malloc(sizeof(float) * (len[k] ? len[k] : 1));
        for (size_t i = 0; i < len[k]; i++) a[k][i] = (float)(0.5 * urand(&seed));
    }
    int lengths[30];
    for (int b = 0; b < B; b++) lengths[b] = b % (T + 1);
    const int lstm = cell == FRNN_LSTM;
    Result r;
    r.n = (size_t)T * B * P + B * P + B * H + len[0] + len[1] + len[2];
    for (int k = 3; k < 9; k++) r.n += len[k];
    r.out = calloc(r.n, sizeof(float));
    float *y = r.out, *h_T = y + (size_t)T * B * P, *c_T = h_T + B * P, *g = c_T + B * H;
    float *grads[9];
    for (int k = 0; k < 9; k++) { grads[k] = g; g += len[k]; }
    float *dy = malloc(sizeof(float) * T * B * P);
    for (size_t i = 0; i < (size_t)T * B * P; i++) dy[i] = (float)urand(&seed);
    frnn_buffers bf;
    memset(&bf, 0, sizeof bf);
    bf.x = a[0]; bf.h0 = a[1]; bf.c0 = lstm ? a[2] : NULL; bf.W_ih = a[3]; bf.W_hh = a[4];
    bf.b_ih = a[5]; bf.b_hh = a[6]; bf.w_peep = peep ? a[7] : NULL; bf.W_hr = proj ? a[8] : NULL;
    bf.lengths = lengths;
    bf.y = y; bf.h_T = h_T; bf.c_T = lstm ? c_T : NULL;
    float *packed = NULL;
    bf.precision = PRECISION;
    if (prepack && PRECISION == FRNN_PRECISION_BF16) {
        packed = malloc(sizeof(float) * (frnn_packed_size_bf16(&d, 1) + 1));
        if (frnn_pack_forward_bf16(&d, a[3], a[4], proj ? a[8] : NULL, packed) == 0) bf.packed = packed;
    } else if (prepack) {
        packed = malloc(sizeof(float) * (frnn_packed_size_f32(&d) + 1));
        if (frnn_pack_forward_f32(&d, a[4], proj ? a[8] : NULL, packed) == 0) bf.packed = packed;
    }
    size_t n = train ? frnn_tape_size(&d) : frnn_work_size(&d);
    float *tape = malloc(sizeof(float) * n);
    bf.tape = tape;
    frnn_set_threads(threads);
    frnn_forward_f32(&BLAS, &d, &bf, train);
    if (train) {
        bf.dy = dy;
        bf.dx = grads[0]; bf.dh0 = grads[1]; bf.dc0 = lstm ? grads[2] : NULL;
        bf.dW_ih = grads[3]; bf.dW_hh = grads[4]; bf.db_ih = grads[5]; bf.db_hh = grads[6];
        bf.dw_peep = peep ? grads[7] : NULL; bf.dW_hr = proj ? grads[8] : NULL;
        frnn_backward_f32(&BLAS, &d, &bf);
    }
    frnn_set_threads(0);
    for (int k = 0; k < 9; k++) free(a[k]);
    free(dy); free(tape); free(packed);
    return r;
}

static void test_engine_threads(int cell, int peep, int proj)
{
    for (int train = 0; train <= 1; train++) {
        Result one = run_engine(cell, peep, proj, 1, 0, train);
        for (int threads = 1; threads <= 3; threads++)
            for (int prepack = 0; prepack <= 1; prepack++) {
                Result r = run_engine(cell, peep, proj, threads, prepack, train);
                int same = memcmp(one.out, r.out, sizeof(float) * r.n) == 0;
                if (!same) {
                    fprintf(stderr, "FAIL engine: cell %d peephole %d projection %d train %d threads %d "
                            "prepacked %d differs from one thread\n", cell, peep, proj, train, threads, prepack);
                    failures++;
                }
                free(r.out);
            }
        free(one.out);
    }
}

int frnn_test_stack(const frnn_blas *blas);    /* test_stack.c */
int frnn_test_decomp(const frnn_blas *blas);   /* test_stack.c */
int frnn_test_generate(const frnn_blas *blas); /* test_generate.c */
int frnn_test_int8(const frnn_blas *blas);     /* test_int8.c */
int frnn_test_bf16(void);                      /* test_bf16.c */
int frnn_test_amx(void);                       /* test_amx.c */
int frnn_test_gemm(void);                      /* test_gemm.c */
int frnn_test_train(const frnn_blas *blas);    /* test_train.c */
int frnn_test_train_seq(const frnn_blas *blas); /* test_train_seq.c */

int main(void)
{
    int cases = 0;
    for (int ci = 0; ci < FRNN_NUM_CELLS; ci++) {      /* every row of the cell table */
        const int cells[FRNN_NUM_CELLS] = {0, 1, 2, 3, 4, 5, 6};
        int lstm = cells[ci] == FRNN_LSTM;
        for (int peep = 0; peep <= lstm; peep++)
            for (int proj = 0; proj <= lstm; proj++)
                for (int lens = 0; lens <= 1; lens++, cases++)
                    test_gradients(cells[ci], peep, proj, lens);
        test_float_matches_double(cells[ci]);
        for (int peep = 0; peep <= lstm; peep++)
            for (int proj = 0; proj <= lstm; proj++) test_engine_threads(cells[ci], peep, proj);
    }
    failures += frnn_test_gemm();
    failures += frnn_test_stack(&BLAS);
    failures += frnn_test_decomp(&BLAS);
    failures += frnn_test_generate(&BLAS);
    failures += frnn_test_int8(&BLAS);
    failures += frnn_test_bf16();
    PRECISION = FRNN_PRECISION_BF16;                    /* the layers in bf16: 1-3 threads, prepacked */
    for (int cell = 0; cell < FRNN_NUM_CELLS; cell++)
        for (int pp = 0; pp < (cell == FRNN_LSTM ? 4 : 1); pp++) test_engine_threads(cell, pp & 1, pp >> 1);
    failures += frnn_test_amx();
    frnn_set_amx_mode(FRNN_AMX_EMULATED);                /* bf16 layers on the emulated AMX tiles */
    for (int cell = 0; cell < FRNN_NUM_CELLS; cell++) test_engine_threads(cell, cell == FRNN_LSTM, cell == FRNN_LSTM);
    frnn_set_amx_mode(-1);
    PRECISION = FRNN_PRECISION_F32;
    failures += frnn_test_train(&BLAS);
    failures += frnn_test_train_seq(&BLAS);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    if (frnn_cell_info(FRNN_NUM_CELLS) != NULL || frnn_cell_info(-1) != NULL || frnn_gates(FRNN_NUM_CELLS)) {
        fprintf(stderr, "FAIL: an unknown cell has a table row\n");
        return 1;
    }
    printf("all %d gradient cases, %d float32 cases, the engine and the stack calls at 1-3 threads "
           "(ISA %d) and the generation loop passed\n",
           cases, FRNN_NUM_CELLS, frnn_isa_active());
    return 0;
}
