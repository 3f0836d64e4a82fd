/* head.c - a language model's training step in one call (frnn_train_step in train.h; the
 * template is head_impl.h): input rows, the stack (stack.h), the head and softmax cross-entropy
 * forward and backward, the input gradient's scatter, then frnn_optim_step (optim.c).
 *
 * The products are the engine's (float32) or BLAS's (float64) with the arguments nn/linear.py
 * gives them; the pointwise passes run on the team split by rows (or by columns where rows add
 * into one element), each element computed by one member in the Python path's order. */
#define _POSIX_C_SOURCE 200112L   /* posix_memalign (kept_area.h) */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "train.h"
#include "team.h"
#include "head_common.h"
#include "activations.h"
#include "engine.h"             /* frnn_transpose */
#include "engine_bf16.h"        /* frnn_team_gemm_bf16 */

/* ---- the heads' bf16 products (fastrnn.h: frnn_matmul_bf16) ---- */

/* the caller's pack buffer, kept between calls (kept_area.h: a fresh mapping per call paid a
 * page fault per 4 KB); up to 4 MB, a bigger one is the call's own */
enum { KEPT_BF16_PACK, FRNN_KEPT_N };
#include "kept_area.h"
#define KEPT_BF16_PACK_FLOATS ((size_t)1 << 20)

typedef struct {
    const frnn_gemm_args *g;
    float *pack;
} bf16_job;

static void bf16_task(void *arg, const frnn_par *par)
{
    const bf16_job *job = arg;
    frnn_team_gemm_bf16(par, job->g, job->pack);
}

int frnn_matmul_bf16(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda, const float *b,
                     int ldb, int beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return 0;
    /* one member for products too small to share, as frnn_matmul_f32 (the bits do not depend on it) */
    const int nth = 2.0 * m * n * k < 4 * 65536.0 ? 1 : frnn_threads();
    const frnn_gemm_args g = {m, n, k, a, trans_a ? 1 : (size_t)lda, trans_a ? (size_t)lda : 1, b,
                              (size_t)ldb, trans_b, c, (size_t)ldc, beta};
    int kept;
    float *pack = frnn_kept_get(KEPT_BF16_PACK, sizeof(float) * frnn_team_gemm_floats(n),
                                sizeof(float) * KEPT_BF16_PACK_FLOATS, &kept);
    if (pack == NULL) return -1;
    bf16_job job = {&g, pack};
    frnn_team_run(nth, bf16_task, &job);
    frnn_kept_put(KEPT_BF16_PACK, pack, kept);
    return 0;
}

/* the prepacked head: a header (magic, the panel width it was packed for), then frnn_bkpk's panels */
#define HEAD_BPK_MAGIC 0x42484b50
#define HEAD_BPK_HEADER 16      /* floats: the panels start 64 bytes in (aligned after an aligned start) */

size_t frnn_head_bf16_floats(int n, int k)
{
    return HEAD_BPK_HEADER + frnn_bkpk_floats(k > 0 ? k : 1, n);
}

void frnn_head_bf16_pack(float *mem, int n, int k, const float *W, int ldw)
{
    int head[2] = {HEAD_BPK_MAGIC, frnn_nr()};
    memcpy(mem, head, sizeof head);
    if (k > 0) frnn_bkpk_pack(mem + HEAD_BPK_HEADER, k, n, W, (size_t)ldw, 1);
}

typedef struct {
    const float *mem, *a;
    float *c;
    int m, n, k, lda, ldc, beta;
} bkpk_job;

static void bkpk_task(void *arg, const frnn_par *par)
{
    const bkpk_job *j = arg;
    frnn_bkpk_mul(par, j->mem, j->k, j->n, j->m, j->a, (size_t)j->lda, j->c, (size_t)j->ldc, j->beta);
}

int frnn_matmul_bf16_packed(const float *mem, int m, int n, int k, const float *a, int lda, int beta, float *c,
                            int ldc)
{
    int head[2];
    memcpy(head, mem, sizeof head);
    if (head[0] != HEAD_BPK_MAGIC || head[1] != frnn_nr() || k <= 0) return 1;  /* another ISA's panels */
    if (m <= 0 || n <= 0) return 0;
    const int nth = 2.0 * m * n * k < 4 * 65536.0 ? 1 : frnn_threads();
    bkpk_job job = {mem + HEAD_BPK_HEADER, a, c, m, n, k, lda, ldc, beta};
    frnn_team_run(nth, bkpk_task, &job);
    return 0;
}

/* a bench driver (bench/lm_step.c) that includes this file may time the phases */
#ifndef FRNN_HEAD_MARK
#define FRNN_HEAD_MARK(phase) ((void)0)
#endif

/* the passes of a step (head_impl.h's head_task) */
enum { HEAD_ZERO_GATHER, HEAD_SOFTMAX, HEAD_BIAS_GRAD, HEAD_SCATTER, HEAD_SCATTER_IN, HEAD_SCATTER_OUT };

/* exp of a row of non-positive values (logits minus their maximum) in place: the vectorisable
 * Cephes polynomial of activations.h (relative error ~1e-7, NaN stays NaN, -inf gives 0) instead
 * of a libm call per element, which was most of the softmax pass; inlined into softmax_row's
 * wide-vector clones. float32 only: the float64 step keeps libm's exp (the float64 path must
 * agree with NumPy to 1e-12). */
#define REAL float
#define F(name) name##_f32
#define FRNN_F32 1
#define EXP_ROW(l, V) for (int v_ = 0; v_ < (V); v_++) (l)[v_] = frnn_exp_nonpos_f((l)[v_])
#define LOG logf
#define ROW_CLONES FRNN_CLONES
#include "head_impl.h"
#undef REAL
#undef F
#undef FRNN_F32
#undef EXP_ROW
#undef LOG
#undef ROW_CLONES

#define REAL double
#define F(name) name##_f64
#define FRNN_F32 0
#define EXP_ROW(l, V) for (int v_ = 0; v_ < (V); v_++) (l)[v_] = exp((l)[v_])
#define LOG log
#define ROW_CLONES
#include "head_impl.h"
#undef REAL
#undef F
#undef FRNN_F32
#undef EXP_ROW
#undef LOG
#undef ROW_CLONES
