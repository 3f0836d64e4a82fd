/* lstm.c - LSTM (template, compiled by kernels.c), PyTorch's gate order i f g o:
 *   i = s(W_ii x + b_ii + W_hi h + b_hi [+ w_ci * c])     f = s(... [+ w_cf * c])
 *   g = tanh(W_ig x + b_ig + W_hg h + b_hg)               c' = f * c + i * g
 *   o = s(... [+ w_co * c'])                              h' = o * tanh(c')   [h' = W_hr (o * tanh(c'))]
 * with optional peepholes w_peep = [w_ci, w_cf, w_co] and an optional projection W_hr (P, H).
 * Tape: gates (T, B, 4H) post-activation, hs (T+1, B, P), cs (T+1, B, H), tc (T, B, H) = tanh(c_t),
 * aux (T, B, H) = o * tanh(c_t) when projecting. */

/* Pointwise forward of one step for live rows: gates g in place, c (may alias cprev), tanh(c)
 * into tc, and o * tanh(c) into out (h itself, or m before the projection). */
static void F(lstm_cell)(REAL *g, const REAL *cprev, REAL *c, REAL *tc, REAL *out, int ldo,
                                     const REAL *w_peep, const int *lengths, int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        REAL *gb = g + (size_t)b * 4 * H, *cb = c + (size_t)b * H, *tcb = tc + (size_t)b * H;
        REAL *ob = out + (size_t)b * ldo;
        const REAL *cp = cprev + (size_t)b * H;
        if (w_peep)
            for (int j = 0; j < H; j++) {
                gb[j] += w_peep[j] * cp[j];                 /* i sees c_{t-1} */
                gb[H + j] += w_peep[H + j] * cp[j];         /* f sees c_{t-1} */
            }
        F(sigmoid_inplace)(gb, 2 * H);                                      /* i, f */
        F(tanh_inplace)(gb + 2 * H, H);                                     /* g */
        for (int j = 0; j < H; j++) cb[j] = gb[H + j] * cp[j] + gb[j] * gb[2 * H + j];  /* c = f c + i g */
        if (w_peep)
            for (int j = 0; j < H; j++) gb[3 * H + j] += w_peep[2 * H + j] * cb[j];    /* o sees c_t */
        F(sigmoid_inplace)(gb + 3 * H, H);                                  /* o */
        F(tanh_to)(tcb, cb, H);
        for (int j = 0; j < H; j++) ob[j] = gb[3 * H + j] * tcb[j];                   /* h = o tanh(c) */
    }
}

static void F(lstm_forward)(const frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf, int train)
{
    const frnn_blas *blas = cx->blas;
    const int T = d->T, B = d->B, I = d->In, H = d->H, P = d->P, G4 = 4 * H, proj = P != H;
    F(recmat) W_hh_t, W_hr_t;                                         /* op(W) = W_hh^T, W_hr^T */
    F(recmat_init)(&W_hh_t, cx, 1, B, G4, P, bf->W_hh, P);
    F(recmat_init)(&W_hr_t, cx, 1, proj ? B : 0, P, H, bf->W_hr, H);
    const frnn_layout L = frnn_tape_layout(d, train);
    const REAL *w_peep = bf->w_peep;
    const int *lengths = bf->lengths;
    REAL *tape = bf->tape;
    REAL *gates = tape + L.gates;                                     /* (T, B, 4H) */
    REAL *hs = train ? tape + L.hs : (REAL *)bf->h_T;                 /* (T+1, B, P) or (B, P) */
    REAL *cs = train ? tape + L.cs : (REAL *)bf->c_T;                 /* (T+1, B, H) or (B, H) */
    REAL *tcs = tape + L.tc, *ms = tape + L.aux;                      /* (T, B, H) or (B, H) */
    REAL *hproj = tape + L.scratch;                                   /* (B, P) */
    const size_t hstep = train ? (size_t)B * P : 0, cstep = train ? (size_t)B * H : 0;

    F(input_projection)(blas, T * B, G4, I, bf->x, bf->W_ih, bf->b_ih, bf->b_hh, G4, gates);
    F(state_init)(hs, bf->h0, (size_t)B * P);
    F(state_init)(cs, bf->c0, (size_t)B * H);
    for (int t = 0; t < T; t++) {
        REAL *hprev = hs + t * hstep, *h = hprev + hstep, *cprev = cs + t * cstep, *c = cprev + cstep;
        REAL *g = gates + (size_t)t * B * G4, *tc = tcs + t * cstep, *m = ms + t * cstep;
        /* g += h_{t-1} @ W_hh.T */
        F(rec_gemm)(&W_hh_t, B, hprev, P, 1, g, G4);
        F(zero_finished_rows)(tc, lengths, t, B, H);
        if (proj) {
            F(zero_finished_rows)(m, lengths, t, B, H);
            F(lstm_cell)(g, cprev, c, tc, m, H, w_peep, lengths, t, B, H);
            /* h = m @ W_hr.T, kept only for live rows (h may alias h_{t-1}) */
            F(rec_gemm)(&W_hr_t, B, m, H, 0, hproj, P);
            for (int b = 0; b < B; b++)
                if (F(live)(lengths, b, t)) memcpy(h + (size_t)b * P, hproj + (size_t)b * P, sizeof(REAL) * P);
        } else {
            F(lstm_cell)(g, cprev, c, tc, h, P, w_peep, lengths, t, B, H);
        }
        F(keep_finished_rows)(h, hprev, lengths, t, B, P);
        F(keep_finished_rows)(c, cprev, lengths, t, B, H);
        F(write_output)(bf->y ? (REAL *)bf->y + (size_t)t * B * P : NULL, h, lengths, t, B, P);
    }
    F(recmat_free)(&W_hh_t);
    F(recmat_free)(&W_hr_t);
    if (train) {
        memcpy(bf->h_T, hs + (size_t)T * B * P, sizeof(REAL) * B * P);
        memcpy(bf->c_T, cs + (size_t)T * B * H, sizeof(REAL) * B * H);
    }
}

