/* test_generate.c - checks of the generation loop (linked into test_kernels.c's program):
 * frnn_choose's draws cover each token's probability exactly (a grid of u), its argmax and error
 * cases; the stop test decodes as Vocab.decode; and frnn_generate's greedy tokens equal a loop
 * of single steps (frnn_forward, T = 1) plus a naive head, with the same bits at 1-3 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastrnn.h"
#include "sampling.h"

#define TEST_NAME "generate"
#include "test_check.h"

/* GB >= FRNN_SMALL_M: the team task's packed panels and shared head panels (tests/test_generate_team.py
 * checks fewer rows, read in place, against the per-step path) */
enum { V = 9, GL = 2, GB = 9, GH = 24, STEPS = 40 };

static void test_choose(void)
{
    double z[V] = {0.3, -1.0, 2.0, 0.5, 2.0, -INFINITY, 1.0, 0.0, -0.4}, p[2 * V], sel[V];
    int order[2 * V];
    const frnn_pick_scratch s = {p, sel, order, order + V};
    CHECK(frnn_choose(z, V, 1.0, 0, 0.0, -1.0, &s) == 2, "argmax is the first maximum");
    /* the u grid: each token gets a share of [0, 1) equal to its probability */
    const double temps[3] = {1.0, 0.6, 2.5};
    for (int c = 0; c < 3; c++) {
        const int top_k = c == 1 ? 4 : 0;
        const double top_p = c == 2 ? 0.7 : 0.0, t = temps[c];
        double want[V], total = 0, m = 2.0 / t;
        for (int v = 0; v < V; v++) total += want[v] = exp(z[v] / t - m);
        if (top_k) {            /* keep the 4 largest: 2.0, 2.0, 1.0, 0.5 */
            for (int v = 0; v < V; v++) if (z[v] < 0.5) total -= want[v], want[v] = 0;
        }
        if (top_p > 0) {        /* sorted: 2.0, 2.0, 1.0, ... keep the prefix reaching 0.7 */
            const int idx[V] = {2, 4, 6, 3, 0, 7, 8, 1, 5};
            double mass = 0, all = total;
            int keep = V;
            for (int i = 0; i < V; i++) { mass += want[idx[i]]; if (mass / all >= top_p - 1e-12) { keep = i + 1; break; } }
            for (int i = keep; i < V; i++) total -= want[idx[i]], want[idx[i]] = 0;
        }
        int count[V] = {0};
        const int N = 100000;
        for (int i = 0; i < N; i++) {
            const int v = frnn_choose(z, V, t, top_k, top_p, (i + 0.5) / N, &s);
            if (v >= 0 && v < V) count[v]++;
        }
        for (int v = 0; v < V; v++)
            CHECK(fabs(count[v] - N * want[v] / total) <= 2, "case %d token %d drawn %d times, expected %.1f",
                  c, v, count[v], N * want[v] / total);
    }
    CHECK(frnn_choose(z, V, 1e-40, 0, 0.0, 0.99, &s) == 4, "a temperature of 0 draws among the maxima");
    z[3] = NAN;
    CHECK(frnn_choose(z, V, 1.0, 0, 0.0, 0.5, &s) == -1, "NaN logits are an error");
    for (int v = 0; v < V; v++) z[v] = -INFINITY;
    CHECK(frnn_choose(z, V, 1.0, 0, 0.0, -1.0, &s) == -1, "all -inf logits are an error");
}

static void test_stop(void)
{
    /* tokens: 0 "<unk>", 1 eos, 2 "the", 3 "cat", 4 "é" */
    const char *text = "<unk>\nthecat\xc3\xa9";
    const int offsets[6] = {0, 5, 6, 9, 12, 14};
    char buf[64];
    frnn_stop_rule r = {text, offsets, 1, 1, "the cat", 7, 7, buf};
    const int a[3] = {3, 2, 3}, b[3] = {2, 1, 3}, c[2] = {4, 4};
    CHECK(frnn_stopped(&r, a, 1, 3), "word level: 'cat the cat' contains 'the cat'");
    CHECK(!frnn_stopped(&r, b, 1, 3), "word level: an eos is a newline, not a space");
    r.stop = "e\nc", r.stop_len = 3, r.window = 3;
    CHECK(frnn_stopped(&r, b, 1, 3), "word level: 'the\\ncat' contains 'e\\nc'");
    r.word = 0, r.stop = "\xc3\xa9\xc3\xa9", r.stop_len = 4, r.window = 2;
    CHECK(frnn_stopped(&r, c, 1, 2), "char level: two-byte characters");
    CHECK(!frnn_stopped(&r, c, 1, 1), "char level: one character is not the stop string");
}

static double *rnd(size_t n, unsigned *s, double scale)
{
    double *a = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) a[i] = scale * urand(s);
    return a;
}

static float *to_float(const double *a, size_t n)
{
    float *f = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) f[i] = (float)a[i];
    return f;
}

/* Greedy generation from a one-hot 2-layer LSTM LM, float32, on `threads` threads: the tokens,
 * and (check) a check against single steps and a naive head. */
