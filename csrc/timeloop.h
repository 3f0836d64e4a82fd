/* timeloop.h - the one time loop of every cell (template, included by template.h), forward and
 * backward, training and inference, alone or inside a stack call. It runs the steps, the chunked
 * input projection and wavefront links, the packed-sequence bookkeeping (finished rows keep their
 * state and output 0), the outputs and the barrier between steps; a cell's step functions
 * (F(CELL_STEPS), one C file per cell) do its products and pointwise maths inside a step.
 * Member m owns hidden units [u0, u1) -- all gates of them -- and columns [p0, p1) of h (the
 * same unless an LSTM projects). */

/* What a cell's forward step sees: its step t's buffers; rows are sequences, (B, .) each. */
typedef struct {
    const F(job) *jb;
    const frnn_par *par;
    int t, u0, u1, p0, p1;
    REAL *g;                 /* (B, GH) the input projection; the step leaves the post-activation gates */
    const REAL *hprev;       /* (B, P) h_{t-1} */
    REAL *h;                 /* (B, P) h_t, written for live rows */
    const REAL *cprev;       /* (B, H) c_{t-1}, cells with a cell state */
    REAL *c;                 /* (B, H) c_t */
    REAL *tc, *aux;          /* (B, H) per-step tape parts: tanh(c_t); the cell's aux (cells.h) */
    REAL *scratch;           /* (B, max(GH, P)) per-step scratch */
} F(fstep);

/* What a cell's backward step sees. It writes dGt (and dGht) for every row (zero for finished
 * ones) and replaces carry by the gradient reaching h_{t-1} (dc by the one reaching c_{t-1}). */
typedef struct {
    const F(job) *jb;
    const frnn_par *par;
    int t, u0, u1, p0, p1;
    const REAL *g, *hprev, *h, *cprev, *c, *tc, *aux;   /* the tape at step t, as forward left it */
    REAL *dh;                /* (B, P) the gradient reaching h_t */
    REAL *dGt, *dGht;        /* (B, GH) gate gradients, input side and (copy cells) recurrent side */
    REAL *carry, *next;      /* (B, P) the gradient carried to h_{t-1}; scratch */
    REAL *dc;                /* (B, H) the gradient carried along c */
    REAL *direct, *extra;    /* (B, H) scratch each */
} F(bstep);

/* A cell's part of the loops: forward step, backward step, and its recurrent weight gradients
 * after the backward loop (dG, dGh: (T*B, GH) for all steps). */
typedef struct {
    void (*forward)(const F(fstep) *s);
    void (*backward)(const F(bstep) *s);
    void (*weight_grads)(const frnn_par *par, const F(job) *jb, const REAL *dG, const REAL *dGh);
    /* the backward step in its two halves, where its only barrier is the one between them
     * (NULL: the cell has more; the steps are then not shared): the pointwise gate gradients of
     * units [u0, u1), and the carry of columns [p0, p1), which reads all of dG_t */
    void (*backward_gates)(const F(bstep) *s);
    void (*backward_carry)(const F(bstep) *s);
} F(cell_steps);

static const F(cell_steps) *F(steps_of)(int cell);

/* Steps shared by claims (team.h frnn_share) instead of a barrier: the float32 engine's
 * per-step products where the step has no barrier inside (without projection; not bf16 or int8,
 * whose products keep per-member state), at 2..FRNN_SHARE_MAX members. A member descheduled by
 * the OS then stalls no one: whoever waits computes the parts of the step nobody started. */
static int F(shares_steps)(const F(job) *jb, const frnn_par *par, int backward)
{
    const frnn_dims *d = jb->d;
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    if (par->nth < 2 || par->nth > FRNN_SHARE_MAX || !jb->cx->engine || d->P != d->H) return 0;
    if (backward ? F(steps_of)(d->cell)->backward_carry == NULL : row->barriers != 1) return 0;
#if FRNN_F32
    if (jb->cx->bf16 || jb->W[0].q8_on || jb->W[1].q8_on) return 0;
#endif
    /* Opt-in (FASTRNN_SHARED_STEPS=1): on a quiet Zen 3 the claims cost the H 256-512 LM rows
     * 5-15 % against the barrier (docs/performance.md), while on a busy machine they keep small
     * steps from collapsing (2.5-4x the batch-1 forward); the default stays the barrier. */
    static int on = -1;
    if (__atomic_load_n(&on, __ATOMIC_RELAXED) < 0) {
        const char *env = getenv("FASTRNN_SHARED_STEPS");
        __atomic_store_n(&on, env != NULL && strcmp(env, "1") == 0, __ATOMIC_RELAXED);
    }
    return __atomic_load_n(&on, __ATOMIC_RELAXED);
}

