/* mgu.c - minimal gated unit (Zhou et al. 2016; template, compiled by kernels.c), gates f n:
 *   f = s(W_if x + b_if + W_hf h + b_hf)          a = f * h
 *   n = tanh(W_in x + b_in + W_hn a + b_hn)       h' = (1 - f) * h + f * n
 * Tape: gates (T, B, 2H) post-activation f n, hs (T+1, B, H), aux (T, B, H) = a.
 * Two barriers per step: W_hn a reads every unit's a (as GRU reset-before's r * h). */

/* First half of a step, units [j0, j1): f = sigmoid(g_f) in place, a = f * h_{t-1} (0 for
 * finished rows, so the weight-gradient products stay finite). */
static void F(mgu_gate)(REAL *g, REAL *a, const REAL *hprev, const int *lengths, int t, int B, int H,
                        int j0, int j1)
{
    for (int b = 0; b < B; b++) {
        REAL *gb = g + (size_t)b * 2 * H, *ab = a + (size_t)b * H;
        const REAL *hp = hprev + (size_t)b * H;
        if (!F(live)(lengths, b, t)) { memset(ab + j0, 0, sizeof(REAL) * (j1 - j0)); continue; }
        F(sigmoid_inplace)(gb + j0, j1 - j0);
        for (int j = j0; j < j1; j++) ab[j] = gb[j] * hp[j];
    }
}

/* Second half, units [j0, j1) of live rows: n = tanh(g_n) in place, h = (1 - f) h_{t-1} + f n. */
static void F(mgu_cell)(REAL *g, const REAL *hprev, REAL *h, const int *lengths, int t, int B, int H,
                        int j0, int j1)
{
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        REAL *gb = g + (size_t)b * 2 * H, *hb = h + (size_t)b * H;
        const REAL *hp = hprev + (size_t)b * H;
        F(tanh_inplace)(gb + H + j0, j1 - j0);
        for (int j = j0; j < j1; j++) hb[j] = (1 - gb[j]) * hp[j] + gb[j] * gb[H + j];
    }
}

/* Backward, first half, units [j0, j1): dn_pre = dh f (1 - n^2) into dGt's n column, and
 * direct = dh (1 - f), the path h_{t-1} -> h_t around the weights; zero for finished rows.
 * restrict (here and below): the outputs and the inputs are distinct buffers (timeloop.h's
 * backward_task carves them from the tape and its scratch): no run-time overlap checks. */
FRNN_CLONES static void F(mgu_cell_backward)(REAL *restrict dGt, REAL *restrict direct,
                                             const REAL *restrict dh, const REAL *restrict g,
                                             const int *lengths, int t, int B, int H, int j0, int j1)
{
    const size_t n = sizeof(REAL) * (j1 - j0);
    for (int b = 0; b < B; b++) {
        REAL *dg = dGt + (size_t)b * 2 * H, *dr = direct + (size_t)b * H;
        if (!F(live)(lengths, b, t)) {
            memset(dg + j0, 0, n), memset(dg + H + j0, 0, n), memset(dr + j0, 0, n);
            continue;
        }
        const REAL *gb = g + (size_t)b * 2 * H, *d = dh + (size_t)b * H;
        for (int j = j0; j < j1; j++) {
            REAL f = gb[j], nn = gb[H + j];
            dg[H + j] = d[j] * f * (1 - nn * nn);           /* h' = ... + f n, n = tanh(...) */
            dr[j] = d[j] * (1 - f);                         /* h' = (1 - f) h + ... */
        }
    }
}

/* Backward, second half, units [j0, j1) of live rows: da = dn_pre @ W_hn is the gradient of
 * a = f * h_{t-1}; df_pre = (dh (n - h_{t-1}) + da h_{t-1}) f (1 - f), direct += da f. */