static int *generate_greedy(const frnn_blas *blas, int threads, int check)
{
    unsigned s = 4242u;
    const int G = 4, GHn = G * GH;
    double *W_ih0 = rnd((size_t)GHn * V, &s, 0.6), *W_ih1 = rnd((size_t)GHn * GH, &s, 0.4);
    double *W_hh[GL] = {rnd((size_t)GHn * GH, &s, 0.4), rnd((size_t)GHn * GH, &s, 0.4)};
    double *b[GL] = {rnd(GHn, &s, 0.3), rnd(GHn, &s, 0.3)};
    double *W_head = rnd((size_t)V * GH, &s, 0.8), *b_head = rnd(V, &s, 0.5);
    float *fW_hh[GL], *fb[GL], *fW_ih1 = to_float(W_ih1, (size_t)GHn * GH), *table = malloc(sizeof(float) * V * GHn);
    for (int v = 0; v < V; v++) for (int j = 0; j < GHn; j++) table[v * GHn + j] = (float)W_ih0[(size_t)j * V + v];
    for (int k = 0; k < GL; k++) fW_hh[k] = to_float(W_hh[k], (size_t)GHn * GH), fb[k] = to_float(b[k], GHn);
    float *fW_head = to_float(W_head, (size_t)V * GH), *fb_head = to_float(b_head, V);
    frnn_dims dims[GL];
    frnn_buffers run[GL];
    float *work[GL];
    memset(run, 0, sizeof run);
    for (int k = 0; k < GL; k++) {
        dims[k] = (frnn_dims){FRNN_LSTM, 1, GB, k == 0 ? GHn : GH, GH, GH, 0};
        work[k] = malloc(sizeof(float) * frnn_work_size(&dims[k]));
        run[k].W_ih = k == 0 ? NULL : fW_ih1;
        run[k].W_hh = fW_hh[k], run[k].b_ih = fb[k], run[k].b_hh = NULL, run[k].tape = work[k];
        run[k].threads = threads;
    }
    float *h = calloc((size_t)GL * GB * GH, sizeof(float)), *c = calloc((size_t)GL * GB * GH, sizeof(float));
    float *x = malloc(sizeof(float) * GB * GHn), *logits = malloc(sizeof(float) * GB * V);
    double z[V], scratch[2 * V];
    int iscratch[2 * V], token[GB] = {2, 5, 7}, n_out[GB] = {0}, done[GB] = {0};
    int *out = calloc((size_t)STEPS * GB, sizeof(int));
    frnn_gen g = {GL, GB, V, dims, run, table, fW_head, fb_head, h, c, x, logits, z, scratch, iscratch,
                  1.0, 0.0, 0, 1, -1, NULL, NULL, 0, NULL, 0, 0, NULL, token, out, n_out, done, STEPS};
    const int feed[2 * GB] = {1, 2, 3, 4, 5, 6};
    frnn_set_threads(threads);
    frnn_generate_f32(blas, &g, feed, 2, NULL);
    const int ran = frnn_generate_f32(blas, &g, NULL, STEPS, NULL);
    frnn_set_threads(0);
    CHECK(ran == STEPS && n_out[0] == STEPS && done[0], "ran %d rounds, %d tokens", ran, n_out[0]);
    if (check) {   /* the same from single steps and a naive head */
        float *h2 = calloc((size_t)GL * GB * GH, sizeof(float)), *c2 = calloc((size_t)GL * GB * GH, sizeof(float));
        int tok[GB] = {0};
        for (int st = 0; st < 2 + STEPS; st++) {
            for (int r = 0; r < GB; r++) {
                const int t = st < 2 ? feed[st * GB + r] : st == 2 ? (r == 0 ? 2 : r == 1 ? 5 : r == 2 ? 7 : 0) : tok[r];
                memcpy(x + r * GHn, table + (size_t)t * GHn, sizeof(float) * GHn);
            }
            const float *in = x;
            for (int k = 0; k < GL; k++) {
                frnn_buffers rb = run[k];
                rb.x = in, rb.h0 = rb.h_T = h2 + (size_t)k * GB * GH, rb.c0 = rb.c_T = c2 + (size_t)k * GB * GH;
                rb.threads = 1;
                frnn_forward_f32(blas, &dims[k], &rb, 0);
                in = h2 + (size_t)k * GB * GH;
            }
            if (st < 2) continue;                       /* the fed tokens */
            for (int r = 0; r < GB; r++) {
                int best = 0;
                float bestv = -INFINITY;
                for (int v = 0; v < V; v++) {
                    float acc = 0;   /* the product as the engine's k-order FMAs may not give: compare tokens */
                    for (int j = 0; j < GH; j++) acc += in[r * GH + j] * fW_head[v * GH + j];
                    acc += fb_head[v];
                    if (acc > bestv) bestv = acc, best = v;
                }
                tok[r] = best;
                CHECK(out[(size_t)(st - 2) * GB + r] == best, "step %d row %d: token %d, single steps %d",
                      st - 2, r, out[(size_t)(st - 2) * GB + r], best);
            }
        }
        free(h2), free(c2);
    }
    for (int k = 0; k < GL; k++) free(W_hh[k]), free(b[k]), free(fW_hh[k]), free(fb[k]), free(work[k]);
    free(W_ih0), free(W_ih1), free(fW_ih1), free(table), free(W_head), free(b_head), free(fW_head), free(fb_head);
    free(h), free(c), free(x), free(logits);
    return out;
}

int frnn_test_generate(const frnn_blas *blas)
{
    fails = 0;
    test_choose();
    test_stop();
    int *one = generate_greedy(blas, 1, 1);
    for (int threads = 2; threads <= 3; threads++) {
        int *r = generate_greedy(blas, threads, 0);
        CHECK(memcmp(one, r, sizeof(int) * STEPS * GB) == 0, "%d threads give other tokens than one", threads);
        free(r);
    }
    free(one);
    return fails;
}
