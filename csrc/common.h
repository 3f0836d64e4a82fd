/* common.h - template pieces shared by every cell: the products, the input projection,
 * packed-sequence masking, and the after-the-loop weight gradients.
 *
 * Instantiated by template.h with REAL = float / double and F(name) = name##_f32 / _f64.
 * Every function taking a `par` is called by each member of a team task; column ranges
 * [c0, c1) are the member's own (its hidden units, or its slice of P), so members never write
 * the same element.
 */

/* Row-major C (m, n) = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T, through BLAS.
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

/* BLAS takes int sizes: products over more than this many rows (T * B can exceed 2^31) are
 * split into pieces. */
#define FRNN_ROWS_MAX (1 << 30)

/* C (M, N) = op(A) @ op(W) + beta * C (beta 0 or 1), op(A) (M, K): A (M, K) with leading
 * dimension lda, or A (K, M) read transposed. On the engine every member computes its share
 * (and returns after a barrier); on the BLAS path the single member calls BLAS, in pieces of at
 * most FRNN_ROWS_MAX rows of M or K. */
static void F(prod)(const frnn_par *par, const frnn_ctx *cx, size_t M, int N, size_t K,
                    const REAL *A, int lda, int trans_a, const REAL *W, int ldw, int trans_w,
                    int beta, REAL *C, int ldc)
{
    (void)par;
    if (M == 0 || N == 0) return;
    for (size_t m0 = 0; m0 < M; m0 += FRNN_ROWS_MAX) {
        for (size_t k0 = 0; k0 < K || k0 == 0; k0 += FRNN_ROWS_MAX) {
            const int m = (int)(M - m0 < FRNN_ROWS_MAX ? M - m0 : FRNN_ROWS_MAX);
            const int k = (int)(K - k0 < FRNN_ROWS_MAX ? K - k0 : FRNN_ROWS_MAX);
            const REAL *a = trans_a ? A + k0 * lda + m0 : A + m0 * lda + k0;
            const REAL *w = trans_w ? W + k0 : W + k0 * ldw;
            const int b = beta || k0 > 0;                 /* later pieces of K add up */
#if FRNN_F32
            if (cx->engine) {
                frnn_gemm_args g = {m, N, k, a, trans_a ? 1 : (size_t)lda, trans_a ? (size_t)lda : 1,
                                    w, (size_t)ldw, trans_w, C + m0 * ldc, (size_t)ldc, b};
                if (cx->bf16) frnn_team_gemm_bf16(par, &g, cx->pack);
                else frnn_team_gemm(par, &g, cx->pack);
            } else
#endif
            F(frnn_gemm)(cx->blas, trans_a, trans_w, m, N, k, 1, a, lda, w, ldw, b, C + m0 * ldc, ldc);
            if (K == 0) break;
        }
    }
}

/* Columns [c0, c1) of the B rows of dst (B, W) = src (nothing when they are the same buffer). */
static void F(copy_cols)(REAL *dst, const REAL *src, int B, int W, int c0, int c1)
{
    if (dst == src || c1 <= c0) return;
    for (int b = 0; b < B; b++) memcpy(dst + (size_t)b * W + c0, src + (size_t)b * W + c0, sizeof(REAL) * (c1 - c0));
}

/* Sequence b is live at step t under packed-sequence semantics. */
static inline int F(live)(const int *lengths, int b, int t) { return lengths == NULL || t < lengths[b]; }

/* The member's columns [c0, c1) of n, in blocks of the engine's panel width (all of them on
 * the BLAS path, which has one member). */
static void F(my_cols)(const frnn_par *par, const frnn_ctx *cx, int n, int *c0, int *c1)
{
    (void)cx;
#if FRNN_F32
    if (cx->engine) { frnn_split(n, frnn_nr(), par->tid, par->nth, c0, c1); return; }
#endif
    *c0 = 0;
    *c1 = par->tid == 0 ? n : 0;
}

