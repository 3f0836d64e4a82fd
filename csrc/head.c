/* head.c - a language model's training step in one call (frnn_train_step in train.h; the
 * template is head_impl.h): input rows, the stack (stack.h), the head and softmax cross-entropy
 * forward and backward, the input gradient's scatter, then frnn_optim_step (optim.c).
 *
 * The products are the engine's (float32) or BLAS's (float64) with the arguments nn/linear.py
 * gives them; the pointwise passes run on the team split by rows (or by columns where rows add
 * into one element), each element computed by one member in the Python path's order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "train.h"
#include "team.h"

/* one member for passes over fewer elements than this per member */
#define FRNN_HEAD_MIN_SHARE 16384

/* the passes of a step (head_impl.h's head_task) */
enum { HEAD_ZERO, HEAD_GATHER, HEAD_SOFTMAX, HEAD_BIAS_GRAD, HEAD_SCATTER };

static int head_members(size_t work)
{
    const size_t most = work / FRNN_HEAD_MIN_SHARE + 1;
    const int nth = frnn_threads();
    return most < (size_t)nth ? (int)most : nth;
}

#define REAL float
#define F(name) name##_f32
#define FRNN_F32 1
#define EXP expf
#define LOG logf
#include "head_impl.h"
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
#include "head_impl.h"
#undef REAL
#undef F
#undef FRNN_F32
#undef EXP
#undef LOG
