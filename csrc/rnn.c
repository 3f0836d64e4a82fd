/* rnn.c - vanilla RNN (template, compiled by kernels.c):  h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
 * act = tanh or relu. Tape: gates (T, B, H) unused beyond the projection, hs (T+1, B, H).
 * A member's step: its tile of the product, then the activations of its units (timeloop.h). */

/* h (B, H) = act(pre) for live rows, units [j0, j1). */
static void F(rnn_cell)(REAL *h, const REAL *pre, int relu, const int *lengths, int t, int B, int H,
                        int j0, int j1)
{
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        const REAL *p = pre + (size_t)b * H;
        REAL *hb = h + (size_t)b * H;
        if (relu) for (int j = j0; j < j1; j++) hb[j] = p[j] > 0 ? p[j] : 0;
        else F(tanh_to)(hb + j0, p + j0, j1 - j0);
    }
}

/* dpre (B, H) = dh * act'(h) for units [j0, j1), zero for finished rows; act' from the output h. */
FRNN_CLONES static void F(rnn_cell_backward)(REAL *dpre, const REAL *dh, const REAL *h, int relu,
                                             const int *lengths, int t, int B, int H, int j0, int j1)
{
    for (int b = 0; b < B; b++) {
        REAL *d = dpre + (size_t)b * H;
        const REAL *g = dh + (size_t)b * H, *hb = h + (size_t)b * H;
        if (!F(live)(lengths, b, t)) memset(d + j0, 0, sizeof(REAL) * (j1 - j0));
        else if (relu) for (int j = j0; j < j1; j++) d[j] = hb[j] > 0 ? g[j] : 0;  /* backprop through relu */
        else for (int j = j0; j < j1; j++) d[j] = (1 - hb[j] * hb[j]) * g[j];       /* backprop through tanh */
    }
}

static void F(rnn_forward)(const F(fstep) *s)
{
    const frnn_dims *d = s->jb->d;
    const int B = d->B, H = d->H;
    /* g[:, own] += h_{t-1} @ W_hh.T */
    F(rec_mul)(&s->jb->W[0], s->u0, s->u1, B, s->hprev, H, 1, s->g, H);
    F(rnn_cell)(s->h, s->g, d->cell == FRNN_RNN_RELU, s->jb->bf->lengths, s->t, B, H, s->u0, s->u1);
}

/* The two halves of a backward step (timeloop.h may share them out): the gate gradients of
 * units [u0, u1), and the carry dh_{t-1} = dG_t @ W_hh, which reads all of dG_t. */
static void F(rnn_backward_gates)(const F(bstep) *s)
{
    const frnn_dims *d = s->jb->d;
    F(rnn_cell_backward)(s->dGt, s->dh, s->h, d->cell == FRNN_RNN_RELU, s->jb->bf->lengths, s->t, d->B, d->H,
                         s->u0, s->u1);
    F(rec_stage)(&s->jb->W[0], s->dGt, d->H, s->t, d->B, s->u0, s->u1, d->H, 1);   /* bf16: dG_t rounded once */
}
static void F(rnn_backward_carry)(const F(bstep) *s)
{
    const frnn_dims *d = s->jb->d;
    F(carry_back)(&s->jb->W[0], s->u0, s->u1, s->dGt, d->H, 0, s->next, s->carry, s->jb->bf->lengths, s->t, d->B);
}

static void F(rnn_backward)(const F(bstep) *s)
{
    F(rnn_backward_gates)(s);
    frnn_sync(s->par);                                        /* the product reads all of dG_t */
    F(rnn_backward_carry)(s);
}

/* dW_hh += dG.T @ h_{t-1}, db_hh += dG.sum(0), over all steps */
static void F(rnn_weight_grads)(const frnn_par *par, const F(job) *jb, const REAL *dG, const REAL *dGh)
{
    const frnn_dims *d = jb->d;
    const REAL *hs = (const REAL *)jb->bf->tape + jb->L.hs;
    (void)dGh;
    F(hidden_grads)(par, jb->cx, d, jb->bf, dG, hs, d->H);   /* bf16: with dW_ih, dG^T staged once */
}

static const F(cell_steps) F(rnn_steps) = {F(rnn_forward), F(rnn_backward), F(rnn_weight_grads),
                                          F(rnn_backward_gates), F(rnn_backward_carry)};
