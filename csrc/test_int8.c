/* test_int8.c - the int8 kernels (int8.h) on their own, called by test_kernels.c's main:
 *   - every int8 path this CPU runs gives the plain-C reference's bits, over shapes that leave
 *     partial row blocks, column blocks and K tails, with beta 0 and 1, zero and NaN rows;
 *   - the reference equals the scheme written out here (quantized rows, s32 sums, one epilogue);
 *   - the input projection equals its rows of folded biases plus the scheme's product;
 *   - static rows (bounded h): both quantizers give the bytes written out here, and the static
 *     product equals the scheme with those bytes and s_a = 1/63 (NaN rows too) on every path;
 *   - int8 layer forwards (every cell; LSTM with peepholes and projection; dynamic and static
 *     rows of h) give the same bits on every path at 1, 2 and 3 threads and stay near the float
 *     forward with the dequantized weights; static rows are taken where the cell bounds h (the
 *     result differs from the dynamic rows') and not where it does not or h0 leaves [-1, 1].
 * Returns the number of failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastrnn.h"
#include "int8.h"

#define TEST_NAME "int8"
#include "test_check.h"

/* The weights of the scheme: q (N, Kp) zero-padded, scales, comp; returns the dequantized W. */
typedef struct {
    int8_t *w, *packed;            /* (N, Kp) row-major; its packed form (the kernels read) */
    float *scale;
    int32_t *comp;
    frnn_q8_mat m;
} QMat;

static QMat qmat(const float *W, int N, int K, float *deq)
{
    QMat q;
    const int Kp = (K + FRNN_Q8_ALIGN - 1) / FRNN_Q8_ALIGN * FRNN_Q8_ALIGN;
    q.w = calloc((size_t)N * Kp, 1), q.scale = malloc(sizeof(float) * N), q.comp = malloc(sizeof(int32_t) * N);
    for (int n = 0; n < N; n++) {
        float m = 0;
        for (int k = 0; k < K; k++) m = fabsf(W[n * K + k]) > m ? fabsf(W[n * K + k]) : m;
        q.scale[n] = m / 127.0f;
        int32_t sum = 0;
        for (int k = 0; k < K; k++) {
            int v = m > 0 ? (int)rintf(W[n * K + k] / q.scale[n]) : 0;
            q.w[(size_t)n * Kp + k] = (int8_t)v;
            sum += v;
            if (deq) deq[n * K + k] = (float)v * q.scale[n];
        }
        q.comp[n] = 64 * sum;
    }
    q.packed = malloc(frnn_q8_packed_bytes(N, Kp));
    frnn_q8_pack(q.w, (size_t)Kp, N, K, Kp, q.packed);
    q.m = (frnn_q8_mat){q.packed, q.scale, q.comp, N, K, Kp, 0, (int)(frnn_q8_packed_bytes(N, Kp) / Kp)};
    return q;
}

static void qfree(QMat *q) { free(q->w), free(q->packed), free(q->scale), free(q->comp); }

/* The scheme written out: C = (acc - comp) * (s_a * s_w) [+ C]. */
static void scheme(const QMat *q, int M, const float *A, int beta, float *C)
{
    const int K = q->m.K, Kp = q->m.Kp, N = q->m.N;
    uint8_t *row = malloc((size_t)Kp);
    for (int i = 0; i < M; i++) {
        const float sa = frnn_q8_quantize_row(A + (size_t)i * K, K, Kp, row);
        for (int n = 0; n < N; n++) {
            long long acc = 0;
            for (int k = 0; k < Kp; k++) acc += (long long)row[k] * q->w[(size_t)n * Kp + k];
            const float v = (float)(int32_t)(acc - q->comp[n]) * (sa * q->scale[n]);
            C[(size_t)i * N + n] = beta ? C[(size_t)i * N + n] + v : v;
        }
    }
    free(row);
}

