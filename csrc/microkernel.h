/* microkernel.h - the register-blocked float32 micro-kernels, one source for every ISA.
 *
 * Included by gemm.c once per ISA with:
 *   ISA(name)  suffix for function names          TARGET  __attribute__((target(...)))
 *   VEC        the vector type (__m256, __m512)   VL      floats per vector
 *   VZERO() VLOAD(p) VSTORE(p, v) VBCAST(x) VFMA(a, b, c)   (a * b + c, fused)
 * A kernel computes C[0:MR, 0:width) (+)= A[0:MR, 0:K] @ P[0:K, 0:2*VL] with 2*MR accumulators
 * and one broadcast of A plus two loads of P per k (BLIS's layout; panel width NR = 2 * VL).
 */

#define MICRO(MR)                                                                                  \
    TARGET static void ISA(micro##MR)(int K, const float *A, size_t rsa, size_t csa,               \
                                      const float *P, float *C, size_t ldc, int width, int acc)    \
    {                                                                                              \
        VEC c0[MR], c1[MR];                                                                        \
        _Pragma("GCC unroll 8")                                                                    \
        for (int i = 0; i < MR; i++) {                                                             \
            c0[i] = c1[i] = VZERO();                                                               \
            /* the C tile is read and written after the k loop: fetch it meanwhile */              \
            __builtin_prefetch(C + (size_t)i * ldc, 1, 3);                                         \
            __builtin_prefetch(C + (size_t)i * ldc + 2 * VL - 1, 1, 3);                            \
        }                                                                                          \
        for (int k = 0; k < K; k++) {                                                              \
            const VEC w0 = VLOAD(P + (size_t)k * 2 * VL), w1 = VLOAD(P + (size_t)k * 2 * VL + VL); \
            const float *a = A + (size_t)k * csa;                                                  \
            for (int i = 0; i < MR; i++) {                                                         \
                const VEC x = VBCAST(a[(size_t)i * rsa]);                                          \
                c0[i] = VFMA(x, w0, c0[i]);                                                        \
                c1[i] = VFMA(x, w1, c1[i]);                                                        \
            }                                                                                      \
        }                                                                                          \
        if (width == 2 * VL) {  /* whole panels: a separate unrolled loop, so the accumulators \
                                   stay in registers (one loop with the scalar tail below made    \
                                   the compiler park them all on the stack: ~24 extra moves a call) */ \
            _Pragma("GCC unroll 8")                                                                \
            for (int i = 0; i < MR; i++) {                                                         \
                float *c = C + (size_t)i * ldc;                                                    \
                if (acc) {                                                                         \
                    c0[i] = c0[i] + VLOAD(c);                                                      \
                    c1[i] = c1[i] + VLOAD(c + VL);                                                 \
                }                                                                                  \
                VSTORE(c, c0[i]);                                                                  \
                VSTORE(c + VL, c1[i]);                                                             \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        float out[MR][2 * VL];  /* the last panel of a segment: same arithmetic, scalar stores */ \
        _Pragma("GCC unroll 8")                                                                    \
        for (int i = 0; i < MR; i++) {                                                             \
            VSTORE(out[i], c0[i]);                                                                 \
            VSTORE(out[i] + VL, c1[i]);                                                            \
        }                                                                                          \
        for (int i = 0; i < MR; i++) {                                                             \
            float *c = C + (size_t)i * ldc;                                                        \
            for (int j = 0; j < width; j++) c[j] = acc ? out[i][j] + c[j] : out[i][j];             \
        }                                                                                          \
    }

MICRO(1)
MICRO(2)
MICRO(3)
MICRO(4)
MICRO(5)
MICRO(6)
#undef MICRO

/* Few rows (a batch of 1-3 in a time step): MR rows x NP panels at once, so that 2 * MR * NP
 * accumulators hide the FMA latency that one row of one panel (2 accumulators) would expose.
 * Panel q is at P + q * pstride, its output at C[q] (width[q] valid columns). Every element
 * goes through the same fused multiply-adds in the same order as in MICRO. */
#define WIDE(MR, NP)                                                                               \
    TARGET static void ISA(wide##MR##x##NP)(int K, const float *A, size_t rsa, size_t csa,         \
                                            const float *P, size_t pstride, float *const *C,       \
                                            size_t ldc, const int *width, int acc)                 \
    {                                                                                              \
        VEC c[MR][2 * NP];                                                                         \
        for (int i = 0; i < MR; i++)                                                               \
            for (int j = 0; j < 2 * NP; j++) c[i][j] = VZERO();                                    \
        for (int k = 0; k < K; k++) {                                                              \
            const float *a = A + (size_t)k * csa, *w = P + (size_t)k * 2 * VL;                     \
            for (int i = 0; i < MR; i++) {                                                         \
                const VEC x = VBCAST(a[(size_t)i * rsa]);                                          \
                for (int j = 0; j < 2 * NP; j++)                                                   \
                    c[i][j] = VFMA(x, VLOAD(w + (size_t)(j / 2) * pstride + (j % 2) * VL), c[i][j]); \
            }                                                                                      \
        }                                                                                          \
        for (int q = 0; q < NP; q++)                                                               \
            for (int i = 0; i < MR; i++) {                                                         \
                float out[2 * VL], *cq = C[q] + (size_t)i * ldc;                                   \
                VSTORE(out, c[i][2 * q]);                                                          \
                VSTORE(out + VL, c[i][2 * q + 1]);                                                 \
                for (int j = 0; j < width[q]; j++) cq[j] = acc ? out[j] + cq[j] : out[j];          \
            }                                                                                      \
    }

WIDE(1, 4)
WIDE(2, 2)
WIDE(3, 2)
#undef WIDE

/* A few rows straight from W, without packing (packing all of op(W) would cost as much as the
 * product itself): C[0:M, n0:n1) (+)= A (M, K) @ op(W). With trans (op(W) = W^T, W (N, K)) each
 * element is a dot product of two contiguous rows, vectorised along k (A's rows must be
 * contiguous: csa == 1); else (W (K, N)) rows of W are scaled and added, vectorised along n. */
TARGET static void ISA(direct)(int M, int K, const float *A, size_t rsa, size_t csa, const float *W,
                               size_t ldw, int trans, float *C, size_t ldc, int n0, int n1, int acc)
{
    float out[4 * VL];
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * rsa;
        float *c = C + (size_t)m * ldc;
        if (trans) {
            for (int n = n0; n < n1; n += 4) {
                const int nn = n1 - n < 4 ? n1 - n : 4;
                const float *w[4];
                VEC s[4];
                for (int j = 0; j < 4; j++) {
                    w[j] = W + (size_t)(n + (j < nn ? j : 0)) * ldw;
                    s[j] = VZERO();
                }
                int k = 0;
                for (; k + VL <= K; k += VL) {
                    const VEC x = VLOAD(a + k);
                    for (int j = 0; j < 4; j++) s[j] = VFMA(x, VLOAD(w[j] + k), s[j]);
                }
                for (int j = 0; j < nn; j++) {
                    VSTORE(out, s[j]);
                    float sum = 0;
                    for (int l = 0; l < VL; l++) sum += out[l];
                    for (int kk = k; kk < K; kk++) sum += a[kk] * w[j][kk];
                    c[n + j] = acc ? c[n + j] + sum : sum;
                }
            }
        } else {
            int n = n0;
            for (; n + 4 * VL <= n1; n += 4 * VL) {
                VEC s[4] = {VZERO(), VZERO(), VZERO(), VZERO()};
                for (int k = 0; k < K; k++) {
                    const VEC x = VBCAST(a[(size_t)k * csa]);
                    const float *w = W + (size_t)k * ldw + n;
                    for (int j = 0; j < 4; j++) s[j] = VFMA(x, VLOAD(w + j * VL), s[j]);
                }
                for (int j = 0; j < 4; j++) VSTORE(out + j * VL, s[j]);
                for (int j = 0; j < 4 * VL; j++) c[n + j] = acc ? c[n + j] + out[j] : out[j];
            }
            for (; n < n1; n++) {       /* the last < 4 VL columns */
                float sum = 0;
                for (int k = 0; k < K; k++) sum += a[(size_t)k * csa] * W[(size_t)k * ldw + n];
                c[n] = acc ? c[n] + sum : sum;
            }
        }
    }
}

/* Rows [0, M) of one panel: tiles of FRNN_MR rows, then one kernel for the remainder. Tile t of
 * A starts at A + t * tsa: tsa = 6 * rsa for A in place, 6 * K for A packed in tiles whose six
 * rows are interleaved by k (rsa 1, csa 6: one contiguous run of broadcasts per k). */
TARGET static void ISA(panel_rows)(int M, int K, const float *A, size_t rsa, size_t csa, size_t tsa,
                                   const float *P, float *C, size_t ldc, int width, int acc)
{
    int i = 0;
    /* 1-3 rows past a whole tile (M = 32: 5 x 6 + 2): with 2 to 6 accumulators such a tail
     * waits on the FMA latency (4 cycles a k, as long as a 6-row tile's 6 at two FMAs a cycle),
     * so the last 7-9 rows go as two tiles of 4 + 3, 4 + 4 or 5 + 4 (8-10 accumulators) when the
     * rows are addressed by rsa (tsa == 6 rsa). Each element's sums are the same either way. */
    const int tail = M % 6, split = M > 6 && tail >= 1 && tail <= 3 && tsa == 6 * rsa;
    for (; i + 6 <= M - (split ? 6 : 0); i += 6)
        ISA(micro6)(K, A + (size_t)(i / 6) * tsa, rsa, csa, P, C + (size_t)i * ldc, ldc, width, acc);
    if (split) {
        const int first = tail == 3 ? 5 : 4;
        const float *a = A + (size_t)i * rsa;
        float *c = C + (size_t)i * ldc;
        if (first == 5) ISA(micro5)(K, a, rsa, csa, P, c, ldc, width, acc);
        else ISA(micro4)(K, a, rsa, csa, P, c, ldc, width, acc);
        a += (size_t)first * rsa, c += (size_t)first * ldc;
        if (tail == 1) ISA(micro3)(K, a, rsa, csa, P, c, ldc, width, acc);
        else ISA(micro4)(K, a, rsa, csa, P, c, ldc, width, acc);
        return;
    }
    const float *a = A + (size_t)(i / 6) * tsa;
    float *c = C + (size_t)i * ldc;
    switch (M - i) {
    case 5: ISA(micro5)(K, a, rsa, csa, P, c, ldc, width, acc); break;
    case 4: ISA(micro4)(K, a, rsa, csa, P, c, ldc, width, acc); break;
    case 3: ISA(micro3)(K, a, rsa, csa, P, c, ldc, width, acc); break;
    case 2: ISA(micro2)(K, a, rsa, csa, P, c, ldc, width, acc); break;
    case 1: ISA(micro1)(K, a, rsa, csa, P, c, ldc, width, acc); break;
    default: break;
    }
}

#undef ISA
#undef TARGET
#undef VEC
#undef VL
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VBCAST
#undef VFMA