#if FRNN_F32
/* input_projection on one member with W_ih^T packed: the bias rows written, then the product
 * added to them, a block of rows at a time -- each block is still in L2 when the product reads it
 * back (writing all T * B rows first sent them to memory and back: ~5 % of a (100, 32, 128, 256)
 * LSTM's inference forward in memmove). Blocks of >= 16 rows (a short last block joins the one
 * before), so every product has >= 16 rows when the whole does: the same kernels -- AMX tiles
 * included (frnn_amx_bf16_rows) -- and, row by row, the same bits as one product. */
#define FRNN_PROJ_BLOCK_BYTES (128 << 10)
static void F(projection_blocks)(const frnn_par *par, const frnn_ctx *cx, size_t rows, int GH, int I,
                                 const REAL *x, const REAL *b_ih, const REAL *b_hh, int fold_hh,
                                 const float *packed_ih, REAL *out)
{
    size_t block = FRNN_PROJ_BLOCK_BYTES / (sizeof(REAL) * (size_t)GH) / 16 * 16;
    if (block < 16) block = 16;
    /* bf16 on the AVX512-BF16 kernels: no fill at all -- the kernels add the bias row where they
     * would add C's (frnn_bkpk_mul_bias: the same bits) */
    REAL *bias = cx->bf16 ? malloc(sizeof(REAL) * (size_t)GH) : NULL;
    for (int j = 0; bias && j < GH; j++) bias[j] = (b_ih ? b_ih[j] : 0) + (b_hh && j < fold_hh ? b_hh[j] : 0);
    for (size_t r0 = 0, n; r0 < rows; r0 += n) {
        n = rows - r0 < 2 * block ? rows - r0 : block;
        REAL *o = out + r0 * GH;
        if (bias && frnn_bkpk_mul_bias(packed_ih, I, GH, (int)n, x + r0 * I, I, o, GH, bias)) continue;
        for (int j = 0; j < GH; j++) o[j] = (b_ih ? b_ih[j] : 0) + (b_hh && j < fold_hh ? b_hh[j] : 0);
        for (size_t r = 1; r < n; r++) memcpy(o + r * GH, o, sizeof(REAL) * GH);
        if (cx->bf16) frnn_bkpk_mul(par, packed_ih, I, GH, (int)n, x + r0 * I, I, o, GH, 1);
        else frnn_kpk_mul(par, packed_ih, I, GH, (int)n, x + r0 * I, I, o, GH, 1);
    }
    free(bias);
}
#endif

/* out (rows, GH) = x (rows, I) @ W_ih^T + bias (x itself when W_ih is NULL), where bias = b_ih + b_hh
 * on the columns [0, fold_hh) and b_ih alone after (GRU keeps b_hn inside r * (W_hn h + b_hn)).
 * The input projection of all T steps in one product, or of a wavefront's chunk (packed_ih:
 * W_ih^T packed once for every chunk, float32 engine; NULL: the product packs for itself). */
