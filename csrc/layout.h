/* layout.h - where each part of a tape (or inference workspace) lives, in elements. */
#ifndef FASTRNN_LAYOUT_H
#define FASTRNN_LAYOUT_H
#include <stddef.h>
#include "fastrnn.h"

typedef struct {
    int per_step;     /* 1: per-step buffers have T slots (training); 0: one reused slot */
    size_t gates;     /* (T, B, GH) input projection, then post-activation gates */
    size_t hs, cs;    /* (T+1, B, P), (T+1, B, H) states (training only) */
    size_t tc;        /* LSTM tanh(c_t) */
    size_t aux;       /* GRU: W_hn h + b_hn; GRU reset-before: r*h; LSTM projection: o*tanh(c) */
    size_t dG, dGh;   /* backward: gate pre-activation grads (input side, recurrent side) */
    size_t dhs;       /* backward, LSTM projection: dh per step for dW_hr */
    size_t scratch;   /* per-step scratch: B * (GH + 3P + 3H) */
    size_t total;
} frnn_layout;

frnn_layout frnn_tape_layout(const frnn_dims *d, int train);
#endif
