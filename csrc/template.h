/* template.h - everything typed by REAL, included twice by kernels.c (float, double). */
#include "common.h"
#include "recurrent.h"
#include "rnn.c"
#include "gru.c"
#include "lstm.c"

/* This call's context: pack the recurrent weights when the sequence is long enough to repay it. */
static frnn_ctx F(ctx_start)(const frnn_blas *blas, const frnn_dims *d)
{
    frnn_ctx cx = {blas, d->T >= 4 && frnn_packed_ok()};
    return cx;
}

void F(frnn_forward)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf, int train)
{
    frnn_ctx cx = F(ctx_start)(blas, d);
    switch (d->cell) {
    case FRNN_RNN_TANH: case FRNN_RNN_RELU: F(rnn_forward)(&cx, d, buf, train); break;
    case FRNN_GRU: case FRNN_GRU_RESET_BEFORE: case FRNN_GRU_SIMPLIFIED:
        F(gru_forward)(&cx, d, buf, train); break;
    case FRNN_LSTM: F(lstm_forward)(&cx, d, buf, train); break;
    }
}

void F(frnn_backward)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf)
{
    frnn_ctx cx = F(ctx_start)(blas, d);
    switch (d->cell) {
    case FRNN_RNN_TANH: case FRNN_RNN_RELU: F(rnn_backward)(&cx, d, buf); break;
    case FRNN_GRU: case FRNN_GRU_RESET_BEFORE: case FRNN_GRU_SIMPLIFIED:
        F(gru_backward)(&cx, d, buf); break;
    case FRNN_LSTM: F(lstm_backward)(&cx, d, buf); break;
    }
}
