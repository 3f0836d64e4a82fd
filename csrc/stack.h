/* stack.h - L layers x D directions in one call (template, included by template.h after the
 * cells; the API and the data flow are described at frnn_stack in fastrnn.h).
 *
 * Three schedules, all giving the same bits (each output element is still computed by one
 * member, in the same order; chunked input projections and dx products are row-independent):
 *   - layer after layer, each step shared by all members (one group);
 *   - bidirectional: per layer, direction 0 on one half of the team and direction 1 on the other,
 *     each half syncing only itself (no barrier per step between the halves) -- the "directions"
 *     decomposition of decomp.h; FASTRNN_DECOMP=units runs the directions in turn instead;
 *   - wavefront (unidirectional): G groups, layer k on group k % G; a layer projects its input
 *     chunk by chunk as the layer below publishes finished steps (going back, the layer below
 *     takes the dx chunks the layer above publishes), so the layers' time loops overlap.
 * And, when the cost model of decomp_model.h picks it from the stack's shape, the batch split: layer
 * after layer, each layer's batch chunks run whole by the members (other bits in the weight
 * gradients, summed chunk by chunk; still the same for any thread count).
 */

#define FRNN_MAX_GROUPS 64

static frnn_task F(cell_task)(int backward)
{
    return backward ? F(backward_task) : F(forward_task);
}

#include "decomp.h"

/* Rows (t, b) of dst (T, B, ldd) in this member's share: dst (+)= src (T, B, lds) at step t, or
 * (reverse) at each sequence's step reversed within its length (steps past it map to
 * themselves), W columns each. */
static void F(move_rows)(const frnn_par *par, REAL *dst, int ldd, const REAL *src, int lds, int W,
                         int T, int B, const int *lengths, int reverse, int add)
{
    const size_t rows = (size_t)T * B, r1 = rows * (par->tid + 1) / par->nth;
    for (size_t r = rows * par->tid / par->nth; r < r1; r++) {
        const int t = (int)(r / B), b = (int)(r % B);
        const int len = lengths ? lengths[b] : T;
        const int ts = reverse && t < len ? len - 1 - t : t;
        REAL *o = dst + r * ldd;
        const REAL *i = src + ((size_t)ts * B + b) * lds;
        if (add) for (int j = 0; j < W; j++) o[j] += i[j];
        else memcpy(o, i, sizeof(REAL) * W);
    }
}

typedef struct {
    const frnn_stack *st;
    F(job) *jobs;            /* L * D */
    F(batch_run) *batch;     /* L * D: a job's batch split (decomp.h) when its .mem is set (one
                                area for all: the layers run one after another) */
    int backward, groups;
    int rows_route;          /* frnn_stack.rows_ids through acts[0] / grads[0] (F(rows_route)) */
    frnn_bar bars[FRNN_MAX_GROUPS];     /* per group: the members running one layer's task */
    frnn_bar whole[FRNN_MAX_GROUPS];    /* per group: all its members, between tasks */
} F(stack_run);

/* Members [first, first + n) of nth form group g of G. */
static void F(group_of)(int nth, int G, int g, int *first, int *n)
{
    *first = nth * g / G;
    *n = nth * (g + 1) / G - *first;
}

/* Run job i on the first members of group g (as many as its context asked for), then sync the
 * whole group (its results are complete, and members the task had no use for do not run ahead
 * into the group's next task). */
static void F(run_job)(F(stack_run) *sr, int i, const frnn_par *par, int g, int first, int n)
{
    const F(job) *jb = &sr->jobs[i];
    if (sr->batch[i].mem) {                 /* the batch split: every member of the group */
        frnn_par all = frnn_group(par, first, n, &sr->whole[g]);
        const frnn_dims *d = sr->batch[i].d;
        if (jb->in && jb->in->mask) {        /* the dropout mask on the way in, all rows at once */
            F(apply_mask)(&all, jb->in->rows, jb->in->mask, (size_t)d->T * d->B * jb->in->width);
            frnn_sync(&all);
        }
        F(batch_task)(&sr->batch[i], &all);
        frnn_sync(&all);
        return;
    }
    const int m = jb->cx->nth;
    if (par->tid - first < m) {
        frnn_par sub = frnn_group(par, first, m, &sr->bars[g]);
        F(cell_task)(sr->backward)((void *)jb, &sub);
    }
    frnn_par all = frnn_group(par, first, n, &sr->whole[g]);
    frnn_sync(&all);
}

