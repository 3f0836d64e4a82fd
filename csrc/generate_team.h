/* generate_team.h - the float32 engine's generation loop as ONE team task per call (template
 * part of generate.h; float32 only). The per-step path of generate.h calls frnn_forward once per
 * layer and the head product once per step: a team hand-off for each, the input projection's
 * W_ih^T packed again at every step (plus its barriers) and the head and the draws on one thread.
 * Here the team runs all the call's steps:
 *   - each member owns hidden units [u0, u1) of every layer (as the per-step path splits them)
 *     and computes their columns of the input projection too, on W_ih^T panels it packed once
 *     for the call (weight-stationary), so a layer step is one barrier (the cell's own extra
 *     barriers, e.g. the LSTM projection, unchanged);
 *   - after the last layer, each member runs the head (W_head^T packed once, shared) and the
 *     choice of the next token for its own rows of the batch, then one barrier: L + 1 barriers
 *     a step instead of ~5 L + 3 and L + 1 hand-offs.
 * Every product goes through the same kernels with the same K blocks as the per-step path
 * (panels for >= FRNN_SMALL_M rows, W read in place below), so h, the logits and the tokens are
 * bit for bit the per-step path's, at any member count. FASTRNN_GENERATE=steps runs the per-step
 * path (for comparisons); bf16, int8 and the batch split always do. */
#if FRNN_F32

#define FRNN_GEN_NOT_RUN (-2147483647 - 1)

/* One layer of the task: its job (the recurrent panels, tape layout), context and buffers; its
 * W_ih^T in K blocks of FRNN_KC (gate segments of H: a member packs and reads the panels of its
 * own units), or NULL (a one-hot layer 0, or < FRNN_SMALL_M rows: W_ih read in place); the two
 * state buffers h goes back and forth between (a member writes h_t while others read h_{t-1}). */
typedef struct {
    F(job) jb;
    frnn_ctx cx;
    frnn_buffers bf;
    void *block;
    float *ih;
    REAL *bias;              /* (G*H) b_ih + the folded b_hh, as input_projection sums them; a
                                member fills and reads its own units' columns */
    REAL *h[2];
} F(gen_layer);

typedef struct {
    const frnn_gen *g;
    F(gen_layer) *lay;
    float *head;             /* W_head^T in K blocks (one segment of V), or NULL (few rows) */
    char *scratch;           /* per member: sampling scratch, stop-test buffer, gathered x rows */
    size_t per_member;
    const int *feed;
    const double *u;
    int steps, ran;
    int *err;                /* (nth) a member's first row whose logits were NaN / all -inf, or B */
} F(gen_run);

/* Floats of op(W) (K, N) packed in K blocks of FRNN_KC with segments of seg columns. */
static size_t F(gen_pk_floats)(int K, int N, int seg)
{
    size_t n = 0;
    for (int k0 = 0; k0 < K; k0 += FRNN_KC) n += frnn_pk_floats(K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, seg);
    return n;
}

/* Pack panels of columns [c0, c1) of every segment (whole: panels [c0, c1) of each block). */
static void F(gen_pk_pack)(float *mem, const float *W, int K, int N, int seg, int c0, int c1, int whole)
{
    for (int k0 = 0; k0 < K; k0 += FRNN_KC) {
        frnn_pk blk;
        frnn_pk_init(&blk, K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, seg, mem);
        for (int q = 0; q < N / seg && c1 > c0; q++) {
            int p0 = c0, p1 = c1;
            if (whole) { if (q) break; } else frnn_pk_units(&blk, q, c0, c1, &p0, &p1);
            frnn_pk_pack(&blk, W, (size_t)K, 1, k0, p0, p1 < blk.panels ? p1 : blk.panels);
        }
        mem += frnn_pk_floats(blk.K, N, seg);
    }
}

/* Columns [c0, c1) of every segment of C (M, N) (+)= A (M, K) @ W^T, W (N, K): from the packs
 * (K blocks, the later ones always added) or, without packs, W read in place -- as
 * frnn_team_gemm computes the same product for the same total row count. */
