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

/* The forward row's short passes (each a wide-vector clone; restrict: the pointers are distinct
 * slices of the tape and the step's scratch, so no run-time overlap checks). The same operations
 * per element in the same order as the one-function loops they replace: the same bits. */
FRNN_CLONES static void F(gru_add_row)(REAL *restrict gb, const REAL *restrict hgb, int n)
{
    for (int j = 0; j < n; j++) gb[j] += hgb[j];
}
/* hn = W_hn h + b_hn (+ 0 without a bias, as before: -0 + 0 is +0), n_pre += r * hn */
FRNN_CLONES static void F(gru_hn_row)(const REAL *restrict hgn, const REAL *restrict bn, const REAL *restrict r,
                                      REAL *restrict hn, REAL *restrict gn, int n)
{
    if (bn)
        for (int j = 0; j < n; j++) hn[j] = hgn[j] + bn[j], gn[j] += r[j] * hn[j];
    else
        for (int j = 0; j < n; j++) hn[j] = hgn[j] + 0, gn[j] += r[j] * hn[j];
}
/* h' = (1 - z) n + z h */
FRNN_CLONES static void F(gru_h_row)(const REAL *restrict gz, const REAL *restrict gn, const REAL *restrict hp,
                                     REAL *restrict hb, int n)
{
    for (int j = 0; j < n; j++) hb[j] = (1 - gz[j]) * gn[j] + gz[j] * hp[j];
}

/* Pointwise forward of one step for live rows, units [j0, j1); g (B, GH) holds the
 * pre-activations with the recurrent part added, except FRNN_GRU's, whose recurrent part hg
 * (B, 3H) is separate. Writes gates g, aux and h. */