/* Unidirectional: the layers of group g in their order (a wavefront when G > 1). */
static void F(stack_layers)(F(stack_run) *sr, const frnn_par *par)
{
    const int L = sr->st->L, G = sr->groups;
    int g = 0, first, n;
    F(group_of)(par->nth, G, g, &first, &n);
    while (par->tid >= first + n) F(group_of)(par->nth, G, ++g, &first, &n);     /* this member's */
    for (int s = 0; s < L; s++) {
        const int k = sr->backward ? L - 1 - s : s;
        if (k % G == g) F(run_job)(sr, k, par, g, first, n);
    }
}

/* Bidirectional: layer by layer, the two directions side by side (G == 2) or in turn. */
static void F(stack_directions)(F(stack_run) *sr, const frnn_par *par)
{
    const frnn_stack *st = sr->st;
    const int L = st->L, G = sr->groups, back = sr->backward;
    for (int s = 0; s < L; s++) {
        const int k = back ? L - 1 - s : s;
        const frnn_dims *d = &st->dims[2 * k];
        const int T = d->T, B = d->B, P = d->P, In = d->In;
        const int *lengths = st->run[2 * k].lengths;
        /* the dropout mask between layers k - 1 and k, on the way in (forward: into layer k's
         * input; backward: into the gradient at layer k's output, which is layer k + 1's input) */
        const int mk = back ? k + 1 : k;
        REAL *masked = back ? st->grads[k + 1] : st->acts[k];
        if (st->masks && mk >= 1 && mk < L && st->masks[mk] && masked) {
            F(apply_mask)(par, masked, st->masks[mk], (size_t)T * B * 2 * P);
            frnn_sync(par);
        }
        for (int dir = 0; dir < 2; dir++) {
            int first = 0, n = par->nth;
            if (G == 2) {
                F(group_of)(par->nth, 2, dir, &first, &n);
                if (par->tid < first || par->tid >= first + n) continue;   /* the other half's */
            }
            const int g = G == 2 ? dir : 0;
            frnn_par grp = frnn_group(par, first, n, &sr->whole[g]);
            const frnn_buffers *bf = &st->run[2 * k + dir];
            if (!back && dir == 1)           /* direction 1 reads each sequence backwards */
                F(move_rows)(&grp, (REAL *)bf->x, In, st->acts[k], In, In, T, B, lengths, 1, 0);
            if (back && bf->dy && st->grads[k + 1])   /* its half of the output gradient, in its time order */
                F(move_rows)(&grp, (REAL *)bf->dy, P, (const REAL *)st->grads[k + 1] + dir * P, 2 * P,
                             P, T, B, lengths, dir, 0);
            frnn_sync(&grp);
            F(run_job)(sr, 2 * k + dir, par, g, first, n);
            if (!back)                       /* its half of the output, back in forward time */
                F(move_rows)(&grp, (REAL *)st->acts[k + 1] + dir * P, 2 * P, bf->y, P, P, T, B,
                             lengths, dir, 0);
        }
        frnn_sync(par);
        if (back && st->grads[k]) {          /* both directions read the input: gradients add */
            F(move_rows)(par, st->grads[k], In, st->run[2 * k].dx, In, In, T, B, lengths, 0, 0);
            F(move_rows)(par, st->grads[k], In, st->run[2 * k + 1].dx, In, In, T, B, lengths, 1, 1);
            frnn_sync(par);
        }
    }
}

/* frnn_stack.rows_ids where layer 0 cannot read the table itself (the batch split, two
 * directions, a layer 0 with W_ih): forward, acts[0][r] = table[ids[r]] (the member's rows);
 * backward, table[ids[r]] += grads[0][r], rows in order (the member's columns). */
static void F(rows_route)(const frnn_stack *st, const frnn_par *par, int back)
{
    const int W = st->dims[0].In;
    const size_t rows = (size_t)st->dims[0].T * st->dims[0].B;
    REAL *table = st->rows_table;
    if (!back) {
        F(gather_rows_by_ids)(par, st->acts[0], table, st->rows_ids, rows, W);
        return;
    }
    int c0, c1;
    frnn_split(W, 16, par->tid, par->nth, &c0, &c1);
    F(add_rows_by_ids)(table, st->rows_ids, st->grads[0], rows, W, c0, c1);
}