/* Part r's units [u0, u1) and columns [p0, p1): member r's (my_cols). */
static void F(part_cols)(const frnn_par *par, const frnn_ctx *cx, int r, int H, int P, int c[4])
{
    const frnn_par pr = {r, par->nth, par->team, par->bar};
    F(my_cols)(&pr, cx, H, &c[0], &c[1]);
    F(my_cols)(&pr, cx, P, &c[2], &c[3]);
}

/* What every forward step of a task reads. */
typedef struct {
    const F(cell_steps) *cell;
    REAL *gates, *hbuf[2], *scratch, *cs;
    size_t hstep, cstep;
} F(floop);

/* Step t of the forward for units c[0..1) and columns c[2..3): the cell's step, the rows of
 * finished sequences, the outputs. */
static void F(forward_part)(const F(job) *jb, const frnn_par *par, const F(floop) *lp, int t, const int c[4])
{
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const int B = d->B, H = d->H, P = d->P, GH = frnn_gates(d->cell) * H, train = jb->train;
    const int u0 = c[0], u1 = c[1], p0 = c[2], p1 = c[3];
    REAL *tape = bf->tape;
    REAL *hprev = train ? lp->hbuf[0] + t * lp->hstep : lp->hbuf[t & 1];
    REAL *h = train ? hprev + lp->hstep : lp->hbuf[(t + 1) & 1];
    REAL *cprev = lp->cs ? lp->cs + t * lp->cstep : NULL, *cn = lp->cs ? cprev + lp->cstep : NULL;
    const F(fstep) s = {jb, par, t, u0, u1, p0, p1, lp->gates + (size_t)t * B * GH, hprev, h, cprev, cn,
                        tape + jb->L.tc + t * lp->cstep, tape + jb->L.aux + t * lp->cstep, lp->scratch};
    lp->cell->forward(&s);
    F(keep_finished_rows)(h, hprev, bf->lengths, t, B, P, p0, p1);
    if (lp->cs) F(keep_finished_rows)(cn, cprev, bf->lengths, t, B, H, u0, u1);
#if FRNN_F32
    F(q8_emit)(&jb->W[0], h, B, P, p0, p1);               /* int8 static rows of h_t (int8_step.h) */
#endif
    F(write_output)(bf->y ? (REAL *)bf->y + (size_t)t * B * P : NULL, h, bf->lengths, t, B, P, p0, p1);
}

/* How long a waiting member lets a part stay unclaimed before it takes it: the time of its own
 * part (measured once a task), at most 1 ms -- an owner merely waking from a sleep (tens of
 * microseconds) then keeps its part whenever that part is long; one the OS has descheduled (for a
 * time slice, milliseconds) loses it. */
static long long F(patience)(long long part_ns)
{
    return part_ns < 1 ? 1 : part_ns > 1000000 ? 1000000 : part_ns;
}

/* Wait for shared step s, computing the parts of it that others have not started. */
static void F(await_forward)(const F(job) *jb, const frnn_par *par, const F(floop) *lp, int s, long long patience)
{
    frnn_share *sh = (frnn_share *)&jb->share;
    for (int r; (r = frnn_share_await(par, sh, s, patience)) >= 0;) {
        int c[4];
        F(part_cols)(par, jb->cx, r, jb->d->H, jb->d->P, c);
        F(forward_part)(jb, par, lp, s, c);
        frnn_share_done(par, sh);
    }
}

