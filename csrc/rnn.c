/* rnn.c - vanilla RNN (template, compiled by kernels.c):  h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
 * act = tanh or relu. Tape: gates (T, B, H) unused beyond the projection, hs (T+1, B, H).
 * Each member of the team owns hidden units [u0, u1): its tile, its activations, one barrier per step. */

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

static void F(rnn_forward_task)(void *arg, const frnn_par *par)
{
    const F(job) *jb = arg;
    const frnn_ctx *cx = jb->cx;
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const int T = d->T, B = d->B, H = d->H, relu = d->cell == FRNN_RNN_RELU, train = jb->train;
    REAL *tape = bf->tape;
    REAL *gates = tape + jb->L.gates;                                 /* (T, B, H) */
    REAL *hbuf[2] = {train ? tape + jb->L.hs : (REAL *)bf->h_T, tape + jb->L.scratch};
    const size_t hstep = (size_t)B * H;
    int u0, u1;
    F(my_cols)(par, cx, H, &u0, &u1);
    F(recmat_pack)(&jb->W[0], u0, u1);

    for (int t = 0; t < T; t++) {
        F(chunk_forward)(par, jb, t, H, gates);                /* the input projection, by chunks */
        REAL *hprev = train ? hbuf[0] + t * hstep : hbuf[t & 1];
        REAL *h = train ? hprev + hstep : hbuf[(t + 1) & 1];
        REAL *g = gates + (size_t)t * B * H;
        /* g[:, own] += h_{t-1} @ W_hh.T */
        F(rec_mul)(&jb->W[0], u0, u1, B, hprev, H, 1, g, H);
        F(rnn_cell)(h, g, relu, bf->lengths, t, B, H, u0, u1);
        F(keep_finished_rows)(h, hprev, bf->lengths, t, B, H, u0, u1);
        F(write_output)(bf->y ? (REAL *)bf->y + (size_t)t * B * H : NULL, h, bf->lengths, t, B, H, u0, u1);
        frnn_sync(par);                                       /* the next step reads all of h */
        F(forward_done)(par, jb, t);
    }
    F(copy_cols)((REAL *)bf->h_T, train ? hbuf[0] + (size_t)T * hstep : hbuf[T & 1], B, H, u0, u1);
}

static void F(rnn_backward_task)(void *arg, const frnn_par *par)
{
    const F(job) *jb = arg;
    const frnn_ctx *cx = jb->cx;
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const int T = d->T, B = d->B, H = d->H, relu = d->cell == FRNN_RNN_RELU;
    REAL *tape = bf->tape;
    const REAL *hs = tape + jb->L.hs, *dy = bf->dy;
    REAL *dG = tape + jb->L.dG;                                       /* (T, B, H) */
    REAL *carry = tape + jb->L.scratch, *dh = carry + B * H, *next = dh + B * H;  /* (B, H) each */
    int u0, u1;
    F(my_cols)(par, cx, H, &u0, &u1);
    F(recmat_pack)(&jb->W[0], u0, u1);

    for (int t = T - 1; t >= 0; t--) {
        REAL *dGt = dG + (size_t)t * B * H;
        F(chunk_backward)(par, jb, t);
        F(step_grad_in)(dh, dy ? dy + (size_t)t * B * H : NULL, carry, B, H, u0, u1);
        F(rnn_cell_backward)(dGt, dh, hs + (size_t)(t + 1) * B * H, relu, bf->lengths, t, B, H, u0, u1);
        frnn_sync(par);                                       /* the product reads all of dG_t */
        /* dh_{t-1} = dG_t @ W_hh */
        F(carry_back)(&jb->W[0], u0, u1, dGt, H, 0, next, carry, bf->lengths, t, B);
        F(backward_done)(par, jb, t, dG);
    }
    F(copy_cols)((REAL *)bf->dh0, carry, B, H, u0, u1);
    F(recurrent_grads)(par, cx, (size_t)T * B, H, dG, H, hs, H, bf->dW_hh, bf->db_hh);
    F(input_grads)(par, cx, d, bf, dG, jb->out != NULL);
}
