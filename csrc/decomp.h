/* decomp.h - how a call's work is shared by the team, and the cost model that picks it
 * (included by stack.h, itself included twice by template.h; the model is untyped and guarded).
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

#ifndef FASTRNN_DECOMP_MODEL
#define FASTRNN_DECOMP_MODEL

enum { FRNN_DECOMP_AUTO = 0, FRNN_DECOMP_UNITS = 1, FRNN_DECOMP_BATCH = 2, FRNN_DECOMP_PIPELINE = 3,
       FRNN_DECOMP_ONE = 4, FRNN_DECOMP_DIRECTIONS = 5 };

/* The chunks' areas of a batch split: a member's copy of its chunk's rows (the chunk's x, y or dy,
 * dx: T x rows each) and every chunk's own weight gradients. One area serves a whole call (a
 * stack's layers run one after another), and it is kept for the next call instead of coming from
 * mmap every time: a fresh area costs a page fault per 4 KB touched (~4000 per LM 2x128 step pair,
 * 10-15 % of its time). Areas bigger than FRNN_AREA_KEEP_BYTES (a long sequence's) still come
 * straight from mmap and go back with munmap when the call ends, so a long call does not leave
 * its megabytes behind (glibc raises its mmap threshold after the first big free and then keeps
 * such blocks: tests/test_faults.py's flat-memory check); what stays is one area of at most
 * that size. A block starts with a header holding its size (the data is 64-byte aligned). */
#define FRNN_AREA_MMAP_BYTES ((size_t)1 << 20)
#define FRNN_AREA_KEEP_BYTES ((size_t)8 << 20)
#define FRNN_AREA_HEAD 64

static void *FRNN_AREA_CACHE;         /* the kept area (its header), taken by atomic exchange */

static void frnn_area_release(void *block)
{
    if (block == NULL) return;
    const size_t bytes = *(size_t *)block;
#ifdef MAP_ANONYMOUS
    if (bytes >= FRNN_AREA_MMAP_BYTES) {
        munmap(block, bytes);
        return;
    }
#endif
    free(block);
}

/* A block of at least `bytes` usable bytes (the kept one when it is big enough), its data after
 * the header; NULL without memory. */
static void *frnn_area_take(size_t bytes)
{
    void *block = __atomic_exchange_n(&FRNN_AREA_CACHE, NULL, __ATOMIC_ACQ_REL);
    const size_t total = bytes + FRNN_AREA_HEAD;
    if (block != NULL && *(size_t *)block >= total) return (char *)block + FRNN_AREA_HEAD;
    frnn_area_release(block);                 /* too small for this call: a bigger one replaces it */
    block = NULL;
#ifdef MAP_ANONYMOUS
    if (total >= FRNN_AREA_MMAP_BYTES) {
        block = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (block == MAP_FAILED) return NULL;
    } else
#endif
    if (posix_memalign(&block, FRNN_AREA_HEAD, total) != 0) return NULL;
    *(size_t *)block = total;
    return (char *)block + FRNN_AREA_HEAD;
}

/* Give back an area frnn_area_take returned: kept for the next call unless it is too big. */
static void frnn_area_give(void *data)
{
    if (data == NULL) return;
    void *block = (char *)data - FRNN_AREA_HEAD;
    if (*(size_t *)block > FRNN_AREA_KEEP_BYTES + FRNN_AREA_HEAD) {
        frnn_area_release(block);
        return;
    }
    frnn_area_release(__atomic_exchange_n(&FRNN_AREA_CACHE, block, __ATOMIC_ACQ_REL));
}

/* FASTRNN_DECOMP, or auto when unset or not one of the names. */
static int frnn_decomp_forced(void)
{
    static const char *names[] = {"auto", "units", "batch", "pipeline", "one", "directions"};
    const char *env = getenv("FASTRNN_DECOMP");
    if (env == NULL) return FRNN_DECOMP_AUTO;
    for (int i = 0; i < 6; i++)
        if (!strcmp(env, names[i])) return i;
    return FRNN_DECOMP_AUTO;
}