static void F(gen_mul)(const float *pk, const float *W, int K, int N, int seg, int c0, int c1, int M,
                       const float *A, size_t lda, float *C, size_t ldc, int acc)
{
    if (c1 <= c0 || M <= 0) return;
    if (pk == NULL) {
        for (int q = 0; q < N / seg; q++)
            frnn_direct_mul(M, K, A, lda, W, (size_t)K, C, ldc, q * seg + c0, q * seg + c1, acc);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += FRNN_KC) {
        frnn_pk blk;
        frnn_pk_init(&blk, K - k0 < FRNN_KC ? K - k0 : FRNN_KC, N, seg, (float *)pk);
        for (int q = 0; q < N / seg; q++) {
            int p0, p1;
            frnn_pk_units(&blk, q, c0, c1, &p0, &p1);
            frnn_pk_mul(&blk, p0, p1, M, A + k0, lda, 1, C, ldc, acc || k0 > 0);
        }
        pk += frnn_pk_floats(blk.K, N, seg);
    }
}

/* Layer k's step s for every row: its units' gate columns (the input projection as
 * input_projection computes it, then the cell's step), then the barrier. */
static void F(gen_layer_step)(const frnn_par *par, const F(gen_run) *R, int k, int s, const int *tokens,
                              const REAL *xrows)
{
    const F(gen_layer) *ly = &R->lay[k];
    const F(job) *jb = &ly->jb;
    const frnn_dims *d = jb->d;
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    const int B = d->B, H = d->H, P = d->P, GH = row->gates * H;
    const REAL *W_ih = ly->bf.W_ih;
    int u0, u1, p0, p1;
    F(my_cols)(par, &ly->cx, H, &u0, &u1);
    F(my_cols)(par, &ly->cx, P, &p0, &p1);
    REAL *tape = ly->bf.tape, *gates = tape + jb->L.gates;
    const REAL *bias = ly->bias;
    for (int b = 0; b < B && u1 > u0; b++) {          /* the bias, plus the one-hot row */
        REAL *o = gates + (size_t)b * GH;
        const REAL *xr = W_ih ? NULL : (const REAL *)R->g->table + (size_t)tokens[b] * GH;
        for (int q = 0; q < GH / H; q++) {
            const int j0 = q * H + u0, n = u1 - u0;
            if (W_ih) memcpy(o + j0, bias + j0, sizeof(REAL) * n);
            else for (int i = 0; i < n; i++) o[j0 + i] = bias[j0 + i] + xr[j0 + i];
        }
    }
    if (W_ih && u1 > u0) {
        const REAL *x = k == 0 ? xrows : R->lay[k - 1].h[(s + 1) & 1];
        F(gen_mul)(ly->ih, W_ih, d->In, GH, H, u0, u1, B, x, (size_t)d->In, gates, (size_t)GH, 1);
    }
    const size_t BP = (size_t)B * P;
    const F(fstep) st = {jb, par, 0, u0, u1, p0, p1, gates, ly->h[s & 1], ly->h[(s + 1) & 1],
                         ly->bf.c_T, (REAL *)ly->bf.c_T, tape + jb->L.tc, tape + jb->L.aux,
                         tape + jb->L.scratch + BP};
    F(steps_of)(d->cell)->forward(&st);
    frnn_sync(par);                                   /* the next layer and the head read all of h */
}

