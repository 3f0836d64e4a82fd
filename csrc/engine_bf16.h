/* engine_bf16.h - the bf16 products of the engine (gemm_bf16.c): packed bf16 panels and
 * micro-kernels giving the exact bits of bf16.h's emulation of VDPBF16PS.
 *
 * Mixed precision as oneDNN does it: op(W) is rounded to bf16 (RNE) when packed, A is rounded to
 * bf16 as it is read, and every element of C is
 *     C (+)= dot_bf16(A row, op(W) column)        (bf16.h: frnn_bf16_dot, float32 accumulation)
 * with one plain float32 addition of C at the end of each block of FRNN_KC rows of K (as the float32
 * engine adds its blocks). Every kernel -- the portable emulation, AVX2 (bf16 weights converted by a
 * 16-bit shift, FMAs in the pair order under MXCSR.FTZ|DAZ) and AVX512-BF16 (vdpbf16ps) -- gives
 * these bits, so results do not depend on the CPU, the kernel or the thread count.
 *
 * On AVX512-BF16 (gemm_bf16_512.h) A is staged once per product, step or block as bf16 pairs (one
 * 32-bit word per pair of k) and vdpbf16ps tiles of up to 12 x 32 read it with no conversion.
 *
 * Panels: NR (frnn_nr()) columns, K padded to an even Kp with zeros, stored as pairs:
 * panel[(j * NR + n) * 2 + e] = bf16(op(W)[2j + e][col + n]) -- one 32-bit word per column and pair
 * of k, the operand layout of vdpbf16ps. Sizes below are in floats (one float holds two bf16).
 */
#ifndef FASTRNN_ENGINE_BF16_H
#define FASTRNN_ENGINE_BF16_H
#include <stddef.h>
#include <stdint.h>
#include "engine.h"

/* The bf16 kernel that runs: the portable emulation, AVX2+FMA, or AVX512-BF16. */
enum { FRNN_BF16_EMULATED = 0, FRNN_BF16_AVX2 = 2, FRNN_BF16_AVX512BF16 = 4 };
/* Supported here (the CPU has the instructions). */
int frnn_bf16_kernel_supported(int kernel);
/* The kernel in use: FASTRNN_BF16=emulated|avx2|avx512bf16 at first use (an unsupported request
 * gives the emulation), else the best the CPU has within the active float32 ISA (FASTRNN_ISA=none
 * gives the emulation, avx2 the AVX2 kernel). frnn_set_bf16_kernel returns the kernel now in use
 * (an unsupported request changes nothing; -1 goes back to the default). */
int frnn_bf16_kernel(void);
int frnn_set_bf16_kernel(int kernel);
const char *frnn_bf16_kernel_name(int kernel);

typedef struct {
    int K, Kp, N, seg, ppseg, panels, nr;
    uint32_t *data;          /* panels of Kp / 2 x nr words */
} frnn_bpk;

size_t frnn_bpk_floats(int K, int N, int seg);
void frnn_bpk_init(frnn_bpk *pk, int K, int N, int seg, void *mem);
static inline int frnn_bpk_col(const frnn_bpk *pk, int p) { return (p / pk->ppseg) * pk->seg + (p % pk->ppseg) * pk->nr; }
static inline int frnn_bpk_width(const frnn_bpk *pk, int p)
{
    int w = pk->seg - (p % pk->ppseg) * pk->nr;
    return w < pk->nr ? w : pk->nr;
}
static inline void frnn_bpk_units(const frnn_bpk *pk, int q, int u0, int u1, int *p0, int *p1)
{
    *p0 = q * pk->ppseg + u0 / pk->nr;
    *p1 = q * pk->ppseg + (u1 + pk->nr - 1) / pk->nr;
}
/* Pack panels [p0, p1) from rows [k0, k0 + pk->K) of op(W), rounded to bf16. */
void frnn_bpk_pack(const frnn_bpk *pk, const float *W, size_t ldw, int trans, int k0, int p0, int p1);
/* Panels [p0, p1) of C (M, N) (+)= bf16(A) @ packed; A (M, K) read with strides (rsa, csa) and
 * rounded to bf16 as read (round_a 0: its values are bf16 already). */
void frnn_bpk_mul(const frnn_bpk *pk, int p0, int p1, int M, const float *A, size_t rsa, size_t csa,
                  int round_a, float *C, size_t ldc, int accumulate);

/* Columns [u0, u1) of every segment of C (M, N) (+)= bf16(A) @ packed (a recurrent step's
 * product: A (M, K), row stride lda, rounded as read; on AVX512-BF16 staged once for all the
 * segments). */
void frnn_bpk_mul_units(const frnn_bpk *pk, int u0, int u1, int M, const float *A, size_t lda, float *C, size_t ldc,
                        int accumulate);

