/* lstm.c - LSTM (template, compiled by kernels.c), PyTorch's gate order i f g o:
 *   i = s(W_ii x + b_ii + W_hi h + b_hi [+ w_ci * c])     f = s(... [+ w_cf * c])
 *   g = tanh(W_ig x + b_ig + W_hg h + b_hg)               c' = f * c + i * g
 *   o = s(... [+ w_co * c'])                              h' = o * tanh(c')   [h' = W_hr (o * tanh(c'))]
 * with optional peepholes w_peep = [w_ci, w_cf, w_co] and an optional projection W_hr (P, H).
 * Tape: gates (T, B, 4H) post-activation, hs (T+1, B, P), cs (T+1, B, H), tc (T, B, H) = tanh(c_t),
 * aux (T, B, H) = o * tanh(c_t) when projecting.
 *
 * A member's step: its recurrent tile, then its gate maths (one barrier per step; two with a
 * projection, whose product needs every unit's m).
 */

/* One row's gate maths without peepholes, units [j0, j1), in five passes: sigmoid of i and f,
 * tanh of g, sigmoid of o (common.h's in-place clones), then c = f c + i g, then tanh(c) into tc
 * and o * tanh(c) into out. (It was one pass: every element one chain of ~40 dependent
 * operations through three sigmoids and two tanh, ~240 AVX2 instructions per 8 units, so the
 * out-of-order window held about one iteration and the pass ran at ~1 instruction a cycle --
 * 42 us a (50, 128) step against the product's 70 us. A pass per function has a short body,
 * so several iterations' chains overlap: 35 us.) The same operations per element in the same
 * order: the same bits. The in-place form reads and writes c through one pointer (inference
 * keeps one c: c == c_{t-1}). */
FRNN_CLONES static void F(lstm_c_row)(const REAL *restrict gi, const REAL *restrict gf, const REAL *restrict gg,
                                      const REAL *restrict cp, REAL *restrict cb, int j0, int j1)
{
    for (int j = j0; j < j1; j++) cb[j] = gf[j] * cp[j] + gi[j] * gg[j];
}
FRNN_CLONES static void F(lstm_c_row_inplace)(const REAL *restrict gi, const REAL *restrict gf,
                                              const REAL *restrict gg, REAL *restrict cb, int j0, int j1)
{
    for (int j = j0; j < j1; j++) cb[j] = gf[j] * cb[j] + gi[j] * gg[j];
}
FRNN_CLONES static void F(lstm_h_mul)(const REAL *restrict go, const REAL *restrict tcb, REAL *restrict ob,
                                      int j0, int j1)
{
    for (int j = j0; j < j1; j++) ob[j] = go[j] * tcb[j];
}
/* tanh(c) into tc (tanh_to: the AVX2 intrinsics tanh where it runs), then h = o tanh(c). */
static void F(lstm_h_row)(const REAL *go, const REAL *cb, REAL *tcb, REAL *ob, int j0, int j1)
{
    F(tanh_to)(tcb + j0, cb + j0, j1 - j0);
    F(lstm_h_mul)(go, tcb, ob, j0, j1);
}
static void F(lstm_row)(REAL *gb, int H, const REAL *cp, REAL *cb, REAL *tcb, REAL *ob, int j0, int j1)
{
    const int n = j1 - j0;
    if (n == H) F(sigmoid_inplace)(gb, 2 * H);                    /* i and f side by side */
    else F(sigmoid_inplace)(gb + j0, n), F(sigmoid_inplace)(gb + H + j0, n);
    F(tanh_inplace)(gb + 2 * H + j0, n);                           /* g */
    F(sigmoid_inplace)(gb + 3 * H + j0, n);                        /* o */
    if (cp == cb) F(lstm_c_row_inplace)(gb, gb + H, gb + 2 * H, cb, j0, j1);
    else F(lstm_c_row)(gb, gb + H, gb + 2 * H, cp, cb, j0, j1);
    F(lstm_h_row)(gb + 3 * H, cb, tcb, ob, j0, j1);
}

