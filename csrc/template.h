/* template.h - everything typed by REAL, included twice by kernels.c (float, double). */
#include "common.h"
#include "recurrent.h"

/* A recurrent weight operand of a call: op(W) (K, N) from W with leading dimension ldw, columns
 * in segments of seg (the gates). N == 0: absent. */
typedef struct {
    const REAL *W;
    int N, K, ldw, seg;
} F(operand);

/* The forward's operands, op(W) = W^T: [0] W_hh (GRU reset-before: its r, z rows), [1] GRU
 * reset-before's W_hn or the LSTM projection W_hr. The backward's, op(W) = W: the same matrices. */
static void F(operands)(const frnn_dims *d, const REAL *W_hh, const REAL *W_hr, int backward, F(operand) op[2])
{
    const int H = d->H, P = d->P, GH = frnn_gates(d->cell) * H;
    const int before = d->cell == FRNN_GRU_RESET_BEFORE, proj = d->cell == FRNN_LSTM && P != H;
    const int n0 = before ? 2 * H : GH;
    F(operand) none = {NULL, 0, 0, 1, 1};
    op[0] = (F(operand)){W_hh, backward ? P : n0, backward ? n0 : P, P, backward ? P : H};
    op[1] = before ? (F(operand)){W_hh + (size_t)2 * H * H, H, H, H, H}
          : proj ? (F(operand)){W_hr, backward ? H : P, backward ? P : H, H, backward ? H : P} : none;
}

/* Floats of a prepacked forward operand set (header + panel areas), 0 off the engine. */
#define FRNN_PACK_HEADER 16
#define FRNN_PACK_ALIGN 16
static size_t F(aligned)(size_t n) { return (n + FRNN_PACK_ALIGN - 1) / FRNN_PACK_ALIGN * FRNN_PACK_ALIGN; }

/* Set up the two recurrent operands of a call: on the engine, one memory block holding the
 * shared pack buffer of the team products and the operands' panels -- or, when
 * `packed` holds this forward's panels made by frnn_pack_forward for the active ISA, those
 * (nothing to pack). Returns the block to free. When the block cannot be allocated the call
 * falls back to the BLAS path. */
/* Floats of the shared pack buffer: the largest min(K, FRNN_KC) x N block among the products the
 * call runs on the team (forward: the input projection; backward: the weight gradients and dx). */
static size_t F(team_pack_floats)(const frnn_dims *d, int backward)
{
    const size_t rows = (size_t)d->T * d->B;
    const int GH = frnn_gates(d->cell) * d->H, kr = rows < FRNN_KC ? (int)rows : FRNN_KC;
    const int kg = GH < FRNN_KC ? GH : FRNN_KC, ki = d->In < FRNN_KC ? d->In : FRNN_KC;
    size_t need[4] = {0, 0, 0, 0};
    if (!backward) {
        if (rows >= FRNN_SMALL_M) need[0] = frnn_pk_floats(ki, GH, GH);           /* x @ W_ih^T */
    } else {
        need[0] = frnn_pk_floats(kr, d->P, d->P);                                  /* dW_hh */
        need[1] = frnn_pk_floats(kr, d->In, d->In);                                /* dW_ih */
        need[2] = frnn_pk_floats(kr, d->H, d->H);                                  /* dW_hr, W_hn */
        if (rows >= FRNN_SMALL_M) need[3] = frnn_pk_floats(kg, d->In, d->In);      /* dx */
    }
    size_t most = 1;
    for (int i = 0; i < 4; i++) most = need[i] > most ? need[i] : most;
    return most;
}

