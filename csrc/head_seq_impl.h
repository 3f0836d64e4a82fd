/* head_seq_impl.h - the typed half of head_seq.c (included twice: REAL float / double). */

#include "head_common_impl.h"

typedef struct {
    const frnn_train_seq *tr;
    int phase;
    int width;               /* of the stack's input rows: E or F */
    int DP;                  /* of the head's input rows: D * P */
    size_t N;                /* the head's rows: T * B or B */
    REAL total;              /* the loss's weight: the valid steps, or B */
    const int *len;          /* (B) or NULL: all T */
} F(seq_run);

static int F(seq_len)(const F(seq_run) *sr, int b)
{
    return sr->len ? sr->len[b] : sr->tr->T;
}

/* logits row r (+ bias) -> its -log p[target] times its weight and, in place, (softmax -
 * onehot) * weight / total: losses.py's softmax_cross_entropy with a 0/1 mask, operation by
 * operation (a padded step of a tagger has weight 0). */
static void F(seq_softmax_row)(const F(seq_run) *sr, size_t r)
{
    const frnn_train_seq *tr = sr->tr;
    const int K = tr->K, t = tr->targets[r];
    const REAL w = tr->pool != FRNN_POOL_STEPS || (int)(r / tr->B) < F(seq_len)(sr, (int)(r % tr->B));
    const REAL *bias = tr->b_head;
    REAL *l = (REAL *)tr->logits + r * K;
    if (bias) for (int v = 0; v < K; v++) l[v] += bias[v];    /* Linear: y += bias */
    REAL mx = l[0];
    for (int v = 1; v < K; v++) mx = l[v] > mx || l[v] != l[v] ? l[v] : mx;
    for (int v = 0; v < K; v++) l[v] -= mx;                   /* z = logits - max */
    const REAL zt = l[t];
    for (int v = 0; v < K; v++) l[v] = EXP(l[v]);
    const REAL sum = F(pairwise_sum)(l, K);
    ((REAL *)tr->nll)[r] = (LOG(sum) - zt) * w;               /* nll * weight */
    const REAL scale = w / sr->total;                         /* weight / total */
    for (int v = 0; v < K; v++) l[v] /= sum;                  /* softmax */
    l[t] -= 1;                                                /* minus one-hot */
    for (int v = 0; v < K; v++) l[v] *= scale;
}

/* classifier.py's _pool for sequence b, times the dropout mask: the head's input row b */
static void F(seq_pool_row)(const F(seq_run) *sr, int b)
{
    const frnn_train_seq *tr = sr->tr;
    const frnn_stack *st = tr->fwd;
    const int DP = sr->DP, B = tr->B, T = tr->T, n = F(seq_len)(sr, b);
    const REAL *out = st->acts[st->L];
    REAL *f = (REAL *)tr->feat + (size_t)b * DP;
    if (tr->pool == FRNN_POOL_LAST) {            /* [h_n of each direction of the last layer] */
        const int D = st->D, P = DP / D;
        for (int d = 0; d < D; d++)
            memcpy(f + d * P, (const REAL *)st->run[(st->L - 1) * D + d].h_T + (size_t)b * P,
                   sizeof(REAL) * P);
    } else if (tr->pool == FRNN_POOL_MEAN) {     /* out.sum(axis=0) / lengths: steps in order */
        for (int j = 0; j < DP; j++) f[j] = out[(size_t)b * DP + j];
        for (int t = 1; t < T; t++)
            for (int j = 0; j < DP; j++) f[j] += out[((size_t)t * B + b) * DP + j];
        const REAL len = (REAL)n;
        for (int j = 0; j < DP; j++) f[j] /= len;
    } else {                                     /* max over the valid steps: numpy's argmax */
        int *arg = tr->arg + (size_t)b * DP;
        for (int j = 0; j < DP; j++) {
            REAL mx = out[(size_t)b * DP + j];
            int at = 0;
            if (mx == mx)
                for (int t = 1; t < n; t++) {
                    const REAL v = out[((size_t)t * B + b) * DP + j];
                    if (!(v <= mx)) {
                        mx = v, at = t;
                        if (mx != mx) break;
                    }
                }
            arg[j] = at;
            f[j] = mx;
        }
    }
    if (tr->drop) {                              /* Dropout: x * mask */
        const REAL *m = (const REAL *)tr->drop + (size_t)b * DP;
        for (int j = 0; j < DP; j++) f[j] *= m[j];
    }
}