/* The member count a one-layer call asks for: 1 when FASTRNN_DECOMP=one. */
static int frnn_decomp_threads(int threads)
{
    return frnn_decomp_forced() == FRNN_DECOMP_ONE ? 1 : threads;
}

/* The batch split's chunks: at most 6 (or 12 for big batches) -- 6 is shared evenly by 2 and 3
 * members -- of whole micro-kernel row blocks (FRNN_MR rows) where the batch allows. */
static int frnn_batch_chunks(int B)
{
    const int blocks = (B + FRNN_MR - 1) / FRNN_MR;
    return blocks <= 6 ? (blocks > 0 ? blocks : 1) : blocks < 24 ? 6 : 12;
}

static void frnn_batch_rows(int B, int C, int c, int *b0, int *b1)
{
    frnn_split(B, FRNN_MR, c, C, b0, b1);
}

/* The model's constants (microseconds, flops), from docs/performance.md's measurements on a
 * 2-core Zen 3: a member runs the micro-kernels at ~40 GFLOP/s; a barrier between steps costs,
 * with the exchange of the step's rows between the cores and the wait for the slower member,
 * ~12 us (what makes the 10-20 points of peak a per-step barrier costs at H <= 256, B = 50);
 * the batch split adds the chunks' gradients at ~2 floats/ns a member. */
#define FRNN_MODEL_RATE 40e3
#define FRNN_MODEL_SYNC_US 12.0
#define FRNN_MODEL_ADD_RATE 2e3

/* Micro-kernel efficiency of a product on `rows` rows: FRNN_MR-row tiles, a short last tile
 * costing its rows but at least 4 (fewer accumulators than FMA latency x ports: latency-bound). */
static double frnn_model_rows(int rows)
{
    const int tail = rows % FRNN_MR;
    return rows <= 0 ? 1 : (double)rows / (rows - tail + (tail == 0 ? 0 : tail < 4 ? 4 : tail));
}

/* Modelled microseconds of a training step pair (forward + backward, ~3x the forward's flops)
 * of one layer run as `decomp` on nth members (units: members as ctx_start gives them). */
static double frnn_model_layer(const frnn_dims *d, int decomp, int nth)
{
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    const double GH = (double)row->gates * d->H, per_row = 3 * 2.0 * d->T * GH * (d->In + d->P);
    const double flops = per_row * d->B, step = 2.0 * d->B * GH * d->P;
    if (decomp == FRNN_DECOMP_BATCH) {
        const int C = frnn_batch_chunks(d->B);
        double load[FRNN_MAX_THREADS] = {0}, most = 0;
        const int m = nth < C ? nth : C;
        for (int c = 0; c < C; c++) {        /* members claim chunks in order as they come free */
            int b0, b1, least = 0;
            frnn_batch_rows(d->B, C, c, &b0, &b1);
            for (int i = 1; i < m; i++) least = load[i] < load[least] ? i : least;
            load[least] += per_row * (b1 - b0) / frnn_model_rows(b1 - b0);
        }
        for (int i = 0; i < m; i++) most = load[i] > most ? load[i] : most;
        /* the extra work: the chunks' gradients added in chunk order, and every chunk's rows
         * copied in and out (forward x in, y out; backward x, dy in, dx out), shared by m */
        const double adds = (double)C * GH * (d->In + d->P + 2) / m;
        const double moves = (double)d->T * d->B * (3.0 * d->In + 2.0 * d->P) / m;
        return most / FRNN_MODEL_RATE + (adds + moves) / FRNN_MODEL_ADD_RATE;
    }
    int m = decomp == FRNN_DECOMP_ONE ? 1 : nth;
    const int blocks = (d->H + 15) / 16;
    if (m > blocks) m = blocks;
    if (step < 65536.0) m = 1;
    const double syncs = m > 1 ? d->T * (row->barriers + 2) * FRNN_MODEL_SYNC_US * (1 + 0.5 * (m - 2)) : 0;
    return flops / (m * FRNN_MODEL_RATE * frnn_model_rows(d->B)) + syncs;
}

