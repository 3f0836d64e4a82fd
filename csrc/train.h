/* train.h - a language model's whole training step in one call (csrc/head.c, csrc/optim.c).
 *
 * frnn_train_step: the input rows (embedding rows, or layer 0's W_ih columns for a one-hot input),
 * the stack's training forward (stack.h), the head logits = y W^T + b, the mean softmax
 * cross-entropy and its gradient, the head's backward, the stack's backward, the scatter of the
 * input gradient into the embedding rows (or W_ih_l0's columns) -- then, with an optimiser, the
 * global-norm clip, the value clip and the update over the flat buffers (frnn_optim_step).
 * The same products in the same order as the Python path (models/lm.py, nn/linear.py, losses.py,
 * optim.py), so float64 agrees to rounding and float32 within rounding; every reduction has a
 * fixed order, so 1, 2 and 3 threads give the same bits.
 */
#ifndef FASTRNN_TRAIN_H
#define FASTRNN_TRAIN_H

#include <stddef.h>
#include "fastrnn.h"

/* optim.py's classes: SGD (momentum, dampening, Nesterov, L2 weight decay), Adam (decoupled:
 * AdamW), RMSprop, Adagrad. */
enum { FRNN_OPT_SGD = 0, FRNN_OPT_ADAM = 1, FRNN_OPT_RMSPROP = 2, FRNN_OPT_ADAGRAD = 3 };

typedef struct {
    int kind;                  /* FRNN_OPT_* */
    int decoupled;             /* Adam: 1 = AdamW (decay the weights, not the gradient) */
    int nesterov;              /* SGD */
    long steps;                /* the optimiser's step count including this step (>= 1) */
    double lr, momentum, dampening, weight_decay, alpha, beta1, beta2, eps;
    void *state0;              /* momentum_buffer | exp_avg | square_avg | sum (n elements) */
    void *state1;              /* Adam: exp_avg_sq; else unused */
    double clip;               /* global-norm clip (clip_grad_norm's max_norm), 0 = off */
    double clip_value;         /* clamp to [-clip_value, clip_value] after that, 0 = off */
    double max_loss;           /* frnn_train_step: no update unless loss <= max_loss (and finite) */
} frnn_opt;

typedef struct {
    double loss;               /* the mean cross-entropy (frnn_train_step) */
    double grad_sumsq;         /* sum of the squared gradients before clipping */
    double param_sumsq;        /* sum of the squared parameters after the update */
    int status;                /* 0 updated; 1 loss not finite or above max_loss, 2 gradients
                                  not finite (nothing updated either way); -1 out of memory */
} frnn_step_result;

/* Clip and update params (n) from grads (n) in place (the clipped gradients stay in grads, as
 * optim.clip_grad_norm / clip_grad_value leave them). Returns r->status. */
int frnn_optim_step_f32(const frnn_opt *o, size_t n, float *params, float *grads, frnn_step_result *r);
int frnn_optim_step_f64(const frnn_opt *o, size_t n, double *params, double *grads, frnn_step_result *r);

typedef struct {
    int T, B, V;               /* N = T * B rows; V the vocabulary (the head's outputs) */
    const int *ids, *targets;  /* (T, B) time-major, in [0, V) */
    const void *table;         /* embedding (V, E), or NULL: one-hot input */
    void *table_grad;          /* (V, E) accumulated */
    const void *W_ih0;         /* one-hot: layer 0's W_ih (G*H, V): token v's row is its column */
    void *dW_ih0;              /* one-hot: its gradient (G*H, V), accumulated */
    frnn_stack *fwd;           /* the stack's training forward; fwd->acts[0] (T, B, E or G*H) is
                                  written here (a one-hot layer 0 runs with W_ih NULL) */
    frnn_stack *bwd;           /* its backward: bwd->grads[L] (the gradient at the output) is
                                  written here, bwd->grads[0] (T, B, E or G*H) read back */
    const void *W_head;        /* (V, P) */
    const void *b_head;        /* (V) or NULL */
    void *dW_head, *db_head;   /* accumulated */
    void *logits;              /* scratch (N, V): the logits, then their gradient */
    void *nll;                 /* scratch (N): each row's -log p[target] */
    size_t n;                  /* the model's flat buffers: grads are zeroed first */
    void *params, *grads;
    int head_bf16;             /* float32: the head's three products in bf16 (frnn_matmul_bf16),
                                  as a Linear head with precision='bf16' runs them */
} frnn_train;

/* Forward, loss, backward (and with opt != NULL, the clip and the update, unless the loss or
 * the gradients are bad: see frnn_step_result.status). Returns r->status. */
int frnn_train_step_f32(const frnn_blas *blas, const frnn_train *tr, const frnn_opt *opt, frnn_step_result *r);
int frnn_train_step_f64(const frnn_blas *blas, const frnn_train *tr, const frnn_opt *opt, frnn_step_result *r);

#endif