/* classifier.py's _unpool for sequence b (after the dropout's backward): its rows of the
 * gradient at the stack's output, and for "last" the gradient at the last layer's h_n */
static void F(seq_unpool_row)(const F(seq_run) *sr, int b)
{
    const frnn_train_seq *tr = sr->tr;
    const frnn_stack *st = tr->bwd;
    const int DP = sr->DP, B = tr->B, T = tr->T;
    REAL *dout = st->grads[st->L];
    REAL *df = (REAL *)tr->dfeat + (size_t)b * DP;
    if (tr->drop) {
        const REAL *m = (const REAL *)tr->drop + (size_t)b * DP;
        for (int j = 0; j < DP; j++) df[j] *= m[j];
    }
    if (tr->pool == FRNN_POOL_MEAN) {            /* (valid / lengths) * dpooled */
        const int n = F(seq_len)(sr, b);
        const REAL inv = (REAL)1 / (REAL)n;
        for (int t = 0; t < T; t++) {
            const REAL scale = t < n ? inv : 0;
            REAL *row = dout + ((size_t)t * B + b) * DP;
            for (int j = 0; j < DP; j++) row[j] = scale * df[j];
        }
        return;
    }
    for (int t = 0; t < T; t++) memset(dout + ((size_t)t * B + b) * DP, 0, sizeof(REAL) * DP);
    if (tr->pool == FRNN_POOL_LAST) {
        const int D = st->D, P = DP / D;
        for (int d = 0; d < D; d++)
            memcpy((REAL *)tr->dh_last[d] + (size_t)b * P, df + d * P, sizeof(REAL) * P);
    } else {
        const int *arg = tr->arg + (size_t)b * DP;
        for (int j = 0; j < DP; j++) dout[((size_t)arg[j] * B + b) * DP + j] = df[j];
    }
}

static void F(seq_task)(void *arg, const frnn_par *par)
{
    const F(seq_run) *sr = arg;
    const frnn_train_seq *tr = sr->tr;
    const size_t N = sr->N, TB = (size_t)tr->T * tr->B;
    const int W = sr->width, DP = sr->DP;
    const size_t r0 = N * par->tid / par->nth, r1 = N * (par->tid + 1) / par->nth;
    int lo, hi;
    switch (sr->phase) {
    case SEQ_ZERO: {                              /* model.zero_grad() */
        const size_t i0 = tr->n * par->tid / par->nth, i1 = tr->n * (par->tid + 1) / par->nth;
        memset((REAL *)tr->grads + i0, 0, sizeof(REAL) * (i1 - i0));
        break;
    }
    case SEQ_GATHER:                              /* acts[0] = table[ids] */
        F(gather_rows_by_ids)(par, tr->fwd->acts[0], tr->table, tr->ids, TB, W);
        break;
    case SEQ_FEAT:
        if (tr->pool == FRNN_POOL_STEPS) {        /* out * mask */
            const REAL *out = tr->fwd->acts[tr->fwd->L], *m = tr->drop;
            REAL *f = tr->feat;
            for (size_t i = r0 * DP; i < r1 * DP; i++) f[i] = out[i] * m[i];
        } else {
            for (size_t b = r0; b < r1; b++) F(seq_pool_row)(sr, (int)b);
        }
        break;
    case SEQ_SOFTMAX:
        for (size_t r = r0; r < r1; r++) F(seq_softmax_row)(sr, r);
        break;
    case SEQ_BIAS_GRAD: {                         /* db += dlogits.sum(0): rows in order */
        frnn_split(tr->K, 16, par->tid, par->nth, &lo, &hi);
        REAL *db = tr->db_head;
        const REAL *g = tr->logits;
        for (int v = lo; v < hi; v++) {
            REAL s = g[v];
            for (size_t r = 1; r < N; r++) s += g[r * tr->K + v];
            db[v] += s;
        }
        break;
    }
    case SEQ_UNFEAT:
        if (tr->pool == FRNN_POOL_STEPS) {        /* Dropout's backward: dy * mask */
            REAL *g = tr->bwd->grads[tr->bwd->L];
            const REAL *m = tr->drop;
            for (size_t i = r0 * DP; i < r1 * DP; i++) g[i] *= m[i];
        } else {
            for (size_t b = r0; b < r1; b++) F(seq_unpool_row)(sr, (int)b);
        }
        break;
    case SEQ_SCATTER: {                           /* the input gradient into its rows */
        frnn_split(W, 16, par->tid, par->nth, &lo, &hi);
        F(add_rows_by_ids)(tr->table_grad, tr->ids, tr->bwd->grads[0], TB, W, lo, hi);
        break;
    }
    }
}