static void F(stack_task)(void *arg, const frnn_par *par)
{
    F(stack_run) *sr = arg;
    if (sr->rows_route && !sr->backward) {
        F(rows_route)(sr->st, par, 0);
        frnn_sync(par);                  /* every input row is there before any layer reads it */
    }
    if (sr->st->D == 2) F(stack_directions)(sr, par);
    else F(stack_layers)(sr, par);
    if (sr->rows_route && sr->backward) {
        frnn_sync(par);                  /* grads[0] is complete (the groups finish apart) */
        F(rows_route)(sr->st, par, 1);
    }
}

/* The wavefront for a unidirectional stack on nth members: worth it with 2+ layers and 2+ members
 * (no barrier between the layers' steps; the cost is one chunk of fill and drain per layer) when
 * the steps are small. FASTRNN_WAVEFRONT=0/1 forces the choice (for A/B runs). */
static int F(wavefront)(const frnn_stack *st, int nth, int forced)
{
    return frnn_decomp_wave(st->dims, st->L, st->D, nth, forced, st->run[0].precision == FRNN_PRECISION_BF16);
}

/* Steps per chunk of a wavefront: few enough that the fill and drain stay short, and at least
 * FRNN_SMALL_M rows, so that a chunk's products take the same path (and give the same bits) as
 * the whole sequence's. */
static int F(chunk_steps)(const frnn_dims *d)
{
    const int by_rows = (FRNN_SMALL_M + d->B - 1) / d->B, by_fill = (d->T + 15) / 16;
    const int s = by_rows > by_fill ? by_rows : by_fill;
    return s < d->T ? s : d->T;
}

#if FRNN_F32
/* The flops each group of a wavefront carries (load[k % G] += layer k's): the recurrent products
 * weighted by `rec` (they run slower than the big products), and the input projection's -- times 2
 * going back (`dx`) where the layer also makes a dx. */
static void F(group_loads)(const frnn_stack *st, int G, double rec, int dx, double *load)
{
    for (int k = 0; k < st->L; k++) {
        const frnn_dims *d = &st->dims[k];
        const frnn_buffers *bf = &st->run[k];
        const double rows = (double)d->T * d->B, GH = (double)frnn_gates(d->cell) * d->H;
        load[k % G] += rec * 2 * rows * GH * d->P + (bf->W_ih ? (dx && bf->dx ? 2 : 1) * 2 * rows * GH * d->In : 0);
    }
}
#endif

/* A backward wavefront's groups balanced: layer k's dx products (dG W_ih, chunk by chunk) move
 * to the group of layer k - 1, which reads them, where that evens the groups' work. Layers that
 * read projected rows (a one-hot layer 0: no W_ih, no dW_ih or dx products) carry less work than
 * those above them, so a 2-layer LM's member 1 ran 1.6-1.7x member 0's work going back (bench/
 * lm_step.c built with -DFRNN_TEAM_STATS). The model counts flops: each layer's recurrent
 * products (weighted 1.5: they run at ~60 % of the peak against ~90 % for the big products),
 * dW_hh, and with W_ih, dW_ih and dx; going down from the top, a dx moves when its group's load
 * exceeds the group below's by more than the product. FASTRNN_PULL=0/1 forces it off/on (A/B). */
static void F(balance_pulls)(const frnn_stack *st, int G, F(job) *jobs, F(link) *links, const frnn_ctx *cx,
                             float **packed)
{
#if FRNN_F32
    const int L = st->L, forced = frnn_decomp_pull();
    double load[FRNN_MAX_GROUPS] = {0};
    if (forced == 0 || G < 2) return;
    F(group_loads)(st, G, 2.5, 1, load);
    for (int k = L - 1; k >= 1; k--) {
        const frnn_dims *d = &st->dims[k];
        const int g = k % G, below = (k - 1) % G;
        const double q = 2.0 * d->T * d->B * frnn_gates(d->cell) * d->H * d->In;
        if (!packed[k] || !jobs[k].out || jobs[k - 1].in != &links[k - 1] || jobs[k].chunk != jobs[k - 1].chunk
            || g == below || (forced < 0 && load[g] - load[below] <= q))
            continue;
        load[g] -= q, load[below] += q;
        jobs[k].lent = 1;
        links[k - 1].pull_packed = packed[k];
        links[k - 1].pull_dG = (const REAL *)st->run[k].tape + jobs[k].L.dG;
        links[k - 1].pull_GH = frnn_gates(d->cell) * d->H;
        links[k - 1].pull_bf16 = cx[k].bf16;
    }
#else
    (void)st, (void)G, (void)jobs, (void)links, (void)cx, (void)packed;
#endif
}

