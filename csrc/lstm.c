/* lstm.c - LSTM (template, compiled by kernels.c), PyTorch's gate order i f g o:
 *   i = s(W_ii x + b_ii + W_hi h + b_hi [+ w_ci * c])     f = s(... [+ w_cf * c])
 *   g = tanh(W_ig x + b_ig + W_hg h + b_hg)               c' = f * c + i * g
 *   o = s(... [+ w_co * c'])                              h' = o * tanh(c')   [h' = W_hr (o * tanh(c'))]
 * with optional peepholes w_peep = [w_ci, w_cf, w_co] and an optional projection W_hr (P, H).
 * Tape: gates (T, B, 4H) post-activation, hs (T+1, B, P), cs (T+1, B, H), tc (T, B, H) = tanh(c_t),
 * aux (T, B, H) = o * tanh(c_t) when projecting.
 *
 * Each member of the team owns hidden units [u0, u1) (all four gates of them) and columns
 * [p0, p1) of h (the same units unless projecting): its recurrent tile, then its gate maths,
 * then one barrier per step (two with a projection, whose product needs every unit's m).
 */

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
        if (w_peep)
            for (int j = j0; j < j1; j++) {
                gb[j] += w_peep[j] * cp[j];                 /* i sees c_{t-1} */
                gb[H + j] += w_peep[H + j] * cp[j];         /* f sees c_{t-1} */
            }
        F(sigmoid_inplace)(gb + j0, n);                                     /* i */
        F(sigmoid_inplace)(gb + H + j0, n);                                 /* f */
        F(tanh_inplace)(gb + 2 * H + j0, n);                                /* g */
        for (int j = j0; j < j1; j++) cb[j] = gb[H + j] * cp[j] + gb[j] * gb[2 * H + j];  /* c = f c + i g */
        if (w_peep)
            for (int j = j0; j < j1; j++) gb[3 * H + j] += w_peep[2 * H + j] * cb[j];    /* o sees c_t */
        F(sigmoid_inplace)(gb + 3 * H + j0, n);                             /* o */
        F(tanh_to)(tcb + j0, cb + j0, n);
        for (int j = j0; j < j1; j++) ob[j] = gb[3 * H + j] * tcb[j];                   /* h = o tanh(c) */
    }
}

static void F(lstm_forward_task)(void *arg, const frnn_par *par)
{
    const F(job) *jb = arg;
    const frnn_ctx *cx = jb->cx;
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const int T = d->T, B = d->B, H = d->H, P = d->P, G4 = 4 * H, proj = P != H, train = jb->train;
    const frnn_layout L = jb->L;
    const REAL *w_peep = bf->w_peep;
    const int *lengths = bf->lengths;
    REAL *tape = bf->tape;
    REAL *gates = tape + L.gates;                                     /* (T, B, 4H) */
    REAL *hproj = tape + L.scratch;                                   /* (B, P) */
    /* h_0..h_T: tape slots in training; in inference two (B, P) buffers in turn (a member
     * writes h_t while the others may still read h_{t-1}) */
    REAL *hbuf[2] = {train ? tape + L.hs : (REAL *)bf->h_T, tape + L.scratch + (size_t)B * P};
    REAL *cs = train ? tape + L.cs : (REAL *)bf->c_T;                 /* (T+1, B, H) or (B, H) */
    REAL *tcs = tape + L.tc, *ms = tape + L.aux;                      /* (T, B, H) or (B, H) */
    const size_t hstep = (size_t)B * P, cstep = train ? (size_t)B * H : 0;
    int u0, u1, p0, p1;
    F(my_cols)(par, cx, H, &u0, &u1);
    F(my_cols)(par, cx, P, &p0, &p1);
    F(recmat_pack)(&jb->W[0], u0, u1);
    F(recmat_pack)(&jb->W[1], p0, p1);

    for (int t = 0; t < T; t++) {
        F(chunk_forward)(par, jb, t, G4, gates);               /* the input projection, by chunks */
        REAL *hprev = train ? hbuf[0] + t * hstep : hbuf[t & 1];
        REAL *h = train ? hprev + hstep : hbuf[(t + 1) & 1];
        REAL *cprev = cs + t * cstep, *c = cprev + cstep;
        REAL *g = gates + (size_t)t * B * G4, *tc = tcs + t * cstep, *m = ms + t * cstep;
        /* g[:, own units of every gate] += h_{t-1} @ W_hh.T */
        F(rec_mul)(&jb->W[0], u0, u1, B, hprev, P, 1, g, G4);
        F(zero_finished_rows)(tc, lengths, t, B, H, u0, u1);
        if (proj) {
            F(zero_finished_rows)(m, lengths, t, B, H, u0, u1);
            F(lstm_cell)(g, cprev, c, tc, m, H, w_peep, lengths, t, B, H, u0, u1);
            frnn_sync(par);                                   /* the projection reads all of m */
            /* h[:, own] = m @ W_hr.T, kept only for live rows */
            F(rec_mul)(&jb->W[1], p0, p1, B, m, H, 0, hproj, P);
            for (int b = 0; b < B; b++)
                if (F(live)(lengths, b, t) && p1 > p0)
                    memcpy(h + (size_t)b * P + p0, hproj + (size_t)b * P + p0, sizeof(REAL) * (p1 - p0));
        } else {
            F(lstm_cell)(g, cprev, c, tc, h, P, w_peep, lengths, t, B, H, u0, u1);
        }
        F(keep_finished_rows)(h, hprev, lengths, t, B, P, p0, p1);
        F(keep_finished_rows)(c, cprev, lengths, t, B, H, u0, u1);
        F(write_output)(bf->y ? (REAL *)bf->y + (size_t)t * B * P : NULL, h, lengths, t, B, P, p0, p1);
        frnn_sync(par);                                       /* the next step reads all of h */
        F(forward_done)(par, jb, t);
    }
    F(copy_cols)((REAL *)bf->h_T, train ? hbuf[0] + (size_t)T * hstep : hbuf[T & 1], B, P, p0, p1);
    F(copy_cols)((REAL *)bf->c_T, cs + (size_t)T * cstep, B, H, u0, u1);   /* in place in inference */
}

