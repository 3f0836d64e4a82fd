/* timeloop.h - the one time loop of every cell (template, included by template.h), forward and
 * backward, training and inference, alone or inside a stack call. It runs the steps, the chunked
 * input projection and wavefront links, the packed-sequence bookkeeping (finished rows keep their
 * state and output 0), the outputs and the barrier between steps; a cell's step functions
 * (F(CELL_STEPS), one C file per cell) do its products and pointwise maths inside a step.
 * Member m owns hidden units [u0, u1) -- all gates of them -- and columns [p0, p1) of h (the
 * same unless an LSTM projects). */

/* What a cell's forward step sees: its step t's buffers; rows are sequences, (B, .) each. */
typedef struct {
    const F(job) *jb;
    const frnn_par *par;
    int t, u0, u1, p0, p1;
    REAL *g;                 /* (B, GH) the input projection; the step leaves the post-activation gates */
    const REAL *hprev;       /* (B, P) h_{t-1} */
    REAL *h;                 /* (B, P) h_t, written for live rows */
    const REAL *cprev;       /* (B, H) c_{t-1}, cells with a cell state */
    REAL *c;                 /* (B, H) c_t */
    REAL *tc, *aux;          /* (B, H) per-step tape parts: tanh(c_t); the cell's aux (cells.h) */
    REAL *scratch;           /* (B, max(GH, P)) per-step scratch */
} F(fstep);

/* What a cell's backward step sees. It writes dGt (and dGht) for every row (zero for finished
 * ones) and replaces carry by the gradient reaching h_{t-1} (dc by the one reaching c_{t-1}). */
typedef struct {
    const F(job) *jb;
    const frnn_par *par;
    int t, u0, u1, p0, p1;
    const REAL *g, *hprev, *h, *cprev, *c, *tc, *aux;   /* the tape at step t, as forward left it */
    REAL *dh;                /* (B, P) the gradient reaching h_t */
    REAL *dGt, *dGht;        /* (B, GH) gate gradients, input side and (copy cells) recurrent side */
    REAL *carry, *next;      /* (B, P) the gradient carried to h_{t-1}; scratch */
    REAL *dc;                /* (B, H) the gradient carried along c */
    REAL *direct, *extra;    /* (B, H) scratch each */
} F(bstep);

/* A cell's part of the loops: forward step, backward step, and its recurrent weight gradients
 * after the backward loop (dG, dGh: (T*B, GH) for all steps). */
typedef struct {
    void (*forward)(const F(fstep) *s);
    void (*backward)(const F(bstep) *s);
    void (*weight_grads)(const frnn_par *par, const F(job) *jb, const REAL *dG, const REAL *dGh);
} F(cell_steps);

static const F(cell_steps) *F(steps_of)(int cell);

static void F(forward_task)(void *arg, const frnn_par *par)
{
    const F(job) *jb = arg;
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    const F(cell_steps) *cell = F(steps_of)(d->cell);
    const int T = d->T, B = d->B, H = d->H, P = d->P, GH = row->gates * H, train = jb->train;
    const frnn_layout L = jb->L;
    REAL *tape = bf->tape;
    REAL *gates = tape + L.gates;                                     /* (T, B, GH) */
    /* h_0..h_T: tape slots in training; in inference two (B, P) buffers in turn (a member
     * writes h_t while the others may still read h_{t-1}) */
    REAL *hbuf[2] = {train ? tape + L.hs : (REAL *)bf->h_T, tape + L.scratch};
    REAL *scratch = tape + L.scratch + (size_t)B * P;
    REAL *cs = !row->has_c ? NULL : train ? tape + L.cs : (REAL *)bf->c_T;   /* (T+1, B, H) or (B, H) */
    const size_t hstep = (size_t)B * P, cstep = train ? (size_t)B * H : 0;
    int u0, u1, p0, p1;
    F(my_cols)(par, jb->cx, H, &u0, &u1);
    F(my_cols)(par, jb->cx, P, &p0, &p1);
    F(recmat_pack)(&jb->W[0], u0, u1);
    F(recmat_pack)(&jb->W[1], p0, p1);

    for (int t = 0; t < T; t++) {
        F(chunk_forward)(par, jb, t, row->folded_gates * H, gates);    /* the input projection, by chunks */
        REAL *hprev = train ? hbuf[0] + t * hstep : hbuf[t & 1];
        REAL *h = train ? hprev + hstep : hbuf[(t + 1) & 1];
        REAL *cprev = cs ? cs + t * cstep : NULL, *c = cs ? cprev + cstep : NULL;
        const F(fstep) s = {jb, par, t, u0, u1, p0, p1, gates + (size_t)t * B * GH, hprev, h, cprev, c,
                            tape + L.tc + t * cstep, tape + L.aux + t * cstep, scratch};
        cell->forward(&s);
        F(keep_finished_rows)(h, hprev, bf->lengths, t, B, P, p0, p1);
        if (cs) F(keep_finished_rows)(c, cprev, bf->lengths, t, B, H, u0, u1);
#if FRNN_F32
        F(q8_emit)(&jb->W[0], h, B, P, p0, p1);               /* int8 static rows of h_t (int8_step.h) */
#endif
        F(write_output)(bf->y ? (REAL *)bf->y + (size_t)t * B * P : NULL, h, bf->lengths, t, B, P, p0, p1);
        frnn_sync(par);                                       /* the next step reads all of h */
        F(forward_done)(par, jb, t);
    }
    F(copy_cols)((REAL *)bf->h_T, train ? hbuf[0] + (size_t)T * hstep : hbuf[T & 1], B, P, p0, p1);
    if (cs) F(copy_cols)((REAL *)bf->c_T, cs + (size_t)T * cstep, B, H, u0, u1);   /* in place in inference */
}

