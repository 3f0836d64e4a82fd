/* head_seq.c - the training step of a tagger or classifier in one call (frnn_train_seq_step in
 * train_seq.h; the template is head_seq_impl.h): input rows, the stack (stack.h, any directions
 * and lengths), the head's input (every step, or pooled per sequence) with the model's dropout,
 * the head and the (masked) softmax cross-entropy forward and backward, the unpooling, the input
 * gradient's scatter, then frnn_optim_step (optim.c).
 *
 * The products are the engine's (float32) or BLAS's (float64) with the arguments nn/linear.py
 * gives them; the pointwise passes run on the team split by rows or sequences (or by columns
 * where rows add into one element), each element computed by one member in the Python path's
 * order. (head.c does the same for a language model; the pieces both use are in head_common.h
 * and head_common_impl.h.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "train_seq.h"
#include "team.h"
#include "head_common.h"

/* the passes of a step (head_seq_impl.h's seq_task) */
enum { SEQ_ZERO, SEQ_GATHER, SEQ_FEAT, SEQ_SOFTMAX, SEQ_BIAS_GRAD, SEQ_UNFEAT, SEQ_SCATTER };

#define REAL float
#define F(name) name##_f32
#define FRNN_F32 1
#define EXP expf
#define LOG logf
#include "head_seq_impl.h"
#undef REAL
#undef F
#undef FRNN_F32
#undef EXP
#undef LOG

#define REAL double
#define F(name) name##_f64
#define FRNN_F32 0
#define EXP exp
#define LOG log
#include "head_seq_impl.h"
#undef REAL
#undef F
#undef FRNN_F32
#undef EXP
#undef LOG
