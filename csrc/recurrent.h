/* recurrent.h - the per-step recurrent products (template, included by template.h).
 *
 *     C (M, N) (+)= A (M, K) @ op(W),   op(W) = W^T, W (N, K)  (forward:  h_{t-1} @ W_hh^T)
 *                                        op(W) = W,   W (K, N)  (backward: dG_t @ W_hh)
 *
 * The same W multiplies every time step. On the float32 engine a `recmat` holds op(W) packed in
 * panels (engine.h), with the columns grouped in segments of `seg` (the gates: seg = H), and
 * each member of the team multiplies only the panels of its own hidden units [u0, u1) of every
 * segment -- weight-stationary: a member packs its panels itself, so they sit in its own cache
 * for the whole sequence, and the gate maths of its units follows its tile. On the BLAS path
 * (float64, FASTRNN_KERNELS=blas, no AVX2) the single member multiplies everything through BLAS.
 */

typedef struct {
    const frnn_ctx *cx;
    int trans, N, K, ldw, seg;
    const REAL *W;
#if FRNN_F32
    frnn_pk pk;              /* engine: the panels (pk.data NULL on the BLAS path and in bf16) */
    frnn_bpk bpk;            /* bf16: the bf16 panels (bpk.data NULL otherwise) */
    int bf32;                /* bf16 on float32 panels (cx->bf32): pk holds bf16-rounded, pair-swapped
                                values, K rounded up to even (frnn_bf32_pack) */
    frnn_bpk bsrc;           /* bf32: prepacked bf16 panels to widen into pk, or data NULL */
    float *stage;            /* bf32 backward of a staging cell (F(rec_stage)): two slots of (B, pk.K)
                                rows, step t's dG_t rounded and pair-swapped in slot t & 1; or NULL */
#endif
    int ready;               /* the panels were packed before the call (frnn_pack_forward) */
#if FRNN_F32
    int q8_on;               /* int8 inference: op(W) = q8^T (csrc/int8.h), nothing packed */
    frnn_q8_mat q8;
    const uint8_t *q8h;      /* int8 static rows (int8_step.h): two slots of (B, q8.Kp) bytes, the
                                rows of the float h buffers q8src[0] and q8src[1]; or NULL */
    size_t q8slot;
    const REAL *q8src[2];
#endif
} F(recmat);

/* Floats of packed panels a recmat needs on the engine (0 on the BLAS path). */
static size_t F(recmat_floats)(const frnn_ctx *cx, int N, int K, int seg)
{
    (void)cx, (void)N, (void)K, (void)seg;
#if FRNN_F32
    if (cx->engine && N > 0 && K > 0)
        return cx->bf32 ? frnn_bf32_floats(K, N, seg) : cx->bf16 ? frnn_bpk_floats(K, N, seg) : frnn_pk_floats(K, N, seg);
#endif
    return 0;
}

/* Describe op(W) (K, N) for products; on the engine its panels will live at `mem`. */
static void F(recmat_init)(F(recmat) *r, const frnn_ctx *cx, int trans, int N, int K, const REAL *W,
                           int ldw, int seg, REAL *mem)
{
    r->cx = cx;
    r->trans = trans, r->N = N, r->K = K, r->ldw = ldw, r->seg = seg, r->W = W, r->ready = 0;
    (void)mem;
#if FRNN_F32
    r->q8_on = 0;
    r->q8h = NULL;
    r->pk.data = NULL;
    r->bpk.data = NULL;
    r->bsrc.data = NULL;
    r->stage = NULL;
    r->bf32 = cx->engine && N > 0 && K > 0 && cx->bf32 && mem != NULL;
    if (r->bf32) frnn_bf32_init(&r->pk, K, N, seg, mem);
    else if (cx->engine && N > 0 && K > 0 && cx->bf16) frnn_bpk_init(&r->bpk, K, N, seg, mem);
    else if (cx->engine && N > 0 && K > 0) frnn_pk_init(&r->pk, K, N, seg, mem);
#endif
}

/* A member packs the panels of its units [u0, u1) of every segment (a no-op for BLAS). */
static void F(recmat_pack)(const F(recmat) *r, int u0, int u1)
{
    (void)r, (void)u0, (void)u1;
#if FRNN_F32
    if (r->bpk.data != NULL && !r->ready && u1 > u0)
        for (int q = 0; q < r->N / r->seg; q++) {
            int p0, p1;
            frnn_bpk_units(&r->bpk, q, u0, u1, &p0, &p1);
            frnn_bpk_pack(&r->bpk, r->W, r->ldw, r->trans, 0, p0, p1);
        }
    if (r->pk.data == NULL || r->ready || u1 <= u0) return;
    for (int q = 0; q < r->N / r->seg; q++) {
        int p0, p1;
        frnn_pk_units(&r->pk, q, u0, u1, &p0, &p1);
        if (!r->bf32) frnn_pk_pack(&r->pk, r->W, r->ldw, r->trans, 0, p0, p1);
        else if (r->bsrc.data != NULL) frnn_bf32_widen(&r->pk, &r->bsrc, p0, p1);
        else frnn_bf32_pack(&r->pk, r->K, r->W, r->ldw, r->trans, p0, p1);
    }
#endif
}

