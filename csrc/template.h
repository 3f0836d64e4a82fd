/* template.h - everything typed by REAL, included twice by kernels.c (float, double). */
#include "rows_by_ids.h"           /* before common.h, which uses it */
#include "common.h"
#include "recurrent.h"

/* A recurrent weight operand of a call: op(W) (K, N) from W with leading dimension ldw, columns
 * in segments of seg (the gates). N == 0: absent. */
typedef struct {
    const REAL *W;
    int N, K, ldw, seg;
} F(operand);

/* The forward's operands, op(W) = W^T: [0] W_hh (or its rows of the cell's first gates, cells.h),
 * [1] the rest of W_hh (the gate that multiplies the aux part: GRU reset-before's W_hn, MGU's)
 * or the LSTM projection W_hr. The backward's, op(W) = W: the same matrices. */
static void F(operands)(const frnn_dims *d, const REAL *W_hh, const REAL *W_hr, int backward, F(operand) op[2])
{
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    const int H = d->H, P = d->P, GH = row->gates * H;
    const int split = row->first_gates > 0, proj = row->has_c && P != H;
    const int n0 = split ? row->first_gates * H : GH, n1 = GH - n0;
    F(operand) none = {NULL, 0, 0, 1, 1};
    op[0] = (F(operand)){W_hh, backward ? P : n0, backward ? n0 : P, P, backward ? P : H};
    op[1] = split ? (F(operand)){W_hh + (size_t)n0 * H, n1, H, H, H}
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
static size_t F(team_pack_floats)(const frnn_dims *d, int backward, int bf16)
{
    const size_t rows = (size_t)d->T * d->B, small = bf16 ? 0 : FRNN_SMALL_M;   /* bf16 always packs */
    const int GH = frnn_gates(d->cell) * d->H, kr = rows < FRNN_KC ? (int)rows : FRNN_KC;
    const int kg = GH < FRNN_KC ? GH : FRNN_KC, ki = d->In < FRNN_KC ? d->In : FRNN_KC;
    size_t need[4] = {0, 0, 0, 0};
    if (!backward) {
        if (rows >= small) need[0] = frnn_pk_floats(ki, GH, GH);           /* x @ W_ih^T */
    } else {
        need[0] = frnn_pk_floats(kr, d->P, d->P);                                  /* dW_hh */
        if (bf16) need[0] += frnn_pk_floats(kr, d->In, d->In);      /* with dW_ih (F(hidden_grads)) */
        need[1] = frnn_pk_floats(kr, d->In, d->In);                                /* dW_ih */
        need[2] = frnn_pk_floats(kr, d->H, d->H);                                  /* dW_hr, W_hn */
        if (rows >= small) need[3] = frnn_pk_floats(kg, d->In, d->In);      /* dx */
    }
    size_t most = 1;
    for (int i = 0; i < 4; i++) most = need[i] > most ? need[i] : most;
    return most;
}

/* kept != NULL: the block may be the calling thread's kept area `slot` (kept.h; *kept says so). */
static void *F(engine_setup_k)(frnn_ctx *cx, const frnn_dims *d, int backward, const F(operand) op[2],
                               const void *packed, F(recmat) rec[2], int slot, int *kept)
{
    const int trans = !backward;
    size_t need[2], need16[2] = {0, 0}, total = 0, packed_total = 0;
    for (int i = 0; i < 2; i++) {
        need[i] = F(recmat_floats)(cx, op[i].N, op[i].K, op[i].seg);
        total += F(aligned)(need[i]);
    }
    const REAL *ready = NULL, *widen = NULL;
#if FRNN_F32
    frnn_ctx c16 = *cx;          /* a prepacked operand's panels are bf16 ones (bf32 0) */
    c16.bf32 = 0;
    for (int i = 0; i < 2; i++) {       /* the bf16 panels' sizes, once: the header check and widen */
        need16[i] = F(aligned)(F(recmat_floats)(&c16, op[i].N, op[i].K, op[i].seg));
        packed_total += need16[i];
    }
    if (cx->engine && packed != NULL && trans) {
        int head[FRNN_PACK_HEADER];
        memcpy(head, packed, sizeof head);
        if (head[0] == 0x46524e4e && head[1] == frnn_nr() && head[2] == d->cell && head[3] == d->H
            && head[4] == d->P && head[5] == (int)packed_total && head[6] == cx->bf16)
            ready = (const REAL *)packed + FRNN_PACK_HEADER;
    }
    if (ready != NULL && cx->bf32) widen = ready, ready = NULL;  /* float32 panels widened from them */
    /* bf16 on float32 panels, a cell whose backward step stages dG_t (F(rec_stage): LSTM, RNN,
       GRU's dGh): its two slots, after the panels */
    const int cl = d->cell;
    const size_t stage = backward && cx->bf32 && op[0].N > 0 && op[0].K > 0
                                 && (cl == FRNN_LSTM || cl == FRNN_RNN_TANH || cl == FRNN_RNN_RELU || cl == FRNN_GRU)
                             ? 2 * (size_t)d->B * (op[0].K + (op[0].K & 1)) : 0;
    total += F(aligned)(stage);
#else
    const size_t stage = 0;
#endif
    (void)packed_total, (void)widen, (void)need16;
    (void)d, (void)packed;
    REAL *mem[2] = {NULL, NULL};
    float *stage_mem = NULL;
    void *block = NULL;
    if (cx->engine) {
        const size_t pack = F(aligned)(F(team_pack_floats)(d, backward, cx->bf16));
        const size_t bytes = sizeof(float) * (pack + (ready ? 0 : total));
        if (kept) block = frnn_block_get(slot, bytes, kept);
        else if (posix_memalign(&block, 64, bytes) != 0) block = NULL;
        if (block == NULL) {
            cx->engine = 0, cx->nth = 1, cx->pack = NULL;
            block = NULL;
        } else {
            cx->pack = block;
            REAL *at = ready ? (REAL *)ready : (REAL *)block + pack;
            for (int i = 0; i < 2; i++) {
                mem[i] = need[i] ? at : NULL;
                at += F(aligned)(need[i]);
            }
            stage_mem = stage && !ready ? (float *)at : NULL;
        }
    }
    for (int i = 0; i < 2; i++) {
        F(recmat_init)(&rec[i], cx, trans, op[i].N, op[i].K, op[i].W, op[i].ldw, op[i].seg, mem[i]);
        rec[i].ready = ready != NULL;
#if FRNN_F32
        if (widen != NULL && mem[i] != NULL) frnn_bpk_init(&rec[i].bsrc, op[i].K, op[i].N, op[i].seg, (REAL *)widen);
        if (widen != NULL) widen += need16[i];
#endif
    }
#if FRNN_F32
    if (rec[0].bf32) rec[0].stage = stage_mem;
#endif
    (void)stage_mem;
    return block;
}

static inline void *F(engine_setup)(frnn_ctx *cx, const frnn_dims *d, int backward, const F(operand) op[2],
                                    const void *packed, F(recmat) rec[2])
{
    return F(engine_setup_k)(cx, d, backward, op, packed, rec, -1, NULL);
}

#if FRNN_F32
#include "int8_step.h"
#endif

/* A wavefront link of a stack call (stack.h): the rows of a layer's input -- x going forward, dy
 * going backward -- arrive chunk by chunk from the neighbouring layer, run by other members. */
typedef struct {
    const int *progress;     /* the producer's finished steps, counting up from 0 (forward) or down
                                from T (backward); NULL: the rows are all there */
    const REAL *mask;        /* inverted-dropout mask multiplied into the rows as they arrive, or NULL */
    REAL *rows;              /* (T, B, width) */
    int width;
    /* backward only, float32 engine: the producer lends its chunks' dx = dG @ W_ih to this
     * (the consumer's) members -- it publishes each chunk once its dG rows are complete, and the
     * consumer multiplies them with the producer's packed W_ih before it reads them (stack.h's
     * balance of a wavefront's groups); the same product on the same rows, so the same bits */
    const float *pull_packed;    /* the producer's op(W_ih) packed (frnn_kpk_pack), or NULL */
    const REAL *pull_dG;         /* the producer's dG (T, B, pull_GH) */
    int pull_GH, pull_bf16;
} F(link);

/* What a cell's task gets: the call, its tape layout, and its two recurrent operands. */
typedef struct {
    const frnn_ctx *cx;
    const frnn_dims *d;
    const frnn_buffers *bf;
    int train;
    frnn_layout L;
    F(recmat) W[2];          /* W_hh (GRU reset-before: W_h(rz)), and W_hn or W_hr; op(W) = W^T
                                forward, W backward */
    int chunk;               /* steps whose input rows are projected (forward) or whose dx is
                                produced (backward) together: T outside a wavefront */
    const F(link) *in;       /* wavefront: where the input rows come from (NULL: all there) */
    int *out;                /* wavefront: this run's progress, read by the next layer (NULL: none) */
    const float *packed_ih;  /* wavefront, float32 engine: op(W_ih) packed once for the chunks'
                                products (forward W_ih^T, backward W_ih; frnn_kpk_pack), or NULL */
    int lent;                /* backward wavefront: the consumer below makes the chunks' dx (F(link)) */
    const void *push;        /* forward wavefront: the job above, whose input projection this one
                                starts for each chunk it finishes (push_rows), or NULL */
    double push_frac;        /* the job above: the share of each chunk's rows projected below it */
    frnn_share share;        /* the task's shared steps (timeloop.h; zero from job_begin) */
    const int *ids;          /* a one-hot layer 0 (W_ih NULL) of a stack with rows_ids: input row r */
    REAL *table;             /* is table[ids[r]] (forward); its gradient adds there (backward) */
} F(job);

/* Rows of a chunk of `rows` whose input projection the layer below makes (a forward wavefront's
 * balance, stack.h): the share frac in whole micro-kernel tiles, both parts at least
 * FRNN_SMALL_M rows (the products' path, hence their bits, are those of any other row count). */
static size_t F(push_rows)(size_t rows, double frac)
{
    size_t n = (size_t)(rows * frac) / FRNN_MR * FRNN_MR;
    if (n < FRNN_SMALL_M) return 0;
    return rows - n < FRNN_SMALL_M ? rows : n;
}

/* Prepare a cell's forward or backward run: the job (one chunk, no links), its operands, the
 * initial states (forward: h0 [c0] into the first state slot; backward: the gradients reaching
 * h_T [c_T] into the carry at the start of the scratch area). Returns the memory block to give
 * back after the run: frnn_block_put(block, *kept), or free(block) when kept is NULL (slot < 0:
 * never the thread's kept area). */
static void *F(job_begin)(F(job) *jb, frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf,
                          int train, int backward, int slot, int *kept)
{
    if (kept) *kept = 0;            /* no kept block unless engine_setup_k takes one */
    memset(jb, 0, sizeof *jb);
    jb->cx = cx, jb->d = d, jb->bf = bf, jb->train = train, jb->L = frnn_tape_layout(d, train);
    jb->chunk = d->T > 0 ? d->T : 1;
    F(operand) op[2];
    F(operands)(d, bf->W_hh, bf->W_hr, backward, op);
#if FRNN_F32
    void *block = bf->q8 && !backward ? F(q8_setup)(cx, d, bf, op, jb->W, train)      /* int8 inference */
                                      : F(engine_setup_k)(cx, d, backward, op, bf->packed, jb->W, slot, kept);
#else
    void *block = F(engine_setup_k)(cx, d, backward, op, bf->packed, jb->W, slot, kept);
#endif
#if FRNN_F32
    /* a bf16 pack may hold W_ih^T too (frnn_pack_forward_bf16 with W_ih), after the panels */
    /* and a float32 pack W_ih^T in frnn_kpk_pack's blocks (frnn_pack_forward_f32_ih), used where
     * the product would pack it the same way (>= FRNN_SMALL_M rows: the same bits); a bf16 pack's
     * panels may be widened per call (bsrc) instead of ready */
    if (!bf->q8 && !backward && (jb->W[0].ready || jb->W[0].bsrc.data != NULL) && bf->W_ih != NULL
        && (cx->bf16 || (size_t)d->T * d->B >= FRNN_SMALL_M)) {
        int head[FRNN_PACK_HEADER];
        memcpy(head, bf->packed, sizeof head);
        if (head[7] == d->In) jb->packed_ih = (const float *)bf->packed + FRNN_PACK_HEADER + head[5];
    }
#endif
    const size_t BP = (size_t)d->B * d->P, BH = (size_t)d->B * d->H;
    const int lstm = frnn_cell_info(d->cell)->has_c;
    REAL *tape = bf->tape;
    if (backward) {
        F(state_init)(tape + jb->L.scratch, bf->dh_T, BP);
        if (lstm) F(state_init)(tape + jb->L.scratch + 3 * BP, bf->dc_T, BH);    /* LSTM's dc */
    } else {
        F(state_init)(train ? tape + jb->L.hs : (REAL *)bf->h_T, bf->h0, BP);
        if (lstm) F(state_init)(train ? tape + jb->L.cs : (REAL *)bf->c_T, bf->c0, BH);
    }
    return block;
}


/* rows (n values) *= mask (inverted dropout), this member's share. */
static void F(apply_mask)(const frnn_par *par, REAL *rows, const REAL *mask, size_t n)
{
    const size_t i1 = n * (par->tid + 1) / par->nth;
    for (size_t i = n * par->tid / par->nth; i < i1; i++) rows[i] *= mask[i];
}

/* The rows of steps [t0, t1) of a link have arrived: wait for their producer, then multiply in
 * the dropout mask. */
static void F(arrive)(const frnn_par *par, const F(link) *in, int t0, int t1, int B, int forward)
{
    if (in == NULL) return;
    if (in->progress) frnn_wait_for(par, in->progress, forward ? t1 : t0, forward);
#if FRNN_F32
    if (!forward && in->pull_packed) {    /* the producer's dx rows of the chunk, made here */
        const size_t r0 = (size_t)t0 * B, rows = (size_t)(t1 - t0) * B;
        if (in->pull_bf16)
            frnn_bkpk_mul(par, in->pull_packed, in->pull_GH, in->width, (int)rows, in->pull_dG + r0 * in->pull_GH,
                          in->pull_GH, in->rows + r0 * in->width, in->width, 0);
        else
            frnn_kpk_mul(par, in->pull_packed, in->pull_GH, in->width, (int)rows, in->pull_dG + r0 * in->pull_GH,
                         in->pull_GH, in->rows + r0 * in->width, in->width, 0);
    }
#endif
    if (in->mask == NULL) return;
    const size_t first = (size_t)t0 * B * in->width;
    F(apply_mask)(par, in->rows + first, in->mask + first, (size_t)(t1 - t0) * B * in->width);
    frnn_sync(par);
}

/* Rows [r0, r0 + rows) of job jb's input projection into its tape's gate rows (input_projection,
 * the cell's folded biases): what a chunk's own members make (chunk_forward) and what the layer
 * below makes of it (forward_done's push) -- disjoint rows of one product, one call. */
static void F(project_rows)(const frnn_par *par, const F(job) *jb, size_t r0, size_t rows)
{
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const int GH = frnn_gates(d->cell) * d->H;
    /* a one-hot layer 0 in place: input row r is table[ids[r]] */
    F(input_projection)(par, jb->cx, rows, GH, d->In, jb->ids ? jb->table : (const REAL *)bf->x + r0 * d->In,
                        jb->ids ? jb->ids + r0 : NULL, bf->W_ih, bf->b_ih, bf->b_hh,
                        frnn_cell_info(d->cell)->folded_gates * d->H, jb->packed_ih,
                        (REAL *)bf->tape + jb->L.gates + r0 * GH);
}

/* Forward, before step t: when t starts a chunk, its input rows arrive and their projection
 * (project_rows) fills their rows of the job's tape's gates. */
static void F(chunk_forward)(const frnn_par *par, const F(job) *jb, int t)
{
    if (t % jb->chunk) return;
    const frnn_dims *d = jb->d;
    const int t1 = d->T - t > jb->chunk ? t + jb->chunk : d->T;
    size_t r0 = (size_t)t * d->B, rows = (size_t)(t1 - t) * d->B;
    if (jb->push_frac > 0)                   /* masked below (forward_done): only wait */
        frnn_wait_for(par, jb->in->progress, t1, 1);
    else
        F(arrive)(par, jb->in, t, t1, d->B, 1);
    if (jb->push_frac > 0) {                 /* the layer below projected the first rows */
        const size_t n = F(push_rows)(rows, jb->push_frac);
        r0 += n, rows -= n;
        if (rows == 0) return;
    }
#if FRNN_F32
    const frnn_buffers *bf = jb->bf;
    const int GH = frnn_gates(d->cell) * d->H;
    if (bf->q8 && bf->q8->ih.N && bf->W_ih) {         /* int8 weights: x quantized row by row */
        frnn_q8_input_projection(par, (size_t)(t1 - t) * d->B, GH, (const REAL *)bf->x + r0 * d->In,
                                 &bf->q8->ih, bf->b_ih, bf->b_hh, frnn_cell_info(d->cell)->folded_gates * d->H,
                                 (REAL *)bf->tape + jb->L.gates + r0 * GH);
        return;
    }
#endif
    F(project_rows)(par, jb, r0, rows);
}

/* Forward, after step t and its barrier: report a finished chunk to the layer above. */
static void F(forward_done)(const frnn_par *par, const F(job) *jb, int t)
{
    if (!jb->out || ((t + 1) % jb->chunk && t + 1 != jb->d->T)) return;
    const F(job) *up = jb->push;
    if (up) {                                /* the first rows of the chunk's projection above */
        const frnn_dims *d = up->d;
        const int t0 = t - t % jb->chunk;
        const size_t r0 = (size_t)t0 * d->B, n = F(push_rows)((size_t)(t + 1 - t0) * d->B, up->push_frac);
        const F(link) *in = up->in;
        if (in->mask) {                      /* the chunk's rows masked here, not as they arrive */
            const size_t first = r0 * in->width;
            F(apply_mask)(par, in->rows + first, in->mask + first, (size_t)(t + 1 - t0) * d->B * in->width);
            frnn_sync(par);
        }
        if (n > 0) F(project_rows)(par, up, r0, n);   /* ends with a barrier: all rows in before the publish */
    }
    if (par->tid == 0) frnn_publish(par, jb->out, t + 1);
}

/* Backward, before step t (going down): when t is the last step of a chunk, its dy rows arrive. */
static void F(chunk_backward)(const frnn_par *par, const F(job) *jb, int t)
{
    if (t + 1 != jb->d->T && (t + 1) % jb->chunk) return;
    F(arrive)(par, jb->in, t - t % jb->chunk, t + 1, jb->d->B, 0);
}

/* Backward, after step t: when t is the first step of a chunk and the layer below waits, the
 * chunk's dx = dG @ W_ih (dG: the input-side gate gradients, complete for the chunk's rows). */
static void F(backward_done)(const frnn_par *par, const F(job) *jb, int t, const REAL *dG)
{
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    if (jb->out == NULL || t % jb->chunk) return;
    if (jb->lent) {                       /* the layer below makes this chunk's dx (F(arrive)) */
        frnn_sync(par);                   /* every member's dG columns of the chunk are written */
        if (par->tid == 0) frnn_publish(par, jb->out, t);
        return;
    }
    const int GH = frnn_gates(d->cell) * d->H, t1 = d->T - t > jb->chunk ? t + jb->chunk : d->T;
    const size_t r0 = (size_t)t * d->B;
    const size_t rows = (size_t)(t1 - t) * d->B;
#if FRNN_F32
    if (jb->packed_ih && jb->cx->bf16)
        frnn_bkpk_mul(par, jb->packed_ih, GH, d->In, (int)rows, dG + r0 * GH, GH, (REAL *)bf->dx + r0 * d->In,
                      d->In, 0);
    else if (jb->packed_ih)
        frnn_kpk_mul(par, jb->packed_ih, GH, d->In, (int)rows, dG + r0 * GH, GH, (REAL *)bf->dx + r0 * d->In,
                     d->In, 0);
    else
#endif
    F(prod)(par, jb->cx, rows, d->In, GH, dG + r0 * GH, GH, 0, (const REAL *)bf->W_ih, d->In, 0, 0,
            (REAL *)bf->dx + r0 * d->In, d->In);
    /* both products end with a barrier on the engine; the BLAS path has one member */
    if (par->tid == 0) frnn_publish(par, jb->out, t);
}

/* Run a cell's forward or backward task on the call's members. */
static void F(run_cell)(frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf, int train,
                        int backward, frnn_task task)
{
    F(job) jb;
    int kept = 0;         /* the engine block is the thread's kept one: no page faults per call */
    void *block = F(job_begin)(&jb, cx, d, bf, train, backward, KEPT_BLOCK, &kept);
    frnn_team_run(cx->engine ? cx->nth : 1, task, &jb);
    frnn_block_put(block, kept);
}

#include "timeloop.h"
#include "rnn.c"
#include "gru.c"
#include "lstm.c"
#include "mgu.c"

/* Each cell's step functions, in the order of the cell table (cells.h). */
static const F(cell_steps) *const F(CELL_STEPS)[FRNN_NUM_CELLS] = {
    [FRNN_RNN_TANH] = &F(rnn_steps), [FRNN_RNN_RELU] = &F(rnn_steps), [FRNN_GRU] = &F(gru_steps),
    [FRNN_GRU_RESET_BEFORE] = &F(gru_steps), [FRNN_GRU_SIMPLIFIED] = &F(gru_steps),
    [FRNN_LSTM] = &F(lstm_steps), [FRNN_MGU] = &F(mgu_steps),
};

static const F(cell_steps) *F(steps_of)(int cell) { return F(CELL_STEPS)[cell]; }

/* This call's context: the float32 engine when it is on, with as many members as there are
 * blocks of hidden units to share (and one when a step is too small to repay a barrier). */
static frnn_ctx F(ctx_start)(const frnn_blas *blas, const frnn_dims *d, int threads, int precision)
{
    frnn_ctx cx = {blas, 0, 1, NULL, 0};
    (void)d, (void)threads, (void)precision;
#if FRNN_F32
    cx.bf16 = precision == FRNN_PRECISION_BF16;
    if (frnn_engine_enabled() || cx.bf16) {
        const int nr = frnn_nr(), blocks = (d->H + nr - 1) / nr;
        const double step_flops = 2.0 * d->B * frnn_gates(d->cell) * d->H * d->P;
        int nth = frnn_threads();
        if (threads > 0 && threads < nth) nth = threads;
        if (nth > blocks) nth = blocks;
        if (step_flops < FRNN_MIN_STEP_FLOPS) nth = 1;
        cx.engine = 1;
        cx.nth = nth < 1 ? 1 : nth;
        cx.bf32 = cx.bf16 && frnn_bf32_rows(d->B);    /* by the call's batch: 1 keeps bf16 panels */
    }
#endif
    return cx;
}

#include "stack.h"
#include "generate.h"

void F(frnn_forward)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf, int train)
{
    if (frnn_cell_info(d->cell) == NULL) return;      /* an unknown cell: nothing runs */
    if (F(batch_call)(blas, d, buf, train, 0)) return;   /* the batch split (decomp.h) */
    frnn_ctx cx = F(ctx_start)(blas, d, frnn_decomp_threads(buf->threads), buf->precision);
    F(run_cell)(&cx, d, buf, train, 0, F(forward_task));
}

