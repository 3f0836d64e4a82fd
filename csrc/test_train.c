/* test_train.c - checks of frnn_train_step / frnn_optim_step (linked into test_kernels.c's
 * program): the gradients of the whole step (input rows, stack, head, softmax cross-entropy,
 * scatter) against central differences of its loss in double, one-hot and embedding inputs; the
 * same bits at 1, 2 and 3 threads for a float32 step with dropout, clipping and Adam; the update
 * of SGD with Nesterov momentum equal to its formula written out. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train.h"
#include "test_check.h"

enum { MAXL = 3 };

typedef struct {
    int f64, cell, L, T, B, V, E, H, G, In0;   /* E == 0: one-hot */
    size_t n, elem;
    char *params, *grads;                      /* flat, as a model's */
    size_t o_table, o_w[MAXL][4], o_head_w, o_head_b;
    frnn_dims dims[MAXL];
    frnn_buffers run[MAXL];
    void *acts[MAXL + 1], *dacts[MAXL + 1], *masks[MAXL], *tapes[MAXL];
    void *h_T, *c_T, *dh0, *dc0, *logits, *nll, *s0, *s1;
    int *ids, *targets;
    frnn_stack st;
} Model;

static void put(const Model *m, void *a, size_t i, double v)
{
    if (m->f64) ((double *)a)[i] = v;
    else ((float *)a)[i] = (float)v;
}
static void *zeros(const Model *m, size_t n) { return calloc(n ? n : 1, m->elem); }
static void *at(const Model *m, char *base, size_t off) { return base + off * m->elem; }

static void build(Model *m, int f64, int cell, int L, int T, int B, int V, int E, int H, unsigned s)
{
    memset(m, 0, sizeof *m);
    m->f64 = f64, m->cell = cell, m->L = L, m->T = T, m->B = B, m->V = V, m->E = E, m->H = H;
    m->elem = f64 ? sizeof(double) : sizeof(float);
    m->G = frnn_gates(cell);
    const size_t GH = (size_t)m->G * H, TB = (size_t)T * B;
    m->In0 = E ? E : (int)GH;
    size_t n = 0;
    m->o_table = n, n += E ? (size_t)V * E : 0;
    for (int k = 0; k < L; k++) {
        const size_t in = k ? (size_t)H : E ? (size_t)E : (size_t)V;
        m->o_w[k][0] = n, n += GH * in;
        m->o_w[k][1] = n, n += GH * H;
        m->o_w[k][2] = n, n += GH;
        m->o_w[k][3] = n, n += GH;
    }
    m->o_head_w = n, n += (size_t)V * H;
    m->o_head_b = n, n += V;
    m->n = n;
    m->params = zeros(m, n), m->grads = zeros(m, n);
    for (size_t i = 0; i < n; i++) put(m, m->params, i, 0.5 * urand(&s));
    m->ids = malloc(sizeof(int) * TB), m->targets = malloc(sizeof(int) * TB);
    for (size_t r = 0; r < TB; r++) {
        m->ids[r] = (int)((urand(&s) + 1) * 0.5 * V) % V;
        m->targets[r] = (int)((urand(&s) + 1) * 0.5 * V) % V;
    }
    for (int k = 0; k <= L; k++) {
        const size_t w = k ? (size_t)H : (size_t)m->In0;
        m->acts[k] = zeros(m, TB * w), m->dacts[k] = zeros(m, TB * w);
    }
    for (int k = 1; k < L; k++) {              /* inverted dropout with p = 0.5: 0 or 2 */
        m->masks[k] = zeros(m, TB * H);
        for (size_t i = 0; i < TB * H; i++) put(m, m->masks[k], i, urand(&s) > 0 ? 2 : 0);
    }
    const size_t S = (size_t)L * B * H;
    m->h_T = zeros(m, S), m->c_T = zeros(m, S), m->dh0 = zeros(m, S), m->dc0 = zeros(m, S);
    m->logits = zeros(m, TB * V), m->nll = zeros(m, TB);
    m->s0 = zeros(m, n), m->s1 = zeros(m, n);
    for (int k = 0; k < L; k++) {
        m->dims[k] = (frnn_dims){cell, T, B, k ? H : m->In0, H, H, 0};
        m->tapes[k] = zeros(m, frnn_tape_size(&m->dims[k]));
        frnn_buffers *bf = &m->run[k];
        bf->W_ih = k || E ? at(m, m->params, m->o_w[k][0]) : NULL;    /* one-hot: projected */
        bf->dW_ih = k || E ? at(m, m->grads, m->o_w[k][0]) : NULL;
        bf->W_hh = at(m, m->params, m->o_w[k][1]), bf->dW_hh = at(m, m->grads, m->o_w[k][1]);
        bf->b_ih = at(m, m->params, m->o_w[k][2]), bf->db_ih = at(m, m->grads, m->o_w[k][2]);
        bf->b_hh = at(m, m->params, m->o_w[k][3]), bf->db_hh = at(m, m->grads, m->o_w[k][3]);
        bf->tape = m->tapes[k];
        const size_t o = (size_t)k * B * H * m->elem;
        bf->h_T = (char *)m->h_T + o, bf->dh0 = (char *)m->dh0 + o;
        if (cell == FRNN_LSTM) bf->c_T = (char *)m->c_T + o, bf->dc0 = (char *)m->dc0 + o;
    }
    m->st = (frnn_stack){L, 1, m->dims, m->run, m->acts, m->dacts, (const void **)m->masks, 0};
}