/* Pointwise forward of one step for live rows and units [j0, j1): gates g in place, c (may
 * alias cprev), tanh(c) into tc, and o * tanh(c) into out (h itself, or m before the projection). */
static void F(lstm_cell)(REAL *g, const REAL *cprev, REAL *c, REAL *tc, REAL *out, int ldo,
                         const REAL *w_peep, const int *lengths, int t, int B, int H, int j0, int j1)
{
    const int n = j1 - j0;
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        REAL *gb = g + (size_t)b * 4 * H, *cb = c + (size_t)b * H, *tcb = tc + (size_t)b * H;
        REAL *ob = out + (size_t)b * ldo;
        const REAL *cp = cprev + (size_t)b * H;
        if (!w_peep) {
            F(lstm_row)(gb, H, cp, cb, tcb, ob, j0, j1);
            continue;
        }
        for (int j = j0; j < j1; j++) {
            gb[j] += w_peep[j] * cp[j];                 /* i sees c_{t-1} */
            gb[H + j] += w_peep[H + j] * cp[j];         /* f sees c_{t-1} */
        }
        F(sigmoid_inplace)(gb + j0, n);                                     /* i */
        F(sigmoid_inplace)(gb + H + j0, n);                                 /* f */
        F(tanh_inplace)(gb + 2 * H + j0, n);                                /* g */
        for (int j = j0; j < j1; j++) cb[j] = gb[H + j] * cp[j] + gb[j] * gb[2 * H + j];  /* c = f c + i g */
        for (int j = j0; j < j1; j++) gb[3 * H + j] += w_peep[2 * H + j] * cb[j];        /* o sees c_t */
        F(sigmoid_inplace)(gb + 3 * H + j0, n);                             /* o */
        F(tanh_to)(tcb + j0, cb + j0, n);
        for (int j = j0; j < j1; j++) ob[j] = gb[3 * H + j] * tcb[j];                   /* h = o tanh(c) */
    }
}

static void F(lstm_forward)(const F(fstep) *s)
{
    const F(job) *jb = s->jb;
    const frnn_dims *d = jb->d;
    const int B = d->B, H = d->H, P = d->P, t = s->t, u0 = s->u0, u1 = s->u1, p0 = s->p0, p1 = s->p1;
    const REAL *w_peep = jb->bf->w_peep;
    const int *lengths = jb->bf->lengths;
    /* g[:, own units of every gate] += h_{t-1} @ W_hh.T */
    F(rec_mul)(&jb->W[0], u0, u1, B, s->hprev, P, 1, s->g, 4 * H);
    F(zero_finished_rows)(s->tc, lengths, t, B, H, u0, u1);
    if (P == H) {
        F(lstm_cell)(s->g, s->cprev, s->c, s->tc, s->h, P, w_peep, lengths, t, B, H, u0, u1);
        return;
    }
    REAL *m = s->aux, *hproj = s->scratch;                    /* (B, H), (B, P) */
    F(zero_finished_rows)(m, lengths, t, B, H, u0, u1);
    F(lstm_cell)(s->g, s->cprev, s->c, s->tc, m, H, w_peep, lengths, t, B, H, u0, u1);
    frnn_sync(s->par);                                        /* the projection reads all of m */
    /* h[:, own] = m @ W_hr.T, kept only for live rows */
    F(rec_mul)(&jb->W[1], p0, p1, B, m, H, 0, hproj, P);
    for (int b = 0; b < B; b++)
        if (F(live)(lengths, b, t) && p1 > p0)
            memcpy(s->h + (size_t)b * P + p0, hproj + (size_t)b * P + p0, sizeof(REAL) * (p1 - p0));
}

/* The backward row of one sequence, n units, no peepholes: every gate's input and output its own
 * pointer, so with restrict nothing can overlap and the loop vectorises with no run-time
 * overlap check (as one row of dg it was versioned: dg[j] and dg[H + j] might overlap for a
 * small H). dc is read and replaced in place. */