static void F(forward_task)(void *arg, const frnn_par *par)
{
    const F(job) *jb = arg;
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    const int T = d->T, B = d->B, H = d->H, P = d->P, train = jb->train;
    const frnn_layout L = jb->L;
    REAL *tape = bf->tape;
    /* h_0..h_T: tape slots in training; in inference two (B, P) buffers in turn (a member
     * writes h_t while the others may still read h_{t-1}) */
    F(floop) lp = {F(steps_of)(d->cell), tape + L.gates,                        /* (T, B, GH) */
                   {train ? tape + L.hs : (REAL *)bf->h_T, tape + L.scratch}, tape + L.scratch + (size_t)B * P,
                   !row->has_c ? NULL : train ? tape + L.cs : (REAL *)bf->c_T,   /* (T+1, B, H) or (B, H) */
                   (size_t)B * P, train ? (size_t)B * H : 0};
    int c[4];
    F(part_cols)(par, jb->cx, par->tid, H, P, c);
    F(recmat_pack)(&jb->W[0], c[0], c[1]);
    F(recmat_pack)(&jb->W[1], c[2], c[3]);
    const int shared = F(shares_steps)(jb, par, 0);
    frnn_share *sh = (frnn_share *)&jb->share;
    long long patience = 0;                                   /* the time of this member's part */

    for (int t = 0; t < T; t++) {
        if (shared && t > 0) {                                /* the step before is complete */
            F(await_forward)(jb, par, &lp, t - 1, patience);
            F(forward_done)(par, jb, t - 1);
        }
        F(chunk_forward)(par, jb, t);                         /* the input projection, by chunks */
        frnn_test_stall(par, t, shared ? sh : NULL);
        if (!shared) {
            F(forward_part)(jb, par, &lp, t, c);
            frnn_sync(par);                                   /* the next step reads all of h */
            F(forward_done)(par, jb, t);
            continue;
        }
        if (frnn_share_claim(sh, par->tid, t)) {              /* else another member took it */
            const long long t0 = patience == 0 ? frnn_clock_ns() : 0;
            F(forward_part)(jb, par, &lp, t, c);
            if (t0) patience = F(patience)(frnn_clock_ns() - t0);
            frnn_share_done(par, sh);
        }
    }
    if (shared && T > 0) {
        F(await_forward)(jb, par, &lp, T - 1, patience);
        F(forward_done)(par, jb, T - 1);
    }
    F(copy_cols)((REAL *)bf->h_T, train ? lp.hbuf[0] + (size_t)T * lp.hstep : lp.hbuf[T & 1], B, P, c[2], c[3]);
    if (lp.cs) F(copy_cols)((REAL *)bf->c_T, lp.cs + (size_t)T * lp.cstep, B, H, c[0], c[1]);   /* in place in inference */
}

/* What every backward step of a task reads. */
typedef struct {
    const F(cell_steps) *cell;
    REAL *dG, *dGh, *carry, *dh, *next, *dc, *extra, *direct;
} F(bloop);

/* Backward step t's bstep for units c[0..1) and columns c[2..3). */
static F(bstep) F(bstep_at)(const F(job) *jb, const frnn_par *par, const F(bloop) *lp, int t, const int c[4])
{
    const frnn_dims *d = jb->d;
    const int B = d->B, H = d->H, P = d->P, GH = frnn_gates(d->cell) * H;
    const size_t og = (size_t)t * B * GH, oh = (size_t)t * B * H, op = (size_t)t * B * P;
    REAL *tape = jb->bf->tape;
    const REAL *cs = frnn_cell_info(d->cell)->has_c ? tape + jb->L.cs : NULL;
    /* the projecting LSTM keeps every step's dh for dW_hr */
    REAL *dht = P != H ? tape + jb->L.dhs + op : lp->dh;
    const F(bstep) s = {jb, par, t, c[0], c[1], c[2], c[3], tape + jb->L.gates + og, tape + jb->L.hs + op,
                        tape + jb->L.hs + op + (size_t)B * P, cs ? cs + oh : NULL,
                        cs ? cs + oh + (size_t)B * H : NULL, tape + jb->L.tc + oh, tape + jb->L.aux + oh,
                        dht, lp->dG + og, lp->dGh + og, lp->carry, lp->next, lp->dc, lp->direct, lp->extra};
    return s;
}

/* Shared backward part k of the task (k = T - t): the carry of step t (t < T; it reads all of
 * dG_t, complete once part k - 1 is), then step t - 1's gradient reaching h and its gate
 * gradients (t > 0) -- columns and units of the same part, which only that carry feeds. */
