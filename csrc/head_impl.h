/* head_impl.h - the typed half of head.c (included twice: REAL float / double). */

#include "head_common_impl.h"
#include "acts_on_tapes.h"

typedef struct {
    const frnn_train *tr;
    int phase;
    int width;               /* of the stack's input rows: E or G*H */
    REAL *scratch;           /* one-hot: (V, width) for W_ih0 / dW_ih0 transposed, or NULL */
} F(head_run);

/* The largest of l[0..V), in eight running maxima instead of one compare chain, so that it
 * vectorises. A NaN may be skipped here (NumPy's max would return it), but the row's results are
 * NaN all the same: exp(NaN) is NaN, so is the row's sum, every softmax value and -log p. Which
 * of two equal values (+0 / -0) is kept may differ too, and changes none of the results
 * (l - max, exp and -log p are the same for either zero). */
static inline REAL F(row_max)(const REAL *l, int V)
{
    REAL m[8];
    int v = 0;
    for (int j = 0; j < 8; j++) m[j] = l[0];
    for (; v + 8 <= V; v += 8)
        for (int j = 0; j < 8; j++) m[j] = l[v + j] > m[j] ? l[v + j] : m[j];
    for (; v < V; v++) m[0] = l[v] > m[0] ? l[v] : m[0];
    REAL mx = m[0];
    for (int j = 1; j < 8; j++) mx = m[j] > mx ? m[j] : mx;
    return mx;
}

/* logits row r (+ bias) -> its -log p[target] and, in place, (softmax - onehot) / N: losses.py's
 * softmax_cross_entropy without a mask, operation by operation (each element sees the same
 * operations in the same order as there; the float32 copy is a wide-vector clone). */
ROW_CLONES static void F(softmax_row)(const frnn_train *tr, size_t r)
{
    const int V = tr->V, t = tr->targets[r];
    const REAL *bias = tr->b_head;
    REAL *l = (REAL *)tr->logits + r * V;
    if (bias) for (int v = 0; v < V; v++) l[v] += bias[v];    /* Linear: y += bias */
    const REAL mx = F(row_max)(l, V);
    for (int v = 0; v < V; v++) l[v] -= mx;                   /* z = logits - max */
    const REAL zt = l[t];
    EXP_ROW(l, V);
    const REAL sum = F(pairwise_sum)(l, V);
    ((REAL *)tr->nll)[r] = LOG(sum) - zt;                     /* log(sums) - z_target */
    const REAL inv = (REAL)1 / (REAL)((size_t)tr->T * tr->B); /* weight / total */
    for (int v = 0; v < V; v++) {                             /* softmax, minus one-hot, times inv */
        const REAL p = l[v] / sum;
        l[v] = (v == t ? p - 1 : p) * inv;
    }
}

/* One-hot input, layer 0's W_ih (W, V) seen through a transposed copy t (V, W) of its columns
 * [lo, hi): token v's row is then contiguous. Copying both ways moves values without arithmetic.
 * float32: the engine's transpose (8 x 8 register tiles on AVX2; the element loop strided t by
 * W floats per store, ~1 % of a one-thread 1x256 LM step for the three copies). */
static void F(transpose_cols)(const REAL *w, int V, REAL *t, int W, int lo, int hi)
{
#if FRNN_F32
    if (hi > lo) frnn_transpose(hi - lo, V, w + (size_t)lo * V, (size_t)V, t + lo, (size_t)W);
#else
    for (int j = lo; j < hi; j++)
        for (int v = 0; v < V; v++) t[(size_t)v * W + j] = w[(size_t)j * V + v];
#endif
}

static void F(untranspose_cols)(REAL *w, int V, const REAL *t, int W, int lo, int hi)
{
#if FRNN_F32
    if (hi > lo) frnn_transpose(V, hi - lo, t + lo, (size_t)W, w + (size_t)lo * V, (size_t)V);
#else
    for (int j = lo; j < hi; j++)
        for (int v = 0; v < V; v++) w[(size_t)j * V + v] = t[(size_t)v * W + j];
#endif
}

/* Member tid's columns [lo, hi) of rows of W values starting at base: blocks of one cache line
 * counted from base's own alignment (NumPy's buffers are 16-byte aligned), so two members never
 * write one line of a row whose stride is a multiple of 64 bytes (the scatter adds into the same
 * 65 rows N times: a shared line would move between the cores on every row). */
static void F(split_lines)(const REAL *base, int W, const frnn_par *par, int *lo, int *hi)
{
    const int unit = 64 / (int)sizeof(REAL), skew = (int)((uintptr_t)base / sizeof(REAL) % (unsigned)unit);
    frnn_split(W + skew, unit, par->tid, par->nth, lo, hi);
    *lo = *lo > skew ? *lo - skew : 0;
    *hi = *hi > skew ? *hi - skew : 0;
}