FRNN_CLONES static void F(lstm_bwd_row)(const REAL *restrict gi, const REAL *restrict gf,
                                        const REAL *restrict gg, const REAL *restrict go,
                                        const REAL *restrict cp, const REAL *restrict tcb,
                                        const REAL *restrict dmb, REAL *restrict dcb, REAL *restrict di,
                                        REAL *restrict df, REAL *restrict dgg, REAL *restrict dgo, int n)
{
    for (int j = 0; j < n; j++) {
        REAL i = gi[j], f = gf[j], g = gg[j], o = go[j];
        REAL do_pre = dmb[j] * tcb[j] * o * (1 - o);                 /* m = o tanh(c); sigmoid */
        REAL dct = dcb[j] + dmb[j] * o * (1 - tcb[j] * tcb[j]);      /* through tanh(c) */
        di[j] = dct * g * i * (1 - i);                               /* c = ... + i g */
        df[j] = dct * cp[j] * f * (1 - f);                           /* c = f c_{t-1} + ... */
        dgg[j] = dct * i * (1 - g * g);                              /* g = tanh(...) */
        dgo[j] = do_pre;
        dcb[j] = dct * f;                                            /* to c_{t-1} */
    }
}

/* The same with peepholes: wi, wf, wo (dwi, dwf, dwo) are this row's units of w_ci, w_cf, w_co
 * (their gradients). */
FRNN_CLONES static void F(lstm_bwd_row_peep)(const REAL *restrict gi, const REAL *restrict gf,
                                             const REAL *restrict gg, const REAL *restrict go,
                                             const REAL *restrict cp, const REAL *restrict cb,
                                             const REAL *restrict tcb, const REAL *restrict dmb,
                                             REAL *restrict dcb, REAL *restrict di, REAL *restrict df,
                                             REAL *restrict dgg, REAL *restrict dgo,
                                             const REAL *restrict wi, const REAL *restrict wf,
                                             const REAL *restrict wo, REAL *restrict dwi,
                                             REAL *restrict dwf, REAL *restrict dwo, int n)
{
    for (int j = 0; j < n; j++) {
        REAL i = gi[j], f = gf[j], g = gg[j], o = go[j];
        REAL do_pre = dmb[j] * tcb[j] * o * (1 - o);
        REAL dct = dcb[j] + dmb[j] * o * (1 - tcb[j] * tcb[j]);
        dct += do_pre * wo[j];                                       /* o saw c_t */
        REAL di_pre = dct * g * i * (1 - i);
        REAL df_pre = dct * cp[j] * f * (1 - f);
        di[j] = di_pre;
        df[j] = df_pre;
        dgg[j] = dct * i * (1 - g * g);
        dgo[j] = do_pre;
        REAL dcn = dct * f;
        dcn += di_pre * wi[j] + df_pre * wf[j];                      /* i, f saw c_{t-1} */
        dcb[j] = dcn;
        dwi[j] += di_pre * cp[j];
        dwf[j] += df_pre * cp[j];
        dwo[j] += do_pre * cb[j];
    }
}

/* Pointwise backward of one step, units [j0, j1). dm: gradient reaching o * tanh(c_t); dc:
 * gradient reaching c_t, replaced by the one reaching c_{t-1}; writes dGt (zero rows for
 * finished sequences, whose dc passes through unchanged) and accumulates the peephole gradients.
 * The outputs dGt, dc, dw_peep and the inputs are distinct buffers (timeloop.h's backward_task
 * carves them from the tape and its scratch; w_peep is a parameter). */