static void F(backward_task)(void *arg, const frnn_par *par)
{
    const F(job) *jb = arg;
    const frnn_dims *d = jb->d;
    const frnn_buffers *bf = jb->bf;
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    const F(cell_steps) *cell = F(steps_of)(d->cell);
    const int T = d->T, B = d->B, H = d->H, P = d->P, GH = row->gates * H, proj = P != H;
    const frnn_layout L = jb->L;
    REAL *tape = bf->tape;
    const REAL *dy = bf->dy;
    REAL *dG = tape + L.dG, *dGh = row->recurrent_copy ? tape + L.dGh : dG;   /* (T, B, GH) */
    REAL *carry = tape + L.scratch, *dh = carry + B * P, *next = dh + B * P;  /* (B, P) each */
    REAL *dc = next + B * P, *extra = dc + B * H, *direct = extra + B * H;    /* (B, H) each */
    int u0, u1, p0, p1;
    F(my_cols)(par, jb->cx, H, &u0, &u1);
    F(my_cols)(par, jb->cx, P, &p0, &p1);
    F(recmat_pack)(&jb->W[0], p0, p1);
    F(recmat_pack)(&jb->W[1], u0, u1);

    for (int t = T - 1; t >= 0; t--) {
        const size_t og = (size_t)t * B * GH, oh = (size_t)t * B * H, op = (size_t)t * B * P;
        F(chunk_backward)(par, jb, t);
        /* the projecting LSTM keeps every step's dh for dW_hr */
        REAL *dht = proj ? tape + L.dhs + op : dh;
        F(step_grad_in)(dht, dy ? dy + op : NULL, carry, B, P, p0, p1);
        const REAL *cs = row->has_c ? tape + L.cs : NULL;
        const F(bstep) s = {jb, par, t, u0, u1, p0, p1, tape + L.gates + og, tape + L.hs + op,
                            tape + L.hs + op + (size_t)B * P, cs ? cs + oh : NULL,
                            cs ? cs + oh + (size_t)B * H : NULL, tape + L.tc + oh, tape + L.aux + oh,
                            dht, dG + og, dGh + og, carry, next, dc, direct, extra};
        cell->backward(&s);
        F(backward_done)(par, jb, t, dG);
    }
    F(copy_cols)((REAL *)bf->dh0, carry, B, P, p0, p1);
    if (row->has_c) F(copy_cols)((REAL *)bf->dc0, dc, B, H, u0, u1);
    const REAL *db_twin = F(one_colsum)(par, jb->cx, d, bf, dG, dGh);   /* before db_hh's sums */
    cell->weight_grads(par, jb, dG, dGh);
    F(input_grads)(par, jb->cx, d, bf, dG, jb->out != NULL, db_twin, jb->ids, jb->table);
}
