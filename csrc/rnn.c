/* rnn.c - vanilla RNN (template, compiled by kernels.c):  h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
 * act = tanh or relu. Tape: gates (T, B, H) unused beyond the projection, hs (T+1, B, H). */

/* h (B, H) = act(pre) for live rows. */
static void F(rnn_cell)(REAL *h, const REAL *pre, int relu, const int *lengths, int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        if (!F(live)(lengths, b, t)) continue;
        const REAL *p = pre + (size_t)b * H;
        REAL *hb = h + (size_t)b * H;
        if (relu) for (int j = 0; j < H; j++) hb[j] = p[j] > 0 ? p[j] : 0;
        else F(tanh_to)(hb, p, H);
    }
}

/* dpre (B, H) = dh * act'(h), zero for finished rows; act' from the output h. */
FRNN_CLONES static void F(rnn_cell_backward)(REAL *dpre, const REAL *dh, const REAL *h, int relu,
                                             const int *lengths, int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        REAL *d = dpre + (size_t)b * H;
        const REAL *g = dh + (size_t)b * H, *hb = h + (size_t)b * H;
        if (!F(live)(lengths, b, t)) memset(d, 0, sizeof(REAL) * H);
        else if (relu) for (int j = 0; j < H; j++) d[j] = hb[j] > 0 ? g[j] : 0;  /* backprop through relu */
        else for (int j = 0; j < H; j++) d[j] = (1 - hb[j] * hb[j]) * g[j];       /* backprop through tanh */
    }
}

static void F(rnn_forward)(const frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf, int train)
{
    const frnn_blas *blas = cx->blas;
    const int T = d->T, B = d->B, I = d->In, H = d->H, relu = d->cell == FRNN_RNN_RELU;
    const frnn_layout L = frnn_tape_layout(d, train);
    F(recmat) W_hh;                                                   /* op(W) = W_hh^T */
    F(recmat_init)(&W_hh, cx, 1, d->B, d->H, d->H, bf->W_hh, d->H);
    REAL *gates = (REAL *)bf->tape + L.gates;                         /* (T, B, H) */
    REAL *hs = train ? (REAL *)bf->tape + L.hs : (REAL *)bf->h_T;     /* (T+1, B, H) or (B, H) */
    const size_t hstep = train ? (size_t)B * H : 0;

    F(input_projection)(blas, T * B, H, I, bf->x, bf->W_ih, bf->b_ih, bf->b_hh, H, gates);
    F(state_init)(hs, bf->h0, (size_t)B * H);
    for (int t = 0; t < T; t++) {
        REAL *hprev = hs + t * hstep, *h = hprev + hstep, *g = gates + (size_t)t * B * H;
        /* g += h_{t-1} @ W_hh.T */
        F(rec_gemm)(&W_hh, B, hprev, H, 1, g, H);
        F(rnn_cell)(h, g, relu, bf->lengths, t, B, H);
        F(keep_finished_rows)(h, hprev, bf->lengths, t, B, H);
        F(write_output)(bf->y ? (REAL *)bf->y + (size_t)t * B * H : NULL, h, bf->lengths, t, B, H);
    }
    F(recmat_free)(&W_hh);
    if (train) memcpy(bf->h_T, hs + (size_t)T * B * H, sizeof(REAL) * B * H);
}

static void F(rnn_backward)(const frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf)
{
    const frnn_blas *blas = cx->blas;
    F(recmat) W_hh;                                                   /* op(W) = W_hh */
    F(recmat_init)(&W_hh, cx, 0, d->B, d->H, d->H, bf->W_hh, d->H);
    const int T = d->T, B = d->B, H = d->H, relu = d->cell == FRNN_RNN_RELU;
    const frnn_layout L = frnn_tape_layout(d, 1);
    REAL *tape = bf->tape;
    const REAL *hs = tape + L.hs, *dy = bf->dy;
    REAL *dG = tape + L.dG;                                           /* (T, B, H) */
    REAL *carry = tape + L.scratch, *dh = carry + B * H, *next = dh + B * H;  /* (B, H) each */

    F(state_init)(carry, bf->dh_T, (size_t)B * H);
    for (int t = T - 1; t >= 0; t--) {
        REAL *dGt = dG + (size_t)t * B * H;
        F(step_grad_in)(dh, dy ? dy + (size_t)t * B * H : NULL, carry, B * H);
        F(rnn_cell_backward)(dGt, dh, hs + (size_t)(t + 1) * B * H, relu, bf->lengths, t, B, H);
        /* dh_{t-1} = dG_t @ W_hh */
        F(carry_back)(&W_hh, dGt, H, 0, next, carry, bf->lengths, t, B);
    }
    F(recmat_free)(&W_hh);
    memcpy(bf->dh0, carry, sizeof(REAL) * B * H);
    F(recurrent_grads)(blas, (size_t)T * B, H, dG, H, hs, H, bf->dW_hh, bf->db_hh);
    F(input_grads)(blas, d, bf, dG);
}
