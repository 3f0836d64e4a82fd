/* decomp.h - how a call's work is shared by the team, and the cost model that picks it
 * (included by stack.h, itself included twice by template.h); the names of the decompositions,
 * the batch split's kept area and the cost model that picks one are untyped: decomp_model.h.
 *
 * The decompositions of a layer's (or a stack's) time loop:
 *   units     every step split by hidden units over the members, a barrier per step (timeloop.h);
 *   batch     the batch cut into chunks; a member runs whole sequences of a chunk alone, with all
 *             of W_hh packed in its own cache: no barrier until the end, where the chunks' weight
 *             gradients are added in chunk order (batch_task below);
 *   pipeline  a unidirectional stack's layer k on member (group) k, the steps handed up through
 *             progress counters (acquire/release), not a barrier (the wavefront of stack.h);
 *   directions  a bidirectional stack's two directions side by side, direction d on half d of
 *             the team (stack.h): each direction's recurrence runs on its own members with no
 *             barrier per step between the halves (none at all with one member a half), and the
 *             halves join once per layer (layer l + 1 reads both directions' outputs) and once
 *             more going back (the input gradient is the sum of the two directions' dx). With 3+
 *             members a half of 2+ splits its direction's steps by units (its own barriers);
 *             with 1 member, or D == 1, it is units;
 *   one       everything on the calling thread.
 * units, pipeline, directions and one give the same bits (every element is computed by one member in one
 * order). batch sums the weight gradients chunk by chunk, so it gives other bits (equal within
 * float rounding): whether a layer runs as batch therefore depends on its shape only, never on
 * the thread count, and the chunks are cut by a rule of the shape alone -- results are
 * bit-identical for any thread count under every choice. FASTRNN_DECOMP=units|batch|pipeline|
 * one|auto (read at every call) forces a choice for tests and benchmarks; a forward and its
 * backward must run under the same setting (the batch split lays the tape out chunk by chunk). */

#include "decomp_model.h"

/* The batch split of one layer, one direction: its chunks, and an area (frnn_area_take) holding
 * every chunk's own weight gradients (C x grads floats) and, per member, the rows of the chunk it
 * runs, gathered from the time-major buffers (members x rows floats). */
typedef struct {
    const frnn_blas *blas;
    const frnn_dims *d;
    const frnn_buffers *bf;
    int train, back, C, next;    /* next: the next chunk to claim */
    int grain;                   /* chunks are whole blocks of this many rows (F(chunk_rows)) */
    int own_rows;                /* a member's rows in its thread's kept area, not in mem */
    int members;                 /* the most members that run the task */
    REAL *mem;
    size_t rows, grads;          /* floats: a member's rows, a chunk's gradients */
} F(batch_run);

/* Does a call of L layers x D directions (dims and buffers L * D) on nth members run as the batch
 * split? Returns its chunk count, or 0. A forward and its backward ask the same question of the
 * same call, so they agree; an inference call (infer: forward, train 0) may take the inference
 * chunks instead (frnn_infer_chunks: the same bits as any other decomposition). */
static int F(batch_wanted)(const frnn_dims *dims, int L, int D, const frnn_buffers *run, int infer, int nth,
                           int *grain)
{
    const int forced = frnn_decomp_forced();
    *grain = FRNN_MR;
    if (forced == FRNN_DECOMP_BATCH) return frnn_batch_chunks(dims[0].B);
#if FRNN_F32
    if (forced != FRNN_DECOMP_AUTO || !frnn_engine_enabled()) return 0;
    for (int i = 0; i < L * D; i++)
        if (run[i].q8) return 0;
    if (frnn_model_batch(dims, L, D, run[0].precision == FRNN_PRECISION_BF16)) return frnn_batch_chunks(dims[0].B);
    *grain = 1;
    return infer ? frnn_infer_chunks(dims, L, D, nth, run[0].precision == FRNN_PRECISION_BF16) : 0;
#else
    (void)dims, (void)L, (void)D, (void)run, (void)infer, (void)nth;
    return 0;        /* float64 runs on BLAS, one member: chunks only when forced (tests) */
#endif
}