/* The passes. Each member owns whole rows, or whole (16-aligned) column blocks of a row-major
 * matrix that it walks row by row, so no member waits for another inside a pass and no pass
 * strides down the columns of a matrix. */
static void F(head_task)(void *arg, const frnn_par *par)
{
    const F(head_run) *hr = arg;
    const frnn_train *tr = hr->tr;
    const size_t N = (size_t)tr->T * tr->B;
    const int W = hr->width, V = tr->V;
    int lo, hi;
    switch (hr->phase) {
    case HEAD_ZERO_GATHER: {                      /* model.zero_grad(); acts[0] = table[ids] or W_ih0[:, ids].T */
        const size_t i0 = tr->n * par->tid / par->nth, i1 = tr->n * (par->tid + 1) / par->nth;
        memset((REAL *)tr->grads + i0, 0, sizeof(REAL) * (i1 - i0));
        REAL *x = tr->fwd->acts[0];
        if (tr->table) {
            F(gather_rows_by_ids)(par, x, tr->table, tr->ids, N, W);
            break;
        }
        F(split_lines)(hr->scratch ? hr->scratch : x, W, par, &lo, &hi);
        if (hr->scratch)      /* W_ih0's columns as rows: the stack reads token rows there itself
                               * (frnn_stack.rows_ids, straight into layer 0's gate rows) */
            F(transpose_cols)(tr->W_ih0, V, hr->scratch, W, lo, hi);
        else
            for (size_t r = 0; r < N; r++) {
                const REAL *col = (const REAL *)tr->W_ih0 + tr->ids[r];
                for (int j = lo; j < hi; j++) x[r * W + j] = col[(size_t)j * V];
            }
        break;
    }
    case HEAD_SOFTMAX: {
        const size_t r0 = N * par->tid / par->nth, r1 = N * (par->tid + 1) / par->nth;
        for (size_t r = r0; r < r1; r++) F(softmax_row)(tr, r);
        break;
    }
    case HEAD_BIAS_GRAD: {                        /* db += dlogits.sum(0): rows in order */
        frnn_split(V, 16, par->tid, par->nth, &lo, &hi);
        REAL *db = tr->db_head, *s = hi > lo ? malloc(sizeof(REAL) * (hi - lo)) : NULL;
        const REAL *g = tr->logits;
        if (s) {                                  /* row by row into one sum per column */
            memcpy(s, g + lo, sizeof(REAL) * (hi - lo));
            for (size_t r = 1; r < N; r++)
                for (int v = lo; v < hi; v++) s[v - lo] += g[r * V + v];
            for (int v = lo; v < hi; v++) db[v] += s[v - lo];
            free(s);
            break;
        }
        for (int v = lo; v < hi; v++) {           /* no memory: column by column, the same sums */
            REAL sv = g[v];
            for (size_t r = 1; r < N; r++) sv += g[r * V + v];
            db[v] += sv;
        }
        break;
    }
    case HEAD_SCATTER: {                          /* the input gradient into its rows/columns */
        const REAL *dx = tr->bwd->grads[0];
        REAL *dst = tr->table ? (REAL *)tr->table_grad : hr->scratch;
        F(split_lines)(dst ? dst : dx, W, par, &lo, &hi);
        if (!tr->table && dst) F(transpose_cols)(tr->dW_ih0, V, dst, W, lo, hi);
        if (dst) {                                /* rows in order into contiguous rows */
            F(add_rows_by_ids)(dst, tr->ids, dx, N, W, lo, hi);
            if (!tr->table) F(untranspose_cols)(tr->dW_ih0, V, dst, W, lo, hi);
            break;
        }
        for (size_t r = 0; r < N; r++) {         /* one-hot without scratch: down the columns */
            const REAL *row = dx + r * W;
            REAL *d = (REAL *)tr->dW_ih0 + tr->ids[r];
            for (int j = lo; j < hi; j++) d[(size_t)j * V] += row[j];
        }
        break;
    }
    case HEAD_SCATTER_IN:                         /* one-hot with scratch: dW_ih0's columns as rows, */
    case HEAD_SCATTER_OUT:                        /* the stack adds layer 0's dG rows in (rows_ids), back */
        F(split_lines)(hr->scratch, W, par, &lo, &hi);
        if (hr->phase == HEAD_SCATTER_IN) F(transpose_cols)(tr->dW_ih0, V, hr->scratch, W, lo, hi);
        else F(untranspose_cols)(tr->dW_ih0, V, hr->scratch, W, lo, hi);
        break;
    }
}

