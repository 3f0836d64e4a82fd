/* decomp_model.h - the decompositions' names (FRNN_DECOMP_*), the kept area of the batch split's
 * chunks, and the cost model that picks a decomposition from a call's shape (frnn_decomposition):
 * untyped, included once through decomp.h (guarded), which holds the typed batch split and
 * explains the decompositions. */

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
 * and 3x256 (26 MFLOP steps), 1.09x at 2x384 (59 MFLOP), 1.02x at 2x512 and 0.94x at 3x512
 * (105 MFLOP). */
#define FRNN_WAVE_STEP_FLOPS_AVX512 64e6

/* The wavefront's rule for a unidirectional stack: its steps are all at most that big. The bound
 * weighs a step's time against the barriers, so bf16 steps on AVX512-BF16 (and AMX) -- two
 * products per float32 lane, twice the float32 rate -- count half their flops: measured on a
 * 2-core Zen 4 (the fused LM iteration, interleaved 9 times, quiet), bf16 stacks ran faster as
 * the wavefront than split by units at 2x256 / 3x256 (1.06x, 1.08x), 2x384 / 3x384 (1.14x,
 * 1.11x) and 2x512 / 3x512 (105 MFLOP steps: 1.04x, 1.03x, where float32 is 1.02x, 0.94x). On
 * AVX2 the bf16 kernels widen to float32 (the float32 rate): their steps count whole. */
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
 * fill per layer), or each layer's steps split by units. What would run instead follows
 * frnn_model_wave's per-ISA bound, so with FASTRNN_BATCH_AUTO=1 (off by default) a shape's
 * choice -- and, the batch split summing gradients chunk by chunk, its bits -- may differ between
 * ISAs and bf16 kernels; never between thread counts. */
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
