/* template.h - everything typed by REAL, included twice by kernels.c (float, double). */
#include "common.h"
#include "rnn.c"
#include "gru.c"
#include "lstm.c"

void F(frnn_forward)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf, int train)
{
    switch (d->cell) {
    case FRNN_RNN_TANH: case FRNN_RNN_RELU: F(rnn_forward)(blas, d, buf, train); break;
    case FRNN_GRU: case FRNN_GRU_RESET_BEFORE: case FRNN_GRU_SIMPLIFIED:
        F(gru_forward)(blas, d, buf, train); break;
    case FRNN_LSTM: F(lstm_forward)(blas, d, buf, train); break;
    }
}

void F(frnn_backward)(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf)
{
    switch (d->cell) {
    case FRNN_RNN_TANH: case FRNN_RNN_RELU: F(rnn_backward)(blas, d, buf); break;
    case FRNN_GRU: case FRNN_GRU_RESET_BEFORE: case FRNN_GRU_SIMPLIFIED:
        F(gru_backward)(blas, d, buf); break;
    case FRNN_LSTM: F(lstm_backward)(blas, d, buf); break;
    }
}