static void F(gru_cell)(int cell, REAL *g, const REAL *hg, const REAL *b_hh, REAL *aux,
                        const REAL *hprev, REAL *h, const int *lengths, int t, int B, int H, int j0, int j1)
{
    const int GH = frnn_gates(cell) * H, zo = GRU_Z(cell, H), no = GRU_N(cell, H), n = j1 - j0;
    if (n <= 0) return;
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        REAL *gb = g + (size_t)b * GH, *hb = h + (size_t)b * H;
        const REAL *hp = hprev + (size_t)b * H;
        if (cell == FRNN_GRU) {
            const REAL *hgb = hg + (size_t)b * GH;
            REAL *hn = aux + (size_t)b * H;
            if (n == H) {                                               /* r and z side by side */
                F(gru_add_row)(gb, hgb, 2 * H);
                F(sigmoid_inplace)(gb, 2 * H);
            } else {
                F(gru_add_row)(gb + j0, hgb + j0, n);
                F(gru_add_row)(gb + H + j0, hgb + H + j0, n);
                F(sigmoid_inplace)(gb + j0, n);                         /* r */
                F(sigmoid_inplace)(gb + H + j0, n);                     /* z */
            }
            F(gru_hn_row)(hgb + 2 * H + j0, b_hh ? b_hh + 2 * H + j0 : NULL, gb + j0, hn + j0, gb + 2 * H + j0, n);
            F(tanh_inplace)(gb + 2 * H + j0, n);                        /* n */
        } else {  /* reset-before: r and a = r*h were done by gru_reset_gate; simplified: no r */
            F(sigmoid_inplace)(gb + zo + j0, n);
            F(tanh_inplace)(gb + no + j0, n);
        }
        F(gru_h_row)(gb + zo + j0, gb + no + j0, hp + j0, hb + j0, n);
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

/* The backward rows of one sequence, n units, each gate's input and output its own pointer
 * (with restrict nothing can overlap, so the loops vectorise with no run-time overlap check;
 * as rows of dg they were versioned, dg[j] and dg[H + j] possibly overlapping for a small H).
 * The z and n columns and direct = z * dh: */
FRNN_CLONES static void F(gru_bwd_row_zn)(const REAL *restrict gz, const REAL *restrict gn,
                                          const REAL *restrict hp, const REAL *restrict d,
                                          REAL *restrict dz, REAL *restrict dn, REAL *restrict dr, int n)
{
    for (int j = 0; j < n; j++) {
        REAL z = gz[j], nn = gn[j];
        dz[j] = d[j] * (hp[j] - nn) * z * (1 - z);      /* through h' = ... + z (h - n), sigmoid */
        dn[j] = d[j] * (1 - z) * (1 - nn * nn);         /* through h' = (1-z) n + ..., then tanh */
        dr[j] = d[j] * z;                               /* h' = ... + z h */
    }
}

/* FRNN_GRU's whole row in one pass: the above, then r's column and the recurrent side dGh
 * (its r, z columns equal dG's, its n column dn_pre * r, the gradient of hn = W_hn h + b_hn). */
FRNN_CLONES static void F(gru_bwd_row)(const REAL *restrict gr, const REAL *restrict gz,
                                       const REAL *restrict gn, const REAL *restrict hn,
                                       const REAL *restrict hp, const REAL *restrict d,
                                       REAL *restrict dgr, REAL *restrict dz, REAL *restrict dn,
                                       REAL *restrict dhr, REAL *restrict dhz, REAL *restrict dhn,
                                       REAL *restrict dr, int n)
{
    for (int j = 0; j < n; j++) {
        REAL z = gz[j], nn = gn[j], r = gr[j];
        REAL dn_pre = d[j] * (1 - z) * (1 - nn * nn);
        REAL dz_pre = d[j] * (hp[j] - nn) * z * (1 - z);
        REAL dr_pre = dn_pre * hn[j] * r * (1 - r);     /* n_pre = ... + r * hn; sigmoid */
        dz[j] = dz_pre, dn[j] = dn_pre, dr[j] = d[j] * z;
        dgr[j] = dr_pre, dhr[j] = dr_pre, dhz[j] = dz_pre;
        dhn[j] = dn_pre * r;
    }
}

/* Pointwise backward of one step, units [j0, j1), for every row. From dh (gradient reaching h_t)
 * writes dGt (gate pre-activation grads; zero for finished rows), for FRNN_GRU also dGht (the
 * recurrent side, whose n column is dn_pre * r), and direct = z * dh (the path h_{t-1} -> h_t
 * that skips the weights). Reset-before's r column is left for gru_reset_gate_backward.
 * The outputs and the inputs are distinct buffers (timeloop.h's backward_task carves them from
 * the tape and its scratch). */
static void F(gru_cell_backward)(int cell, REAL *dGt, REAL *dGht, REAL *direct, const REAL *dh, const REAL *g,
                                 const REAL *aux, const REAL *hprev, const int *lengths, int t, int B,
                                 int H, int j0, int j1)
{
    const int G = frnn_gates(cell), GH = G * H, zo = GRU_Z(cell, H), no = GRU_N(cell, H), n = j1 - j0;
    if (n <= 0) return;
    for (int b = 0; b < B; b++) {
        REAL *dg = dGt + (size_t)b * GH + j0, *dr = direct + (size_t)b * H + j0;
        if (!F(live)(lengths, b, t)) {
            for (int q = 0; q < G; q++) {
                memset(dg + q * H, 0, sizeof(REAL) * n);
                if (dGht) memset(dGht + (size_t)b * GH + q * H + j0, 0, sizeof(REAL) * n);
            }
            memset(dr, 0, sizeof(REAL) * n);
            continue;
        }
        const REAL *gb = g + (size_t)b * GH + j0, *hp = hprev + (size_t)b * H + j0, *d = dh + (size_t)b * H + j0;
        if (cell == FRNN_GRU) {
            REAL *dgh = dGht + (size_t)b * GH + j0;
            F(gru_bwd_row)(gb, gb + H, gb + 2 * H, aux + (size_t)b * H + j0, hp, d, dg, dg + H, dg + 2 * H, dgh,
                           dgh + H, dgh + 2 * H, dr, n);
        } else {
            F(gru_bwd_row_zn)(gb + zo, gb + no, hp, d, dg + zo, dg + no, dr, n);
        }
    }
}

/* Reset-before GRU, units [j0, j1): da = dn_pre @ W_hn is the gradient of a = r * h_{t-1}; then
 * dr_pre = da * h_{t-1} * r (1 - r) and direct += da * r. */
FRNN_CLONES static void F(gru_reset_gate_backward)(REAL *restrict dGt, REAL *restrict direct,
                                                   const REAL *restrict da, const REAL *restrict g,
                                                   const REAL *restrict hprev, const int *lengths, int t,
                                                   int B, int H, int j0, int j1)
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
    /* With every row live, direct = z * dh goes straight into carry's columns [u0, u1) (P == H:
     * this member's columns, read by no other member) and carry_back adds the product to it in
     * place -- the same values as through the scratch `direct`, without its (B, H) copy a step.
     * Packed sequences keep the scratch: a finished row's carry must survive the step. */
    REAL *direct = lengths == NULL ? s->carry : s->direct;
    F(gru_cell_backward)(cell, s->dGt, cell == FRNN_GRU ? s->dGht : NULL, direct, s->dh, s->g, s->aux,
                         s->hprev, lengths, s->t, B, H, u0, u1);
    if (cell == FRNN_GRU) F(rec_stage)(&jb->W[0], s->dGht, GH, s->t, B, u0, u1, H, 3);   /* bf16: rounded once */
    frnn_sync(s->par);                                        /* the products read all of dG_t */
    if (cell == FRNN_GRU_RESET_BEFORE) {
        /* da = dn_pre @ W_hn */
        F(rec_mul)(&jb->W[1], u0, u1, B, s->dGt + 2 * H, GH, 0, s->extra, H);
        F(gru_reset_gate_backward)(s->dGt, direct, s->extra, s->g, s->hprev, lengths, s->t, B, H, u0, u1);
        frnn_sync(s->par);                                    /* ... and all of its r column */
        /* dh_{t-1} = direct + dG[:, :2H] @ W_h(rz) */
        F(carry_back)(&jb->W[0], u0, u1, s->dGt, GH, 1, direct, s->carry, lengths, s->t, B);
    } else {
        /* dh_{t-1} = direct + dGh @ W_hh */
        F(carry_back)(&jb->W[0], u0, u1, s->dGht, GH, 1, direct, s->carry, lengths, s->t, B);
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

static const F(cell_steps) F(gru_steps) = {F(gru_forward), F(gru_backward), F(gru_weight_grads), NULL, NULL};

#undef GRU_Z
#undef GRU_N