/* Pointwise backward of one step, units [j0, j1). dm: gradient reaching o * tanh(c_t); dc:
 * gradient reaching c_t, replaced by the one reaching c_{t-1}; writes dGt (zero rows for
 * finished sequences, whose dc passes through unchanged) and accumulates the peephole gradients. */
FRNN_CLONES static void F(lstm_cell_backward)(REAL *dGt, REAL *dc, const REAL *dm, const REAL *g,
                                              const REAL *cprev, const REAL *c, const REAL *tc,
                                              const REAL *w_peep, REAL *dw_peep, const int *lengths,
                                              int t, int B, int H, int j0, int j1)
{
    for (int b = 0; b < B; b++) {
        REAL *dg = dGt + (size_t)b * 4 * H, *dcb = dc + (size_t)b * H;
        if (!F(live)(lengths, b, t)) {
            for (int q = 0; q < 4; q++) memset(dg + q * H + j0, 0, sizeof(REAL) * (j1 - j0));
            continue;
        }
        const REAL *gb = g + (size_t)b * 4 * H, *cp = cprev + (size_t)b * H, *cb = c + (size_t)b * H;
        const REAL *tcb = tc + (size_t)b * H, *dmb = dm + (size_t)b * H;
        for (int j = j0; j < j1; j++) {
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

static void F(lstm_backward_task)(void *arg, const frnn_par *par)
{
    const F(job) *jb = arg;
    const frnn_ctx *cx = jb->cx;
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const int T = d->T, B = d->B, H = d->H, P = d->P, G4 = 4 * H, proj = P != H;
    const frnn_layout L = jb->L;
    const int *lengths = bf->lengths;
    REAL *tape = bf->tape;
    const REAL *gates = tape + L.gates, *hs = tape + L.hs, *cs = tape + L.cs, *tcs = tape + L.tc;
    const REAL *dy = bf->dy;
    REAL *dG = tape + L.dG, *dhs = tape + L.dhs;                       /* (T, B, 4H), (T, B, P) */
    REAL *carry = tape + L.scratch, *dh = carry + B * P, *next = dh + B * P;  /* (B, P) each */
    REAL *dc = next + B * P, *dm = dc + B * H;                         /* (B, H) each */
    REAL *dw_peep = bf->w_peep ? (REAL *)bf->dw_peep : NULL;
    int u0, u1, p0, p1;
    F(my_cols)(par, cx, H, &u0, &u1);
    F(my_cols)(par, cx, P, &p0, &p1);
    F(recmat_pack)(&jb->W[0], p0, p1);
    F(recmat_pack)(&jb->W[1], u0, u1);

    for (int t = T - 1; t >= 0; t--) {
        const size_t oc = (size_t)t * B * H;
        F(chunk_backward)(par, jb, t);
        REAL *dht = proj ? dhs + (size_t)t * B * P : dh;
        F(step_grad_in)(dht, dy ? dy + (size_t)t * B * P : NULL, carry, B, P, p0, p1);
        if (proj) {
            F(zero_finished_rows)(dht, lengths, t, B, P, p0, p1);   /* dW_hr sums dhs over all rows */
            frnn_sync(par);                                         /* dm reads all of dh */
            /* dm = dh @ W_hr */
            F(rec_mul)(&jb->W[1], u0, u1, B, dht, P, 0, dm, H);
        }
        F(lstm_cell_backward)(dG + (size_t)t * B * G4, dc, proj ? dm : dht, gates + (size_t)t * B * G4,
                              cs + oc, cs + oc + (size_t)B * H, tcs + oc, bf->w_peep, dw_peep,
                              lengths, t, B, H, u0, u1);
        frnn_sync(par);                                             /* the product reads all of dG_t */
        /* dh_{t-1} = dG_t @ W_hh */
        F(carry_back)(&jb->W[0], p0, p1, dG + (size_t)t * B * G4, G4, 0, next, carry, lengths, t, B);
        F(backward_done)(par, jb, t, dG);
    }
    F(copy_cols)((REAL *)bf->dh0, carry, B, P, p0, p1);
    F(copy_cols)((REAL *)bf->dc0, dc, B, H, u0, u1);
    F(recurrent_grads)(par, cx, (size_t)T * B, G4, dG, G4, hs, P, bf->dW_hh, bf->db_hh);
    F(input_grads)(par, cx, d, bf, dG, jb->out != NULL);
    if (proj)  /* dW_hr += dhs.T @ m */
        F(prod)(par, cx, P, H, (size_t)T * B, dhs, P, 1, tape + L.aux, H, 0, 1, bf->dW_hr, H);
}
