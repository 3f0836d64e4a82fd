/* common.h - template pieces shared by every cell: the row-major GEMM, the input projection,
 * packed-sequence masking, and the after-the-loop weight gradients.
 *
 * Instantiated by template.h with REAL = float / double and F(name) = name##_f32 / _f64.
 */

/* Row-major C (m, n) = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T.
 * BLAS is column-major, where a row-major X is X^T; so row-major C = A @ B is the column-major
 * C^T = B^T A^T: swap the operands and m/n, keep the transposition flags. */
void F(frnn_gemm)(const frnn_blas *blas, int trans_a, int trans_b, int m, int n, int k,
                  REAL alpha, const REAL *a, int lda, const REAL *b, int ldb, REAL beta,
                  REAL *c, int ldc)
{
    char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    if (m == 0 || n == 0) return;
    if (k == 0) {  /* BLAS would only scale C; do it here so no BLAS quirk matters */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * c[(size_t)i * ldc + j];
        return;
    }
    BLAS_GEMM(&tb, &ta, &n, &m, &k, &alpha, (REAL *)b, &ldb, (REAL *)a, &lda, &beta, c, &ldc);
}

/* Sequence b is live at step t under packed-sequence semantics. */
static inline int F(live)(const int *lengths, int b, int t) { return lengths == NULL || t < lengths[b]; }

/* out (rows, GH) = x (rows, I) @ W_ih^T + bias (x itself when W_ih is NULL), where bias = b_ih + b_hh on the columns
 * [0, fold_hh) and b_ih alone after (GRU keeps b_hn inside r * (W_hn h + b_hn)).
 * This is the input projection of all T steps in one GEMM. */
static void F(input_projection)(const frnn_blas *blas, int rows, int GH, int I, const REAL *x,
                                const REAL *W_ih, const REAL *b_ih, const REAL *b_hh, int fold_hh,
                                REAL *out)
{
    for (int j = 0; j < GH; j++) {
        REAL v = 0;
        if (b_ih) v += b_ih[j];
        if (b_hh && j < fold_hh) v += b_hh[j];
        out[j] = v;
    }
    for (int r = 1; r < rows; r++) memcpy(out + (size_t)r * GH, out, sizeof(REAL) * GH);
    if (W_ih == NULL) {  /* x is already projected (I == GH), e.g. a one-hot input's row gather */
        for (size_t i = 0; i < (size_t)rows * GH; i++) out[i] += x[i];
        return;
    }
    /* out = x @ W_ih.T + out */
    F(frnn_gemm)(blas, 0, 1, rows, GH, I, 1, x, I, W_ih, I, 1, out, GH);
}

/* y[t] = h for live rows, 0 past a sequence's end (PyTorch's padded output). */
static void F(write_output)(REAL *yt, const REAL *h, const int *lengths, int t, int B, int P)
{
    if (yt == NULL) return;
    for (int b = 0; b < B; b++) {
        if (F(live)(lengths, b, t)) memcpy(yt + (size_t)b * P, h + (size_t)b * P, sizeof(REAL) * P);
        else memset(yt + (size_t)b * P, 0, sizeof(REAL) * P);
    }
}

/* Copy the rows of a state that a finished sequence keeps: dst[b] = src[b] where b is not live. */
static void F(keep_finished_rows)(REAL *dst, const REAL *src, const int *lengths, int t, int B, int W)
{
    if (lengths == NULL || dst == src) return;
    for (int b = 0; b < B; b++)
        if (!F(live)(lengths, b, t)) memcpy(dst + (size_t)b * W, src + (size_t)b * W, sizeof(REAL) * W);
}

/* Zero the rows of a (B, W) block that are past their sequence's end, so tape entries
 * that feed the weight-gradient GEMMs are finite (0 * garbage could be NaN). */
static void F(zero_finished_rows)(REAL *m, const int *lengths, int t, int B, int W)
{
    if (lengths == NULL) return;
    for (int b = 0; b < B; b++)
        if (!F(live)(lengths, b, t)) memset(m + (size_t)b * W, 0, sizeof(REAL) * W);
}

