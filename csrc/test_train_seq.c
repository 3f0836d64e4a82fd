/* test_train_seq.c - checks of frnn_train_seq_step (linked into test_kernels.c's program): the
 * gradients of a tagger's and a classifier's whole step (embedding rows or features, a stack of
 * one or two directions with lengths, per-step or pooled head input, dropout on it, the masked
 * softmax cross-entropy, the unpooling, the scatter) against central differences of its loss in
 * double; the same bits at 1, 2 and 3 threads for float32 steps with dropout, clipping and Adam. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train_seq.h"
#include "test_check.h"

enum { SMAXL = 2, SMAXR = 2 * SMAXL };

typedef struct {
    int f64, cell, L, D, T, B, V, E, H, K, pool, G, In0, N;   /* E: embedding width, or features */
    int ids_in;                                /* 1: ids through an embedding; 0: features */
    size_t n, elem;
    char *params, *grads;
    size_t o_table, o_w[SMAXR][4], o_head_w, o_head_b;
    frnn_dims dims[SMAXR];
    frnn_buffers fw[SMAXR], bw[SMAXR];
    void *acts[SMAXL + 1], *dacts[SMAXL + 1], *masks[SMAXL], *tapes[SMAXR];
    void *scr[SMAXR][4];                       /* D == 2: x, y, dy, dx of a direction */
    void *h_T, *c_T, *dh0, *dc0, *logits, *nll, *s0, *s1, *drop, *feat, *dfeat, *dh_last[2];
    int *ids, *targets, *lengths, *arg;
    frnn_stack fst, bst;
} SModel;

static void sput(const SModel *m, void *a, size_t i, double v)
{
    if (m->f64) ((double *)a)[i] = v;
    else ((float *)a)[i] = (float)v;
}
static void *szeros(const SModel *m, size_t n) { return calloc(n ? n : 1, m->elem); }
static void *sat(const SModel *m, char *base, size_t off) { return base + off * m->elem; }