/* Steps at most this big (2 * B * G * H * P flops) run as a wavefront by default. Measured on a
 * 2-core Zen 3 (docs/performance.md): quiet, the wavefront is 1.04-1.17x the per-step split
 * below this and 0.85-0.93x above it (a split step of that size already keeps both members busy
 * between barriers); with neighbours stealing cores, it is 1.2-3x faster at every size tried,
 * because no member ever waits at a barrier for a descheduled one. */
#define FRNN_WAVE_STEP_FLOPS 16e6

/* The same bound for the AVX-512 kernels, measured on a 2-core Zen 4 (the fused LM iteration at
 * batch 50, units and wavefront interleaved 9 times, quiet): the wavefront was 1.07x at 2x256
 * and 3x256 (26 MFLOP steps), 1.02x at 2x512 and 0.94x at 3x512 (105 MFLOP). */
#define FRNN_WAVE_STEP_FLOPS_AVX512 32e6

/* The wavefront's rule for a unidirectional stack: its steps are all at most that big. The bound
 * weighs a step's time against the barriers, so bf16 steps on AVX512-BF16 (and AMX) -- two
 * products per float32 lane, twice the float32 rate -- count half their flops: measured on a
 * 2-core Zen 4 (the fused LM iteration, interleaved 9-13 times), a bf16 2x256 / 3x256 stack ran
 * 1.06-1.11x faster as the wavefront than split by units, 2x512 / 3x512 1.03-1.04x. On AVX2 the
 * bf16 kernels widen to float32 (the float32 rate): their steps count whole. */
static int frnn_model_wave(const frnn_dims *dims, int L, int bf16)
{
    const double scale = bf16 && frnn_bf16_kernel() == FRNN_BF16_AVX512BF16 ? 0.5 : 1.0;
    double most = 0;
    for (int k = 0; k < L; k++) {
        const frnn_dims *d = &dims[k];
        const double flops = 2.0 * d->B * frnn_gates(d->cell) * d->H * d->P * scale;
        most = flops > most ? flops : most;
    }
    return most <= (frnn_isa_active() == FRNN_ISA_AVX512 ? FRNN_WAVE_STEP_FLOPS_AVX512 : FRNN_WAVE_STEP_FLOPS);
}

/* Measured on a quiet 2-core Zen 3 (bench/decomp.py --threads 2, issue 21's closing note): the
 * batch split ran the LM 2x128 step pair in 55 ms against 37 ms split by units and the
 * (100, 32, 128, 256) LSTM in 108 ms against 79 ms. Its backward did share the chunks (both
 * members claim chunks in both passes); what cost it was a fresh mmap'd area per layer call --
 * ~4000 page faults per LM step pair, +55 % CPU time at one thread -- now kept between calls
 * (frnn_area_take). Until it measures faster, auto never picks it (FASTRNN_DECOMP=batch still
 * runs it); set this to 1 -- or FASTRNN_BATCH_AUTO=1 in the environment, read at every call, for
 * the A/B of bench/decomp.py -- to let the model below choose. */
#define FRNN_BATCH_AUTO 0

static int frnn_batch_auto(void)
{
    const char *env = getenv("FASTRNN_BATCH_AUTO");
    return env && *env ? env[0] != '0' : FRNN_BATCH_AUTO;
}

/* A stack of L layers x D directions (a one-layer call: 1 x 1) runs as the batch split when
 * that is cheaper, on 2 members (the smallest team: the choice may not depend on the thread
 * count, see above), than what would run instead: the two directions side by side (D == 2),
 * the layer pipeline (its layers' one-member times, layer k on member k % 2, plus one chunk of
 * fill per layer), or each layer's steps split by units. */