static void F(gen_task)(void *arg, const frnn_par *par)
{
    F(gen_run) *R = arg;
    const frnn_gen *g = R->g;
    const int B = g->B, V = g->V, L = g->L, tid = par->tid;
    const int Plast = g->dims[L - 1].P, F0 = g->dims[0].In;
    /* this member's scratch: p, sel (V doubles each), z (V), order, tmp (V ints each), x rows,
     * the stop test's buffer */
    char *mine = R->scratch + (size_t)tid * R->per_member;
    double *z = (double *)mine;
    const frnn_pick_scratch pick = {z + V, z + 2 * V, (int *)(z + 3 * V), (int *)(z + 3 * V) + V};
    REAL *xrows = (REAL *)((int *)(z + 3 * V) + 2 * V + (V & 1 ? 1 : 0));
    char *stop_buf = (char *)(xrows + (g->run[0].W_ih ? (size_t)B * F0 : 0));
    const frnn_stop_rule rule = {g->text, g->offsets, g->word, g->eos, g->stop, g->stop_len,
                                 g->stop_window, stop_buf};
    /* the panels: a member's own units of W_hh / W_hr (unless prepacked) and W_ih^T; the head's
     * panels shared out */
    for (int k = 0; k < L; k++) {
        const F(gen_layer) *ly = &R->lay[k];
        const frnn_dims *d = &g->dims[k];
        int u0, u1, p0, p1;
        F(my_cols)(par, &ly->cx, d->H, &u0, &u1);
        F(my_cols)(par, &ly->cx, d->P, &p0, &p1);
        F(recmat_pack)(&ly->jb.W[0], u0, u1);
        F(recmat_pack)(&ly->jb.W[1], p0, p1);
        if (ly->ih) F(gen_pk_pack)(ly->ih, ly->bf.W_ih, d->In, frnn_gates(d->cell) * d->H, d->H, u0, u1, 0);
        const REAL *b_ih = ly->bf.b_ih, *b_hh = ly->bf.b_hh;
        const int fold = frnn_cell_info(d->cell)->folded_gates * d->H;
        for (int q = 0; q < frnn_gates(d->cell); q++)
            for (int j = q * d->H + u0; j < q * d->H + u1; j++)
                ly->bias[j] = (b_ih ? b_ih[j] : 0) + (b_hh && j < fold ? b_hh[j] : 0);
    }
    if (R->head) {
        int q0, q1;
        frnn_split((V + frnn_nr() - 1) / frnn_nr(), 1, tid, par->nth, &q0, &q1);
        F(gen_pk_pack)(R->head, g->W_head, Plast, V, V, q0, q1, 1);
    }
    int b0, b1;
    frnn_split(B, 1, tid, par->nth, &b0, &b1);
    R->err[tid] = B;
    frnn_sync(par);
    const REAL *b_head = g->b_head;
    int s = 0;
    for (; s < R->steps; s++) {
        const int *tokens = R->feed ? R->feed + (size_t)s * B : g->token;
        if (!R->feed) {
            int live = 0;
            for (int b = 0; b < B; b++) live += !g->done[b];
            if (!live) break;
        }
        if (g->run[0].W_ih)                           /* embedding rows: a private copy each */
            for (int b = 0; b < B; b++)
                memcpy(xrows + (size_t)b * F0, (const REAL *)g->table + (size_t)tokens[b] * F0, sizeof(REAL) * F0);
        for (int k = 0; k < L; k++) F(gen_layer_step)(par, R, k, s, tokens, xrows);
        if (R->feed) continue;
        /* the head and the next token of this member's rows */
        const REAL *h = R->lay[L - 1].h[(s + 1) & 1];
        REAL *logits = g->logits;
        F(gen_mul)(R->head, g->W_head, Plast, V, V, 0, V, b1 - b0, h + (size_t)b0 * Plast, (size_t)Plast,
                   logits + (size_t)b0 * V, (size_t)V, 0);
        for (int b = b0; b < b1 && b_head; b++)        /* every row's logits whole, even on errors */
            for (int v = 0; v < V; v++) logits[(size_t)b * V + v] += b_head[v];
        for (int b = b0; b < b1; b++) {
            if (g->done[b]) continue;
            for (int v = 0; v < V; v++) z[v] = logits[(size_t)b * V + v];
            const int tok = frnn_choose(z, V, g->temperature, g->top_k, g->top_p,
                                        g->argmax ? -1.0 : R->u[(size_t)s * B + b], &pick);
            if (tok < 0) {
                R->err[tid] = b;
                break;
            }
            F(gen_take)(g, &rule, b, tok);
        }
        frnn_sync(par);                               /* every row's token is in */
        int failed = 0;
        for (int m = 0; m < par->nth; m++) failed |= R->err[m] < B;
        if (failed) { s++; break; }
    }
    if (s & 1)              /* the state ended in the second buffer: back into g->h (c is in place) */
        for (int k = 0; k < L; k++) {
            int p0, p1;
            F(my_cols)(par, &R->lay[k].cx, g->dims[k].P, &p0, &p1);
            F(copy_cols)(R->lay[k].h[0], R->lay[k].h[1], B, g->dims[k].P, p0, p1);
        }
    if (tid == 0) R->ran = s;
}

/* Run the call as one team task; FRNN_GEN_NOT_RUN when the per-step path must run it instead
 * (float64, bf16 layers or head, int8, the batch split, FASTRNN_GENERATE=steps, or no memory). */
