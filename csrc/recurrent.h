/* recurrent.h - the per-step recurrent product (template, included by template.h).
 *
 *     C (M, N) = A (M, K) @ op(W) [+ C],   op(W) = W^T, W (N, K)  (forward:  h_{t-1} @ W_hh^T)
 *                                          op(W) = W,   W (K, N)  (backward: dG_t @ W_hh)
 *
 * The same W multiplies every time step, but BLAS has no "pre-packed operand" call: OpenBLAS
 * re-packs all of W at every step, which for a small batch M costs more than the arithmetic
 * (docs/performance.md). A `recmat` packs W once per kernel call into panels of NR columns,
 * P[p][k][0..NR) = op(W)[k][p*NR ..], and multiplies with a register-blocked micro-kernel
 * (MR rows x NR columns of accumulators, one broadcast of A and two vector loads of P per k) on
 * the calling thread. From FRNN_PACKED_MAX_ROWS rows on, OpenBLAS's two threads win, and a
 * second thread of our own only fights OpenBLAS's spinning workers for the cores (measured), so
 * larger batches, short sequences, CPUs without AVX-512 and failed allocations go to BLAS.
 */

#ifndef FRNN_PACKED_MAX_ROWS
#define FRNN_PACKED_MAX_ROWS 32
#endif

#define RNR (2 * (int)(64 / sizeof(REAL)))          /* panel width: two 512-bit vectors */
typedef REAL F(vec) __attribute__((vector_size(64), aligned(sizeof(REAL))));

typedef struct {
    const frnn_blas *blas;
    int trans, N, K, ldw;
    const REAL *W;
    REAL *packed;               /* (panels, K, RNR), or NULL: BLAS */
} F(recmat);

/* C[0:MR, 0:nvalid] (+)= A[0:MR, 0:K] @ panel, one block of MR rows. */
#define FRNN_MICRO_KERNEL(MR)                                                                      \
    FRNN_AVX512 static void F(micro##MR)(int K, const REAL *A, int lda, const REAL *P, REAL *C,    \
                                         int ldc, int nvalid, int accumulate)                      \
    {                                                                                              \
        enum { V = RNR / 2 };                                                                      \
        F(vec) acc0[MR], acc1[MR];                                                                 \
        for (int i = 0; i < MR; i++) acc0[i] = acc1[i] = (F(vec)){0};                              \
        for (int k = 0; k < K; k++) {                                                              \
            F(vec) w0, w1;                                                                         \
            memcpy(&w0, P + (size_t)k * RNR, sizeof w0);                                           \
            memcpy(&w1, P + (size_t)k * RNR + V, sizeof w1);                                       \
            for (int i = 0; i < MR; i++) {                                                         \
                REAL a = A[(size_t)i * lda + k];                                                   \
                acc0[i] += a * w0;                                                                 \
                acc1[i] += a * w1;                                                                 \
            }                                                                                      \
        }                                                                                          \
        for (int i = 0; i < MR; i++) {                                                             \
            REAL *c = C + (size_t)i * ldc, out[RNR];                                               \
            memcpy(out, &acc0[i], sizeof acc0[i]);                                                 \
            memcpy(out + V, &acc1[i], sizeof acc1[i]);                                             \
            for (int j = 0; j < nvalid; j++) c[j] = accumulate ? c[j] + out[j] : out[j];           \
        }                                                                                          \
    }
FRNN_MICRO_KERNEL(6)
FRNN_MICRO_KERNEL(4)
FRNN_MICRO_KERNEL(2)
FRNN_MICRO_KERNEL(1)
#undef FRNN_MICRO_KERNEL