static int frnn_model_batch(const frnn_dims *dims, int L, int D, int bf16)
{
    double batch = 0, units = 0, one[2] = {0, 0};
    if (!frnn_batch_auto()) return 0;
    if (dims[0].T < 2) return 0;          /* a single step (sampling): no barriers per step to save */
    for (int i = 0; i < L * D; i++) {
        const frnn_dims *d = &dims[i];
        if (frnn_batch_chunks(d->B) < 2) return 0;
        batch += frnn_model_layer(d, FRNN_DECOMP_BATCH, 2);
        units += frnn_model_layer(d, FRNN_DECOMP_UNITS, 2);
        one[D == 2 ? 0 : (i / D) % 2] += frnn_model_layer(d, FRNN_DECOMP_ONE, 1) / (D == 2 ? 2 : 1);
    }
    double other = units;
    if (D == 2 || (L >= 2 && dims[0].T >= 2 && frnn_model_wave(dims, L, bf16))) {
        const double most = one[0] > one[1] ? one[0] : one[1];
        other = D == 2 ? most : most * (1 + (L - 1) / 16.0);     /* a chunk is ~T/16 steps */
    }
    return batch < other;
}

/* Inference -- a forward that keeps no tape for a backward (train 0) -- computes each output row
 * from its own sequence alone: run as the batch split it gives the units split's bits (there are
 * no gradient sums to reorder), so there its choice may depend on the thread count, and the
 * chunks are the members' (frnn_infer_chunks: one each, an even share of the rows). It saves the
 * barrier per step and the exchange of each step's rows between the cores; it costs each member
 * reading all of W_hh every step instead of its share, which is cheap while W_hh (W_hr) -- in the
 * call's precision -- stays in the caches near the core. Measured on a 2-core Zen 4
 * (docs/performance.md, bench/decomp.py --inference; units ms / batch-split ms): 1.03-1.48x at
 * H <= 256, 1.00-1.35x at H 384-512 with W_hh <= 2 MB; with W_hh of 8-16 MB (H 1024) up to 1.6x
 * slower (hence FRNN_INFER_W_BYTES); at batch 2, one row a member, mostly slower (hence
 * FRNN_INFER_ROWS). On a loaded machine 1.2-2.9x faster: no member waits for a descheduled one. */
#define FRNN_INFER_W_BYTES ((size_t)2 << 20)
#define FRNN_INFER_ROWS 4

/* The chunks of an inference call run as the batch split (0: it runs as it would otherwise). A
 * bidirectional call keeps the direction split (with two members it has no barrier either). */
static int frnn_infer_chunks(const frnn_dims *dims, int L, int D, int nth, int bf16)
{
    if (!frnn_engine_enabled() || D != 1 || nth < 2 || dims[0].T < 2) return 0;
    /* chunks of at least FRNN_INFER_ROWS rows: below that a member reads all of W_hh per step for
     * one or two rows, and the units split's share of it (half) plus a barrier measured no slower */
    const int most = dims[0].B / FRNN_INFER_ROWS, C = nth < most ? (nth < 12 ? nth : 12) : most;
    if (C < 2) return 0;
    /* bf16 products of >= FRNN_AMX_ROWS rows may run on AMX tiles, whose bits are not the vector
     * kernels': a chunk's products (fewer rows than the call's) must take the call's path */
    const int rows = dims[0].B / C, T = dims[0].T;
    if (bf16 && (frnn_amx_bf16_rows(rows) != frnn_amx_bf16_rows(dims[0].B)
                 || frnn_amx_bf16_rows(T * rows) != frnn_amx_bf16_rows(T * dims[0].B)))
        return 0;
    for (int i = 0; i < L; i++) {
        const frnn_dims *d = &dims[i];
        const size_t weights = (size_t)frnn_gates(d->cell) * d->H * d->P + (d->P != d->H ? (size_t)d->P * d->H : 0);
        if (weights * (bf16 ? 2 : 4) > FRNN_INFER_W_BYTES) return 0;
    }
    return C;
}

/* FASTRNN_PULL: 0 = a backward wavefront's layers make their own dx chunks, 1 = the layer below
 * makes them wherever it can, unset = where that balances the groups' work (stack.h's
 * balance_pulls). The same bits either way. */
static int frnn_decomp_pull(void)
{
    const char *env = getenv("FASTRNN_PULL");
    return env && *env ? env[0] != '0' : -1;
}

/* The layer pipeline (stack.h's wavefront) for a unidirectional stack on nth members: forced,
 * or by FASTRNN_WAVEFRONT=0/1 (A/B runs), or by the measured rule above. */