static int F(gen_team)(const frnn_blas *blas, const frnn_gen *g, const int *feed, int steps, const double *u)
{
    const char *env = getenv("FASTRNN_GENERATE");
    if ((env && !strcmp(env, "steps")) || g->head_q8 || g->head_bf16 || steps <= 0) return FRNN_GEN_NOT_RUN;
    const int L = g->L, B = g->B, V = g->V, few = B < FRNN_SMALL_M;
    F(gen_layer) *lay = calloc((size_t)L, sizeof *lay);
    if (lay == NULL) return FRNN_GEN_NOT_RUN;
    int ok = 1, nth = 1, grain;
    REAL *h = g->h, *c = g->c;
    size_t ih_floats = 0, bias_floats = 0;
    for (int k = 0; k < L && ok; k++) {
        F(gen_layer) *ly = &lay[k];
        const frnn_dims *d = &g->dims[k];
        ly->bf = g->run[k];
        if (frnn_cell_info(d->cell) == NULL || d->T != 1 || ly->bf.q8 || ly->bf.lengths
            || F(batch_wanted)(d, 1, 1, &ly->bf, 0, 1, &grain)) { ok = 0; break; }
        ly->cx = F(ctx_start)(blas, d, frnn_decomp_threads(ly->bf.threads), ly->bf.precision);
        if (!ly->cx.engine || ly->cx.bf16) { ok = 0; break; }
        const int lstm = frnn_cell_info(d->cell)->has_c;
        ly->bf.x = NULL, ly->bf.y = NULL;
        ly->bf.h0 = ly->bf.h_T = h;
        ly->bf.c0 = ly->bf.c_T = lstm ? c : NULL;
        ly->block = F(job_begin)(&ly->jb, &ly->cx, d, &ly->bf, 0, 0, -1, NULL);
        if (!ly->cx.engine) { ok = 0; break; }         /* (no memory for the panels) */
        ly->h[0] = h, ly->h[1] = (REAL *)ly->bf.tape + ly->jb.L.scratch;
        if (ly->cx.nth > nth) nth = ly->cx.nth;
        bias_floats += F(aligned)((size_t)frnn_gates(d->cell) * d->H);
        if (ly->bf.W_ih && !few) ih_floats += F(aligned)(F(gen_pk_floats)(d->In, frnn_gates(d->cell) * d->H, d->H));
        h += (size_t)B * d->P;
        if (c) c += (size_t)B * d->H;
    }
    const int F0 = g->dims[0].In;
    int longest = 0;
    for (int v = 0; g->stop && g->offsets && v < V; v++)
        if (g->offsets[v + 1] - g->offsets[v] > longest) longest = g->offsets[v + 1] - g->offsets[v];
    const size_t head_floats = few ? 0 : F(aligned)(F(gen_pk_floats)(g->dims[L - 1].P, V, V));
    size_t per = sizeof(double) * 3 * V + sizeof(int) * (2 * V + 1)
                 + (g->run[0].W_ih ? sizeof(REAL) * (size_t)B * F0 : 0)
                 + (g->stop ? (size_t)g->stop_window * (longest + 1) + 1 : 0);
    per = (per + 63) / 64 * 64;
    void *panels = NULL, *scratch = NULL, *biases = NULL;
    int *err = NULL;
    if (ok && (posix_memalign(&panels, 64, sizeof(float) * (ih_floats + head_floats + 16)) != 0
               || posix_memalign(&biases, 64, sizeof(REAL) * (bias_floats + 16)) != 0
               || posix_memalign(&scratch, 64, per * nth) != 0 || (err = malloc(sizeof(int) * nth)) == NULL))
        ok = 0;
    int rc = FRNN_GEN_NOT_RUN;
    if (ok) {
        float *at = panels;
        REAL *bat = biases;
        for (int j = 0; j < L; j++) {
            const frnn_dims *d = &g->dims[j];
            lay[j].bias = bat;
            bat += F(aligned)((size_t)frnn_gates(d->cell) * d->H);
            if (!lay[j].bf.W_ih || few) continue;
            lay[j].ih = at;
            at += F(aligned)(F(gen_pk_floats)(d->In, frnn_gates(d->cell) * d->H, d->H));
        }
        F(gen_run) R = {g, lay, few ? NULL : at, scratch, per, feed, u, steps, 0, err};
        frnn_team_run(nth, F(gen_task), &R);
        rc = R.ran;
        for (int m = 0; m < nth; m++)
            if (err[m] < B && (rc >= 0 || -1 - err[m] > rc)) rc = -1 - err[m];
    }
    for (int j = 0; j < L; j++) free(lay[j].block);
    free(panels), free(scratch), free(biases), free(err), free(lay);
    return rc;
}

#endif
