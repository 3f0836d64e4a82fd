/* engine.h - fastrnn's float32 GEMM engine: packed weight panels, register-blocked micro-kernels
 * for AVX-512 and AVX2/FMA (picked by CPUID at run time, forceable), run on the thread team.
 *
 * Every product has the form  C (M, N) (+)= A (M, K) @ op(W)  where
 *   - A is read in place with strides: A(i, k) = A[i * rsa + k * csa] (so A^T costs nothing);
 *   - op(W) (K, N) is W (K, N) or W^T for W (N, K), row-major with leading dimension ldw, and is
 *     first copied into panels of NR adjacent columns, P[p][k][0..NR) = op(W)[k][col(p) + ..].
 * Columns may be grouped in segments (the gates of a recurrent cell): each segment of `seg`
 * columns starts a new panel, so the panels of hidden units [u0, u1) of every gate are known
 * without arithmetic on the caller's side (weight-stationary splits, fused gate epilogues).
 *
 * Determinism: every element of C is accumulated by one thread, in k order, with the same
 * fused multiply-adds whatever the thread count or the row block it falls in.
 */
#ifndef FASTRNN_ENGINE_H
#define FASTRNN_ENGINE_H
#include <stddef.h>
#include "team.h"

enum { FRNN_ISA_NONE = 0, FRNN_ISA_AVX2 = 2, FRNN_ISA_AVX512 = 3 };

#define FRNN_MR 6          /* rows per micro-kernel call */
#define FRNN_KC 256        /* depth of one packed block in frnn_team_gemm */
#define FRNN_MC 96         /* rows per cache block in frnn_team_gemm (a multiple of FRNN_MR) */
#define FRNN_SMALL_M 8     /* frnn_team_gemm reads W directly (no packing) below this many rows */

/* The best ISA this CPU supports, and the active one (FASTRNN_ISA=avx512|avx2|none at first
 * use, or frnn_set_isa). frnn_set_isa returns the ISA now active (unsupported requests fail:
 * the active ISA stays). */
int frnn_isa_supported(int isa);
int frnn_isa_active(void);
int frnn_set_isa(int isa);
int frnn_nr(void);         /* panel width of the active ISA: 16 (AVX2) or 32 (AVX-512) */

/* dst[c * ldd + r] = src[r * lds + c] for r < R, c < C (8 x 8 register tiles on AVX2): packing. */
void frnn_transpose(int R, int C, const float *src, size_t lds, float *dst, size_t ldd);

/* A packed op(W): `panels` panels of K x nr floats. */
typedef struct {
    int K, N, seg, ppseg, panels, nr;
    float *data;
} frnn_pk;

size_t frnn_pk_floats(int K, int N, int seg);
void frnn_pk_init(frnn_pk *pk, int K, int N, int seg, float *mem);
/* First column of panel p and its width (< nr only for the last panel of a segment). */
static inline int frnn_pk_col(const frnn_pk *pk, int p) { return (p / pk->ppseg) * pk->seg + (p % pk->ppseg) * pk->nr; }
static inline int frnn_pk_width(const frnn_pk *pk, int p)
{
    int w = pk->seg - (p % pk->ppseg) * pk->nr;
    return w < pk->nr ? w : pk->nr;
}
/* Pack panels [p0, p1) from rows [k0, k0 + pk->K) of op(W). */
void frnn_pk_pack(const frnn_pk *pk, const float *W, size_t ldw, int trans, int k0, int p0, int p1);
/* Panels [p0, p1) of C (M, N) (+)= A @ packed (accumulate: add to C; else overwrite). */
void frnn_pk_mul(const frnn_pk *pk, int p0, int p1, int M, const float *A, size_t rsa, size_t csa,
                 float *C, size_t ldc, int accumulate);
/* The panels of segment q holding units [u0, u1) (u0 a multiple of nr). */
static inline void frnn_pk_units(const frnn_pk *pk, int q, int u0, int u1, int *p0, int *p1)
{
    *p0 = q * pk->ppseg + u0 / pk->nr;
    *p1 = q * pk->ppseg + (u1 + pk->nr - 1) / pk->nr;
}

/* A whole product on the team, called by every member of a task: C (M, N) = A @ op(W) + beta C
 * (beta 0 or 1), K blocked by FRNN_KC through the shared `pack` buffer (frnn_team_gemm_floats);
 * fewer than FRNN_SMALL_M rows read op(W) directly and need no buffer.
 * Ends with a barrier, so C is complete for every member on return. */
typedef struct {
    int M, N, K;
    const float *A;
    size_t rsa, csa;
    const float *W;
    size_t ldw;
    int trans_w;
    float *C;
    size_t ldc;
    int beta;
} frnn_gemm_args;
size_t frnn_team_gemm_floats(int N);
void frnn_team_gemm(const frnn_par *par, const frnn_gemm_args *g, float *pack);

/* op(W) (K, N) packed once, in blocks of FRNN_KC rows of K as frnn_team_gemm packs them, for a
 * product repeated on new rows (a wavefront's chunks): frnn_kpk_mul gives frnn_team_gemm's bits
 * for >= FRNN_SMALL_M rows without packing again. Rows are shared out; ends with a barrier. */
size_t frnn_kpk_floats(int K, int N);
void frnn_kpk_pack(float *mem, int K, int N, const float *W, size_t ldw, int trans_w);
void frnn_kpk_mul(const frnn_par *par, const float *mem, int K, int N, int M, const float *A,
                  size_t lda, float *C, size_t ldc, int beta);

/* C[0:M, n0:n1) (+)= A (M, K) @ W^T (W (N, K)) read in place by one member, element by element
 * as frnn_team_gemm computes products of fewer than FRNN_SMALL_M rows (the same bits): the
 * generation loop's few-row products on a member's own columns (csrc/generate_team.h). */
void frnn_direct_mul(int M, int K, const float *A, size_t lda, const float *W, size_t ldw, float *C,
                     size_t ldc, int n0, int n1, int acc);

/* The same product as a task of its own (allocates its pack buffer); returns 0, or -1 when the
 * buffer cannot be allocated (then nothing was computed). */
int frnn_engine_gemm(int nth, const frnn_gemm_args *g);

#endif