static void F(input_projection)(const frnn_par *par, const frnn_ctx *cx, size_t rows, int GH, int I,
                                const REAL *x, const int *ids, const REAL *W_ih, const REAL *b_ih,
                                const REAL *b_hh, int fold_hh, const float *packed_ih, REAL *out)
{
#if FRNN_F32
    if (packed_ih && W_ih && par->nth == 1) {      /* one member, W_ih^T packed: block by block */
        F(projection_blocks)(par, cx, rows, GH, I, x, b_ih, b_hh, fold_hh, packed_ih, out);
        return;
    }
#endif
    const size_t r0 = rows * par->tid / par->nth, r1 = rows * (par->tid + 1) / par->nth;
    if (r1 > r0) {
        REAL *first = out + r0 * GH;
        if (W_ih == NULL) {   /* x is already projected (I == GH), e.g. a one-hot row gather:
                               * row by row (a column walk strides through every row); with ids,
                               * row r is x's row ids[r] (frnn_stack.rows_ids: the gather itself) */
            const int fold = fold_hh < GH ? fold_hh : GH;
            for (size_t r = r0; r < r1; r++) {
                REAL *o = out + r * GH;
                const REAL *xr = x + (ids ? (size_t)ids[r] : r) * GH;
                for (int j = 0; j < fold; j++) o[j] = ((b_ih ? b_ih[j] : 0) + (b_hh ? b_hh[j] : 0)) + xr[j];
                for (int j = fold; j < GH; j++) o[j] = ((b_ih ? b_ih[j] : 0) + 0) + xr[j];
            }
        } else {
            for (int j = 0; j < GH; j++) first[j] = (b_ih ? b_ih[j] : 0) + (b_hh && j < fold_hh ? b_hh[j] : 0);
            for (size_t r = r0 + 1; r < r1; r++) memcpy(out + r * GH, first, sizeof(REAL) * GH);
        }
    }
    frnn_sync(par);               /* every bias row is written before any member adds to it */
    if (W_ih == NULL) return;
    /* out = x @ W_ih.T + out (W_ih^T packed once for all chunks: frnn_kpk_pack) */
#if FRNN_F32
    if (packed_ih && cx->bf16) { frnn_bkpk_mul(par, packed_ih, I, GH, (int)rows, x, I, out, GH, 1); return; }
    if (packed_ih) { frnn_kpk_mul(par, packed_ih, I, GH, (int)rows, x, I, out, GH, 1); return; }
#endif
    (void)packed_ih;
    F(prod)(par, cx, rows, GH, I, x, I, 0, W_ih, I, 1, 1, out, GH);
}

/* y[t][:, c0:c1] = h for live rows, 0 past a sequence's end (PyTorch's padded output). y may be
 * the tape's h_t itself (no lengths: acts_on_tapes.h): nothing to copy. */
static void F(write_output)(REAL *yt, const REAL *h, const int *lengths, int t, int B, int P, int c0, int c1)
{
    if (yt == NULL || c1 <= c0 || (yt == h && lengths == NULL)) return;
    for (int b = 0; b < B; b++) {
        REAL *y = yt + (size_t)b * P + c0;
        if (F(live)(lengths, b, t)) memcpy(y, h + (size_t)b * P + c0, sizeof(REAL) * (c1 - c0));
        else memset(y, 0, sizeof(REAL) * (c1 - c0));
    }
}

/* Columns [c0, c1) of the rows a finished sequence keeps: dst[b] = src[b] where b is not live. */
static void F(keep_finished_rows)(REAL *dst, const REAL *src, const int *lengths, int t, int B, int W,
                                  int c0, int c1)
{
    if (lengths == NULL || dst == src || c1 <= c0) return;
    for (int b = 0; b < B; b++)
        if (!F(live)(lengths, b, t))
            memcpy(dst + (size_t)b * W + c0, src + (size_t)b * W + c0, sizeof(REAL) * (c1 - c0));
}

/* Zero columns [c0, c1) of the rows of a (B, W) block that are past their sequence's end, so tape
 * entries that feed the weight-gradient products are finite (0 * garbage could be NaN). */
static void F(zero_finished_rows)(REAL *m, const int *lengths, int t, int B, int W, int c0, int c1)
{
    if (lengths == NULL || c1 <= c0) return;
    for (int b = 0; b < B; b++)
        if (!F(live)(lengths, b, t)) memset(m + (size_t)b * W + c0, 0, sizeof(REAL) * (c1 - c0));
}

/* Columns [c0, c1) of the gradient reaching h_t: dh = dy[t] + (gradient carried back from t+1). */
static void F(step_grad_in)(REAL *dh, const REAL *dyt, const REAL *carry, int B, int W, int c0, int c1)
{
    for (int b = 0; b < B; b++) {
        const size_t o = (size_t)b * W;
        if (dyt) for (int j = c0; j < c1; j++) dh[o + j] = dyt[o + j] + carry[o + j];
        else if (dh != carry) memcpy(dh + o + c0, carry + o + c0, sizeof(REAL) * (c1 > c0 ? c1 - c0 : 0));
    }
}

/* db[c0:c1] += column sums of m (rows, ldm)[:, c0:c1], each column summed in row order. */
static void F(add_colsum)(REAL *db, const REAL *m, size_t rows, int ldm, int c0, int c1)
{
    if (db == NULL) return;
    for (size_t r = 0; r < rows; r++)
        for (int j = c0; j < c1; j++) db[j] += m[r * ldm + j];
}

