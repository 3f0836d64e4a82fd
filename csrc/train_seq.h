/* train_seq.h - the whole training step of a padded-batch model whose head is a Linear + softmax
 * cross-entropy (models/tagger.py, models/classifier.py) in one call (csrc/head_seq.c).
 *
 * frnn_train_seq_step: the input rows (embedding rows, or the features the caller put in
 * fwd->acts[0]), the stack's training forward (stack.h: 1-3 layers, 1-2 directions, lengths),
 * the head's input -- every step's output (a tagger) or one vector per sequence pooled from them
 * (a classifier: the last valid state, the mean or the max over the valid steps) -- times the
 * model's dropout mask, the head, the mean softmax cross-entropy (over the valid steps for a
 * tagger) and its gradient, the head's backward, the unpooling, the stack's backward, the scatter
 * into the embedding rows; then, with an optimiser, frnn_optim_step (train.h). The operations of
 * the Python path in its order (models/encoder.py, tagger.py, classifier.py, nn/dropout.py,
 * nn/linear.py, nn/loss_math.py), so float64 agrees to rounding and float32 within rounding;
 * every pass has a fixed order, so 1, 2 and 3 threads give the same bits.
 */
#ifndef FASTRNN_TRAIN_SEQ_H
#define FASTRNN_TRAIN_SEQ_H

#include "train.h"

/* what the head reads: every step (tagger), or one row per sequence (classifier pooling) */
enum { FRNN_POOL_STEPS = 0, FRNN_POOL_LAST = 1, FRNN_POOL_MEAN = 2, FRNN_POOL_MAX = 3 };

typedef struct {
    int T, B, K;               /* steps, sequences, classes (the head's outputs) */
    int pool;                  /* FRNN_POOL_*: rows N = T * B (steps) or B */
    const int *ids;            /* (T, B) time-major ids into table, or NULL: fwd->acts[0] holds
                                  the (T, B, F) features (no input gradient then) */
    int V;                     /* table rows */
    const void *table;         /* (V, E) */
    void *table_grad;          /* (V, E) accumulated */
    const int *targets;        /* (N) class ids in [0, K) (a tagger's padded steps: any valid id) */
    frnn_stack *fwd;           /* the stack's training forward; its run[0].lengths (or NULL: all
                                  T) are the sequences' lengths, each in [1, T] */
    frnn_stack *bwd;           /* its backward: grads[L] (T, B, D*P) is written here */
    const void *drop;          /* (N, D*P) the model's inverted-dropout mask, or NULL */
    void *feat;                /* scratch (N, D*P): the head's input (unused per step without
                                  dropout: the head reads fwd->acts[L]) */
    void *dfeat;               /* pooled: scratch (B, D*P), its gradient */
    int *arg;                  /* max pooling: scratch (B, D*P), the step of each maximum */
    void *dh_last[2];          /* last pooling: the last layer's dh_T of each direction (B, P),
                                  given to bwd's runs; written here */
    const void *W_head;        /* (K, D*P) */
    const void *b_head;        /* (K) or NULL */
    void *dW_head, *db_head;   /* accumulated */
    void *logits;              /* scratch (N, K): the logits, then their gradient */
    void *nll;                 /* scratch (N): each row's -log p[target] times its weight */
    size_t n;                  /* the model's flat buffers: grads are zeroed first */
    void *params, *grads;
    int head_bf16;             /* float32: the head's three products in bf16 (train.h) */
} frnn_train_seq;

/* Forward, loss, backward (and with opt != NULL, the clip and the update unless the loss or the
 * gradients are bad: see frnn_step_result.status). Returns r->status. */
int frnn_train_seq_step_f32(const frnn_blas *blas, const frnn_train_seq *tr, const frnn_opt *opt,
                            frnn_step_result *r);
int frnn_train_seq_step_f64(const frnn_blas *blas, const frnn_train_seq *tr, const frnn_opt *opt,
                            frnn_step_result *r);

#endif