/* A forward wavefront's groups balanced the same way: the layer below makes the first rows of
 * each chunk's input projection of layer k (push_rows, a share in whole tiles) where layer k's
 * group carries more work -- 1.5x the recurrent product's flops for each layer, plus the
 * projection's where there is one: a 2-layer one-hot LM's member 1 ran 1.5-1.6x member 0's work.
 * A dropout mask between the layers is then multiplied into the chunk's rows below too. */
static void F(balance_pushes)(const frnn_stack *st, int G, F(job) *jobs, F(link) *links, float **packed)
{
#if FRNN_F32
    const int L = st->L, forced = frnn_decomp_pull();
    double load[FRNN_MAX_GROUPS] = {0};
    if (forced == 0 || G < 2) return;
    F(group_loads)(st, G, 1.5, 0, load);
    for (int k = 1; k < L; k++) {
        const frnn_dims *d = &st->dims[k];
        const int g = k % G, below = (k - 1) % G;
        const double q = 2.0 * d->T * d->B * frnn_gates(d->cell) * d->H * d->In;
        double frac = forced > 0 ? 0.5 : (load[g] - load[below]) / (2 * q);
        if (!packed[k] || st->run[k].q8 || !jobs[k - 1].out || jobs[k].in != &links[k]
            || jobs[k].chunk != jobs[k - 1].chunk || g == below || frac < 0.1)
            continue;
        frac = frac > 1 ? 1 : frac;
        load[g] -= frac * q, load[below] += frac * q;
        jobs[k].push_frac = frac;
        jobs[k - 1].push = &jobs[k];
    }
#else
    (void)st, (void)G, (void)jobs, (void)links, (void)packed;
#endif
}