static void test_products(void)
{
    const int shapes[][3] = {{1, 1, 1}, {1, 4, 64}, {3, 5, 63}, {4, 8, 65}, {5, 13, 130}, {9, 7, 300}, {2, 3, 1000},
                             {3, 96, 64}, {5, 70, 129}};   /* whole 32-column blocks and a partial one */
    unsigned s = 7;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int M = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
        float *W = malloc(sizeof(float) * N * K), *A = malloc(sizeof(float) * M * K);
        float *C0 = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * M * N);
        float *C2 = malloc(sizeof(float) * M * N);
        for (int i = 0; i < N * K; i++) W[i] = urand(&s);
        for (int i = 0; i < M * K; i++) A[i] = 3 * urand(&s);
        if (M > 2) {
            memset(A + K, 0, sizeof(float) * K);                  /* a zero row */
            A[2 * K + K / 2] = NAN;                               /* a NaN row */
        }
        QMat q = qmat(W, N, K, NULL);
        for (int beta = 0; beta <= 1; beta++) {
            for (int i = 0; i < M * N; i++) C0[i] = C1[i] = urand(&s);
            frnn_q8_set_isa(FRNN_Q8_REF);                         /* the scalar quantizer */
            scheme(&q, M, A, beta, C0);
            if (M > 2 && !beta && !(isnan(C0[2 * N]) && C0[N] == 0)) {
                fprintf(stderr, "FAIL int8 product: a NaN row must give NaN, a zero row 0\n");
                fails++;
            }
            for (int isa = 0; isa <= FRNN_Q8_AVX512VNNI; isa++) {
                if (!frnn_q8_isa_supported(isa)) continue;
                frnn_q8_set_isa(isa);
                memcpy(C2, C1, sizeof(float) * M * N);
                frnn_q8_mul(&q.m, N, 0, N, M, A, (size_t)K, beta, C2, (size_t)N);
                if (memcmp(C0, C2, sizeof(float) * M * N) != 0) {
                    fprintf(stderr, "FAIL int8 product: isa %d M %d N %d K %d beta %d differs from the scheme\n",
                            isa, M, N, K, beta);
                    fails++;
                }
            }
        }
        qfree(&q);
        free(W), free(A), free(C0), free(C1), free(C2);
    }
}

/* The input projection (one member) == its definition: every row holds the folded bias
 * (b_ih + b_hh on columns [0, fold), b_ih + 0 after, as the float path), then the product is
 * added (the scheme with beta 1), on every path, with both biases, b_ih alone and none. */
static void test_input_projection(void)
{
    const int shapes[][3] = {{1, 5, 63}, {5, 13, 130}, {9, 70, 129}, {33, 96, 64}};
    unsigned s = 11;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int M = shapes[c][0], N = shapes[c][1], K = shapes[c][2], fold = N / 2;
        float *W = malloc(sizeof(float) * N * K), *A = malloc(sizeof(float) * M * K);
        float *b = malloc(sizeof(float) * 2 * N), *C0 = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * M * N);
        for (int i = 0; i < N * K; i++) W[i] = urand(&s);
        for (int i = 0; i < M * K; i++) A[i] = 3 * urand(&s);
        for (int i = 0; i < 2 * N; i++) b[i] = urand(&s);
        if (M > 2) A[2 * K + 1] = NAN;                            /* a NaN row */
        QMat q = qmat(W, N, K, NULL);
        for (int biases = 0; biases < 3; biases++) {
            const float *b_ih = biases < 2 ? b : NULL, *b_hh = biases < 1 ? b + N : NULL;
            frnn_q8_set_isa(FRNN_Q8_REF);
            for (int i = 0; i < M; i++)
                for (int n = 0; n < N; n++)
                    C0[(size_t)i * N + n] = b_ih && b_hh ? (n < fold ? b_ih[n] + b_hh[n] : b_ih[n] + 0.0f)
                                                         : (b_ih ? b_ih[n] : 0) + (b_hh && n < fold ? b_hh[n] : 0);
            scheme(&q, M, A, 1, C0);
            for (int isa = 0; isa <= FRNN_Q8_AVX512VNNI; isa++) {
                if (!frnn_q8_isa_supported(isa)) continue;
                frnn_q8_set_isa(isa);
                const frnn_par one = {0, 1, NULL, NULL};
                for (int i = 0; i < M * N; i++) C1[i] = urand(&s);   /* overwritten */
                frnn_q8_input_projection(&one, (size_t)M, N, A, &q.m, b_ih, b_hh, fold, C1);
                if (memcmp(C0, C1, sizeof(float) * M * N) != 0) {
                    fprintf(stderr, "FAIL int8 input projection: isa %d M %d N %d K %d biases %d differs from "
                            "the bias rows plus the scheme\n", isa, M, N, K, biases);
                    fails++;
                }
            }
        }
        qfree(&q);
        free(W), free(A), free(b), free(C0), free(C1);
    }
}