/* The parameter gradients a backward accumulates: pointer slots of bf and their sizes. */
static int F(grad_parts)(const frnn_dims *d, const frnn_buffers *bf, void *slot[6], size_t n[6])
{
    const size_t GH = (size_t)frnn_gates(d->cell) * d->H;
    const void *have[6] = {bf->dW_ih, bf->dW_hh, bf->db_ih, bf->db_hh, bf->dw_peep, bf->dW_hr};
    const size_t size[6] = {GH * d->In, GH * d->P, GH, GH, 3 * (size_t)d->H, (size_t)d->P * d->H};
    for (int i = 0; i < 6; i++) slot[i] = (void *)have[i], n[i] = have[i] ? size[i] : 0;
    return 6;
}

/* Rows [b0, b1) of chunk c: whole micro-kernel row blocks for the training chunks (the shape's
 * rule, frnn_batch_rows), an even share for the inference chunks (no sums depend on them). */
static void F(chunk_rows)(const F(batch_run) *br, int c, int *b0, int *b1)
{
    frnn_split(br->d->B, br->grain, c, br->C, b0, b1);
}

/* Set up a batch run of C chunks of whole `grain`-row blocks (batch_wanted's) for at most
 * `members` members (no memory yet: batch_floats says how much, batch_task finds it at br->mem). */
static void F(batch_start)(F(batch_run) *br, const frnn_blas *blas, const frnn_dims *d,
                           const frnn_buffers *bf, int train, int back, int members, int C, int grain)
{
    memset(br, 0, sizeof *br);
    br->blas = blas, br->d = d, br->bf = bf, br->train = train, br->back = back;
    br->C = C, br->grain = grain;
    /* inference chunks: one per member, and nothing shared (no gradients), so each member's rows
     * live in its thread's kept area -- a shared area of every member's rows outgrew the area
     * kept between calls (FRNN_AREA_KEEP_BYTES) at (50, 64, 512, 512): ~3200 page faults a call */
    br->own_rows = !back && grain == 1;
    br->members = members < br->C ? (members > 0 ? members : 1) : br->C;
    int most = 0;
    for (int c = 0, b0, b1; c < br->C; c++) {
        F(chunk_rows)(br, c, &b0, &b1);
        most = b1 - b0 > most ? b1 - b0 : most;
    }
    void *slot[6];
    size_t n[6];
    F(grad_parts)(d, bf, slot, n);
    if (back) for (int i = 0; i < 6; i++) br->grads += n[i];
    br->rows = (size_t)d->T * most * ((back ? 2 : 1) * (size_t)d->In + d->P);   /* x, y or dy, dx */
}

static size_t F(batch_floats)(const F(batch_run) *br)
{
    return br->grads * br->C + (br->own_rows ? 0 : br->rows * br->members) + 1;
}

/* Rows [b0, b1) of every step: dst (T, b1 - b0, W) = src (T, B, W), or back (scatter). */
static void F(rows_move)(REAL *chunk, REAL *full, int T, int B, int W, int b0, int b1, int scatter)
{
    const size_t n = (size_t)(b1 - b0) * W;
    for (int t = 0; t < T; t++) {
        REAL *c = chunk + (size_t)t * n, *f = full + ((size_t)t * B + b0) * W;
        if (scatter) memcpy(f, c, sizeof(REAL) * n);
        else memcpy(c, f, sizeof(REAL) * n);
    }
}

#define FRNN_ROWS(p, b0, w) ((p) ? (void *)((REAL *)(p) + (size_t)(b0) * (w)) : NULL)

/* What a member keeps from one chunk to its next: W_hh (W_hr) packed by its first chunk (the
 * panels do not depend on the rows), and the block holding them. */
typedef struct {
    void *block;
    F(recmat) W[2];
    int have, kept;              /* kept: frnn_block_put's tag of the block */
} F(batch_member);

/* An inference chunk that found no memory for its rows: its outputs -- rows [b0, b1) of y, h_T and
 * c_T -- are NaN, never stale. */
static void F(chunk_nan)(const F(batch_run) *br, int b0, int b1)
{
    const frnn_dims *d = br->d;
    const frnn_buffers *bf = br->bf;
    for (int t = 0; bf->y && t < d->T; t++)
        for (size_t e = 0; e < (size_t)(b1 - b0) * d->P; e++)
            ((REAL *)bf->y)[((size_t)t * d->B + b0) * d->P + e] = (REAL)NAN;
    void *state[2] = {bf->h_T, bf->c_T};
    const int width[2] = {d->P, d->H};
    for (int i = 0; i < 2; i++)
        for (size_t e = 0; state[i] && e < (size_t)(b1 - b0) * width[i]; e++)
            ((REAL *)state[i])[(size_t)b0 * width[i] + e] = (REAL)NAN;
}