static void release(Model *m)
{
    free(m->params), free(m->grads), free(m->ids), free(m->targets);
    for (int k = 0; k <= m->L; k++) free(m->acts[k]), free(m->dacts[k]);
    for (int k = 0; k < m->L; k++) free(m->masks[k]), free(m->tapes[k]);
    free(m->h_T), free(m->c_T), free(m->dh0), free(m->dc0), free(m->logits), free(m->nll);
    free(m->s0), free(m->s1);
}

static int step(const frnn_blas *blas, Model *m, const frnn_opt *opt, frnn_step_result *r)
{
    frnn_train tr = {m->T, m->B, m->V, m->ids, m->targets,
                     m->E ? at(m, m->params, m->o_table) : NULL, m->E ? at(m, m->grads, m->o_table) : NULL,
                     m->E ? NULL : at(m, m->params, m->o_w[0][0]), m->E ? NULL : at(m, m->grads, m->o_w[0][0]),
                     &m->st, &m->st, at(m, m->params, m->o_head_w), at(m, m->params, m->o_head_b),
                     at(m, m->grads, m->o_head_w), at(m, m->grads, m->o_head_b), m->logits, m->nll,
                     m->n, m->params, m->grads};
    return m->f64 ? frnn_train_step_f64(blas, &tr, opt, r) : frnn_train_step_f32(blas, &tr, opt, r);
}

/* d loss / d params[i] by central differences against the step's gradient, for a few i of
 * every part (embedding or one-hot columns, each layer, the head) */
static int check_gradients(const frnn_blas *blas, int cell, int E)
{
    Model m;
    build(&m, 1, cell, 2, 4, 3, 7, E, 5, 99u + cell + E);
    frnn_step_result r;
    int fails = 0;
    if (step(blas, &m, NULL, &r) != 0) return 1;
    double *p = (double *)m.params, *g = malloc(sizeof(double) * m.n);
    memcpy(g, m.grads, sizeof(double) * m.n);
    for (size_t i = 0; i < m.n; i += 1 + m.n / 61) {
        const double keep = p[i], h = 1e-5;
        double lp, lm;
        p[i] = keep + h, step(blas, &m, NULL, &r), lp = r.loss;
        p[i] = keep - h, step(blas, &m, NULL, &r), lm = r.loss;
        p[i] = keep;
        const double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > 1e-6 + 1e-5 * fabs(fd)) {
            fprintf(stderr, "FAIL train step gradient: cell %d E %d param %zu: %g vs differences %g\n",
                    cell, E, i, g[i], fd);
            fails++;
        }
    }
    free(g);
    release(&m);
    return fails;
}

/* float32, dropout, clipping and Adam, two steps: the same bits at 1, 2 and 3 threads */
static int check_threads(const frnn_blas *blas, int cell, int E)
{
    float *first = NULL;
    double loss1 = 0;
    int fails = 0;
    for (int threads = 1; threads <= 3; threads++) {
        Model m;
        build(&m, 0, cell, 2, 6, 24, 29, E, 37, 7u);
        frnn_opt o = {FRNN_OPT_ADAM, 0, 0, 1, 0.01, 0, 0, 0.01, 0, 0.9, 0.999, 1e-8, m.s0, m.s1, 0.5, 0.2, INFINITY};
        frnn_step_result r;
        frnn_set_threads(threads);
        for (int s = 1; s <= 2; s++) {
            o.steps = s;
            if (step(blas, &m, &o, &r) != 0) fails++;
        }
        frnn_set_threads(0);
        if (threads == 1) {
            first = malloc(sizeof(float) * 2 * m.n);
            memcpy(first, m.params, sizeof(float) * m.n);
            memcpy(first + m.n, m.grads, sizeof(float) * m.n);
            loss1 = r.loss;
        } else if (memcmp(first, m.params, sizeof(float) * m.n) || memcmp(first + m.n, m.grads, sizeof(float) * m.n)
                   || r.loss != loss1) {
            fprintf(stderr, "FAIL train step: cell %d E %d: %d threads differ from one\n", cell, E, threads);
            fails++;
        }
        release(&m);
    }
    free(first);
    return fails;
}