static int F(stack_call)(const frnn_blas *blas, const frnn_stack *st, int train, int back)
{
    const int L = st->L, D = st->D, n = L * D;
    const int forced = frnn_decomp_forced();
    int nth = forced == FRNN_DECOMP_ONE ? 1 : F(call_threads)(st->threads);
    F(stack_run) sr;
    memset(&sr, 0, sizeof sr);
    sr.st = st, sr.backward = back, sr.groups = 1;
    int grain;
    const int batched = F(batch_wanted)(st->dims, L, D, st->run, !train && !back, nth, &grain);
    if (batched) sr.groups = 1;             /* layer after layer, each on the whole team */
    else if (frnn_decomp_sides(st->dims, L, D, nth, forced)) sr.groups = 2;   /* a direction a half */
    else if (F(wavefront)(st, nth, forced)) {
        sr.groups = nth < L ? nth : L;
        if (forced == FRNN_DECOMP_PIPELINE) nth = sr.groups;   /* layer k on member k */
    }
    if (sr.groups > FRNN_MAX_GROUPS) sr.groups = FRNN_MAX_GROUPS;
    frnn_ctx *cx = malloc(sizeof *cx * n);
    F(job) *jobs = malloc(sizeof *jobs * n);
    F(link) *links = malloc(sizeof *links * n);
    void **blocks = calloc(n, sizeof *blocks);
    int *kept = calloc(n, sizeof *kept);      /* blocks[i] is the thread's kept area of layer i */
    float **packed = calloc(n, sizeof *packed);
    int *progress = malloc(sizeof *progress * L);
    F(batch_run) *batch = calloc(n, sizeof *batch);
    if (!cx || !jobs || !links || !blocks || !kept || !progress || !packed || !batch) {
        free(cx), free(jobs), free(links), free(blocks), free(kept), free(progress), free(packed), free(batch);
        return -1;
    }
    sr.jobs = jobs, sr.batch = batch;
    /* rows_ids: a one-hot layer 0 of a unidirectional stack reads (adds into) the table itself */
    const int rows_direct = st->rows_ids && D == 1 && !batched && st->run[0].W_ih == NULL;
    sr.rows_route = st->rows_ids && !rows_direct;
    int busiest = 0, failed = 0;
    size_t area = 0;                     /* floats: the batch split's layers share one area */
    const int wave = D == 1 && sr.groups > 1;
    for (int i = 0; i < n; i++) {
        const int k = i / D;
        const frnn_dims *d = &st->dims[i];
        frnn_buffers *bf = &st->run[i];
        if (D == 1) {                      /* the layers read and write the stack's buffers */
            bf->x = st->acts[k], bf->y = st->acts[k + 1];
            bf->dy = st->grads ? st->grads[k + 1] : NULL, bf->dx = st->grads ? st->grads[k] : NULL;
        }
        /* the members of the job's group: a direction's half, a wavefront layer's group, or all */
        int first, members;
        F(group_of)(nth, sr.groups, D == 2 ? i % 2 : k % sr.groups, &first, &members);
        if (batched) {
            memset(&jobs[i], 0, sizeof jobs[i]);
            F(batch_start)(&batch[i], blas, d, bf, train, back, nth, batched, grain);
            area = F(batch_floats)(&batch[i]) > area ? F(batch_floats)(&batch[i]) : area;
            busiest = nth > busiest ? nth : busiest;
        } else {
            cx[i] = F(ctx_start)(blas, d, members, bf->precision);
            blocks[i] = F(job_begin)(&jobs[i], &cx[i], d, bf, train, back, frnn_layer_slot(i), &kept[i]);
            if (i == 0 && rows_direct) jobs[0].ids = st->rows_ids, jobs[0].table = st->rows_table;
            busiest = cx[i].nth > busiest ? cx[i].nth : busiest;
        }
        if (D != 1) continue;
        /* the rows arriving from the neighbour: layer k - 1's output (forward) or layer k + 1's
         * input gradient (backward), with the dropout mask between them */
        const int from = back ? k + 1 : k - 1, mk = back ? k + 1 : k;
        const void *mask = st->masks && mk >= 1 && mk < L ? st->masks[mk] : NULL;
        progress[k] = back ? d->T : 0;
        if (from >= 0 && from < L) {
            links[i] = (F(link)){wave ? &progress[from] : NULL, mask, back ? st->grads[k + 1] : st->acts[k],
                                 back ? d->P : d->In};
            jobs[i].in = &links[i];
        }
        if (wave) {
            jobs[i].chunk = F(chunk_steps)(d);
            if (back ? k > 0 && bf->dx : k < L - 1) jobs[i].out = &progress[k];
#if FRNN_F32
            /* the chunks' products reuse one packing of W_ih (else each chunk packs it again);
             * without the memory they pack for themselves */
            const int GH = frnn_gates(d->cell) * d->H, K = back ? GH : d->In, N = back ? d->In : GH;
            const int needs = cx[i].engine && bf->W_ih && !bf->q8 && d->T > jobs[i].chunk && (!back || jobs[i].out);
            const size_t nf = cx[i].bf16 ? frnn_bkpk_floats(K, N) : frnn_kpk_floats(K, N);
            if (needs && (packed[i] = malloc(sizeof(float) * nf)) != NULL) {
                if (cx[i].bf16) frnn_bkpk_pack(packed[i], K, N, bf->W_ih, d->In, !back);
                else frnn_kpk_pack(packed[i], K, N, bf->W_ih, d->In, !back);
                jobs[i].packed_ih = packed[i];
            }
#endif
        }
    }
    if (wave && back) F(balance_pulls)(st, sr.groups, jobs, links, cx, packed);
    if (wave && !back) F(balance_pushes)(st, sr.groups, jobs, links, packed);
    if (batched) {                       /* the layers run one after another: one area for all */
        REAL *mem = frnn_area_take(sizeof(REAL) * area);
        failed |= mem == NULL;
        for (int i = 0; i < n; i++) batch[i].mem = mem;
    }
    /* jobs that all asked for one member (steps too small to repay a barrier) run on the caller:
     * no worker to wake */
    if (!failed) frnn_team_run(sr.groups == 1 && busiest <= 1 ? 1 : nth, F(stack_task), &sr);
    for (int i = 0; i < n; i++) frnn_block_put(blocks[i], kept[i]), free(packed[i]);
    if (batched) frnn_area_give(batch[0].mem);
    free(cx), free(jobs), free(links), free(blocks), free(kept), free(progress), free(packed), free(batch);
    return failed ? -1 : 0;
}

/* -2 for an unknown cell in any run (nothing runs) */
static int F(unknown_cell)(const frnn_stack *st)
{
    for (int i = 0; i < st->L * st->D; i++)
        if (frnn_cell_info(st->dims[i].cell) == NULL) return 1;
    return 0;
}

int F(frnn_stack_forward)(const frnn_blas *blas, const frnn_stack *st, int train)
{
    return F(unknown_cell)(st) ? -2 : F(stack_call)(blas, st, train, 0);
}

int F(frnn_stack_backward)(const frnn_blas *blas, const frnn_stack *st)
{
    return F(unknown_cell)(st) ? -2 : F(stack_call)(blas, st, 1, 1);
}