/* Static rows written out: 64 + clamp(rint(a * 63), -63, 63) (the product in float, as the
 * dynamic rows' a * (63 / m)), 0 for a non-finite a. */
static uint8_t static_byte(float a)
{
    if (!isfinite(a)) return 0;
    const float p = a * 63.0f;
    float r = rintf(p);                    /* half to even in the default rounding mode */
    r = r > 63 ? 63 : r < -63 ? -63 : r;
    return (uint8_t)(64 + (int)r);
}

static void test_static_rows(void)
{
    enum { N = 77 };
    const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f / 63, 1.5f / 63, -2.5f / 63, 1.0000001f, -1.2f,
                             3e38f, -3e38f, INFINITY, -INFINITY, NAN, 1e-30f};
    float a[N];
    unsigned s = 5;
    for (int i = 0; i < N; i++) a[i] = i < 15 ? special[i] : urand(&s);
    for (int isa = 0; isa <= FRNN_Q8_AVX512VNNI; isa++) {
        if (!frnn_q8_isa_supported(isa)) continue;
        frnn_q8_set_isa(isa);
        for (int off = 0; off < 3; off++) {                  /* unaligned starts, every tail length */
            uint8_t q[N];
            frnn_q8_quantize_static(a + off, N - off, q);
            for (int i = 0; i < N - off; i++)
                if (q[i] != static_byte(a[off + i])) {
                    fprintf(stderr, "FAIL int8 static rows: isa %d a %g gives %d, expected %d\n", isa,
                            (double)a[off + i], q[i], static_byte(a[off + i]));
                    fails++;
                }
        }
    }
    /* the static product == the scheme with those bytes and 1/63, a NaN row NaN */
    const int shapes[][3] = {{1, 3, 5}, {3, 40, 64}, {5, 13, 130}, {4, 33, 300}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int M = shapes[c][0], N2 = shapes[c][1], K = shapes[c][2];
        float *W = malloc(sizeof(float) * N2 * K), *A = malloc(sizeof(float) * M * K);
        float *C0 = malloc(sizeof(float) * M * N2), *C1 = malloc(sizeof(float) * M * N2);
        for (int i = 0; i < N2 * K; i++) W[i] = urand(&s);
        for (int i = 0; i < M * K; i++) A[i] = urand(&s);
        if (M > 2) A[2 * K + K / 3] = NAN;
        QMat q = qmat(W, N2, K, NULL);
        const int Kp = q.m.Kp;
        uint8_t *qa = malloc((size_t)M * Kp);
        memset(qa, 64, (size_t)M * Kp);
        for (int i = 0; i < M; i++)
            for (int k = 0; k < K; k++) qa[(size_t)i * Kp + k] = static_byte(A[(size_t)i * K + k]);
        for (int beta = 0; beta <= 1; beta++) {
            for (int i = 0; i < M * N2; i++) C0[i] = urand(&s);
            memcpy(C1, C0, sizeof(float) * M * N2);
            for (int i = 0; i < M; i++) {
                const float sa = i == 2 && M > 2 ? NAN : 1.0f / 63;
                for (int n = 0; n < N2; n++) {
                    long long acc = 0;
                    for (int k = 0; k < Kp; k++) acc += (long long)qa[(size_t)i * Kp + k] * q.w[(size_t)n * Kp + k];
                    const float v = (float)(int32_t)(acc - q.comp[n]) * (sa * q.scale[n]);
                    C0[(size_t)i * N2 + n] = beta ? C0[(size_t)i * N2 + n] + v : v;
                }
            }
            for (int isa = 0; isa <= FRNN_Q8_AVX512VNNI; isa++) {
                if (!frnn_q8_isa_supported(isa)) continue;
                frnn_q8_set_isa(isa);
                float *C2 = malloc(sizeof(float) * M * N2);
                memcpy(C2, C1, sizeof(float) * M * N2);
                frnn_q8_mul_static(&q.m, N2, 0, N2, M, qa, (size_t)Kp, beta, C2, (size_t)N2);
                if (memcmp(C0, C2, sizeof(float) * M * N2) != 0 || (M > 2 && !isnan(C2[2 * N2]))) {
                    fprintf(stderr, "FAIL int8 static product: isa %d M %d N %d K %d beta %d\n", isa, M, N2, K, beta);
                    fails++;
                }
                free(C2);
            }
        }
        qfree(&q);
        free(qa), free(W), free(A), free(C0), free(C1);
    }
}

