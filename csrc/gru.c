/* gru.c - GRU variants (template, compiled by kernels.c). With r, z = sigmoid(...):
 *   FRNN_GRU (PyTorch, cuDNN):   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   FRNN_GRU_RESET_BEFORE (Cho): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
 *   FRNN_GRU_SIMPLIFIED:         no reset gate, gates (z, n); n = tanh(W_in x + b_in + W_hn h + b_hn)
 * and always h' = (1 - z) * n + z * h.
 * Tape: gates (T, B, GH) post-activation [r] z n; hs (T+1, B, H); aux (T, B, H) holds
 * W_hn h + b_hn (FRNN_GRU) or r * h (reset-before). */

/* Column offsets of the z and n gates in a row of gates. */
#define GRU_Z(cell, H) ((cell) == FRNN_GRU_SIMPLIFIED ? 0 : (H))
#define GRU_N(cell, H) ((cell) == FRNN_GRU_SIMPLIFIED ? (H) : 2 * (H))

/* Pointwise forward of one step for live rows; g (B, GH) holds the pre-activations with the
 * recurrent part added, except FRNN_GRU's, whose recurrent part hg (B, 3H) is separate.
 * Writes gates g, aux and h (which may alias hprev). */
static void F(gru_cell)(int cell, REAL *g, const REAL *hg, const REAL *b_hh, REAL *aux,
                                    const REAL *hprev, REAL *h, const int *lengths, int t, int B, int H)
{
    const int GH = frnn_gates(cell) * H, zo = GRU_Z(cell, H), no = GRU_N(cell, H);
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        REAL *gb = g + (size_t)b * GH, *hb = h + (size_t)b * H;
        const REAL *hp = hprev + (size_t)b * H;
        if (cell == FRNN_GRU) {
            const REAL *hgb = hg + (size_t)b * GH;
            REAL *hn = aux + (size_t)b * H;
            for (int j = 0; j < 2 * H; j++) gb[j] += hgb[j];
            F(sigmoid_inplace)(gb, 2 * H);                                  /* r, z */
            for (int j = 0; j < H; j++) {
                hn[j] = hgb[2 * H + j] + (b_hh ? b_hh[2 * H + j] : 0);       /* W_hn h + b_hn */
                gb[2 * H + j] += gb[j] * hn[j];
            }
            F(tanh_inplace)(gb + 2 * H, H);                                 /* n */
        } else {  /* reset-before: r and a = r*h were done by gru_reset_gate; simplified: no r */
            F(sigmoid_inplace)(gb + zo, H);
            F(tanh_inplace)(gb + no, H);
        }
        for (int j = 0; j < H; j++) {
            REAL z = gb[zo + j], n = gb[no + j];
            hb[j] = (1 - z) * n + z * hp[j];
        }
    }
}

/* Reset-before GRU, first half of a step: r = sigmoid(g_r) in place, aux = r * h_{t-1}. */
static void F(gru_reset_gate)(REAL *g, REAL *aux, const REAL *hprev, const int *lengths,
                                          int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        REAL *gb = g + (size_t)b * 3 * H, *a = aux + (size_t)b * H;
        const REAL *hp = hprev + (size_t)b * H;
        if (!F(live)(lengths, b, t)) { memset(a, 0, sizeof(REAL) * H); continue; }
        F(sigmoid_inplace)(gb, H);
        for (int j = 0; j < H; j++) a[j] = gb[j] * hp[j];
    }
}