/* Pointwise backward of one step. dm: gradient reaching o * tanh(c_t); dc: gradient reaching
 * c_t, replaced by the one reaching c_{t-1}; writes dGt (zero rows for finished sequences,
 * whose dc passes through unchanged) and accumulates the peephole gradients. */
FRNN_CLONES static void F(lstm_cell_backward)(REAL *dGt, REAL *dc, const REAL *dm, const REAL *g,
                                              const REAL *cprev, const REAL *c, const REAL *tc,
                                              const REAL *w_peep, REAL *dw_peep, const int *lengths,
                                              int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        REAL *dg = dGt + (size_t)b * 4 * H, *dcb = dc + (size_t)b * H;
        if (!F(live)(lengths, b, t)) { memset(dg, 0, sizeof(REAL) * 4 * H); continue; }
        const REAL *gb = g + (size_t)b * 4 * H, *cp = cprev + (size_t)b * H, *cb = c + (size_t)b * H;
        const REAL *tcb = tc + (size_t)b * H, *dmb = dm + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            REAL i = gb[j], f = gb[H + j], gg = gb[2 * H + j], o = gb[3 * H + j];
            REAL do_pre = dmb[j] * tcb[j] * o * (1 - o);                     /* m = o tanh(c); sigmoid */
            REAL dct = dcb[j] + dmb[j] * o * (1 - tcb[j] * tcb[j]);          /* through tanh(c) */
            if (w_peep) dct += do_pre * w_peep[2 * H + j];                   /* o saw c_t */
            REAL di_pre = dct * gg * i * (1 - i);                            /* c = ... + i g */
            REAL df_pre = dct * cp[j] * f * (1 - f);                         /* c = f c_{t-1} + ... */
            dg[j] = di_pre;
            dg[H + j] = df_pre;
            dg[2 * H + j] = dct * i * (1 - gg * gg);                         /* g = tanh(...) */
            dg[3 * H + j] = do_pre;
            dcb[j] = dct * f;                                                /* to c_{t-1} */
            if (w_peep) {
                dcb[j] += di_pre * w_peep[j] + df_pre * w_peep[H + j];       /* i, f saw c_{t-1} */
                dw_peep[j] += di_pre * cp[j];
                dw_peep[H + j] += df_pre * cp[j];
                dw_peep[2 * H + j] += do_pre * cb[j];
            }
        }
    }
}

static void F(lstm_backward)(const frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf)
{
    const frnn_blas *blas = cx->blas;
    const int T = d->T, B = d->B, H = d->H, P = d->P, G4 = 4 * H, proj = P != H;
    F(recmat) W_hh, W_hr;                                             /* op(W) = W_hh, W_hr */
    F(recmat_init)(&W_hh, cx, 0, B, P, G4, bf->W_hh, P);
    F(recmat_init)(&W_hr, cx, 0, proj ? B : 0, H, P, bf->W_hr, H);
    const frnn_layout L = frnn_tape_layout(d, 1);
    const int *lengths = bf->lengths;
    REAL *tape = bf->tape;
    const REAL *gates = tape + L.gates, *hs = tape + L.hs, *cs = tape + L.cs, *tcs = tape + L.tc;
    const REAL *dy = bf->dy;
    REAL *dG = tape + L.dG, *dhs = tape + L.dhs;                       /* (T, B, 4H), (T, B, P) */
    REAL *carry = tape + L.scratch, *dh = carry + B * P, *next = dh + B * P;  /* (B, P) each */
    REAL *dc = next + B * P, *dm = dc + B * H;                         /* (B, H) each */
    REAL *dw_peep = bf->w_peep ? (REAL *)bf->dw_peep : NULL;

    F(state_init)(carry, bf->dh_T, (size_t)B * P);
    F(state_init)(dc, bf->dc_T, (size_t)B * H);
    for (int t = T - 1; t >= 0; t--) {
        const size_t oc = (size_t)t * B * H;
        REAL *dht = proj ? dhs + (size_t)t * B * P : dh;
        F(step_grad_in)(dht, dy ? dy + (size_t)t * B * P : NULL, carry, B * P);
        if (proj) {
            F(zero_finished_rows)(dht, lengths, t, B, P);   /* dW_hr sums dhs over all rows */
            /* dm = dh @ W_hr */
            F(rec_gemm)(&W_hr, B, dht, P, 0, dm, H);
        }
        F(lstm_cell_backward)(dG + (size_t)t * B * G4, dc, proj ? dm : dht, gates + (size_t)t * B * G4,
                              cs + oc, cs + oc + (size_t)B * H, tcs + oc, bf->w_peep, dw_peep,
                              lengths, t, B, H);
        /* dh_{t-1} = dG_t @ W_hh */
        F(carry_back)(&W_hh, dG + (size_t)t * B * G4, G4, 0, next, carry, lengths, t, B);
    }
    F(recmat_free)(&W_hh);
    F(recmat_free)(&W_hr);
    memcpy(bf->dh0, carry, sizeof(REAL) * B * P);
    memcpy(bf->dc0, dc, sizeof(REAL) * B * H);
    F(recurrent_grads)(blas, (size_t)T * B, G4, dG, G4, hs, P, bf->dW_hh, bf->db_hh);
    F(input_grads)(blas, d, bf, dG);
    if (proj)  /* dW_hr += dhs.T @ m */
        F(frnn_gemm)(blas, 1, 0, P, H, T * B, 1, dhs, P, tape + L.aux, H, 1, bf->dW_hr, H);
}
