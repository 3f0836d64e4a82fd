#define _POSIX_C_SOURCE 200112L   /* posix_memalign */
#define _DEFAULT_SOURCE           /* glibc: MAP_ANONYMOUS (decomp.h's chunk areas) */
#define _DARWIN_C_SOURCE          /* macOS: the same */
/* kernels.c - the one compilation unit: tape layouts, then every template for float and double. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "fastrnn.h"
#include "activations.h"
#include "sigmoid_avx2.h"
#include "tanh_avx2.h"
#include "activations_avx512.h"
#include "layout.h"
#include "engine.h"
#include "engine_bf16.h"
#include "team.h"
#include "sampling.h"
#include "int8.h"
#include "amx.h"            /* frnn_amx_bf16_rows: decomp.h keeps a chunk on the call's product path */

#include "cells.h"
#include "kept.h"

frnn_layout frnn_tape_layout(const frnn_dims *d, int train)
{
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    const size_t T = d->T, B = d->B, H = d->H, P = d->P, GH = (size_t)row->gates * d->H;
    const int lstm = row->has_c, proj = lstm && d->P != d->H;
    const size_t steps = train ? T : 1;  /* inference keeps one step of per-step buffers */
    frnn_layout L;
    size_t at = 0;
    L.per_step = train;
    L.gates = at;   at += T * B * GH;                               /* (T, B, GH) */
    L.hs = at;      at += train ? (T + 1) * B * P : 0;              /* (T+1, B, P) h_0..h_T */
    L.cs = at;      at += train && lstm ? (T + 1) * B * H : 0;      /* (T+1, B, H) c_0..c_T */
    L.tc = at;      at += lstm ? steps * B * H : 0;                 /* (T, B, H) tanh(c_t) */
    L.aux = at;     at += row->aux || proj ? steps * B * H : 0;     /* (T, B, H) hn | r*h | f*h | m */
    L.dG = at;      at += train ? T * B * GH : 0;                   /* (T, B, GH) */
    L.dGh = at;     at += train && row->recurrent_copy ? T * B * GH : 0;
    L.dhs = at;     at += train && proj ? T * B * P : 0;            /* (T, B, P) */
    L.scratch = at; at += B * (GH + 3 * P + 3 * H);
    L.total = at;
    return L;
}

size_t frnn_tape_size(const frnn_dims *d) { return frnn_cell_info(d->cell) ? frnn_tape_layout(d, 1).total : 0; }
size_t frnn_work_size(const frnn_dims *d) { return frnn_cell_info(d->cell) ? frnn_tape_layout(d, 0).total : 0; }

/* Engine settings (process-wide, like the team they drive): the engine on or off
 * (FASTRNN_KERNELS=blas turns it off at start-up), and the thread count (0: the default). */
static int ENGINE_ON = -1, THREADS = 0;

/* A time step below this many flops runs on one member: a barrier would cost more. */
#ifndef FRNN_MIN_STEP_FLOPS
#define FRNN_MIN_STEP_FLOPS 65536.0
#endif

int frnn_engine_enabled(void)
{
    int on = __atomic_load_n(&ENGINE_ON, __ATOMIC_ACQUIRE);
    if (on < 0) {
        const char *env = getenv("FASTRNN_KERNELS");
        on = !(env && !strcmp(env, "blas"));
        __atomic_store_n(&ENGINE_ON, on, __ATOMIC_RELEASE);
    }
    return on && frnn_isa_active() != FRNN_ISA_NONE;
}

void frnn_set_engine(int on) { __atomic_store_n(&ENGINE_ON, on ? 1 : 0, __ATOMIC_RELEASE); }

int frnn_threads(void)
{
    int n = __atomic_load_n(&THREADS, __ATOMIC_ACQUIRE);
    return n > 0 ? n : frnn_default_threads();
}

void frnn_set_threads(int n)
{
    __atomic_store_n(&THREADS, n < 0 ? 0 : n > FRNN_MAX_THREADS ? FRNN_MAX_THREADS : n, __ATOMIC_RELEASE);
}

/* What every cell function gets: the BLAS table, and for the float32 engine the member count and
 * the shared pack buffer of its team products. Float64 and FASTRNN_KERNELS=blas run today's
 * path: BLAS products on one thread (BLAS brings its own). */