static void F(backward_part)(const F(job) *jb, const frnn_par *par, const F(bloop) *lp, int k, const int c[4])
{
    const frnn_dims *d = jb->d;
    const int T = d->T, t = T - k;
    if (t < T) {
        const F(bstep) s = F(bstep_at)(jb, par, lp, t, c);
        lp->cell->backward_carry(&s);
    }
    if (t > 0) {
        const F(bstep) s = F(bstep_at)(jb, par, lp, t - 1, c);
        const REAL *dy = jb->bf->dy;
        F(step_grad_in)(s.dh, dy ? dy + (size_t)(t - 1) * d->B * d->P : NULL, lp->carry, d->B, d->P, c[2], c[3]);
        lp->cell->backward_gates(&s);
    }
}

/* Wait for shared backward part k, computing the parts of it that others have not started. */
static void F(await_backward)(const F(job) *jb, const frnn_par *par, const F(bloop) *lp, int k, long long patience)
{
    frnn_share *sh = (frnn_share *)&jb->share;
    for (int r; (r = frnn_share_await(par, sh, k, patience)) >= 0;) {
        int c[4];
        F(part_cols)(par, jb->cx, r, jb->d->H, jb->d->P, c);
        F(backward_part)(jb, par, lp, k, c);
        frnn_share_done(par, sh);
    }
}

static void F(backward_task)(void *arg, const frnn_par *par)
{
    const F(job) *jb = arg;
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    const int T = d->T, B = d->B, H = d->H, P = d->P;
    const frnn_layout L = jb->L;
    REAL *tape = bf->tape;
    const REAL *dy = bf->dy;
    REAL *dG = tape + L.dG, *dGh = row->recurrent_copy ? tape + L.dGh : dG;   /* (T, B, GH) */
    REAL *carry = tape + L.scratch, *dh = carry + B * P, *next = dh + B * P;  /* (B, P) each */
    REAL *dc = next + B * P, *extra = dc + B * H, *direct = extra + B * H;    /* (B, H) each */
    const F(bloop) lp = {F(steps_of)(d->cell), dG, dGh, carry, dh, next, dc, extra, direct};
    int c[4];
    F(part_cols)(par, jb->cx, par->tid, H, P, c);
    F(recmat_pack)(&jb->W[0], c[2], c[3]);
    F(recmat_pack)(&jb->W[1], c[0], c[1]);
    const int shared = F(shares_steps)(jb, par, 1);
    frnn_share *sh = (frnn_share *)&jb->share;
    long long patience = 0;                      /* the time of this member's part */

    for (int t = T - 1; t >= 0; t--) {
        if (shared && t < T - 1) {               /* step t + 1's gate gradients are complete */
            F(await_backward)(jb, par, &lp, T - 2 - t, patience);
            F(backward_done)(par, jb, t + 1, dG);
        }
        F(chunk_backward)(par, jb, t);
        frnn_test_stall(par, T - 1 - t, shared ? sh : NULL);
        if (shared) {
            if (frnn_share_claim(sh, par->tid, T - 1 - t)) {  /* else another member took it */
                const long long t0 = patience == 0 && t < T - 1 ? frnn_clock_ns() : 0;   /* a whole part */
                F(backward_part)(jb, par, &lp, T - 1 - t, c);
                if (t0) patience = F(patience)(frnn_clock_ns() - t0);
                frnn_share_done(par, sh);
            }
            continue;
        }
        const F(bstep) s = F(bstep_at)(jb, par, &lp, t, c);
        F(step_grad_in)(s.dh, dy ? dy + (size_t)t * B * P : NULL, carry, B, P, c[2], c[3]);
        lp.cell->backward(&s);
        F(backward_done)(par, jb, t, dG);
    }
    if (shared && T > 0) {                       /* step 0's carry, a part T like the others */
        F(await_backward)(jb, par, &lp, T - 1, patience);
        F(backward_done)(par, jb, 0, dG);
        if (frnn_share_claim(sh, par->tid, T)) {
            F(backward_part)(jb, par, &lp, T, c);
            frnn_share_done(par, sh);
        }
        F(await_backward)(jb, par, &lp, T, patience);
    }
    F(copy_cols)((REAL *)bf->dh0, carry, B, P, c[2], c[3]);
    if (row->has_c) F(copy_cols)((REAL *)bf->dc0, dc, B, H, c[0], c[1]);
    const REAL *db_twin = F(one_colsum)(par, jb->cx, d, bf, dG, dGh);   /* before db_hh's sums */
    lp.cell->weight_grads(par, jb, dG, dGh);
    F(input_grads)(par, jb->cx, d, bf, dG, jb->out != NULL, db_twin, jb->ids, jb->table);
}
