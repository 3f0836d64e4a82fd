/* head.c - a language model's training step in one call (frnn_train_step in train.h; the
 * template is head_impl.h): input rows, the stack (stack.h), the head and softmax cross-entropy
 * forward and backward, the input gradient's scatter, then frnn_optim_step (optim.c).
 *
 * The products are the engine's (float32) or BLAS's (float64) with the arguments nn/linear.py
 * gives them; the pointwise passes run on the team split by rows (or by columns where rows add
 * into one element), each element computed by one member in the Python path's order. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "train.h"
#include "team.h"
#include "head_common.h"
#include "activations.h"
#include "engine.h"             /* frnn_transpose */

/* a bench driver (bench/lm_step.c) that includes this file may time the phases */
#ifndef FRNN_HEAD_MARK
#define FRNN_HEAD_MARK(phase) ((void)0)
#endif

/* the passes of a step (head_impl.h's head_task) */
enum { HEAD_ZERO_GATHER, HEAD_SOFTMAX, HEAD_BIAS_GRAD, HEAD_SCATTER, HEAD_SCATTER_IN, HEAD_SCATTER_OUT };

/* exp of a row of non-positive values (logits minus their maximum) in place: the vectorisable
 * Cephes polynomial of activations.h (relative error ~1e-7, NaN stays NaN, -inf gives 0) instead
 * of a libm call per element, which was most of the softmax pass; inlined into softmax_row's
 * wide-vector clones. float32 only: the float64 step keeps libm's exp (the float64 path must
 * agree with NumPy to 1e-12). */
#define REAL float
#define F(name) name##_f32
#define FRNN_F32 1
#define EXP_ROW(l, V) for (int v_ = 0; v_ < (V); v_++) (l)[v_] = frnn_exp_nonpos_f((l)[v_])
#define LOG logf
#define ROW_CLONES FRNN_CLONES
#include "head_impl.h"
#undef REAL
#undef F
#undef FRNN_F32
#undef EXP_ROW
#undef LOG
#undef ROW_CLONES

#define REAL double
#define F(name) name##_f64
#define FRNN_F32 0
#define EXP_ROW(l, V) for (int v_ = 0; v_ < (V); v_++) (l)[v_] = exp((l)[v_])
#define LOG log
#define ROW_CLONES
#include "head_impl.h"
#undef REAL
#undef F
#undef FRNN_F32
#undef EXP_ROW
#undef LOG
#undef ROW_CLONES