/* bf16 on the engine, a cell whose dW_hh comes from all of dG (LSTM, plain RNN) with an input
 * weight: dW_hh and dW_ih are both dG^T @ (something), so one product stages dG^T once for both
 * (F(hidden_grads); input_grads then skips dW_ih). The same bits as the two products. */
static int F(pair_on)(const frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf)
{
    (void)cx, (void)d, (void)bf;
#if FRNN_F32
    const int c = d->cell;
    return cx->engine && cx->bf16 && bf->W_ih != NULL && (size_t)d->T * d->B <= FRNN_ROWS_MAX
           && (c == FRNN_LSTM || c == FRNN_RNN_TANH || c == FRNN_RNN_RELU);
#endif
    return 0;
}

/* After the time loop: the input-side gradients of all T steps as large products (dx_done: dx
 * was already written chunk by chunk).
 * dG (T*B, GH) holds the gradients of the gate pre-activations (zero rows past a sequence's end). */
static void F(input_grads)(const frnn_par *par, const frnn_ctx *cx, const frnn_dims *d,
                           const frnn_buffers *bf, const REAL *dG, int dx_done, const REAL *db_twin,
                           const int *ids, REAL *table)
{
    const size_t rows = (size_t)d->T * d->B;
    const int GH = frnn_gates(d->cell) * d->H, I = d->In;
    int c0, c1;
    F(my_cols)(par, cx, GH, &c0, &c1);
    /* db_ih += dG.sum(0) -- or, when db_twin already holds that very sum (one_colsum), its copy */
    if (db_twin && c1 > c0) memcpy((REAL *)bf->db_ih + c0, db_twin + c0, sizeof(REAL) * (c1 - c0));
    else F(add_colsum)((REAL *)bf->db_ih, dG, rows, GH, c0, c1);
    if (bf->W_ih == NULL) {  /* projected input: its gradient is dG itself */
        if (ids)             /* frnn_stack.rows_ids: table[ids[r]] += dG[r], rows in order */
            F(add_rows_by_ids)(table, ids, dG, rows, GH, c0, c1);
        else if (bf->dx && !dx_done)
            for (size_t r = rows * par->tid / par->nth; r < rows * (par->tid + 1) / par->nth; r++)
                memcpy((REAL *)bf->dx + r * GH, dG + r * GH, sizeof(REAL) * GH);
        frnn_sync(par);
        return;
    }
    /* dW_ih += dG.T @ x (unless F(hidden_grads) did) */
    if (!F(pair_on)(cx, d, bf))
        F(prod)(par, cx, GH, I, rows, dG, GH, 1, (const REAL *)bf->x, I, 0, 1, (REAL *)bf->dW_ih, I);
    /* dx = dG @ W_ih (unless a wavefront produced it chunk by chunk) */
    if (bf->dx && !dx_done)
        F(prod)(par, cx, rows, I, GH, dG, GH, 0, (const REAL *)bf->W_ih, I, 0, 0, (REAL *)bf->dx, I);
}

/* db_hh (returned) when the cell's weight_grads sums all GH columns of dG into db_hh (one
 * recurrent_grads call over dG, split between the members as input_grads splits db_ih: LSTM and
 * the plain RNN) and this member's columns of db_ih and db_hh hold the same bits before the sums
 * (both zero in a fused training step, frnn_train_step): db_ih's sum is then db_hh's to the bit
 * (the same additions in the same order from the same start), and input_grads copies it instead
 * of summing dG's columns a second time. NULL otherwise. */