static void sbuild(SModel *m, int f64, int cell, int L, int D, int T, int B, int ids_in, int pool,
                   int dropout, unsigned s)
{
    memset(m, 0, sizeof *m);
    m->f64 = f64, m->cell = cell, m->L = L, m->D = D, m->T = T, m->B = B, m->V = 7, m->E = 4;
    m->H = 5, m->K = 3, m->pool = pool, m->ids_in = ids_in;
    m->elem = f64 ? sizeof(double) : sizeof(float);
    m->G = frnn_gates(cell);
    const int H = m->H, E = m->E, V = m->V, K = m->K, DH = D * H;
    const size_t GH = (size_t)m->G * H, TB = (size_t)T * B;
    m->In0 = E;
    m->N = pool == FRNN_POOL_STEPS ? T * B : B;
    size_t n = 0;
    m->o_table = n, n += ids_in ? (size_t)V * E : 0;
    for (int i = 0; i < L * D; i++) {
        const size_t in = i / D ? (size_t)DH : (size_t)E;
        m->o_w[i][0] = n, n += GH * in;
        m->o_w[i][1] = n, n += GH * H;
        m->o_w[i][2] = n, n += GH;
        m->o_w[i][3] = n, n += GH;
    }
    m->o_head_w = n, n += (size_t)K * DH;
    m->o_head_b = n, n += K;
    m->n = n;
    m->params = szeros(m, n), m->grads = szeros(m, n);
    for (size_t i = 0; i < n; i++) sput(m, m->params, i, 0.5 * urand(&s));
    m->lengths = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) m->lengths[b] = b == 0 ? T : 1 + (int)((urand(&s) + 1) * 0.5 * T) % T;
    m->ids = malloc(sizeof(int) * TB), m->targets = malloc(sizeof(int) * TB);
    for (size_t r = 0; r < TB; r++) {
        m->ids[r] = (int)((urand(&s) + 1) * 0.5 * V) % V;
        m->targets[r] = (int)((urand(&s) + 1) * 0.5 * K) % K;
    }
    for (int k = 0; k <= L; k++) {
        const size_t w = k ? (size_t)DH : (size_t)E;
        m->acts[k] = szeros(m, TB * w), m->dacts[k] = szeros(m, TB * w);
    }
    if (!ids_in)                                 /* the features, fixed */
        for (size_t i = 0; i < TB * E; i++) sput(m, m->acts[0], i, urand(&s));
    for (int k = 1; k < L && dropout; k++) {     /* inverted dropout with p = 0.5: 0 or 2 */
        m->masks[k] = szeros(m, TB * DH);
        for (size_t i = 0; i < TB * DH; i++) sput(m, m->masks[k], i, urand(&s) > 0 ? 2 : 0);
    }
    if (dropout) {
        m->drop = szeros(m, (size_t)m->N * DH);
        for (size_t i = 0; i < (size_t)m->N * DH; i++) sput(m, m->drop, i, urand(&s) > -0.4 ? 1.25 : 0);
    }
    m->feat = szeros(m, (size_t)m->N * DH), m->dfeat = szeros(m, (size_t)B * DH);
    m->arg = malloc(sizeof(int) * B * DH);
    const size_t S = (size_t)L * D * B * H;
    m->h_T = szeros(m, S), m->c_T = szeros(m, S), m->dh0 = szeros(m, S), m->dc0 = szeros(m, S);
    m->logits = szeros(m, (size_t)m->N * K), m->nll = szeros(m, m->N);
    m->s0 = szeros(m, n), m->s1 = szeros(m, n);
    for (int d = 0; d < D; d++) m->dh_last[d] = szeros(m, (size_t)B * H);
    for (int i = 0; i < L * D; i++) {
        const int k = i / D, d = i % D, In = k ? DH : E;
        m->dims[i] = (frnn_dims){cell, T, B, In, H, H, 0};
        m->tapes[i] = szeros(m, frnn_tape_size(&m->dims[i]));
        frnn_buffers *bf = &m->fw[i];
        bf->W_ih = sat(m, m->params, m->o_w[i][0]), bf->dW_ih = sat(m, m->grads, m->o_w[i][0]);
        bf->W_hh = sat(m, m->params, m->o_w[i][1]), bf->dW_hh = sat(m, m->grads, m->o_w[i][1]);
        bf->b_ih = sat(m, m->params, m->o_w[i][2]), bf->db_ih = sat(m, m->grads, m->o_w[i][2]);
        bf->b_hh = sat(m, m->params, m->o_w[i][3]), bf->db_hh = sat(m, m->grads, m->o_w[i][3]);
        bf->tape = m->tapes[i], bf->lengths = m->lengths;
        const size_t o = (size_t)i * B * H * m->elem;
        bf->h_T = (char *)m->h_T + o, bf->dh0 = (char *)m->dh0 + o;
        if (cell == FRNN_LSTM) bf->c_T = (char *)m->c_T + o, bf->dc0 = (char *)m->dc0 + o;
        if (D == 2) {
            for (int j = 0; j < 4; j++) m->scr[i][j] = szeros(m, TB * (j == 1 || j == 2 ? (size_t)H : (size_t)In));
            bf->x = d ? m->scr[i][0] : m->acts[k];
            bf->y = m->scr[i][1], bf->dy = m->scr[i][2];
            bf->dx = k == 0 && !ids_in ? NULL : m->scr[i][3];
        }
        m->bw[i] = *bf;
        if (pool == FRNN_POOL_LAST && k == L - 1) m->bw[i].dh_T = m->dh_last[d];
    }
    if (!ids_in) free(m->dacts[0]), m->dacts[0] = NULL;      /* no input gradient for features */
    m->fst = (frnn_stack){L, D, m->dims, m->fw, m->acts, NULL, (const void **)m->masks, 0};
    m->bst = (frnn_stack){L, D, m->dims, m->bw, m->acts, m->dacts, (const void **)m->masks, 0};
}

static void srelease(SModel *m)
{
    free(m->params), free(m->grads), free(m->ids), free(m->targets), free(m->lengths), free(m->arg);
    for (int k = 0; k <= m->L; k++) free(m->acts[k]), free(m->dacts[k]);
    for (int k = 0; k < m->L; k++) free(m->masks[k]);
    for (int i = 0; i < m->L * m->D; i++) {
        free(m->tapes[i]);
        for (int j = 0; j < 4; j++) free(m->scr[i][j]);
    }
    free(m->h_T), free(m->c_T), free(m->dh0), free(m->dc0), free(m->logits), free(m->nll);
    free(m->s0), free(m->s1), free(m->drop), free(m->feat), free(m->dfeat), free(m->dh_last[0]), free(m->dh_last[1]);
}