/* C (M, N) (+)= A (M, K) @ op(W) through the packed panels. */
static void F(rec_packed)(const F(recmat) *r, int M, const REAL *A, int lda, int accumulate, REAL *C, int ldc)
{
    for (int p = 0; p * RNR < r->N; p++) {
        const REAL *P = r->packed + (size_t)p * r->K * RNR;
        const int nvalid = r->N - p * RNR < RNR ? r->N - p * RNR : RNR;
        REAL *Cp = C + (size_t)p * RNR;
        int i = 0;
        for (; i + 6 <= M; i += 6)
            F(micro6)(r->K, A + (size_t)i * lda, lda, P, Cp + (size_t)i * ldc, ldc, nvalid, accumulate);
        for (; i + 4 <= M; i += 4)
            F(micro4)(r->K, A + (size_t)i * lda, lda, P, Cp + (size_t)i * ldc, ldc, nvalid, accumulate);
        for (; i + 2 <= M; i += 2)
            F(micro2)(r->K, A + (size_t)i * lda, lda, P, Cp + (size_t)i * ldc, ldc, nvalid, accumulate);
        for (; i < M; i++)
            F(micro1)(r->K, A + (size_t)i * lda, lda, P, Cp + (size_t)i * ldc, ldc, nvalid, accumulate);
    }
}

/* Prepare op(W) for M-row products: packs it when that is faster, else leaves it to BLAS. */
static void F(recmat_init)(F(recmat) *r, const frnn_ctx *cx, int trans, int M, int N, int K,
                           const REAL *W, int ldw)
{
    *r = (F(recmat)){cx->blas, trans, N, K, ldw, W, NULL};
    if (!cx->packed || M < 1 || M >= FRNN_PACKED_MAX_ROWS || N < 1 || K < 1) return;
    const int panels = (N + RNR - 1) / RNR;
    r->packed = malloc(sizeof(REAL) * (size_t)panels * K * RNR);
    if (r->packed == NULL) return;                    /* BLAS it is */
    for (int p = 0; p < panels; p++) {           /* loops ordered to read W row by row */
        REAL *panel = r->packed + (size_t)p * K * RNR;
        for (int j = 0; j < RNR; j++) {
            const int n = p * RNR + j;
            if (n >= N)
                for (int k = 0; k < K; k++) panel[(size_t)k * RNR + j] = 0;
            else if (trans)                             /* op(W)[k][n] = W[n][k] */
                for (int k = 0; k < K; k++) panel[(size_t)k * RNR + j] = W[(size_t)n * ldw + k];
        }
        if (!trans)                                     /* op(W)[k][n] = W[k][n] */
            for (int k = 0; k < K; k++)
                for (int j = 0; j < RNR && p * RNR + j < N; j++)
                    panel[(size_t)k * RNR + j] = W[(size_t)k * ldw + p * RNR + j];
    }
}

static void F(recmat_free)(F(recmat) *r)
{
    free(r->packed);
    r->packed = NULL;
}

/* C (M, N) = A (M, K) @ op(W) + beta * C, beta 0 or 1. */
static void F(rec_gemm)(const F(recmat) *r, int M, const REAL *A, int lda, REAL beta, REAL *C, int ldc)
{
    if (r->packed == NULL || (beta != 0 && beta != 1)) {
        F(frnn_gemm)(r->blas, 0, r->trans, M, r->N, r->K, 1, A, lda, r->W, r->ldw, beta, C, ldc);
        return;
    }
    F(rec_packed)(r, M, A, lda, beta != 0, C, ldc);
}

/* End of a backward step: carry (B, P) = dG_t @ W_hh + beta * direct for live rows, where
 * direct already holds the gradient reaching h_{t-1} directly (GRU's z * dh); finished rows
 * keep the carry unchanged (their state was only passed along). W is op(W) = W_hh (GH, P). */
static void F(carry_back)(const F(recmat) *W, const REAL *dGt, int ldg, REAL beta, REAL *direct,
                          REAL *carry, const int *lengths, int t, int B)
{
    /* direct = dG_t @ W_hh + beta * direct */
    F(rec_gemm)(W, B, dGt, ldg, beta, direct, W->N);
    F(keep_finished_rows)(direct, carry, lengths, t, B, W->N);
    memcpy(carry, direct, sizeof(REAL) * B * W->N);
}

#undef RNR
