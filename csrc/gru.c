/* gru.c - GRU variants (template, compiled by kernels.c). With r, z = sigmoid(...):
 *   FRNN_GRU (PyTorch, cuDNN):   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   FRNN_GRU_RESET_BEFORE (Cho): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
 *   FRNN_GRU_SIMPLIFIED:         no reset gate, gates (z, n); n = tanh(W_in x + b_in + W_hn h + b_hn)
 * and always h' = (1 - z) * n + z * h.
 * Tape: gates (T, B, GH) post-activation [r] z n; hs (T+1, B, H); aux (T, B, H) holds
 * W_hn h + b_hn (FRNN_GRU) or r * h (reset-before).
 * Reset-before needs a second barrier per step, since W_hn (r * h) reads every unit's r * h. */

/* Column offsets of the z and n gates in a row of gates. */
#define GRU_Z(cell, H) ((cell) == FRNN_GRU_SIMPLIFIED ? 0 : (H))
#define GRU_N(cell, H) ((cell) == FRNN_GRU_SIMPLIFIED ? (H) : 2 * (H))

/* Pointwise forward of one step for live rows, units [j0, j1); g (B, GH) holds the
 * pre-activations with the recurrent part added, except FRNN_GRU's, whose recurrent part hg
 * (B, 3H) is separate. Writes gates g, aux and h. */
static void F(gru_cell)(int cell, REAL *g, const REAL *hg, const REAL *b_hh, REAL *aux,
                        const REAL *hprev, REAL *h, const int *lengths, int t, int B, int H, int j0, int j1)
{
    const int GH = frnn_gates(cell) * H, zo = GRU_Z(cell, H), no = GRU_N(cell, H), n = j1 - j0;
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        REAL *gb = g + (size_t)b * GH, *hb = h + (size_t)b * H;
        const REAL *hp = hprev + (size_t)b * H;
        if (cell == FRNN_GRU) {
            const REAL *hgb = hg + (size_t)b * GH;
            REAL *hn = aux + (size_t)b * H;
            for (int j = j0; j < j1; j++) {
                gb[j] += hgb[j];
                gb[H + j] += hgb[H + j];
            }
            F(sigmoid_inplace)(gb + j0, n);                                 /* r */
            F(sigmoid_inplace)(gb + H + j0, n);                             /* z */
            for (int j = j0; j < j1; j++) {
                hn[j] = hgb[2 * H + j] + (b_hh ? b_hh[2 * H + j] : 0);       /* W_hn h + b_hn */
                gb[2 * H + j] += gb[j] * hn[j];
            }
            F(tanh_inplace)(gb + 2 * H + j0, n);                            /* n */
        } else {  /* reset-before: r and a = r*h were done by gru_reset_gate; simplified: no r */
            F(sigmoid_inplace)(gb + zo + j0, n);
            F(tanh_inplace)(gb + no + j0, n);
        }
        for (int j = j0; j < j1; j++) {
            REAL z = gb[zo + j], nn = gb[no + j];
            hb[j] = (1 - z) * nn + z * hp[j];
        }
    }
}

/* Reset-before GRU, first half of a step, units [j0, j1): r = sigmoid(g_r) in place, aux = r * h_{t-1}. */
static void F(gru_reset_gate)(REAL *g, REAL *aux, const REAL *hprev, const int *lengths,
                              int t, int B, int H, int j0, int j1)
{
    for (int b = 0; b < B; b++) {
        REAL *gb = g + (size_t)b * 3 * H, *a = aux + (size_t)b * H;
        const REAL *hp = hprev + (size_t)b * H;
        if (!F(live)(lengths, b, t)) { memset(a + j0, 0, sizeof(REAL) * (j1 - j0)); continue; }
        F(sigmoid_inplace)(gb + j0, j1 - j0);
        for (int j = j0; j < j1; j++) a[j] = gb[j] * hp[j];
    }
}