static int frnn_decomp_wave(const frnn_dims *dims, int L, int D, int nth, int forced, int bf16)
{
    const char *env = getenv("FASTRNN_WAVEFRONT");
    if (D != 1 || L < 2 || nth < 2 || dims[0].T < 2) return 0;
    if (forced != FRNN_DECOMP_AUTO) return forced == FRNN_DECOMP_PIPELINE;
    if (env && *env) return env[0] != '0';
    return frnn_model_wave(dims, L, bf16);
}

/* Modelled microseconds of a bidirectional stack's training step pair run as the direction
 * split on nth members: per layer the slower half (direction d on group_of's half d, its steps
 * split by units when the half has 2+ members) plus the halves' joins (1 forward, 2 backward). */
static double frnn_model_sides(const frnn_dims *dims, int L, int nth)
{
    double t = 0;
    for (int k = 0; k < L; k++) {
        double most = 0;
        for (int dir = 0; dir < 2; dir++) {
            const int half = nth * (dir + 1) / 2 - nth * dir / 2;
            const double one = frnn_model_layer(&dims[2 * k + dir], FRNN_DECOMP_UNITS, half);
            most = one > most ? one : most;
        }
        t += most + 3 * FRNN_MODEL_SYNC_US;
    }
    return t;
}

/* The same stack's directions one after the other, each split by units over all nth members. */
static double frnn_model_turns(const frnn_dims *dims, int L, int nth)
{
    double t = 0;
    for (int i = 0; i < 2 * L; i++) t += frnn_model_layer(&dims[i], FRNN_DECOMP_UNITS, nth);
    return t;
}

/* Does a bidirectional call run as the direction split (stack.h, G == 2)? Forced (directions;
 * pipeline too, which has no meaning for D == 2 and ran side by side before the split had a
 * name), never when units is forced (the directions in turn, each on the whole team: the A/B
 * baseline), else when the model says so. Every choice here gives the same bits. */
static int frnn_decomp_sides(const frnn_dims *dims, int L, int D, int nth, int forced)
{
    if (D != 2 || nth < 2 || forced == FRNN_DECOMP_UNITS) return 0;
    if (forced != FRNN_DECOMP_AUTO) return 1;
    return frnn_model_sides(dims, L, nth) <= frnn_model_turns(dims, L, nth);
}

/* What a float32 call of L layers x D directions runs on nth members (fastrnn.h). */
int frnn_decomposition(const frnn_dims *dims, int L, int D, int nth, int train, int precision)
{
    const int forced = frnn_decomp_forced();
    for (int i = 0; i < L * D; i++)
        if (frnn_cell_info(dims[i].cell) == NULL) return -1;
    if (forced == FRNN_DECOMP_BATCH || (forced == FRNN_DECOMP_AUTO && frnn_engine_enabled()
                                        && frnn_model_batch(dims, L, D, precision == FRNN_PRECISION_BF16)))
        return FRNN_DECOMP_BATCH;
    if (forced == FRNN_DECOMP_AUTO && !train
        && frnn_infer_chunks(dims, L, D, nth, precision == FRNN_PRECISION_BF16))
        return FRNN_DECOMP_BATCH;
    if (forced == FRNN_DECOMP_ONE || nth <= 1 || !frnn_engine_enabled()) return FRNN_DECOMP_ONE;
    if (frnn_decomp_sides(dims, L, D, nth, forced)) return FRNN_DECOMP_DIRECTIONS;
    if (frnn_decomp_wave(dims, L, D, nth, forced, precision == FRNN_PRECISION_BF16)) return FRNN_DECOMP_PIPELINE;
    for (int i = 0; i < L * D; i++) {        /* ctx_start: steps big enough to share */
        const frnn_dims *d = &dims[i];
        if (2.0 * d->B * frnn_gates(d->cell) * d->H * d->P >= FRNN_MIN_STEP_FLOPS && d->H > frnn_nr())
            return FRNN_DECOMP_UNITS;
    }
    return FRNN_DECOMP_ONE;           /* steps too small to share: the caller alone */
}

#endif /* FASTRNN_DECOMP_MODEL */

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
