/* head_common_impl.h - the typed pieces head_impl.h and head_seq_impl.h share (included by each
 * once per REAL: no include guard): NumPy's pairwise sum and the head's products. */

#include "rows_by_ids.h"

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

/* C (m, n) = op(A) op(B) + beta C as nn/linear.py's gemm() calls it: in bf16 when the head's
 * precision is (bf16: float32 only, frnn_matmul_bf16). 0, or -1 when out of memory. */
static int F(head_gemm)(const frnn_blas *blas, int bf16, int ta, int tb, int m, int n, int k, const REAL *a,
                        int lda, const REAL *b, int ldb, int beta, REAL *c, int ldc)
{
#if FRNN_F32
    if (bf16) return frnn_matmul_bf16(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
    frnn_matmul_f32(blas, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
#else
    (void)bf16;
    frnn_gemm_f64(blas, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta ? 1.0 : 0.0, c, ldc);
#endif
    return 0;
}