static const REAL *F(one_colsum)(const frnn_par *par, const frnn_ctx *cx, const frnn_dims *d,
                                 const frnn_buffers *bf, const REAL *dG, const REAL *dGh)
{
    const int GH = frnn_gates(d->cell) * d->H;
    const REAL *ih = bf->db_ih, *hh = bf->db_hh;
    int c0, c1;
    if (ih == NULL || hh == NULL || ih == hh || dG != dGh
        || !(d->cell == FRNN_LSTM || d->cell == FRNN_RNN_TANH || d->cell == FRNN_RNN_RELU))
        return NULL;
    F(my_cols)(par, cx, GH, &c0, &c1);
    return c1 > c0 && memcmp(ih + c0, hh + c0, sizeof(REAL) * (c1 - c0)) == 0 ? hh : NULL;
}

/* After the time loop: dW_hh[:, cols] += dG[:, cols].T @ hprev and db_hh += dG.sum(0), where
 * dG (T*B, ldg) is the gradient at the recurrent pre-activations and hprev (T*B, P) the
 * matching inputs (h_{t-1}, or GRU reset-before's r*h_{t-1}). */
static void F(recurrent_grads)(const frnn_par *par, const frnn_ctx *cx, size_t rows, int ncols,
                               const REAL *dG, int ldg, const REAL *hprev, int P, REAL *dW_hh, REAL *db_hh)
{
    int c0, c1;
    F(my_cols)(par, cx, ncols, &c0, &c1);
    F(add_colsum)(db_hh, dG, rows, ldg, c0, c1);
    /* dW_hh += dG.T @ hprev */
    F(prod)(par, cx, ncols, P, rows, dG, ldg, 1, hprev, P, 0, 1, dW_hh, P);
}

/* A cell whose dW_hh comes from all of dG (LSTM, plain RNN): db_hh and dW_hh += dG.T @ hprev
 * (P columns) as F(recurrent_grads); with F(pair_on), dW_ih += dG.T @ x in the same product. */
static void F(hidden_grads)(const frnn_par *par, const frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf,
                            const REAL *dG, const REAL *hprev, int P)
{
    const size_t rows = (size_t)d->T * d->B;
    const int GH = frnn_gates(d->cell) * d->H;
    if (!F(pair_on)(cx, d, bf)) {
        F(recurrent_grads)(par, cx, rows, GH, dG, GH, hprev, P, bf->dW_hh, bf->db_hh);
        return;
    }
#if FRNN_F32
    int c0, c1;
    F(my_cols)(par, cx, GH, &c0, &c1);
    F(add_colsum)(bf->db_hh, dG, rows, GH, c0, c1);
    const int I = d->In;
    const frnn_gemm_args g[2] = {{GH, P, (int)rows, dG, 1, (size_t)GH, hprev, (size_t)P, 0, bf->dW_hh, (size_t)P, 1},
                                 {GH, I, (int)rows, dG, 1, (size_t)GH, bf->x, (size_t)I, 0, bf->dW_ih, (size_t)I, 1}};
    frnn_team_gemm_bf16_pair(par, g, cx->pack);
#endif
}

/* The hot elementwise loops, each its own wide-vector clone with no aliasing to prove. */
FRNN_CLONES static void F(sigmoid_inplace_c)(REAL *p, int n)
{
    for (int i = 0; i < n; i++) p[i] = SIGMOID(p[i]);
}

/* float32 on an AVX2 or AVX-512 engine ISA: the intrinsics version (sigmoid_avx2.h,
 * activations_avx512.h: same bits, one 2^n scaling in the common case); FASTRNN_ISA=none and
 * float64 keep the C loop. */
static void F(sigmoid_inplace)(REAL *p, int n)
{
#if FRNN_F32 && FRNN_HAVE_SIGMOID_AVX2
    if (frnn_isa_active() == FRNN_ISA_AVX2) {
        frnn_sigmoid_avx2_inplace(p, n);
        return;
    }
#endif
#if FRNN_F32 && FRNN_HAVE_ACT_AVX512
    if (frnn_isa_active() == FRNN_ISA_AVX512) {
        frnn_sigmoid_avx512(p, p, n);
        return;
    }
#endif
    F(sigmoid_inplace_c)(p, n);
}

FRNN_CLONES static void F(tanh_inplace_c)(REAL *p, int n)
{
    for (int i = 0; i < n; i++) p[i] = TANH(p[i]);
}