static void F(lstm_cell_backward)(REAL *dGt, REAL *dc, const REAL *dm, const REAL *g, const REAL *cprev,
                                  const REAL *c, const REAL *tc, const REAL *w_peep, REAL *dw_peep,
                                  const int *lengths, int t, int B, int H, int j0, int j1)
{
    const int n = j1 - j0;
    if (n <= 0) return;
    for (int b = 0; b < B; b++) {
        REAL *dg = dGt + (size_t)b * 4 * H + j0, *dcb = dc + (size_t)b * H + j0;
        if (!F(live)(lengths, b, t)) {
            for (int q = 0; q < 4; q++) memset(dg + q * H, 0, sizeof(REAL) * n);
            continue;
        }
        const REAL *gb = g + (size_t)b * 4 * H + j0, *cp = cprev + (size_t)b * H + j0;
        const REAL *tcb = tc + (size_t)b * H + j0, *dmb = dm + (size_t)b * H + j0;
        if (!w_peep) {
            F(lstm_bwd_row)(gb, gb + H, gb + 2 * H, gb + 3 * H, cp, tcb, dmb, dcb, dg, dg + H, dg + 2 * H,
                            dg + 3 * H, n);
            continue;
        }
        const REAL *cb = c + (size_t)b * H + j0;
        F(lstm_bwd_row_peep)(gb, gb + H, gb + 2 * H, gb + 3 * H, cp, cb, tcb, dmb, dcb, dg, dg + H, dg + 2 * H,
                             dg + 3 * H, w_peep + j0, w_peep + H + j0, w_peep + 2 * H + j0, dw_peep + j0,
                             dw_peep + H + j0, dw_peep + 2 * H + j0, n);
    }
}

/* The two halves of a backward step (timeloop.h shares them out without a projection): the
 * gate gradients of units [u0, u1) from dm (the projection's, else dh itself), and the carry. */
static void F(lstm_backward_gates)(const F(bstep) *s)
{
    const frnn_dims *d = s->jb->d;
    const frnn_buffers *bf = s->jb->bf;
    F(lstm_cell_backward)(s->dGt, s->dc, d->P != d->H ? s->extra : s->dh, s->g, s->cprev, s->c, s->tc, bf->w_peep,
                          bf->w_peep ? (REAL *)bf->dw_peep : NULL, bf->lengths, s->t, d->B, d->H, s->u0, s->u1);
    F(rec_stage)(&s->jb->W[0], s->dGt, 4 * d->H, s->t, d->B, s->u0, s->u1, d->H, 4);   /* bf16: dG_t rounded once */
}
static void F(lstm_backward_carry)(const F(bstep) *s)
{
    /* dh_{t-1} = dG_t @ W_hh */
    F(carry_back)(&s->jb->W[0], s->p0, s->p1, s->dGt, 4 * s->jb->d->H, 0, s->next, s->carry, s->jb->bf->lengths,
                  s->t, s->jb->d->B);
}

static void F(lstm_backward)(const F(bstep) *s)
{
    const F(job) *jb = s->jb;
    const frnn_dims *d = jb->d;
    const int B = d->B, H = d->H, P = d->P, t = s->t, proj = P != H;
    const int *lengths = jb->bf->lengths;
    REAL *dm = s->extra;                                      /* (B, H) */
    if (proj) {
        F(zero_finished_rows)(s->dh, lengths, t, B, P, s->p0, s->p1);   /* dW_hr sums dhs over all rows */
        frnn_sync(s->par);                                    /* dm reads all of dh */
        /* dm = dh @ W_hr */
        F(rec_mul)(&jb->W[1], s->u0, s->u1, B, s->dh, P, 0, dm, H);
    }
    F(lstm_backward_gates)(s);
    frnn_sync(s->par);                                        /* the product reads all of dG_t */
    F(lstm_backward_carry)(s);
}

static void F(lstm_weight_grads)(const frnn_par *par, const F(job) *jb, const REAL *dG, const REAL *dGh)
{
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const int H = d->H, P = d->P;
    const size_t rows = (size_t)d->T * d->B;
    const REAL *tape = bf->tape;
    (void)dGh;
    F(hidden_grads)(par, jb->cx, d, bf, dG, tape + jb->L.hs, P);   /* bf16: with dW_ih, dG^T staged once */
    if (P != H)  /* dW_hr += dhs.T @ m */
        F(prod)(par, jb->cx, P, H, rows, tape + jb->L.dhs, P, 1, tape + jb->L.aux, H, 0, 1, bf->dW_hr, H);
}

static const F(cell_steps) F(lstm_steps) = {F(lstm_forward), F(lstm_backward), F(lstm_weight_grads),
                                           F(lstm_backward_gates), F(lstm_backward_carry)};