/* One int8 forward of a layer (T 5, B 4, I 24, H 64) at `threads`; returns y and h_T (and c_T)
 * back to back; *fdiff gets the largest difference from the float forward with the dequantized
 * weights. */
static float *run_layer(const frnn_blas *blas, int cell, int peep, int proj, int threads, int hstatic, float h0v,
                        float *fdiff)
{
    const int T = 5, B = 4, I = 24, H = 64, P = proj ? 16 : H, G = frnn_gates(cell), GH = G * H;
    frnn_dims d = {cell, T, B, I, H, P, peep};
    unsigned s = 11 + cell;
    float *W_ih = malloc(sizeof(float) * GH * I), *W_hh = malloc(sizeof(float) * GH * P);
    float *W_hr = malloc(sizeof(float) * P * H), *b = malloc(sizeof(float) * 2 * GH);
    float *wp = malloc(sizeof(float) * 3 * H), *x = malloc(sizeof(float) * T * B * I);
    for (int i = 0; i < GH * I; i++) W_ih[i] = 0.3f * urand(&s);
    for (int i = 0; i < GH * P; i++) W_hh[i] = 0.3f * urand(&s);
    for (int i = 0; i < P * H; i++) W_hr[i] = 0.3f * urand(&s);
    for (int i = 0; i < 2 * GH; i++) b[i] = 0.1f * urand(&s);
    for (int i = 0; i < 3 * H; i++) wp[i] = 0.1f * urand(&s);
    for (int i = 0; i < T * B * I; i++) x[i] = urand(&s);
    QMat qi = qmat(W_ih, GH, I, W_ih), qh = qmat(W_hh, GH, P, W_hh), qr = qmat(W_hr, P, H, W_hr);
    frnn_q8_layer layer = {qi.m, qh.m, qr.m, hstatic};
    float *h0 = malloc(sizeof(float) * B * P);
    for (int i = 0; i < B * P; i++) h0[i] = h0v * urand(&s);
    if (!proj) layer.hr.N = 0;
    const size_t n_out = (size_t)T * B * P + B * P + B * H;
    float *out[2], *work = malloc(sizeof(float) * frnn_work_size(&d));
    for (int q8 = 0; q8 <= 1; q8++) {
        out[q8] = calloc(n_out, sizeof(float));
        frnn_buffers bf;
        memset(&bf, 0, sizeof bf);
        bf.x = x, bf.W_ih = W_ih, bf.W_hh = W_hh, bf.b_ih = b, bf.b_hh = b + GH;
        bf.w_peep = peep ? wp : NULL, bf.W_hr = proj ? W_hr : NULL;
        bf.y = out[q8], bf.h_T = out[q8] + (size_t)T * B * P;
        bf.c_T = cell == FRNN_LSTM ? out[q8] + (size_t)T * B * P + B * P : NULL;
        bf.tape = work, bf.threads = threads, bf.q8 = q8 ? &layer : NULL, bf.h0 = h0v ? h0 : NULL;
        frnn_forward_f32(blas, &d, &bf, 0);
    }
    *fdiff = 0;
    for (size_t i = 0; i < n_out; i++) *fdiff = fmaxf(*fdiff, fabsf(out[0][i] - out[1][i]));
    qfree(&qi), qfree(&qh), qfree(&qr);
    free(W_ih), free(W_hh), free(W_hr), free(b), free(wp), free(x), free(work), free(out[0]), free(h0);
    return out[1];
}