static void F(gru_forward)(const F(fstep) *s)
{
    const F(job) *jb = s->jb;
    const frnn_dims *d = jb->d;
    const int B = d->B, H = d->H, cell = d->cell, GH = frnn_gates(cell) * H, u0 = s->u0, u1 = s->u1;
    const int *lengths = jb->bf->lengths;
    REAL *hg = s->scratch;                                    /* (B, GH) FRNN_GRU's recurrent part */
    if (cell == FRNN_GRU) {
        /* hg = h_{t-1} @ W_hh.T (b_hn stays inside r * (W_hn h + b_hn): not folded) */
        F(rec_mul)(&jb->W[0], u0, u1, B, s->hprev, H, 0, hg, GH);
        F(zero_finished_rows)(s->aux, lengths, s->t, B, H, u0, u1);
    } else if (cell == FRNN_GRU_RESET_BEFORE) {
        /* g[:, :2H] += h_{t-1} @ W_h(rz).T;  r = sigmoid, a = r * h_{t-1};  g[:, 2H:] += a @ W_hn.T */
        F(rec_mul)(&jb->W[0], u0, u1, B, s->hprev, H, 1, s->g, GH);
        F(gru_reset_gate)(s->g, s->aux, s->hprev, lengths, s->t, B, H, u0, u1);
        frnn_sync(s->par);                                    /* W_hn (r * h) reads every unit */
        F(rec_mul)(&jb->W[1], u0, u1, B, s->aux, H, 1, s->g + 2 * H, GH);
    } else {
        /* g += h_{t-1} @ W_hh.T */
        F(rec_mul)(&jb->W[0], u0, u1, B, s->hprev, H, 1, s->g, GH);
    }
    F(gru_cell)(cell, s->g, hg, jb->bf->b_hh, s->aux, s->hprev, s->h, lengths, s->t, B, H, u0, u1);
}

/* Pointwise backward of one step, units [j0, j1), for every row. From dh (gradient reaching h_t)
 * writes dGt (gate pre-activation grads; zero for finished rows), for FRNN_GRU also dGht (the
 * recurrent side, whose n column is dn_pre * r), and direct = z * dh (the path h_{t-1} -> h_t
 * that skips the weights). Reset-before's r column is left for gru_reset_gate_backward.
 * restrict: the outputs and the inputs are distinct buffers (timeloop.h's backward_task carves
 * them from the tape and its scratch), so the loops vectorise without run-time overlap checks. */
FRNN_CLONES static void F(gru_cell_backward)(int cell, REAL *restrict dGt, REAL *restrict dGht,
                                             REAL *restrict direct, const REAL *restrict dh,
                                             const REAL *restrict g, const REAL *restrict aux,
                                             const REAL *restrict hprev, const int *lengths, int t, int B,
                                             int H, int j0, int j1)
{
    const int G = frnn_gates(cell), GH = G * H, zo = GRU_Z(cell, H), no = GRU_N(cell, H);
    const size_t n = sizeof(REAL) * (j1 - j0);
    for (int b = 0; b < B; b++) {
        REAL *dg = dGt + (size_t)b * GH, *dr = direct + (size_t)b * H;
        if (!F(live)(lengths, b, t)) {
            for (int q = 0; q < G; q++) {
                memset(dg + q * H + j0, 0, n);
                if (dGht) memset(dGht + (size_t)b * GH + q * H + j0, 0, n);
            }
            memset(dr + j0, 0, n);
            continue;
        }
        const REAL *gb = g + (size_t)b * GH, *hp = hprev + (size_t)b * H, *d = dh + (size_t)b * H;
        for (int j = j0; j < j1; j++) {
            REAL z = gb[zo + j], nn = gb[no + j];
            REAL dn_pre = d[j] * (1 - z) * (1 - nn * nn);   /* through h' = (1-z) n + ..., then tanh */
            dg[zo + j] = d[j] * (hp[j] - nn) * z * (1 - z); /* through h' = ... + z (h - n), sigmoid */
            dg[no + j] = dn_pre;
            dr[j] = d[j] * z;                               /* h' = ... + z h */
        }
        if (cell == FRNN_GRU) {
            REAL *dgh = dGht + (size_t)b * GH;
            const REAL *hn = aux + (size_t)b * H;
            for (int j = j0; j < j1; j++) {
                REAL r = gb[j], dn_pre = dg[2 * H + j];
                dg[j] = dn_pre * hn[j] * r * (1 - r);       /* n_pre = ... + r * hn; sigmoid */
                dgh[j] = dg[j];
                dgh[H + j] = dg[H + j];
                dgh[2 * H + j] = dn_pre * r;                /* gradient of hn = W_hn h + b_hn */
            }
        }
    }
}