typedef struct {
    const frnn_blas *blas;
    int engine;            /* 1: packed panels, micro-kernels, the team; 0: BLAS */
    int nth;               /* members of the team running this call (1 on the BLAS path) */
    float *pack;           /* engine: frnn_team_gemm_floats(max N) floats shared by the members */
    int bf16;              /* float32 only: every product in bf16 (engine_bf16.h), on the engine
                              whatever the ISA (the portable emulation without AVX2) */
    int bf32;              /* bf16 and a batch of many rows on AVX2: the recurrent operands in
                              float32 panels of bf16 values (frnn_bf32_rows; recurrent.h) */
} frnn_ctx;

#define REAL float
#define FRNN_F32 1
#define F(name) name##_f32
#define BLAS_GEMM blas->sgemm
#define SIGMOID frnn_sigmoid_f
#define TANH frnn_tanh_f
#include "template.h"
#undef REAL
#undef F
#undef BLAS_GEMM
#undef SIGMOID
#undef TANH
#undef FRNN_F32

size_t frnn_packed_size_bf16(const frnn_dims *d, int with_ih)
{
    const size_t n = packed_size_p_f32(d, FRNN_PRECISION_BF16);
    return n && with_ih && d->In > 0 ? n + frnn_bkpk_floats(d->In, frnn_gates(d->cell) * d->H) : n;
}

int frnn_pack_forward_bf16(const frnn_dims *d, const float *W_ih, const float *W_hh, const float *W_hr, float *out)
{
    return pack_forward_p_f32(d, W_ih, W_hh, W_hr, FRNN_PRECISION_BF16, out);
}

size_t frnn_packed_size_f32_ih(const frnn_dims *d, int with_ih)
{
    const size_t n = packed_size_p_f32(d, FRNN_PRECISION_F32);
    return n && with_ih && d->In > 0 ? n + frnn_kpk_floats(d->In, frnn_gates(d->cell) * d->H) : n;
}

int frnn_pack_forward_f32_ih(const frnn_dims *d, const float *W_ih, const float *W_hh, const float *W_hr, float *out)
{
    return pack_forward_p_f32(d, W_ih, W_hh, W_hr, FRNN_PRECISION_F32, out);
}

#define REAL double
#define FRNN_F32 0
#define F(name) name##_f64
#define BLAS_GEMM blas->dgemm
#define SIGMOID frnn_sigmoid_d
#define TANH frnn_tanh_d
#include "template.h"
#undef REAL
#undef F
#undef BLAS_GEMM
#undef SIGMOID
#undef TANH
#undef FRNN_F32

void frnn_matmul_f32(const frnn_blas *blas, int trans_a, int trans_b, int m, int n, int k,
                     const float *a, int lda, const float *b, int ldb, int beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    if (frnn_engine_enabled() && k > 0) {
        /* one member for products too small to share */
        const int nth = 2.0 * m * n * k < 4 * FRNN_MIN_STEP_FLOPS ? 1 : frnn_threads();
        frnn_gemm_args g = {m, n, k, a, trans_a ? 1 : (size_t)lda, trans_a ? (size_t)lda : 1, b,
                            (size_t)ldb, trans_b, c, (size_t)ldc, beta};
        if (frnn_engine_gemm(nth, &g) == 0) return;
    }
    frnn_gemm_f32(blas, trans_a, trans_b, m, n, k, 1, a, lda, b, ldb, beta ? 1 : 0, c, ldc);
}
/* ---- the heads' bf16 products (fastrnn.h: frnn_matmul_bf16), beside frnn_matmul_f32 ---- */

int frnn_matmul_bf16(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda, const float *b,
                     int ldb, int beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return 0;
    /* one member for products too small to share, as frnn_matmul_f32 (the bits do not depend on it) */
    const int nth = 2.0 * m * n * k < 4 * FRNN_MIN_STEP_FLOPS ? 1 : frnn_threads();
    const frnn_gemm_args g = {m, n, k, a, trans_a ? 1 : (size_t)lda, trans_a ? (size_t)lda : 1, b,
                              (size_t)ldb, trans_b, c, (size_t)ldc, beta};
    return frnn_engine_gemm_bf16(nth, &g);
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
    const int nth = 2.0 * m * n * k < 4 * FRNN_MIN_STEP_FLOPS ? 1 : frnn_threads();
    bkpk_job job = {mem + HEAD_BPK_HEADER, a, c, m, n, k, lda, ldc, beta};
    frnn_team_run(nth, bkpk_task, &job);
    return 0;
}

