/* kernels.c - the one compilation unit: tape layouts, then every template for float and double. */
#include <stdlib.h>
#include <string.h>
#include "fastrnn.h"
#include "activations.h"
#include "layout.h"

int frnn_gates(int cell)
{
    switch (cell) {
    case FRNN_RNN_TANH: case FRNN_RNN_RELU: return 1;
    case FRNN_GRU_SIMPLIFIED: return 2;
    case FRNN_GRU: case FRNN_GRU_RESET_BEFORE: return 3;
    case FRNN_LSTM: return 4;
    default: return 0;
    }
}

frnn_layout frnn_tape_layout(const frnn_dims *d, int train)
{
    const size_t T = d->T, B = d->B, H = d->H, P = d->P, GH = (size_t)frnn_gates(d->cell) * d->H;
    const int lstm = d->cell == FRNN_LSTM, proj = lstm && d->P != d->H;
    const int gru = d->cell == FRNN_GRU || d->cell == FRNN_GRU_RESET_BEFORE;
    const size_t steps = train ? T : 1;  /* inference keeps one step of per-step buffers */
    frnn_layout L;
    size_t at = 0;
    L.per_step = train;
    L.gates = at;   at += T * B * GH;                               /* (T, B, GH) */
    L.hs = at;      at += train ? (T + 1) * B * P : 0;              /* (T+1, B, P) h_0..h_T */
    L.cs = at;      at += train && lstm ? (T + 1) * B * H : 0;      /* (T+1, B, H) c_0..c_T */
    L.tc = at;      at += lstm ? steps * B * H : 0;                 /* (T, B, H) tanh(c_t) */
    L.aux = at;     at += gru || proj ? steps * B * H : 0;          /* (T, B, H) hn | r*h | m */
    L.dG = at;      at += train ? T * B * GH : 0;                   /* (T, B, GH) */
    L.dGh = at;     at += train && d->cell == FRNN_GRU ? T * B * GH : 0;
    L.dhs = at;     at += train && proj ? T * B * P : 0;            /* (T, B, P) */
    L.scratch = at; at += B * (GH + 3 * P + 3 * H);
    L.total = at;
    return L;
}

size_t frnn_tape_size(const frnn_dims *d) { return frnn_tape_layout(d, 1).total; }
size_t frnn_work_size(const frnn_dims *d) { return frnn_tape_layout(d, 0).total; }

/* The packed recurrent product (recurrent.h) is written for 512-bit vectors; elsewhere, BLAS. */
#if defined(__GNUC__) && defined(__x86_64__)
#define FRNN_AVX512 __attribute__((target("avx512f")))
static int frnn_packed_ok(void) { return __builtin_cpu_supports("avx512f"); }
#else
#define FRNN_AVX512
static int frnn_packed_ok(void) { return 0; }
#endif

/* What every cell function gets: the BLAS table, and whether to pack the recurrent weights. */
typedef struct {
    const frnn_blas *blas;
    int packed;            /* a sequence long enough to repay packing, on a CPU with AVX-512 */
} frnn_ctx;

#define REAL float
#define F(name) name##_f32
#define BLAS_GEMM blas->sgemm
#define SIGMOID frnn_sigmoid_f
#define TANH frnn_tanh_f
#include "template.h"
#undef REAL
#undef F
#undef BLAS_GEMM
#undef SIGMOID
#undef TANH

#define REAL double
#define F(name) name##_f64
#define BLAS_GEMM blas->dgemm
#define SIGMOID frnn_sigmoid_d
#define TANH frnn_tanh_d
#include "template.h"
#undef REAL
#undef F
#undef BLAS_GEMM
#undef SIGMOID
#undef TANH