/* Columns [u0, u1) of every segment of C (M, N) = A (M, K) @ op(W) + beta * C, beta 0 or 1. */
static void F(rec_mul)(const F(recmat) *r, int u0, int u1, int M, const REAL *A, int lda, int beta,
                       REAL *C, int ldc)
{
    if (u1 <= u0 || M == 0) return;
#if FRNN_F32
    if (r->q8_on && r->q8h != NULL && (A == r->q8src[0] || A == r->q8src[1])) {   /* h_{t-1}'s static rows */
        frnn_q8_mul_static(&r->q8, r->seg, u0, u1, M, r->q8h + (A == r->q8src[0] ? 0 : r->q8slot),
                           (size_t)r->q8.Kp, beta, C, (size_t)ldc);
        return;
    }
    if (r->q8_on) { frnn_q8_mul(&r->q8, r->seg, u0, u1, M, A, (size_t)lda, beta, C, (size_t)ldc); return; }
    if (r->bf32) {                  /* bf16, many rows: A rounded once for every segment */
        frnn_bf32_mul(&r->pk, r->K, u0, u1, M, A, (size_t)lda, C, (size_t)ldc, beta);
        return;
    }
    if (r->bpk.data != NULL) {      /* bf16: A (h_{t-1}, dG_t, ...) rounded as the kernels read it */
        frnn_bpk_mul_units(&r->bpk, u0, u1, M, A, (size_t)lda, C, (size_t)ldc, beta);
        return;
    }
    if (r->pk.data != NULL) {
        for (int q = 0; q < r->N / r->seg; q++) {
            int p0, p1;
            frnn_pk_units(&r->pk, q, u0, u1, &p0, &p1);
            frnn_pk_mul(&r->pk, p0, p1, M, A, lda, 1, C, ldc, beta);
        }
        return;
    }
#endif
    /* BLAS: one member, all columns */
    F(frnn_gemm)(r->cx->blas, 0, r->trans, M, r->N, r->K, 1, A, lda, r->W, r->ldw, beta, C, ldc);
}

/* bf16 on float32 panels, a backward step before its barrier: the member's columns of dG_t
 * (units [u0, u1) of each of nseg segments of seg columns) rounded and pair-swapped into slot
 * t & 1 of W's stage, so carry_back's product reads them staged: dG_t is rounded once, not by
 * every member for all of K (the same values; two slots: a member may stage step t - 1 while
 * another still reads step t). A no-op without a stage. */
static void F(rec_stage)(const F(recmat) *W, const REAL *dGt, int ldg, int t, int B, int u0, int u1, int seg,
                         int nseg)
{
    (void)W, (void)dGt, (void)ldg, (void)t, (void)B, (void)u0, (void)u1, (void)seg, (void)nseg;
#if FRNN_F32
    if (W->stage == NULL || u1 <= u0) return;
    float *slot = W->stage + (size_t)(t & 1) * B * W->pk.K;
    for (int q = 0; q < nseg; q++) frnn_bf32_stage(B, W->K, dGt, (size_t)ldg, q * seg + u0, q * seg + u1, slot);
#endif
}

/* F(rec_mul) of a backward step's dG_t: from W's stage when there is one (F(rec_stage)). */
static void F(rec_mul_step)(const F(recmat) *r, int u0, int u1, int M, const REAL *A, int lda, int beta,
                            REAL *C, int ldc, int t)
{
#if FRNN_F32
    if (r->stage != NULL) {
        if (u1 > u0 && M > 0)
            frnn_bf32_mul_staged(&r->pk, u0, u1, M, r->stage + (size_t)(t & 1) * M * r->pk.K, C, (size_t)ldc, beta);
        return;
    }
#endif
    (void)t;
    F(rec_mul)(r, u0, u1, M, A, lda, beta, C, ldc);
}

/* End of a backward step for columns [c0, c1): carry = dG_t @ W_hh + beta * direct for live rows,
 * where direct already holds the gradient reaching h_{t-1} directly (GRU's z * dh); finished rows
 * keep the carry unchanged (their state was only passed along). W is op(W) = W_hh (GH, P). */
static void F(carry_back)(const F(recmat) *W, int c0, int c1, const REAL *dGt, int ldg, int beta,
                          REAL *direct, REAL *carry, const int *lengths, int t, int B)
{
    const int P = W->N;
    if (c1 <= c0) return;
    if (!beta && lengths == NULL) {
        /* every row live and nothing direct to add (LSTM, RNN): the product goes straight into
         * carry's columns [c0, c1), which only this member reads (its step_grad_in) -- saves a
         * (B, c1 - c0) copy per step, the same values */
        F(rec_mul_step)(W, c0, c1, B, dGt, ldg, 0, carry, P, t);
        return;
    }
    /* direct = dG_t @ W_hh + beta * direct */
    F(rec_mul_step)(W, c0, c1, B, dGt, ldg, beta, direct, P, t);
    F(keep_finished_rows)(direct, carry, lengths, t, B, P, c0, c1);
    F(copy_cols)(carry, direct, B, P, c0, c1);
}