void F(frnn_backward)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf)
{
    if (frnn_cell_info(d->cell) == NULL) return;
    if (F(batch_call)(blas, d, buf, 1, 1)) return;
    frnn_ctx cx = F(ctx_start)(blas, d, frnn_decomp_threads(buf->threads), buf->precision);
    F(run_cell)(&cx, d, buf, 1, 1, F(backward_task));
}

static size_t F(packed_size_p)(const frnn_dims *d, int precision)
{
    if (frnn_cell_info(d->cell) == NULL) return 0;
    frnn_ctx cx = F(ctx_start)(NULL, d, 1, precision);
    cx.bf32 = 0;                  /* a prepacked operand holds bf16 panels whatever the batch */
    F(operand) op[2];
    F(operands)(d, NULL, NULL, 0, op);
    if (!cx.engine) return 0;
    return FRNN_PACK_HEADER + F(aligned)(F(recmat_floats)(&cx, op[0].N, op[0].K, op[0].seg))
           + F(aligned)(F(recmat_floats)(&cx, op[1].N, op[1].K, op[1].seg));
}

static int F(pack_forward_p)(const frnn_dims *d, const REAL *W_ih, const REAL *W_hh, const REAL *W_hr,
                             int precision, REAL *out)
{
    if (frnn_cell_info(d->cell) == NULL) return -1;
    frnn_ctx cx = F(ctx_start)(NULL, d, 1, precision);
    cx.bf32 = 0;
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
    int with_ih = 0;
#if FRNN_F32
    if (W_ih != NULL && d->In > 0) {     /* W_ih^T (In, GH) as the projection reads it */
        if (cx.bf16) frnn_bkpk_pack(at, d->In, frnn_gates(d->cell) * d->H, W_ih, d->In, 1);
        else frnn_kpk_pack(at, d->In, frnn_gates(d->cell) * d->H, W_ih, d->In, 1);
        with_ih = d->In;
    }
#endif
    (void)W_ih;
    int head[FRNN_PACK_HEADER] = {0x46524e4e, frnn_nr(), d->cell, d->H, d->P, (int)total, cx.bf16, with_ih};
    memcpy(out, head, sizeof head);
    return 0;
}

size_t F(frnn_packed_size)(const frnn_dims *d) { return F(packed_size_p)(d, FRNN_PRECISION_F32); }

int F(frnn_pack_forward)(const frnn_dims *d, const REAL *W_hh, const REAL *W_hr, REAL *out)
{
    return F(pack_forward_p)(d, NULL, W_hh, W_hr, FRNN_PRECISION_F32, out);
}