static void F(gru_forward)(const frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf, int train)
{
    const frnn_blas *blas = cx->blas;
    const int T = d->T, B = d->B, I = d->In, H = d->H, cell = d->cell, GH = frnn_gates(cell) * H;
    const frnn_layout L = frnn_tape_layout(d, train);
    const REAL *W_hh = bf->W_hh;
    /* op(W) = W_hh^T, or for reset-before its W_h(rz)^T and W_hn^T parts */
    const int before = cell == FRNN_GRU_RESET_BEFORE;
    F(recmat) W_all, W_n;
    F(recmat_init)(&W_all, cx, 1, B, before ? 2 * H : GH, H, W_hh, H);
    F(recmat_init)(&W_n, cx, 1, before ? B : 0, H, H, W_hh + (size_t)2 * H * H, H);
    REAL *tape = bf->tape;
    REAL *gates = tape + L.gates;                                     /* (T, B, GH) */
    REAL *hs = train ? tape + L.hs : (REAL *)bf->h_T;                 /* (T+1, B, H) or (B, H) */
    REAL *aux = tape + L.aux;                                         /* (T, B, H) or (B, H) */
    REAL *hg = tape + L.scratch;                                      /* (B, GH) */
    const size_t hstep = train ? (size_t)B * H : 0, astep = train ? (size_t)B * H : 0;

    /* FRNN_GRU keeps b_hn inside r * (W_hn h + b_hn): fold only b_hr, b_hz into the projection */
    F(input_projection)(blas, T * B, GH, I, bf->x, bf->W_ih, bf->b_ih, bf->b_hh,
                        cell == FRNN_GRU ? 2 * H : GH, gates);
    F(state_init)(hs, bf->h0, (size_t)B * H);
    for (int t = 0; t < T; t++) {
        REAL *hprev = hs + t * hstep, *h = hprev + hstep, *g = gates + (size_t)t * B * GH;
        REAL *a = aux + t * astep;
        if (cell == FRNN_GRU) {
            /* hg = h_{t-1} @ W_hh.T */
            F(rec_gemm)(&W_all, B, hprev, H, 0, hg, GH);
            F(zero_finished_rows)(a, bf->lengths, t, B, H);
        } else if (cell == FRNN_GRU_RESET_BEFORE) {
            /* g[:, :2H] += h_{t-1} @ W_h(rz).T;  r = sigmoid, a = r * h_{t-1};  g[:, 2H:] += a @ W_hn.T */
            F(rec_gemm)(&W_all, B, hprev, H, 1, g, GH);
            F(gru_reset_gate)(g, a, hprev, bf->lengths, t, B, H);
            F(rec_gemm)(&W_n, B, a, H, 1, g + 2 * H, GH);
        } else {
            /* g += h_{t-1} @ W_hh.T */
            F(rec_gemm)(&W_all, B, hprev, H, 1, g, GH);
        }
        F(gru_cell)(cell, g, hg, bf->b_hh, a, hprev, h, bf->lengths, t, B, H);
        F(keep_finished_rows)(h, hprev, bf->lengths, t, B, H);
        F(write_output)(bf->y ? (REAL *)bf->y + (size_t)t * B * H : NULL, h, bf->lengths, t, B, H);
    }
    F(recmat_free)(&W_all);
    F(recmat_free)(&W_n);
    if (train) memcpy(bf->h_T, hs + (size_t)T * B * H, sizeof(REAL) * B * H);
}

/* Pointwise backward of one step, for every row. From dh (gradient reaching h_t) writes
 * dGt (gate pre-activation grads; zero for finished rows), for FRNN_GRU also dGht (the
 * recurrent side, whose n column is dn_pre * r), and direct = z * dh (the path h_{t-1} -> h_t
 * that skips the weights). Reset-before's r column is left for gru_reset_gate_backward. */
FRNN_CLONES static void F(gru_cell_backward)(int cell, REAL *dGt, REAL *dGht, REAL *direct, const REAL *dh,
                                             const REAL *g, const REAL *aux, const REAL *hprev,
                                             const int *lengths, int t, int B, int H)
{
    const int GH = frnn_gates(cell) * H, zo = GRU_Z(cell, H), no = GRU_N(cell, H);
    for (int b = 0; b < B; b++) {
        REAL *dg = dGt + (size_t)b * GH, *dr = direct + (size_t)b * H;
        if (!F(live)(lengths, b, t)) {
            memset(dg, 0, sizeof(REAL) * GH);
            if (dGht) memset(dGht + (size_t)b * GH, 0, sizeof(REAL) * GH);
            memset(dr, 0, sizeof(REAL) * H);
            continue;
        }
        const REAL *gb = g + (size_t)b * GH, *hp = hprev + (size_t)b * H, *d = dh + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            REAL z = gb[zo + j], n = gb[no + j];
            REAL dn_pre = d[j] * (1 - z) * (1 - n * n);     /* through h' = (1-z) n + ..., then tanh */
            dg[zo + j] = d[j] * (hp[j] - n) * z * (1 - z);  /* through h' = ... + z (h - n), sigmoid */
            dg[no + j] = dn_pre;
            dr[j] = d[j] * z;                               /* h' = ... + z h */
        }
        if (cell == FRNN_GRU) {
            REAL *dgh = dGht + (size_t)b * GH;
            const REAL *hn = aux + (size_t)b * H;
            for (int j = 0; j < H; j++) {
                REAL r = gb[j], dn_pre = dg[2 * H + j];
                dg[j] = dn_pre * hn[j] * r * (1 - r);       /* n_pre = ... + r * hn; sigmoid */
                dgh[j] = dg[j];
                dgh[H + j] = dg[H + j];
                dgh[2 * H + j] = dn_pre * r;                /* gradient of hn = W_hn h + b_hn */
            }
        }
    }
}

