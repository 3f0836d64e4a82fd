/* optim.c - gradient clipping and the optimisers of fastrnn.optim over a model's flat buffers,
 * on the thread team (frnn_optim_step in train.h; the template is optim_impl.h).
 *
 * Every element is updated with the operations of optim.py in its order: a float32 array op with
 * a Python float scalar computes in float32 with the scalar rounded to float32 (NumPy 2's rule for
 * Python scalars), so the scalars are rounded the same way here and nothing is contracted into a
 * fused multiply-add (ISO C mode, no FMA target). The sums of squares are per chunk of
 * FRNN_OPT_CHUNK elements, added in chunk order: the same bits for any member count. */
#include <math.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include "train.h"
#include "team.h"

#define FRNN_OPT_CHUNK 16384
/* fewer elements than this per member: one member does it all (waking the team costs more) */
#define FRNN_OPT_MIN_SHARE 32768

static int opt_members(size_t n)
{
    const size_t most = n / FRNN_OPT_MIN_SHARE + 1;
    const int nth = frnn_threads();
    return most < (size_t)nth ? (int)most : nth;
}

#define REAL float
#define F(name) name##_f32
#define SQRT sqrtf
#define REAL_MAX FLT_MAX
#include "optim_impl.h"
#undef REAL
#undef F
#undef SQRT
#undef REAL_MAX

#define REAL double
#define F(name) name##_f64
#define SQRT sqrt
#define REAL_MAX DBL_MAX
#include "optim_impl.h"
#undef REAL
#undef F
#undef SQRT
#undef REAL_MAX