/* Every path and thread count gives the first run's bits; dynamic and static rows of h. */
static void test_layers(const frnn_blas *blas)
{
    const int T = 5, B = 4, H = 64, active = frnn_q8_isa_active();
    for (int cell = 0; cell < FRNN_NUM_CELLS; cell++) {
        const int lstm = cell == FRNN_LSTM;
        for (int peep = 0; peep <= lstm; peep++)
            for (int proj = 0; proj <= lstm; proj++) {
                const size_t n = (size_t)T * B * (proj ? 16 : H) + B * (proj ? 16 : H) + B * H;
                const int bounded = cell != FRNN_RNN_RELU && !proj;
                float *dyn = NULL;
                /* (hstatic, h0 scale): dynamic; static from h0 in [-0.9, 0.9]; from zeros; h0 beyond 1 */
                const float runs[][2] = {{0, 0.9f}, {1, 0.9f}, {1, 0}, {1, 1.5f}, {0, 1.5f}};
                float *kept[5] = {NULL};
                for (int v = 0; v < 5; v++) {
                    float diff, *first = NULL;
                    for (int isa = 0; isa <= FRNN_Q8_AVX512VNNI; isa++) {
                        if (!frnn_q8_isa_supported(isa)) continue;
                        frnn_q8_set_isa(isa);
                        for (int threads = 1; threads <= 3; threads++) {
                            frnn_set_threads(threads);
                            float *r = run_layer(blas, cell, peep, proj, threads, (int)runs[v][0], runs[v][1], &diff);
                            if (!(diff < 0.1f)) {
                                fprintf(stderr, "FAIL int8 layer: cell %d peephole %d projection %d static %d is %g "
                                        "from float\n", cell, peep, proj, (int)runs[v][0], diff);
                                fails++;
                            }
                            if (first == NULL) first = r;
                            else {
                                if (memcmp(first, r, sizeof(float) * n) != 0) {
                                    fprintf(stderr, "FAIL int8 layer: cell %d peephole %d projection %d static %d "
                                            "differs on path %d at %d threads\n", cell, peep, proj,
                                            (int)runs[v][0], isa, threads);
                                    fails++;
                                }
                                free(r);
                            }
                        }
                    }
                    frnn_set_threads(0);
                    kept[v] = first;
                }
                dyn = kept[0];
                /* static rows are taken exactly where h is bounded: they change the bits there */
                if ((memcmp(dyn, kept[1], sizeof(float) * n) != 0) != bounded) {
                    fprintf(stderr, "FAIL int8 layer: cell %d projection %d: static rows %s\n", cell, proj,
                            bounded ? "not taken" : "taken for an unbounded h");
                    fails++;
                }
                if (memcmp(kept[3], kept[4], sizeof(float) * n) != 0) {   /* |h0| > 1: dynamic rows */
                    fprintf(stderr, "FAIL int8 layer: cell %d: static rows taken with |h0| > 1\n", cell);
                    fails++;
                }
                for (int v = 0; v < 5; v++) free(kept[v]);
            }
    }
    frnn_q8_set_isa(active);
}

int frnn_test_int8(const frnn_blas *blas)
{
    const int active = frnn_q8_isa_active();
    test_products();
    test_input_projection();
    test_static_rows();
    frnn_q8_set_isa(active);
    test_layers(blas);
    return fails;
}