/* Reset-before GRU, units [j0, j1): da = dn_pre @ W_hn is the gradient of a = r * h_{t-1}; then
 * dr_pre = da * h_{t-1} * r (1 - r) and direct += da * r. */
FRNN_CLONES static void F(gru_reset_gate_backward)(REAL *dGt, REAL *direct, const REAL *da, const REAL *g,
                                                   const REAL *hprev, const int *lengths, int t, int B,
                                                   int H, int j0, int j1)
{
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        REAL *dg = dGt + (size_t)b * 3 * H, *dr = direct + (size_t)b * H;
        const REAL *gb = g + (size_t)b * 3 * H, *hp = hprev + (size_t)b * H, *dab = da + (size_t)b * H;
        for (int j = j0; j < j1; j++) {
            REAL r = gb[j];
            dg[j] = dab[j] * hp[j] * r * (1 - r);
            dr[j] += dab[j] * r;
        }
    }
}

static void F(gru_backward)(const F(bstep) *s)
{
    const F(job) *jb = s->jb;
    const frnn_dims *d = jb->d;
    const int B = d->B, H = d->H, cell = d->cell, GH = frnn_gates(cell) * H, u0 = s->u0, u1 = s->u1;
    const int *lengths = jb->bf->lengths;
    F(gru_cell_backward)(cell, s->dGt, cell == FRNN_GRU ? s->dGht : NULL, s->direct, s->dh, s->g, s->aux,
                         s->hprev, lengths, s->t, B, H, u0, u1);
    frnn_sync(s->par);                                        /* the products read all of dG_t */
    if (cell == FRNN_GRU_RESET_BEFORE) {
        /* da = dn_pre @ W_hn */
        F(rec_mul)(&jb->W[1], u0, u1, B, s->dGt + 2 * H, GH, 0, s->extra, H);
        F(gru_reset_gate_backward)(s->dGt, s->direct, s->extra, s->g, s->hprev, lengths, s->t, B, H, u0, u1);
        frnn_sync(s->par);                                    /* ... and all of its r column */
        /* dh_{t-1} = direct + dG[:, :2H] @ W_h(rz) */
        F(carry_back)(&jb->W[0], u0, u1, s->dGt, GH, 1, s->direct, s->carry, lengths, s->t, B);
    } else {
        /* dh_{t-1} = direct + dGh @ W_hh */
        F(carry_back)(&jb->W[0], u0, u1, s->dGht, GH, 1, s->direct, s->carry, lengths, s->t, B);
    }
}

static void F(gru_weight_grads)(const frnn_par *par, const F(job) *jb, const REAL *dG, const REAL *dGh)
{
    const frnn_dims *d = jb->d;
    const int H = d->H, GH = frnn_gates(d->cell) * H;
    const size_t rows = (size_t)d->T * d->B;
    const REAL *tape = jb->bf->tape, *hs = tape + jb->L.hs, *aux = tape + jb->L.aux;
    REAL *dW_hh = jb->bf->dW_hh, *db_hh = jb->bf->db_hh;
    if (d->cell == FRNN_GRU_RESET_BEFORE) {   /* W_h(rz) multiplied h_{t-1}, W_hn r * h_{t-1} */
        F(recurrent_grads)(par, jb->cx, rows, 2 * H, dG, GH, hs, H, dW_hh, db_hh);
        F(recurrent_grads)(par, jb->cx, rows, H, dG + 2 * H, GH, aux, H, dW_hh + (size_t)2 * H * H,
                           db_hh ? db_hh + 2 * H : NULL);
    } else {
        F(recurrent_grads)(par, jb->cx, rows, GH, dGh, GH, hs, H, dW_hh, db_hh);
    }
}

static const F(cell_steps) F(gru_steps) = {F(gru_forward), F(gru_backward), F(gru_weight_grads)};

#undef GRU_Z
#undef GRU_N