static void F(head_phase)(F(head_run) *hr, int phase, size_t work)
{
    hr->phase = phase;
    frnn_team_run(head_members(work), F(head_task), hr);
}

int F(frnn_train_step)(const frnn_blas *blas, const frnn_train *tr, const frnn_opt *opt, frnn_step_result *res)
{
    const frnn_stack *st = tr->fwd;
    const int L = st->L, T = tr->T, B = tr->B, V = tr->V, P = st->dims[L - 1].P;
    const size_t N = (size_t)T * B;
    F(head_run) hr = {tr, 0, st->dims[0].In, NULL};
    /* the logits' scratch is free before the head's forward and after its backward: a one-hot
     * input's W_ih0 / dW_ih0 transposed fit in it when N >= width */
    if (!tr->table && N >= (size_t)hr.width) hr.scratch = tr->logits;
    memset(res, 0, sizeof *res);
    F(head_phase)(&hr, HEAD_ZERO_GATHER, tr->n + N * hr.width);
    FRNN_HEAD_MARK(0);
    FRNN_HEAD_MARK(1);
    void *saved_acts[FRNN_MAX_ACTS];    /* layer outputs read from the tapes (acts_on_tapes.h) */
    const int on_tapes = L < FRNN_MAX_ACTS;
    if (on_tapes) F(acts_on_tapes)(tr->fwd, tr->bwd, saved_acts);
    /* copies share the acts array; with scratch the stack reads (adds into) its token rows */
    frnn_stack fw = *st, bw = *tr->bwd;
    if (hr.scratch) fw.rows_ids = bw.rows_ids = tr->ids, fw.rows_table = bw.rows_table = hr.scratch;
    int rc = F(frnn_stack_forward)(blas, &fw, 1);
    if (rc != 0) {
        if (on_tapes) F(acts_restore)(tr->fwd, tr->bwd, saved_acts);
        return res->status = -1;
    }
    FRNN_HEAD_MARK(2);
    /* the head: logits = y W^T (+ b in the softmax pass), the loss and dlogits in place */
    REAL *logits = tr->logits;
    const REAL *y = st->acts[L];
    const int bf16 = tr->head_bf16;
    if (F(head_gemm)(blas, bf16, 0, 1, (int)N, V, P, y, P, tr->W_head, P, 0, logits, V) != 0) {
        if (on_tapes) F(acts_restore)(tr->fwd, tr->bwd, saved_acts);
        return res->status = -1;
    }
    FRNN_HEAD_MARK(3);
    F(head_phase)(&hr, HEAD_SOFTMAX, N * V * 8);
    res->loss = (double)(F(pairwise_sum)(tr->nll, N) / (REAL)N);
    FRNN_HEAD_MARK(4);
    /* the head's backward: dW += dlogits^T y, db += sum of rows, dy = dlogits W */
    rc = F(head_gemm)(blas, bf16, 1, 0, V, P, (int)N, logits, V, y, P, 1, tr->dW_head, P);
    FRNN_HEAD_MARK(5);
    if (tr->db_head) F(head_phase)(&hr, HEAD_BIAS_GRAD, N * V);
    FRNN_HEAD_MARK(6);
    if (rc == 0) rc = F(head_gemm)(blas, bf16, 0, 0, (int)N, P, V, logits, V, tr->W_head, P, 0, tr->bwd->grads[L], P);
    if (rc != 0) {
        if (on_tapes) F(acts_restore)(tr->fwd, tr->bwd, saved_acts);
        return res->status = -1;
    }
    FRNN_HEAD_MARK(7);
    if (hr.scratch) F(head_phase)(&hr, HEAD_SCATTER_IN, (size_t)V * hr.width);   /* the logits are free */
    rc = F(frnn_stack_backward)(blas, &bw);
    if (on_tapes) F(acts_restore)(tr->fwd, tr->bwd, saved_acts);
    if (rc != 0) return res->status = -1;
    FRNN_HEAD_MARK(8);
    F(head_phase)(&hr, hr.scratch ? HEAD_SCATTER_OUT : HEAD_SCATTER, hr.scratch ? (size_t)V * hr.width : N * hr.width);
    FRNN_HEAD_MARK(9);
    if (!opt) return res->status = 0;
    if (!(res->loss <= opt->max_loss)) return res->status = 1;      /* NaN too */
    const double loss = res->loss;
    F(frnn_optim_step)(opt, tr->n, tr->params, tr->grads, res);
    res->loss = loss;
    return res->status;
}
