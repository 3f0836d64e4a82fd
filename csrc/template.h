/* template.h - everything typed by REAL, included twice by kernels.c (float, double). */
#include "common.h"

/* Memory for one call on the engine, in one block: the shared pack buffer of the team products
 * (N up to max_n) and `n` panel areas of need[i] floats (mem[i], NULL where need[i] is 0).
 * Returns the block to free. When it cannot be allocated the call falls back to the BLAS path. */
static void *F(engine_mem)(frnn_ctx *cx, int max_n, const size_t *need, int n, REAL **mem)
{
    for (int i = 0; i < n; i++) mem[i] = NULL;
    if (!cx->engine) return NULL;
    const size_t align = 16;                  /* floats: 64-byte aligned areas */
    size_t total = frnn_team_gemm_floats(max_n > 0 ? max_n : 1) + align;
    for (int i = 0; i < n; i++) total += need[i] + align;
    void *block = NULL;
    if (posix_memalign(&block, 64, sizeof(float) * total) != 0) {
        cx->engine = 0, cx->nth = 1, cx->pack = NULL;
        return NULL;
    }
    float *at = block;
    cx->pack = at;
    at += (frnn_team_gemm_floats(max_n > 0 ? max_n : 1) + align - 1) / align * align;
    for (int i = 0; i < n; i++) {
        if (need[i] == 0) continue;
        mem[i] = (REAL *)at;
        at += (need[i] + align - 1) / align * align;
    }
    return block;
}

/* Run a cell's task on the call's members. */
static void F(team)(const frnn_ctx *cx, frnn_task task, void *job)
{
    frnn_team_run(cx->engine ? cx->nth : 1, task, job);
}

#include "recurrent.h"
#include "rnn.c"
#include "gru.c"
#include "lstm.c"

/* This call's context: the float32 engine when it is on, with as many members as there are
 * blocks of hidden units to share (and one when a step is too small to repay a barrier). */
static frnn_ctx F(ctx_start)(const frnn_blas *blas, const frnn_dims *d)
{
    frnn_ctx cx = {blas, 0, 1, NULL};
    (void)d;
#if FRNN_F32
    if (frnn_engine_enabled()) {
        const int nr = frnn_nr(), blocks = (d->H + nr - 1) / nr;
        const double step_flops = 2.0 * d->B * frnn_gates(d->cell) * d->H * d->P;
        int nth = frnn_threads();
        if (nth > blocks) nth = blocks;
        if (step_flops < FRNN_MIN_STEP_FLOPS) nth = 1;
        cx.engine = 1;
        cx.nth = nth < 1 ? 1 : nth;
    }
#endif
    return cx;
}

void F(frnn_forward)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf, int train)
{
    frnn_ctx cx = F(ctx_start)(blas, d);
    switch (d->cell) {
    case FRNN_RNN_TANH: case FRNN_RNN_RELU: F(rnn_forward)(&cx, d, buf, train); break;
    case FRNN_GRU: case FRNN_GRU_RESET_BEFORE: case FRNN_GRU_SIMPLIFIED:
        F(gru_forward)(&cx, d, buf, train); break;
    case FRNN_LSTM: F(lstm_forward)(&cx, d, buf, train); break;
    }
}

void F(frnn_backward)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf)
{
    frnn_ctx cx = F(ctx_start)(blas, d);
    switch (d->cell) {
    case FRNN_RNN_TANH: case FRNN_RNN_RELU: F(rnn_backward)(&cx, d, buf); break;
    case FRNN_GRU: case FRNN_GRU_RESET_BEFORE: case FRNN_GRU_SIMPLIFIED:
        F(gru_backward)(&cx, d, buf); break;
    case FRNN_LSTM: F(lstm_backward)(&cx, d, buf); break;
    }
}