FRNN_CLONES static void F(tanh_to_c)(REAL *restrict out, const REAL *restrict in, int n)
{
    for (int i = 0; i < n; i++) out[i] = TANH(in[i]);
}

/* tanh: the intrinsics version (tanh_avx2.h, activations_avx512.h: same bits) under the
 * sigmoid's condition. */
static void F(tanh_inplace)(REAL *p, int n)
{
#if FRNN_F32 && FRNN_HAVE_TANH_AVX2
    if (frnn_isa_active() == FRNN_ISA_AVX2) {
        frnn_tanh_avx2(p, p, n);
        return;
    }
#endif
#if FRNN_F32 && FRNN_HAVE_ACT_AVX512
    if (frnn_isa_active() == FRNN_ISA_AVX512) {
        frnn_tanh_avx512(p, p, n);
        return;
    }
#endif
    F(tanh_inplace_c)(p, n);
}

static void F(tanh_to)(REAL *restrict out, const REAL *restrict in, int n)
{
#if FRNN_F32 && FRNN_HAVE_TANH_AVX2
    if (frnn_isa_active() == FRNN_ISA_AVX2) {
        frnn_tanh_avx2(out, in, n);
        return;
    }
#endif
#if FRNN_F32 && FRNN_HAVE_ACT_AVX512
    if (frnn_isa_active() == FRNN_ISA_AVX512) {
        frnn_tanh_avx512(out, in, n);
        return;
    }
#endif
    F(tanh_to_c)(out, in, n);
}

/* Elementwise activations over arrays (out == in allowed), exported for the Python side
 * (_kernels.sigmoid/tanh): the gate loops' code under the same condition, in int-sized pieces. */
FRNN_CLONES static void F(frnn_sigmoid_c)(REAL *out, const REAL *in, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = SIGMOID(in[i]);
}

FRNN_CLONES static void F(frnn_tanh_c)(REAL *out, const REAL *in, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = TANH(in[i]);
}

#if FRNN_F32 && FRNN_HAVE_TANH_AVX2
/* An intrinsics activation (they take int counts) over n elements, in pieces. */
static void act_in_pieces(void (*act)(float *, const float *, int), float *out, const float *in, size_t n)
{
    for (size_t i = 0, k; i < n; i += k) {
        k = n - i < (size_t)FRNN_ROWS_MAX ? n - i : (size_t)FRNN_ROWS_MAX;
        act(out + i, in + i, (int)k);
    }
}
#endif

void F(frnn_sigmoid)(REAL *out, const REAL *in, size_t n)
{
#if FRNN_F32 && FRNN_HAVE_TANH_AVX2          /* (tanh_avx2.h is there only with sigmoid_avx2.h) */
    if (frnn_isa_active() == FRNN_ISA_AVX2) {
        act_in_pieces(frnn_sigmoid_avx2, out, in, n);
        return;
    }
#if FRNN_HAVE_ACT_AVX512
    if (frnn_isa_active() == FRNN_ISA_AVX512) {
        act_in_pieces(frnn_sigmoid_avx512, out, in, n);
        return;
    }
#endif
#endif
    F(frnn_sigmoid_c)(out, in, n);
}

void F(frnn_tanh)(REAL *out, const REAL *in, size_t n)
{
#if FRNN_F32 && FRNN_HAVE_TANH_AVX2
    if (frnn_isa_active() == FRNN_ISA_AVX2) {
        act_in_pieces(frnn_tanh_avx2, out, in, n);
        return;
    }
#if FRNN_HAVE_ACT_AVX512
    if (frnn_isa_active() == FRNN_ISA_AVX512) {
        act_in_pieces(frnn_tanh_avx512, out, in, n);
        return;
    }
#endif
#endif
    F(frnn_tanh_c)(out, in, n);
}

/* Set a state buffer to its initial value (NULL = zeros). */
static void F(state_init)(REAL *dst, const void *init, size_t n)
{
    if (init == dst) return;  /* a step updating its state in place */
    if (init) memcpy(dst, init, sizeof(REAL) * n);
    else memset(dst, 0, sizeof(REAL) * n);
}