/* The gradient reaching h_t: dh = dy[t] + (gradient carried back from step t+1). */
static void F(step_grad_in)(REAL *dh, const REAL *dyt, const REAL *carry, int n)
{
    if (dyt) for (int i = 0; i < n; i++) dh[i] = dyt[i] + carry[i];
    else memcpy(dh, carry, sizeof(REAL) * n);
}

/* db (n) += column sums of m (rows, n). */
static void F(add_colsum)(REAL *db, const REAL *m, size_t rows, int n)
{
    if (db == NULL) return;
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) db[j] += m[r * n + j];
}

/* After the time loop: the input-side gradients of all T steps as large GEMMs.
 * dG (T*B, GH) holds the gradients of the gate pre-activations (zero rows past a sequence's end). */
static void F(input_grads)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *bf,
                           const REAL *dG)
{
    const int rows = d->T * d->B, GH = frnn_gates(d->cell) * d->H, I = d->In;
    if (bf->W_ih == NULL) {  /* projected input: its gradient is dG itself */
        F(add_colsum)((REAL *)bf->db_ih, dG, rows, GH);
        if (bf->dx) memcpy(bf->dx, dG, sizeof(REAL) * rows * GH);
        return;
    }
    /* dW_ih += dG.T @ x */
    F(frnn_gemm)(blas, 1, 0, GH, I, rows, 1, dG, GH, (const REAL *)bf->x, I, 1, (REAL *)bf->dW_ih, I);
    /* db_ih += dG.sum(0) */
    F(add_colsum)((REAL *)bf->db_ih, dG, rows, GH);
    /* dx = dG @ W_ih */
    if (bf->dx)
        F(frnn_gemm)(blas, 0, 0, rows, I, GH, 1, dG, GH, (const REAL *)bf->W_ih, I, 0, (REAL *)bf->dx, I);
}

/* The hot elementwise loops, each its own wide-vector clone with no aliasing to prove. */
FRNN_CLONES static void F(sigmoid_inplace)(REAL *p, int n)
{
    for (int i = 0; i < n; i++) p[i] = SIGMOID(p[i]);
}

FRNN_CLONES static void F(tanh_inplace)(REAL *p, int n)
{
    for (int i = 0; i < n; i++) p[i] = TANH(p[i]);
}

FRNN_CLONES static void F(tanh_to)(REAL *restrict out, const REAL *restrict in, int n)
{
    for (int i = 0; i < n; i++) out[i] = TANH(in[i]);
}

/* Elementwise activations over arrays (out == in allowed), exported for tests. */
FRNN_CLONES void F(frnn_sigmoid)(REAL *out, const REAL *in, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = SIGMOID(in[i]);
}

FRNN_CLONES void F(frnn_tanh)(REAL *out, const REAL *in, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = TANH(in[i]);
}

/* Set a state buffer to its initial value (NULL = zeros). */
static void F(state_init)(REAL *dst, const void *init, size_t n)
{
    if (init == dst) return;  /* a step updating its state in place */
    if (init) memcpy(dst, init, sizeof(REAL) * n);
    else memset(dst, 0, sizeof(REAL) * n);
}

/* After the time loop: dW_hh[:, cols] += dG[:, cols].T @ hprev and db_hh += dG.sum(0), where
 * dG (T*B, ldg) is the gradient at the recurrent pre-activations and hprev (T*B, P) the
 * matching inputs (h_{t-1}, or GRU reset-before's r*h_{t-1}). */
static void F(recurrent_grads)(const frnn_blas *blas, size_t rows, int ncols, const REAL *dG,
                               int ldg, const REAL *hprev, int P, REAL *dW_hh, REAL *db_hh)
{
    /* dW_hh += dG.T @ hprev */
    F(frnn_gemm)(blas, 1, 0, ncols, P, (int)rows, 1, dG, ldg, hprev, P, 1, dW_hh, P);
    if (db_hh)
        for (size_t r = 0; r < rows; r++)
            for (int j = 0; j < ncols; j++) db_hh[j] += dG[r * ldg + j];
}