/* Chunk c of a batch run, start to end on the calling member alone. */
static void F(batch_chunk)(F(batch_run) *br, int c, const frnn_par *par, F(batch_member) *me)
{
    const frnn_dims *d = br->d;
    const frnn_buffers *bf = br->bf;
    const int T = d->T, B = d->B, In = d->In, P = d->P, H = d->H;
    int b0, b1;
    F(chunk_rows)(br, c, &b0, &b1);
    if (b1 <= b0) return;
    frnn_dims dc = *d, before = *d;
    dc.B = b1 - b0, before.B = b0;
    int rows_kept = 0;
    REAL *xs = br->own_rows ? frnn_kept_get(KEPT_ROWS, sizeof(REAL) * br->rows, FRNN_KEPT_MAX, &rows_kept)
                            : br->mem + br->grads * br->C + br->rows * par->tid;
    if (xs == NULL) {                  /* no memory: the chunk's outputs are NaN, never stale */
        F(chunk_nan)(br, b0, b1);
        return;
    }
    REAL *ys = xs + (size_t)T * dc.B * In, *dxs = ys + (size_t)T * dc.B * P;
    REAL *gs = br->mem + br->grads * c;          /* where batch_task finds them */
    frnn_buffers bc = *bf;
    bc.x = xs, bc.threads = 1;
    bc.lengths = bf->lengths ? bf->lengths + b0 : NULL;
    bc.h0 = FRNN_ROWS(bf->h0, b0, P), bc.c0 = FRNN_ROWS(bf->c0, b0, H);
    bc.h_T = FRNN_ROWS(bf->h_T, b0, P), bc.c_T = FRNN_ROWS(bf->c_T, b0, H);
    /* the chunks' tapes one after another: a tape is B times a per-row size */
    bc.tape = (REAL *)bf->tape + frnn_tape_layout(&before, br->train).total;
    F(rows_move)(xs, (REAL *)bf->x, T, B, In, b0, b1, 0);
    if (br->back) {
        bc.y = NULL, bc.dy = bf->dy ? ys : NULL, bc.dx = bf->dx ? dxs : NULL;
        if (bf->dy) F(rows_move)(ys, (REAL *)bf->dy, T, B, P, b0, b1, 0);
        bc.dh_T = FRNN_ROWS(bf->dh_T, b0, P), bc.dc_T = FRNN_ROWS(bf->dc_T, b0, H);
        bc.dh0 = FRNN_ROWS(bf->dh0, b0, P), bc.dc0 = FRNN_ROWS(bf->dc0, b0, H);
        void *slot[6];
        size_t n[6];
        F(grad_parts)(d, bf, slot, n);
        memset(gs, 0, sizeof(REAL) * br->grads);
        void **to[6] = {&bc.dW_ih, &bc.dW_hh, &bc.db_ih, &bc.db_hh, &bc.dw_peep, &bc.dW_hr};
        for (int i = 0; i < 6; i++) *to[i] = slot[i] ? gs : NULL, gs += n[i];
    } else {
        bc.y = bf->y ? ys : NULL;
    }
    frnn_ctx cx = F(ctx_start)(br->blas, &dc, 1, bf->precision);
    F(job) jb;
    /* the member's thread keeps its block for its next call (a fresh one per call paid a page
     * fault per 4 KB of panels: ~2300 per forward of a (50, 64, 512, 512) bf16 LSTM) */
    int kept = 0;             /* (stays 0 when no block is taken: the BLAS path) */
    void *block = F(job_begin)(&jb, &cx, &dc, &bc, br->train, br->back, me->have ? -1 : KEPT_BLOCK, &kept);
    for (int i = 0; i < 2 && me->have; i++) {    /* this member packed W already: the same panels */
        F(recmat) w = me->W[i];
        w.cx = &cx;
        jb.W[i] = w;
    }
    const frnn_par alone = {0, 1, par->team, NULL};
    F(cell_task)(br->back)(&jb, &alone);
#if FRNN_F32
    const int reuse = !jb.W[0].q8_on && !jb.W[1].q8_on;     /* int8: nothing packed */
#else
    const int reuse = 0;                                     /* BLAS: nothing packed */
#endif
    if (!me->have && reuse) {
        me->block = block, me->kept = kept, me->have = 1;
        for (int i = 0; i < 2; i++) me->W[i] = jb.W[i], me->W[i].ready = 1;
    } else {
        frnn_block_put(block, kept);
    }
    if (!br->back && bf->y) F(rows_move)(ys, (REAL *)bf->y, T, B, P, b0, b1, 1);
    if (br->back && bf->dx) F(rows_move)(dxs, (REAL *)bf->dx, T, B, In, b0, b1, 1);
    if (br->own_rows) frnn_kept_put(KEPT_ROWS, xs, rows_kept);
}

