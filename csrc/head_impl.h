/* head_impl.h - the typed half of head.c (included twice: REAL float / double). */

/* NumPy's pairwise sum of n contiguous values (numpy/_core/src/umath/loops_utils.h.src), the
 * order of `a.sum()` over a contiguous axis: the loss and the softmax denominators. */
static REAL F(pairwise_sum)(const REAL *a, size_t n)
{
    if (n < 8) {
        REAL res = 0;
        for (size_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        REAL r[8];
        size_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        REAL res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return F(pairwise_sum)(a, n2) + F(pairwise_sum)(a + n2, n - n2);
}

typedef struct {
    const frnn_train *tr;
    int phase;
    int width;               /* of the stack's input rows: E or G*H */
} F(head_run);

/* logits row r (+ bias) -> its -log p[target] and, in place, (softmax - onehot) / N: losses.py's
 * softmax_cross_entropy without a mask, operation by operation. */
static void F(softmax_row)(const frnn_train *tr, size_t r)
{
    const int V = tr->V, t = tr->targets[r];
    const REAL *bias = tr->b_head;
    REAL *l = (REAL *)tr->logits + r * V;
    if (bias) for (int v = 0; v < V; v++) l[v] += bias[v];    /* Linear: y += bias */
    REAL mx = l[0];
    for (int v = 1; v < V; v++) mx = l[v] > mx || l[v] != l[v] ? l[v] : mx;
    for (int v = 0; v < V; v++) l[v] -= mx;                   /* z = logits - max */
    const REAL zt = l[t];
    for (int v = 0; v < V; v++) l[v] = EXP(l[v]);
    const REAL sum = F(pairwise_sum)(l, V);
    ((REAL *)tr->nll)[r] = LOG(sum) - zt;                     /* log(sums) - z_target */
    const REAL inv = (REAL)1 / (REAL)((size_t)tr->T * tr->B); /* weight / total */
    for (int v = 0; v < V; v++) l[v] /= sum;                  /* softmax */
    l[t] -= 1;                                                /* minus one-hot */
    for (int v = 0; v < V; v++) l[v] *= inv;
}

static void F(head_task)(void *arg, const frnn_par *par)
{
    const F(head_run) *hr = arg;
    const frnn_train *tr = hr->tr;
    const size_t N = (size_t)tr->T * tr->B;
    const int W = hr->width;
    int lo, hi;
    switch (hr->phase) {
    case HEAD_ZERO: {                             /* model.zero_grad() */
        const size_t i0 = tr->n * par->tid / par->nth, i1 = tr->n * (par->tid + 1) / par->nth;
        memset((REAL *)tr->grads + i0, 0, sizeof(REAL) * (i1 - i0));
        break;
    }
    case HEAD_GATHER: {                           /* acts[0] = table[ids] or W_ih0[:, ids].T */
        const size_t r0 = N * par->tid / par->nth, r1 = N * (par->tid + 1) / par->nth;
        REAL *x = tr->fwd->acts[0];
        for (size_t r = r0; r < r1; r++) {
            const size_t id = (size_t)tr->ids[r];
            if (tr->table) memcpy(x + r * W, (const REAL *)tr->table + id * W, sizeof(REAL) * W);
            else {
                const REAL *col = (const REAL *)tr->W_ih0 + id;
                for (int j = 0; j < W; j++) x[r * W + j] = col[(size_t)j * tr->V];
            }
        }
        break;
    }
    case HEAD_SOFTMAX: {
        const size_t r0 = N * par->tid / par->nth, r1 = N * (par->tid + 1) / par->nth;
        for (size_t r = r0; r < r1; r++) F(softmax_row)(tr, r);
        break;
    }
    case HEAD_BIAS_GRAD: {                        /* db += dlogits.sum(0): rows in order */
        frnn_split(tr->V, 16, par->tid, par->nth, &lo, &hi);
        REAL *db = tr->db_head;
        const REAL *g = tr->logits;
        for (int v = lo; v < hi; v++) {
            REAL s = g[v];
            for (size_t r = 1; r < N; r++) s += g[r * tr->V + v];
            db[v] += s;
        }
        break;
    }
    case HEAD_SCATTER: {                          /* the input gradient into its rows/columns */
        frnn_split(W, 16, par->tid, par->nth, &lo, &hi);
        const REAL *dx = tr->bwd->grads[0];
        for (size_t r = 0; r < N; r++) {
            const size_t id = (size_t)tr->ids[r];
            const REAL *row = dx + r * W;
            if (tr->table) {
                REAL *dst = (REAL *)tr->table_grad + id * W;
                for (int j = lo; j < hi; j++) dst[j] += row[j];
            } else {
                REAL *dst = (REAL *)tr->dW_ih0 + id;
                for (int j = lo; j < hi; j++) dst[(size_t)j * tr->V] += row[j];
            }
        }
        break;
    }
    }
}

static void F(head_phase)(F(head_run) *hr, int phase, size_t work)
{
    hr->phase = phase;
    frnn_team_run(head_members(work), F(head_task), hr);
}

/* C (m, n) = op(A) op(B) + beta C as nn/linear.py's gemm() calls it */
static void F(head_gemm)(const frnn_blas *blas, int ta, int tb, int m, int n, int k, const REAL *a,
                         int lda, const REAL *b, int ldb, int beta, REAL *c, int ldc)
{
#if FRNN_F32
    frnn_matmul_f32(blas, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
#else
    frnn_gemm_f64(blas, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta ? 1.0 : 0.0, c, ldc);
#endif
}

int F(frnn_train_step)(const frnn_blas *blas, const frnn_train *tr, const frnn_opt *opt, frnn_step_result *res)
{
    const frnn_stack *st = tr->fwd;
    const int L = st->L, T = tr->T, B = tr->B, V = tr->V, P = st->dims[L - 1].P;
    const size_t N = (size_t)T * B;
    F(head_run) hr = {tr, 0, st->dims[0].In};
    memset(res, 0, sizeof *res);
    F(head_phase)(&hr, HEAD_ZERO, tr->n);
    F(head_phase)(&hr, HEAD_GATHER, N * hr.width);
    int rc = F(frnn_stack_forward)(blas, st, 1);
    if (rc != 0) return res->status = -1;
    /* the head: logits = y W^T (+ b in the softmax pass), the loss and dlogits in place */
    REAL *logits = tr->logits;
    const REAL *y = st->acts[L];
    F(head_gemm)(blas, 0, 1, (int)N, V, P, y, P, tr->W_head, P, 0, logits, V);
    F(head_phase)(&hr, HEAD_SOFTMAX, N * V * 8);
    res->loss = (double)(F(pairwise_sum)(tr->nll, N) / (REAL)N);
    /* the head's backward: dW += dlogits^T y, db += sum of rows, dy = dlogits W */
    F(head_gemm)(blas, 1, 0, V, P, (int)N, logits, V, y, P, 1, tr->dW_head, P);
    if (tr->db_head) F(head_phase)(&hr, HEAD_BIAS_GRAD, N * V);
    F(head_gemm)(blas, 0, 0, (int)N, P, V, logits, V, tr->W_head, P, 0, tr->bwd->grads[L], P);
    rc = F(frnn_stack_backward)(blas, tr->bwd);
    if (rc != 0) return res->status = -1;
    F(head_phase)(&hr, HEAD_SCATTER, N * hr.width);
    if (!opt) return res->status = 0;
    if (!(res->loss <= opt->max_loss)) return res->status = 1;      /* NaN too */
    const double loss = res->loss;
    F(frnn_optim_step)(opt, tr->n, tr->params, tr->grads, res);
    res->loss = loss;
    return res->status;
}