/* Reset-before GRU: da = dn_pre @ W_hn is the gradient of a = r * h_{t-1}; then
 * dr_pre = da * h_{t-1} * r (1 - r) and direct += da * r. */
FRNN_CLONES static void F(gru_reset_gate_backward)(REAL *dGt, REAL *direct, const REAL *da, const REAL *g,
                                                   const REAL *hprev, const int *lengths, int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        REAL *dg = dGt + (size_t)b * 3 * H, *dr = direct + (size_t)b * H;
        const REAL *gb = g + (size_t)b * 3 * H, *hp = hprev + (size_t)b * H, *dab = da + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            REAL r = gb[j];
            dg[j] = dab[j] * hp[j] * r * (1 - r);
            dr[j] += dab[j] * r;
        }
    }
}

static void F(gru_backward)(const frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf)
{
    const frnn_blas *blas = cx->blas;
    const int T = d->T, B = d->B, H = d->H, cell = d->cell, GH = frnn_gates(cell) * H;
    /* op(W) = W_hh, or for reset-before its W_h(rz) and W_hn parts */
    const int before = cell == FRNN_GRU_RESET_BEFORE;
    F(recmat) W_all, W_n;
    F(recmat_init)(&W_all, cx, 0, B, H, before ? 2 * H : GH, bf->W_hh, H);
    F(recmat_init)(&W_n, cx, 0, before ? B : 0, H, H, (const REAL *)bf->W_hh + (size_t)2 * H * H, H);
    const frnn_layout L = frnn_tape_layout(d, 1);
    REAL *tape = bf->tape;
    const REAL *gates = tape + L.gates, *hs = tape + L.hs, *aux = tape + L.aux, *dy = bf->dy;
    REAL *dG = tape + L.dG;                                           /* (T, B, GH) */
    REAL *dGh = cell == FRNN_GRU ? tape + L.dGh : dG;                 /* recurrent side */
    REAL *carry = tape + L.scratch, *dh = carry + B * H, *direct = dh + B * H, *da = direct + B * H;

    F(state_init)(carry, bf->dh_T, (size_t)B * H);
    for (int t = T - 1; t >= 0; t--) {
        const size_t o = (size_t)t * B * GH, oh = (size_t)t * B * H;
        F(step_grad_in)(dh, dy ? dy + oh : NULL, carry, B * H);
        F(gru_cell_backward)(cell, dG + o, cell == FRNN_GRU ? dGh + o : NULL, direct, dh, gates + o,
                             aux + oh, hs + oh, bf->lengths, t, B, H);
        if (cell == FRNN_GRU_RESET_BEFORE) {
            /* da = dn_pre @ W_hn */
            F(rec_gemm)(&W_n, B, dG + o + 2 * H, GH, 0, da, H);
            F(gru_reset_gate_backward)(dG + o, direct, da, gates + o, hs + oh, bf->lengths, t, B, H);
            /* dh_{t-1} = direct + dG[:, :2H] @ W_h(rz) */
            F(carry_back)(&W_all, dG + o, GH, 1, direct, carry, bf->lengths, t, B);
        } else {
            /* dh_{t-1} = direct + dGh @ W_hh */
            F(carry_back)(&W_all, dGh + o, GH, 1, direct, carry, bf->lengths, t, B);
        }
    }
    F(recmat_free)(&W_all);
    F(recmat_free)(&W_n);
    memcpy(bf->dh0, carry, sizeof(REAL) * B * H);
    if (cell == FRNN_GRU_RESET_BEFORE) {
        REAL *dW_hh = bf->dW_hh, *db_hh = bf->db_hh;
        F(recurrent_grads)(blas, (size_t)T * B, 2 * H, dG, GH, hs, H, dW_hh, db_hh);
        F(recurrent_grads)(blas, (size_t)T * B, H, dG + 2 * H, GH, aux, H, dW_hh + (size_t)2 * H * H,
                           db_hh ? db_hh + 2 * H : NULL);
    } else {
        F(recurrent_grads)(blas, (size_t)T * B, GH, dGh, GH, hs, H, bf->dW_hh, bf->db_hh);
    }
    F(input_grads)(blas, d, bf, dG);
}

#undef GRU_Z
#undef GRU_N