/* SGD (momentum 0.9, Nesterov, weight decay 0.01, value clip 0.5), two steps at 1 and at 3
 * threads: the same bits, and optim.py's operations written out here */
static int check_sgd(void)
{
    const size_t n = 70000;
    float *p[2], *buf[2], *g = malloc(sizeof(float) * n), *p0 = malloc(sizeof(float) * n);
    float *g0 = malloc(sizeof(float) * n);
    unsigned s = 5u;
    int fails = 0;
    for (size_t i = 0; i < n; i++) p0[i] = (float)urand(&s), g0[i] = (float)urand(&s);
    for (int run = 0; run < 2; run++) {
        p[run] = malloc(sizeof(float) * n), buf[run] = calloc(n, sizeof(float));
        memcpy(p[run], p0, sizeof(float) * n);
        frnn_set_threads(run ? 3 : 1);
        for (long st = 1; st <= 2; st++) {
            memcpy(g, g0, sizeof(float) * n);
            frnn_opt o = {FRNN_OPT_SGD, 0, 1, st, 0.1, 0.9, 0, 0.01, 0, 0, 0, 0, buf[run], NULL, 0, 0.5, INFINITY};
            frnn_step_result r;
            if (frnn_optim_step_f32(&o, n, p[run], g, &r) != 0) fails++;
        }
        frnn_set_threads(0);
    }
    if (memcmp(p[0], p[1], sizeof(float) * n) || memcmp(buf[0], buf[1], sizeof(float) * n)) {
        fprintf(stderr, "FAIL optim SGD: 3 threads differ from one\n");
        fails++;
    }
    for (size_t i = 0; i < n; i++) {
        const float gi = g0[i] < -0.5f ? -0.5f : g0[i] > 0.5f ? 0.5f : g0[i];
        float q = p0[i], b = 0;
        for (int st = 1; st <= 2; st++) {
            float d = q * 0.01f;                       /* d = p * wd; d += g */
            d = d + gi;
            if (st == 1) b = d;
            else {
                const float t = 1.0f * d;              /* buf *= m; buf += (1 - dampening) * d */
                b = b * 0.9f;
                b = b + t;
            }
            const float t = 0.9f * b;                  /* d += m * buf */
            d = d + t;
            const float u = 0.1f * d;                  /* p -= lr * d */
            q = q - u;
        }
        if (q != p[0][i]) {
            fprintf(stderr, "FAIL optim SGD: element %zu: %.9g vs the formula's %.9g\n", i, p[0][i], q);
            fails++;
            break;
        }
    }
    g[3] = NAN;
    frnn_opt o = {FRNN_OPT_SGD, 0, 0, 1, 0.1, 0, 0, 0, 0, 0, 0, 0, buf[0], NULL, 0, 0, INFINITY};
    frnn_step_result r;
    if (frnn_optim_step_f32(&o, n, p[0], g, &r) != 2) {
        fprintf(stderr, "FAIL optim: a NaN gradient was not refused\n");
        fails++;
    }
    for (int run = 0; run < 2; run++) free(p[run]), free(buf[run]);
    free(g), free(p0), free(g0);
    return fails;
}

int frnn_test_train(const frnn_blas *blas)
{
    const int cells[] = {FRNN_RNN_TANH, FRNN_GRU, FRNN_LSTM, FRNN_MGU};
    int failures = 0;
    for (int ci = 0; ci < 4; ci++)
        for (int E = 0; E <= 4; E += 4) {
            failures += check_gradients(blas, cells[ci], E);
            if (cells[ci] == FRNN_LSTM || cells[ci] == FRNN_GRU) failures += check_threads(blas, cells[ci], E);
        }
    failures += check_sgd();
    return failures;
}