static void F(seq_phase)(F(seq_run) *sr, int phase, size_t work)
{
    sr->phase = phase;
    frnn_team_run(head_members(work), F(seq_task), sr);
}

int F(frnn_train_seq_step)(const frnn_blas *blas, const frnn_train_seq *tr, const frnn_opt *opt,
                           frnn_step_result *res)
{
    const frnn_stack *st = tr->fwd;
    const int L = st->L, D = st->D, T = tr->T, B = tr->B, K = tr->K;
    const int steps = tr->pool == FRNN_POOL_STEPS;
    F(seq_run) sr = {tr, 0, st->dims[0].In, D * st->dims[(L - 1) * D].P, steps ? (size_t)T * B : (size_t)B,
                     0, st->run[0].lengths};
    const size_t N = sr.N, TB = (size_t)T * B;
    const int DP = sr.DP;
    memset(res, 0, sizeof *res);
    if (steps) {                                  /* the mask's sum: the valid steps */
        size_t valid = 0;
        for (int b = 0; b < B; b++) valid += (size_t)F(seq_len)(&sr, b);
        sr.total = (REAL)valid;
    } else {
        sr.total = (REAL)B;
    }
    F(seq_phase)(&sr, SEQ_ZERO, tr->n);
    if (tr->ids) F(seq_phase)(&sr, SEQ_GATHER, TB * sr.width);
    int rc = F(frnn_stack_forward)(blas, st, 1);
    if (rc != 0) return res->status = -1;
    /* the head's input: the stack's output itself, or pooled / dropped out into feat */
    const REAL *x = steps && !tr->drop ? (const REAL *)st->acts[L] : (const REAL *)tr->feat;
    if (x == tr->feat) F(seq_phase)(&sr, SEQ_FEAT, steps ? N * DP : TB * DP);
    REAL *logits = tr->logits;
    const int bf16 = tr->head_bf16;
    if (F(head_gemm)(blas, bf16, 0, 1, (int)N, K, DP, x, DP, tr->W_head, DP, 0, logits, K) != 0)
        return res->status = -1;
    F(seq_phase)(&sr, SEQ_SOFTMAX, N * K * 8);
    res->loss = (double)(F(pairwise_sum)(tr->nll, N) / sr.total);
    /* the head's backward: dW += dlogits^T x, db += sum of rows, dx = dlogits W */
    rc = F(head_gemm)(blas, bf16, 1, 0, K, DP, (int)N, logits, K, x, DP, 1, tr->dW_head, DP);
    if (tr->db_head) F(seq_phase)(&sr, SEQ_BIAS_GRAD, N * K);
    REAL *dx = steps ? (REAL *)tr->bwd->grads[L] : (REAL *)tr->dfeat;
    if (rc == 0) rc = F(head_gemm)(blas, bf16, 0, 0, (int)N, DP, K, logits, K, tr->W_head, DP, 0, dx, DP);
    if (rc != 0) return res->status = -1;
    if (!steps || tr->drop) F(seq_phase)(&sr, SEQ_UNFEAT, steps ? N * DP : TB * DP);
    rc = F(frnn_stack_backward)(blas, tr->bwd);
    if (rc != 0) return res->status = -1;
    if (tr->ids) F(seq_phase)(&sr, SEQ_SCATTER, TB * sr.width);
    if (!opt) return res->status = 0;
    if (!(res->loss <= opt->max_loss)) return res->status = 1;      /* NaN too */
    const double loss = res->loss;
    F(frnn_optim_step)(opt, tr->n, tr->params, tr->grads, res);
    res->loss = loss;
    return res->status;
}
