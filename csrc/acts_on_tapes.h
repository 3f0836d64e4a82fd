/* acts_on_tapes.h - the fused training step's layer outputs read from the tapes (typed half,
 * included by head_impl.h; REAL and F as there).
 *
 * A training forward keeps h_1..h_T of layer k contiguously in its tape (layout.h: hs + B*P on,
 * (T, B, P)); the stack's acts[k + 1] -- layer k's output, layer k + 1's input, the head's input
 * for the last layer -- holds the same values when nothing changes them on the way: no dropout
 * mask multiplied into acts[k + 1] in place, no lengths (past a sequence's end y is 0 while the
 * tape keeps the last h). Pointing acts[k + 1] at the tape's rows then spares the per-step copy
 * of h_t into y (common.h write_output skips y == h) and one (T, B, P) buffer's traffic; every
 * reader sees the same values, so the bits do not change. Nothing writes those tape rows after
 * the forward (the backward reads them as h_{t-1}, h_t; layer k + 1 reads them as x for dW_ih),
 * so no reader sees a stale buffer. Not under the batch split, which lays its tapes out chunk by
 * chunk (decomp.h). The caller's pointers are put back by acts_restore. */

#include "layout.h"

#ifndef FRNN_MAX_ACTS
#define FRNN_MAX_ACTS 65     /* layers + 1 the step's stack array holds (deeper stacks: no aliasing) */
#endif

/* Point fwd's and bwd's acts[k + 1] at layer k's tape where that gives the same values; saved
 * (L + 1 entries) keeps the caller's pointers. */
static void F(acts_on_tapes)(frnn_stack *fwd, frnn_stack *bwd, void **saved)
{
    const int L = fwd->L;
    for (int k = 0; k <= L; k++) saved[k] = fwd->acts[k];
    if (fwd->D != 1 || bwd->D != 1 || bwd->L != L || frnn_decomposition(fwd->dims, L, 1, 1, 1, fwd->run[0].precision) == 2 /* batch */)
        return;
    for (int k = 0; k < L; k++) {
        const frnn_dims *d = &fwd->dims[k];
        const frnn_buffers *f = &fwd->run[k], *b = &bwd->run[k];
        const int masked = k + 1 < L && ((fwd->masks && fwd->masks[k + 1]) || (bwd->masks && bwd->masks[k + 1]));
        const int reads_p = k + 1 == L || fwd->dims[k + 1].In == d->P;
        if (masked || !reads_p || f->lengths || b->lengths || (k + 1 < L && fwd->run[k + 1].lengths)
            || f->tape == NULL || f->tape != b->tape || fwd->acts[k + 1] != bwd->acts[k + 1]
            || frnn_cell_info(d->cell) == NULL || d->T < 1)
            continue;
        REAL *rows = (REAL *)f->tape + frnn_tape_layout(d, 1).hs + (size_t)d->B * d->P;
        fwd->acts[k + 1] = bwd->acts[k + 1] = rows;
    }
}

static void F(acts_restore)(frnn_stack *fwd, frnn_stack *bwd, void *const *saved)
{
    for (int k = 0; k <= fwd->L; k++)
        if (fwd->acts[k] != saved[k]) fwd->acts[k] = bwd->acts[k] = saved[k];   /* moved: bwd's was saved[k] */
}