/* The task: members claim chunks in order until none is left, each chunk's forward or backward
 * run whole by the member that claimed it; going back, after a barrier, the chunks' gradients
 * are added to the caller's in chunk order, element by element (each element by one member:
 * the same sums for any thread count). */
static void F(batch_task)(void *arg, const frnn_par *par)
{
    F(batch_run) *br = arg;
    F(batch_member) me;
    me.have = 0, me.block = NULL, me.kept = 0;
    if (par->tid < br->members)
        for (int c; (c = __atomic_fetch_add(&br->next, 1, __ATOMIC_ACQ_REL)) < br->C;)
            F(batch_chunk)(br, c, par, &me);
    frnn_block_put(me.block, me.kept);
    if (!br->back) return;
    frnn_sync(par);
    void *slot[6];
    size_t n[6], at = 0;
    F(grad_parts)(br->d, br->bf, slot, n);
    int live[12], nlive = 0;                /* the chunks that have rows (frnn_batch_chunks: <= 12) */
    for (int c = 0, b0, b1; c < br->C; c++) {
        F(chunk_rows)(br, c, &b0, &b1);
        if (b1 > b0) live[nlive++] = c;
    }
    for (int i = 0; i < 6; i++) {
        REAL *g = slot[i];
        const size_t e0 = n[i] * par->tid / par->nth, e1 = n[i] * (par->tid + 1) / par->nth;
        /* chunk after chunk over this member's elements: each element still gets g + p0 + p1 +
         * ... in chunk order, and the inner loop runs over contiguous floats */
        for (int k = 0; k < nlive; k++) {
            const REAL *p = br->mem + br->grads * live[k] + at;
            for (size_t e = e0; e < e1; e++) g[e] += p[e];
        }
        at += n[i];
    }
}

/* Members a call may use (the engine's team; BLAS: the caller alone). */
static int F(call_threads)(int threads)
{
    int nth = 1;
#if FRNN_F32
    if (frnn_engine_enabled()) {
        nth = frnn_threads();
        if (threads > 0 && threads < nth) nth = threads;
    }
#endif
    (void)threads;
    return nth;
}

/* A one-layer call as the batch split when it is wanted: returns 1 when it ran (or failed for
 * want of memory: then the outputs are NaN, never stale), 0 when the call should run as usual. */
static int F(batch_call)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *bf, int train,
                         int back)
{
    const int nth = F(call_threads)(bf->threads);
    int grain;
    const int C = F(batch_wanted)(d, 1, 1, bf, !train && !back, nth, &grain);
    if (C == 0) return 0;
    F(batch_run) br;
    F(batch_start)(&br, blas, d, bf, train, back, nth, C, grain);
    br.mem = frnn_area_take(sizeof(REAL) * F(batch_floats)(&br));
    if (br.mem == NULL) {
        const size_t TB = (size_t)d->T * d->B;
        void *out[3] = {back ? bf->dx : bf->y, back ? bf->dh0 : bf->h_T, back ? bf->dc0 : bf->c_T};
        const size_t n[3] = {TB * (back ? d->In : d->P), (size_t)d->B * d->P, (size_t)d->B * d->H};
        for (int i = 0; i < 3; i++)
            for (size_t e = 0; out[i] && e < n[i]; e++) ((REAL *)out[i])[e] = (REAL)NAN;
        return 1;
    }
    frnn_team_run(br.members, F(batch_task), &br);
    frnn_area_give(br.mem);
    return 1;
}