static void *F(engine_setup)(frnn_ctx *cx, const frnn_dims *d, int backward, const F(operand) op[2],
                             const void *packed, F(recmat) rec[2])
{
    const int trans = !backward;
    size_t need[2], total = 0;
    for (int i = 0; i < 2; i++) {
        need[i] = F(recmat_floats)(cx, op[i].N, op[i].K, op[i].seg);
        total += F(aligned)(need[i]);
    }
    const REAL *ready = NULL;
#if FRNN_F32
    if (cx->engine && packed != NULL && trans) {
        int head[FRNN_PACK_HEADER];
        memcpy(head, packed, sizeof head);
        if (head[0] == 0x46524e4e && head[1] == frnn_nr() && head[2] == d->cell && head[3] == d->H
            && head[4] == d->P && head[5] == (int)total)
            ready = (const REAL *)packed + FRNN_PACK_HEADER;
    }
#endif
    (void)d, (void)packed;
    REAL *mem[2] = {NULL, NULL};
    void *block = NULL;
    if (cx->engine) {
        const size_t pack = F(aligned)(F(team_pack_floats)(d, backward));
        if (posix_memalign(&block, 64, sizeof(float) * (pack + (ready ? 0 : total))) != 0) {
            cx->engine = 0, cx->nth = 1, cx->pack = NULL;
            block = NULL;
        } else {
            cx->pack = block;
            REAL *at = ready ? (REAL *)ready : (REAL *)block + pack;
            for (int i = 0; i < 2; i++) {
                mem[i] = need[i] ? at : NULL;
                at += F(aligned)(need[i]);
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        F(recmat_init)(&rec[i], cx, trans, op[i].N, op[i].K, op[i].W, op[i].ldw, op[i].seg, mem[i]);
        rec[i].ready = ready != NULL;
    }
    return block;
}

/* What a cell's task gets: the call, its tape layout, and its two recurrent operands. */
typedef struct {
    const frnn_ctx *cx;
    const frnn_dims *d;
    const frnn_buffers *bf;
    int train;
    frnn_layout L;
    F(recmat) W[2];          /* W_hh (GRU reset-before: W_h(rz)), and W_hn or W_hr; op(W) = W^T
                                forward, W backward */
} F(job);

/* Run a cell's forward or backward task on the call's members: set up the operands, the
 * initial states (forward: h0 [c0] into the first state slot; backward: the gradients reaching
 * h_T [c_T] into the carry at the start of the scratch area), then the team. */
static void F(run_cell)(frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf, int train,
                        int backward, frnn_task task)
{
    F(job) jb = {cx, d, bf, train, frnn_tape_layout(d, train)};
    F(operand) op[2];
    F(operands)(d, bf->W_hh, bf->W_hr, backward, op);
    void *block = F(engine_setup)(cx, d, backward, op, bf->packed, jb.W);
    const size_t BP = (size_t)d->B * d->P, BH = (size_t)d->B * d->H;
    const int lstm = d->cell == FRNN_LSTM;
    REAL *tape = bf->tape;
    if (backward) {
        F(state_init)(tape + jb.L.scratch, bf->dh_T, BP);
        if (lstm) F(state_init)(tape + jb.L.scratch + 3 * BP, bf->dc_T, BH);    /* LSTM's dc */
    } else {
        F(state_init)(train ? tape + jb.L.hs : (REAL *)bf->h_T, bf->h0, BP);
        if (lstm) F(state_init)(train ? tape + jb.L.cs : (REAL *)bf->c_T, bf->c0, BH);
    }
    frnn_team_run(cx->engine ? cx->nth : 1, task, &jb);
    free(block);
}

#include "rnn.c"
#include "gru.c"
#include "lstm.c"

/* This call's context: the float32 engine when it is on, with as many members as there are
 * blocks of hidden units to share (and one when a step is too small to repay a barrier). */
static frnn_ctx F(ctx_start)(const frnn_blas *blas, const frnn_dims *d, int threads)
{
    frnn_ctx cx = {blas, 0, 1, NULL};
    (void)d, (void)threads;
#if FRNN_F32
    if (frnn_engine_enabled()) {
        const int nr = frnn_nr(), blocks = (d->H + nr - 1) / nr;
        const double step_flops = 2.0 * d->B * frnn_gates(d->cell) * d->H * d->P;
        int nth = frnn_threads();
        if (threads > 0 && threads < nth) nth = threads;
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
    frnn_ctx cx = F(ctx_start)(blas, d, buf->threads);
    switch (d->cell) {
    case FRNN_RNN_TANH: case FRNN_RNN_RELU: F(run_cell)(&cx, d, buf, train, 0, F(rnn_forward_task)); break;
    case FRNN_GRU: case FRNN_GRU_RESET_BEFORE: case FRNN_GRU_SIMPLIFIED:
        F(run_cell)(&cx, d, buf, train, 0, F(gru_forward_task)); break;
    case FRNN_LSTM: F(run_cell)(&cx, d, buf, train, 0, F(lstm_forward_task)); break;
    }
}

void F(frnn_backward)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf)
{
    frnn_ctx cx = F(ctx_start)(blas, d, buf->threads);
    switch (d->cell) {
    case FRNN_RNN_TANH: case FRNN_RNN_RELU: F(run_cell)(&cx, d, buf, 1, 1, F(rnn_backward_task)); break;
    case FRNN_GRU: case FRNN_GRU_RESET_BEFORE: case FRNN_GRU_SIMPLIFIED:
        F(run_cell)(&cx, d, buf, 1, 1, F(gru_backward_task)); break;
    case FRNN_LSTM: F(run_cell)(&cx, d, buf, 1, 1, F(lstm_backward_task)); break;
    }
}

size_t F(frnn_packed_size)(const frnn_dims *d)
{
    frnn_ctx cx = F(ctx_start)(NULL, d, 1);
    F(operand) op[2];
    F(operands)(d, NULL, NULL, 0, op);
    if (!cx.engine) return 0;
    return FRNN_PACK_HEADER + F(aligned)(F(recmat_floats)(&cx, op[0].N, op[0].K, op[0].seg))
           + F(aligned)(F(recmat_floats)(&cx, op[1].N, op[1].K, op[1].seg));
}

int F(frnn_pack_forward)(const frnn_dims *d, const REAL *W_hh, const REAL *W_hr, REAL *out)
{
    frnn_ctx cx = F(ctx_start)(NULL, d, 1);
    if (!cx.engine) return -1;
    F(operand) op[2];
    F(operands)(d, W_hh, W_hr, 0, op);
    REAL *at = out + FRNN_PACK_HEADER;
    size_t total = 0;
    for (int i = 0; i < 2; i++) {
        F(recmat) r;
        const size_t need = F(recmat_floats)(&cx, op[i].N, op[i].K, op[i].seg);
        F(recmat_init)(&r, &cx, 1, op[i].N, op[i].K, op[i].W, op[i].ldw, op[i].seg, need ? at : NULL);
        F(recmat_pack)(&r, 0, op[i].seg);
        at += F(aligned)(need);
        total += F(aligned)(need);
    }
    int head[FRNN_PACK_HEADER] = {0x46524e4e, frnn_nr(), d->cell, d->H, d->P, (int)total};
    memcpy(out, head, sizeof head);
    return 0;
}