FRNN_CLONES static void F(mgu_gate_backward)(REAL *restrict dGt, REAL *restrict direct,
                                             const REAL *restrict da, const REAL *restrict dh,
                                             const REAL *restrict g, const REAL *restrict hprev,
                                             const int *lengths, int t, int B, int H, int j0, int j1)
{
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        REAL *dg = dGt + (size_t)b * 2 * H, *dr = direct + (size_t)b * H;
        const REAL *gb = g + (size_t)b * 2 * H, *hp = hprev + (size_t)b * H;
        const REAL *d = dh + (size_t)b * H, *dab = da + (size_t)b * H;
        for (int j = j0; j < j1; j++) {
            REAL f = gb[j], nn = gb[H + j];
            dg[j] = (d[j] * (nn - hp[j]) + dab[j] * hp[j]) * f * (1 - f);  /* through h' and a; sigmoid */
            dr[j] += dab[j] * f;                                           /* a = f h */
        }
    }
}

static void F(mgu_forward)(const F(fstep) *s)
{
    const F(job) *jb = s->jb;
    const int B = jb->d->B, H = jb->d->H, t = s->t, u0 = s->u0, u1 = s->u1;
    const int *lengths = jb->bf->lengths;
    /* g[:, f] += h_{t-1} @ W_hf.T;  f = sigmoid, a = f * h_{t-1};  g[:, n] += a @ W_hn.T */
    F(rec_mul)(&jb->W[0], u0, u1, B, s->hprev, H, 1, s->g, 2 * H);
    F(mgu_gate)(s->g, s->aux, s->hprev, lengths, t, B, H, u0, u1);
    frnn_sync(s->par);                                        /* W_hn a reads every unit */
    F(rec_mul)(&jb->W[1], u0, u1, B, s->aux, H, 1, s->g + H, 2 * H);
    F(mgu_cell)(s->g, s->hprev, s->h, lengths, t, B, H, u0, u1);
}

static void F(mgu_backward)(const F(bstep) *s)
{
    const F(job) *jb = s->jb;
    const int B = jb->d->B, H = jb->d->H, t = s->t, u0 = s->u0, u1 = s->u1;
    const int *lengths = jb->bf->lengths;
    F(mgu_cell_backward)(s->dGt, s->direct, s->dh, s->g, lengths, t, B, H, u0, u1);
    frnn_sync(s->par);                                        /* da reads all of dn_pre */
    /* da = dn_pre @ W_hn */
    F(rec_mul)(&jb->W[1], u0, u1, B, s->dGt + H, 2 * H, 0, s->extra, H);
    F(mgu_gate_backward)(s->dGt, s->direct, s->extra, s->dh, s->g, s->hprev, lengths, t, B, H, u0, u1);
    frnn_sync(s->par);                                        /* ... and all of df_pre */
    /* dh_{t-1} = direct + df_pre @ W_hf */
    F(carry_back)(&jb->W[0], u0, u1, s->dGt, 2 * H, 1, s->direct, s->carry, lengths, t, B);
}

/* W_hf multiplied h_{t-1}, W_hn multiplied a = f * h_{t-1} */
static void F(mgu_weight_grads)(const frnn_par *par, const F(job) *jb, const REAL *dG, const REAL *dGh)
{
    const frnn_dims *d = jb->d;
    const int H = d->H;
    const size_t rows = (size_t)d->T * d->B;
    const REAL *tape = jb->bf->tape;
    REAL *dW_hh = jb->bf->dW_hh, *db_hh = jb->bf->db_hh;
    (void)dGh;
    F(recurrent_grads)(par, jb->cx, rows, H, dG, 2 * H, tape + jb->L.hs, H, dW_hh, db_hh);
    F(recurrent_grads)(par, jb->cx, rows, H, dG + H, 2 * H, tape + jb->L.aux, H, dW_hh + (size_t)H * H,
                       db_hh ? db_hh + H : NULL);
}

static const F(cell_steps) F(mgu_steps) = {F(mgu_forward), F(mgu_backward), F(mgu_weight_grads), NULL, NULL};