static int sstep(const frnn_blas *blas, SModel *m, const frnn_opt *opt, frnn_step_result *r)
{
    frnn_train_seq tr = {m->T, m->B, m->K, m->pool, m->ids_in ? m->ids : NULL, m->V,
                         m->ids_in ? sat(m, m->params, m->o_table) : NULL,
                         m->ids_in ? sat(m, m->grads, m->o_table) : NULL, m->targets, &m->fst, &m->bst,
                         m->drop, m->feat, m->dfeat, m->arg, {m->dh_last[0], m->dh_last[1]},
                         sat(m, m->params, m->o_head_w), sat(m, m->params, m->o_head_b),
                         sat(m, m->grads, m->o_head_w), sat(m, m->grads, m->o_head_b), m->logits, m->nll,
                         m->n, m->params, m->grads};
    return m->f64 ? frnn_train_seq_step_f64(blas, &tr, opt, r) : frnn_train_seq_step_f32(blas, &tr, opt, r);
}

/* d loss / d params[i] by central differences against the step's gradient, for a few i of
 * every part (embedding, each layer and direction, the head) */
static int scheck_gradients(const frnn_blas *blas, int cell, int L, int D, int ids_in, int pool)
{
    SModel m;
    sbuild(&m, 1, cell, L, D, 5, 3, ids_in, pool, 1, 31u + cell + 7 * pool + D);
    frnn_step_result r;
    int fails = 0;
    if (sstep(blas, &m, NULL, &r) != 0) return 1;
    double *p = (double *)m.params, *g = malloc(sizeof(double) * m.n);
    memcpy(g, m.grads, sizeof(double) * m.n);
    for (size_t i = 0; i < m.n; i += 1 + m.n / 53) {
        const double keep = p[i], h = 1e-5;
        double lp, lm;
        p[i] = keep + h, sstep(blas, &m, NULL, &r), lp = r.loss;
        p[i] = keep - h, sstep(blas, &m, NULL, &r), lm = r.loss;
        p[i] = keep;
        const double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > 1e-6 + 1e-5 * fabs(fd)) {
            fprintf(stderr, "FAIL train seq step gradient: cell %d L %d D %d ids %d pool %d param %zu: "
                    "%g vs differences %g\n", cell, L, D, ids_in, pool, i, g[i], fd);
            fails++;
        }
    }
    free(g);
    srelease(&m);
    return fails;
}

/* float32, dropout, clipping and Adam, two steps: the same bits at 1, 2 and 3 threads */
static int scheck_threads(const frnn_blas *blas, int cell, int D, int ids_in, int pool)
{
    float *first = NULL;
    double loss1 = 0;
    int fails = 0;
    for (int threads = 1; threads <= 3; threads++) {
        SModel m;
        sbuild(&m, 0, cell, 2, D, 9, 40, ids_in, pool, 1, 11u);
        frnn_opt o = {FRNN_OPT_ADAM, 0, 0, 1, 0.01, 0, 0, 0.01, 0, 0.9, 0.999, 1e-8, m.s0, m.s1, 0.5, 0.2, INFINITY};
        frnn_step_result r;
        frnn_set_threads(threads);
        for (int s = 1; s <= 2; s++) {
            o.steps = s;
            if (sstep(blas, &m, &o, &r) != 0) fails++;
        }
        frnn_set_threads(0);
        if (threads == 1) {
            first = malloc(sizeof(float) * 2 * m.n);
            memcpy(first, m.params, sizeof(float) * m.n);
            memcpy(first + m.n, m.grads, sizeof(float) * m.n);
            loss1 = r.loss;
        } else if (memcmp(first, m.params, sizeof(float) * m.n) || memcmp(first + m.n, m.grads, sizeof(float) * m.n)
                   || r.loss != loss1) {
            fprintf(stderr, "FAIL train seq step: cell %d D %d ids %d pool %d: %d threads differ from one\n",
                    cell, D, ids_in, pool, threads);
            fails++;
        }
        srelease(&m);
    }
    free(first);
    return fails;
}

int frnn_test_train_seq(const frnn_blas *blas)
{
    const int cells[] = {FRNN_RNN_TANH, FRNN_GRU, FRNN_LSTM};
    int failures = 0;
    for (int pool = FRNN_POOL_STEPS; pool <= FRNN_POOL_MAX; pool++)
        for (int D = 1; D <= 2; D++)
            for (int ids_in = 0; ids_in <= 1; ids_in++) {
                failures += scheck_gradients(blas, cells[(pool + D + ids_in) % 3], 1 + (pool + ids_in) % 2, D,
                                             ids_in, pool);
                if (D == 2 || pool == FRNN_POOL_STEPS)
                    failures += scheck_threads(blas, FRNN_LSTM, D, ids_in, pool);
            }
    return failures;
}
