/* int8.h - int8 inference: s8 weights with per-output-channel scales, u8 activations quantized
 * per row inside the product, s32 accumulation, float32 out (csrc/gemm_int8.c).
 *
 * The scheme (every ISA path computes exactly these integers, so every path gives the same bits):
 *   weights   W (N, K) float -> w (N, Kp) s8, w[n][k] = rint(W[n][k] / s_w[n]) in [-127, 127],
 *             s_w[n] = max_k |W[n][k]| / 127 (one scale per output channel: per gate and unit
 *             for W_ih and W_hh); columns K..Kp are 0; comp[n] = 64 * sum_k w[n][k].
 *   rows      a (K) float -> q (Kp) u8, q[k] = 64 + rint(a[k] * (63 / m)) in [1, 127] with
 *             m = max_k |a[k]| and s_a = m / 63: 7 bits, so AVX2's vpmaddubsw (u8 x s8 pairs
 *             summed into s16: at most 2 * 127 * 127 < 2^15) never saturates. m == 0 gives q =
 *             64, s_a = 0; a non-finite m gives q = 64 and s_a = NaN (the row's outputs are NaN).
 *   product   acc[n] = sum_k q[k] w[n][k] (s32, exact for Kp <= FRNN_Q8_KMAX);
 *             out = (float)(acc - comp[n]) * (s_a * s_w[n])   [+ C when accumulating].
 * rint is round-half-to-even (NumPy's np.rint), so a NumPy transcription reproduces the bits.
 *
 * Static rows (the recurrent h_{t-1} of a layer whose cell keeps |h| <= 1, frnn_q8_layer.hstatic):
 *   q[k] = 64 + clamp(rint(a[k] * 63), -63, 63), s_a = 1/63 (a fixed scale, oneDNN's way); a
 *   non-finite a[k] gives q[k] = 0, a byte the dynamic rows never hold, and a row holding a 0 has
 *   s_a = NaN (its outputs are NaN, as a dynamic non-finite row's). Each value is quantized on its
 *   own, so the member that computes a column of h_t quantizes it too, right after the gate maths
 *   (timeloop.h), and the next step multiplies the stored bytes: no range pass, no barrier. The
 *   product is then the scheme above with those bytes and that s_a.
 */
#ifndef FASTRNN_INT8_H
#define FASTRNN_INT8_H
#include <stddef.h>
#include <stdint.h>

#define FRNN_Q8_ALIGN 64         /* Kp: K rounded up to this */
#define FRNN_Q8_KMAX 16384       /* the largest Kp (the quantized rows of a block live on the stack) */

#define FRNN_Q8_PW 8             /* columns (rows of W) per packed panel: one 32-byte vector */
#define FRNN_Q8_NC 32            /* the packed columns are padded to a multiple of this (a kernel block) */
#define FRNN_Q8_ROWBUF 65536     /* bytes of quantized rows a product keeps on the stack */

/* One quantized matrix, op(W) = W^T: C (M, N) = A (M, K) @ W^T. N == 0: absent.
 * w is packed (frnn_q8_pack) in panels of FRNN_Q8_PW = 8 columns: panel p holds W's rows
 * 8p..8p+7 as Kp/4 vectors of 32 bytes, vector g = {w[8p + j][4g + t] : j < 8, t < 4} (byte
 * 4j + t), so one 32-byte load times a broadcast of 4 activation bytes is what vpmaddubsw
 * (+ vpmaddwd by ones) and vpdpbusd take: 8 columns x 4 values of k, summed per column in s32
 * (FBGEMM's and oneDNN's AVX2 int8 layout, 4 k-values interleaved per output column). A view
 * (frnn_q8_rows) keeps the whole packed matrix and starts at packed column n0. */
typedef struct frnn_q8_mat {
    const int8_t *w;             /* packed, Np x Kp bytes (Np: N rounded up to FRNN_Q8_NC) */
    const float *scale;          /* (N) s_w */
    const int32_t *comp;         /* (N) 64 * row sums of w */
    int N, K, Kp;
    int n0, Np;                  /* a view's first packed column; the packed matrix's column count */
} frnn_q8_mat;

/* Bytes of the packed form of an (N, K) matrix; pack q (N, K) (leading dimension ldq, values in
 * [-127, 127]) into it (zeros past K and N). */
size_t frnn_q8_packed_bytes(int N, int Kp);
void frnn_q8_pack(const int8_t *q, size_t ldq, int N, int K, int Kp, int8_t *out);

/* A layer's quantized weights: W_ih (GH, I), W_hh (GH, P), W_hr (P, H) (LSTM projection; N 0
 * without one). W_ih with N == 0 leaves the input projection to the float path (W_ih NULL: x
 * already projected). */
typedef struct frnn_q8_layer {
    frnn_q8_mat ih, hh, hr;
    int hstatic;                 /* 1: h_{t-1} in static rows (above) when the cell keeps |h| <= 1 and
                                    |h0| <= 1 (int8_step.h), else dynamic rows */
} frnn_q8_layer;

#define FRNN_Q8_STATIC_SCALE (1.0f / 63.0f)

/* Static rows (above): q[k] for the n values a[0..n) (no padding written). */
void frnn_q8_quantize_static(const float *a, int n, uint8_t *q);

/* frnn_q8_mul over rows already quantized as static rows: qa (M, W->Kp) with leading dimension
 * ldq, bytes K..Kp equal to 64. */
void frnn_q8_mul_static(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const uint8_t *qa, size_t ldq,
                        int beta, float *C, size_t ldc);

/* The integer dot-product paths. */
enum { FRNN_Q8_REF = 0, FRNN_Q8_AVX2 = 2, FRNN_Q8_AVXVNNI = 4, FRNN_Q8_AVX512VNNI = 5 };
int frnn_q8_isa_supported(int isa);
int frnn_q8_isa_active(void);    /* FASTRNN_INT8_ISA=ref|avx2|avxvnni|avx512vnni at first use,
                                    else follows FASTRNN_ISA (none: ref; avx2: avx2), else the best */
int frnn_q8_set_isa(int isa);    /* returns the ISA now active (unsupported requests fail) */

/* Quantize one row (the scheme above): q (Kp), returns s_a. */
float frnn_q8_quantize_row(const float *a, int K, int Kp, uint8_t *q);

/* The rows of W, rows [r0, r0 + m) of a matrix view (nothing copied). */
frnn_q8_mat frnn_q8_rows(const frnn_q8_mat *W, int r0, int m);

/* Columns [q*seg + u0, q*seg + u1) of every segment q of C (M, N) = A (M, K) @ W^T + beta * C
 * (beta 0 or 1), A with leading dimension lda. Each row of A is quantized once per call (rows
 * in groups that fit FRNN_Q8_ROWBUF; each block of W's panels then meets every row of a group). */
void frnn_q8_mul(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const float *A, size_t lda,
                 int beta, float *C, size_t ldc);

/* The input projection of `rows` rows on the members of a task (rows shared out): out (rows, GH) =
 * x (rows, I) @ W^T + bias, bias = b_ih + b_hh on columns [0, fold), b_ih alone after (as the
 * float path). Ends with a barrier. */
#include "team.h"
void frnn_q8_input_projection(const frnn_par *par, size_t rows, int GH, const float *x, const frnn_q8_mat *W,
                              const float *b_ih, const float *b_hh, int fold, float *out);

#endif