/* op(W) (K, N) packed once in bf16, in blocks of FRNN_KC rows of K as frnn_team_gemm_bf16 packs
 * them (the same bits, no packing per call): an input projection repeated over chunks or steps.
 * frnn_bkpk_mul shares rows out among the members, or columns when there are few rows; ends with
 * a barrier. */
size_t frnn_bkpk_floats(int K, int N);
void frnn_bkpk_pack(float *mem, int K, int N, const float *W, size_t ldw, int trans_w);
void frnn_bkpk_mul(const frnn_par *par, const float *mem, int K, int N, int M, const float *A,
                   size_t lda, float *C, size_t ldc, int beta);
/* One member's frnn_bkpk_mul (beta 0) with C's starting value given as one row, bias (N), added to
 * every row -- the bits of C filled with that row and beta 1, without writing the fill -- on the
 * AVX512-BF16 kernels. Returns 1 when done, else 0 -- the product takes another path here (AMX rows,
 * the float32 kernels, another ISA) or found no memory; C may then be partly written: the caller
 * fills it and calls frnn_bkpk_mul. */
int frnn_bkpk_mul_bias(const float *mem, int K, int N, int M, const float *A, size_t lda, float *C, size_t ldc,
                       const float *bias);

/* A recurrent operand of a call of M >= 8 rows on an AVX2 CPU (frnn_bf32_rows): float32 panels
 * (frnn_pk, K = Kp) of bf16-rounded op(W), each pair of k stored (odd, even), packed ONCE per call
 * -- twice the bytes of bf16 panels, but each step then runs on the float32 micro-kernels with
 * nothing widened (gemm_bf16_f32.h says why the bits are the emulation's). Batch 1 keeps the bf16
 * panels: a step there is bound by the bytes it reads. frnn_bf32_pack packs panels [p0, p1) from
 * op(W) (K rows), frnn_bf32_widen from bf16 panels of the same shape (a prepacked operand);
 * frnn_bf32_mul: columns [u0, u1) of every segment of C (M, N) (+)= bf16(A) @ op(W), A (M, K)
 * rounded and pair-swapped once per call into a per-thread area. */
int frnn_bf32_rows(int M);
size_t frnn_bf32_floats(int K, int N, int seg);
void frnn_bf32_init(frnn_pk *pk, int K, int N, int seg, float *mem);
void frnn_bf32_pack(const frnn_pk *pk, int K, const float *W, size_t ldw, int trans, int p0, int p1);
void frnn_bf32_widen(const frnn_pk *pk, const frnn_bpk *src, int p0, int p1);
void frnn_bf32_mul(const frnn_pk *pk, int K, int u0, int u1, int M, const float *A, size_t lda, float *C,
                   size_t ldc, int accumulate);
/* A backward step's dG_t staged once for every member (recurrent.h's rec_stage): columns
 * [c0, c1) of A (M, K) rounded to bf16 into out (M rows of Kp = K + K % 2, pair-swapped: A's
 * column c at c ^ 1, an odd K's element K - 1 zero) -- the rows frnn_bf32_mul would stage, so
 * frnn_bf32_mul_staged on them gives its bits; members staging disjoint columns write disjoint
 * elements. */
void frnn_bf32_stage(int M, int K, const float *A, size_t lda, int c0, int c1, float *out);
void frnn_bf32_mul_staged(const frnn_pk *pk, int u0, int u1, int M, const float *a, float *C, size_t ldc,
                          int accumulate);

/* frnn_team_gemm in bf16 (same arguments and barriers; `pack` holds frnn_team_gemm_floats(N)
 * floats, which is more than a bf16 block needs, and is used whatever M). */
void frnn_team_gemm_bf16(const frnn_par *par, const frnn_gemm_args *g, float *pack);
/* frnn_team_gemm_bf16 as a task of its own (gemm.c: frnn_engine_gemm's pack buffer); returns 0,
 * or -1 when the buffer cannot be allocated (then nothing was computed). */
int frnn_engine_gemm_bf16(int nth, const frnn_gemm_args *g);
/* Two such products sharing A (the same M, K, A, rsa, csa: dW_hh and dW_ih from dG^T): the same
 * bits as two frnn_team_gemm_bf16 calls, with A staged once for both on the float32 kernels
 * (AVX2). `pack` holds frnn_team_gemm_floats(g[0].N) + frnn_team_gemm_floats(g[1].N) floats (or
 * the two products' min(K, FRNN_KC)-row blocks, one after the other). */
void frnn_team_gemm_bf16_pair(const frnn_par *par, const frnn_gemm_args g[2], float *pack);

#endif
