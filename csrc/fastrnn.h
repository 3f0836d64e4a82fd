/* fastrnn.h - the C API of fastrnn's recurrent kernels.
 *
 * Plain C99, no Python headers: this can be compiled, tested and profiled on its own.
 *
 * Dimension letters, fixed for every file in csrc/:
 *   T  time steps            B  batch size            I  input features
 *   H  hidden (cell) size    P  state/output width: P == H, or the LSTM projection size
 *   G  gates per cell: RNN 1, simplified GRU 2 (z n), GRU 3 (r z n), LSTM 4 (i f g o)
 *
 * Layout rules:
 *   - every buffer is row-major and C-contiguous; sequences are time-major (T, B, F);
 *   - weights follow PyTorch exactly: W_ih (G*H, I), W_hh (G*H, P), b_ih (G*H), b_hh (G*H),
 *     W_hr (P, H) (LSTM projection), w_peep (3*H) = [w_ci, w_cf, w_co] (LSTM peepholes);
 *   - BLAS is column-major; frnn_gemm() in common.h hides that. The per-step recurrent product
 *     goes through recurrent.h, which packs the weights once per call for small batches.
 *
 * Float32 and float64 are built from one source: rnn.c, gru.c and lstm.c are templates
 * compiled twice by kernels.c, giving frnn_forward_f32 / frnn_forward_f64 and so on.
 */
#ifndef FASTRNN_H
#define FASTRNN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The Fortran BLAS routines we use, as scipy.linalg.cython_blas exports them. */
typedef void (*frnn_sgemm_t)(char *transa, char *transb, int *m, int *n, int *k, float *alpha,
                             float *a, int *lda, float *b, int *ldb, float *beta, float *c,
                             int *ldc);
typedef void (*frnn_dgemm_t)(char *transa, char *transb, int *m, int *n, int *k, double *alpha,
                             double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                             int *ldc);

/* Filled by the binding from SciPy's BLAS and handed to every kernel (no link-time BLAS). */
typedef struct {
    frnn_sgemm_t sgemm;
    frnn_dgemm_t dgemm;
} frnn_blas;

typedef enum {
    FRNN_RNN_TANH = 0,       /* h' = tanh(W_ih x + b_ih + W_hh h + b_hh) */
    FRNN_RNN_RELU = 1,       /* h' = relu(...) */
    FRNN_GRU = 2,            /* PyTorch/cuDNN: n = tanh(W_in x + b_in + r*(W_hn h + b_hn)) */
    FRNN_GRU_RESET_BEFORE = 3, /* Cho et al.:  n = tanh(W_in x + b_in + W_hn (r*h) + b_hn) */
    FRNN_GRU_SIMPLIFIED = 4, /* update gate only: z, n = tanh(W_in x + b_in + W_hn h + b_hn) */
    FRNN_LSTM = 5,           /* i f g o, optional peepholes and projection */
    FRNN_MGU = 6,            /* minimal gated unit: f, n = tanh(W_in x + b_in + W_hn (f*h) + b_hn) */
    FRNN_NUM_CELLS = 7
} frnn_cell;

/* A row of the cell table (csrc/cells.h): what the generic time loop, the tape layout and the
 * binding know of a cell besides its step functions. */
typedef struct {
    const char *name;        /* as the binding and Python name it */
    int gates;               /* G: gate blocks of H rows in W_ih, W_hh and the biases */
    int has_c;               /* a cell state c (B, H) besides h: state parts 2 */
    int aux;                 /* a per-step (B, H) tape part (GRU: W_hn h + b_hn; r*h; f*h) */
    int recurrent_copy;      /* the gate gradients have a recurrent-side copy (dGh) */
    int first_gates;         /* gates of the first per-step product, 0 for all; the rest multiply
                                the aux part after a barrier */
    int folded_gates;        /* gates whose b_hh joins the input projection (the rest stay inside) */
    int barriers;            /* barriers per forward step (the LSTM projection adds one) */
} frnn_cell_row;

/* The row of a cell, NULL for an unknown cell (nothing runs for one: every entry point that
 * takes dims returns early, and the binding refuses it). */
const frnn_cell_row *frnn_cell_info(int cell);

/* Sizes of one layer in one direction. */
typedef struct {
    int cell;              /* a frnn_cell */
    int T, B, In, H, P;    /* In is I (complex.h takes the name I); P == H unless projecting */
    int peephole;          /* LSTM only: w_peep is given */
} frnn_dims;

/* Every buffer a kernel reads or writes. Pointers are float* or double* by the dtype of the
 * function called; NULL means "absent" where a comment says so. */
typedef struct {
    /* inputs */
    const void *x;          /* (T, B, I) */
    const void *h0;         /* (B, P); NULL = zeros */
    const void *c0;         /* (B, H) LSTM; NULL = zeros */
    const int *lengths;     /* (B) each in [0, T]; NULL = all T (packed-sequence semantics) */
    /* parameters */
    const void *W_ih;       /* (G*H, I); NULL: x is already projected, I == G*H, and dx = dG */
    const void *W_hh;       /* (G*H, P) */
    const void *b_ih;       /* (G*H); NULL = no bias */
    const void *b_hh;       /* (G*H); NULL = no bias */
    const void *w_peep;     /* (3*H) LSTM peepholes [ci, cf, co]; NULL = none */
    const void *W_hr;       /* (P, H) LSTM projection; NULL when P == H */
    /* forward outputs */
    void *y;                /* (T, B, P); may be NULL in inference (then only h_T/c_T) */
    void *h_T;              /* (B, P) */
    void *c_T;              /* (B, H) LSTM */
    /* tape written by a training forward, read (and its scratch area reused) by backward;
     * or the workspace of an inference forward */
    void *tape;             /* frnn_tape_size() or frnn_work_size() elements */
    /* backward inputs: gradients of the loss w.r.t. the forward outputs */
    const void *dy;         /* (T, B, P); NULL = zeros */
    const void *dh_T;       /* (B, P); NULL = zeros */
    const void *dc_T;       /* (B, H); NULL = zeros */
    /* backward outputs: dx, dh0, dc0 are overwritten; parameter gradients accumulate (+=) */
    void *dx;               /* (T, B, I); NULL = not wanted */
    void *dh0;              /* (B, P); must be given */
    void *dc0;              /* (B, H) LSTM; must be given */
    void *dW_ih, *dW_hh, *db_ih, *db_hh, *dw_peep, *dW_hr;  /* NULL where the parameter is */
    /* float32 engine, forward only: W_hh (and W_hr) already packed by frnn_pack_forward_f32 for
     * these dims; ignored (the call packs for itself) when it does not match the active ISA */
    const void *packed;
    /* float32 engine: at most this many members of the team for this call (0 = the team's size;
     * 1 = the calling thread alone, which lets independent calls, e.g. the two directions of a
     * bidirectional layer, run side by side from two threads) */
    int threads;
    /* float32 inference: the layer's int8 weights (csrc/int8.h), or NULL for float weights */
    const struct frnn_q8_layer *q8;
    /* float32 only: 0 float32 products; FRNN_PRECISION_BF16: bf16 mixed precision -- every product
     * (input projection, per-step recurrent products, weight gradients, dx) reads its operands
     * rounded to bf16 and accumulates in float32 (engine_bf16.h); weights, states, gates, biases
     * and the weight-gradient sums stay float32 */
    int precision;
} frnn_buffers;

enum { FRNN_PRECISION_F32 = 0, FRNN_PRECISION_BF16 = 1 };

/* Gates per cell (G above), 0 for an unknown cell. */
int frnn_gates(int cell);

/* Elements of the tape a training forward writes (and backward reuses as scratch). */
size_t frnn_tape_size(const frnn_dims *d);

/* Elements of the workspace of an inference forward (tape == NULL semantics, no tape kept). */
size_t frnn_work_size(const frnn_dims *d);

/* Floats needed by frnn_pack_forward (0 when float32 kernels run on BLAS), and the packing
 * itself (returns -1 when there is nothing to pack). Packed weights stay valid while W_hh/W_hr
 * are unchanged: a caller that keeps them pays for packing once (e.g. token-by-token sampling). */
size_t frnn_packed_size_f32(const frnn_dims *d);
int frnn_pack_forward_f32(const frnn_dims *d, const float *W_hh, const float *W_hr, float *out);
/* The same for bf16 calls (precision FRNN_PRECISION_BF16): float32 weights, bf16 panels; with
 * W_ih (non-NULL, d->In its columns) also W_ih^T for the input projection -- a step of a small
 * batch then reads every weight as bf16, half the bytes. with_ih: the size with W_ih. */
size_t frnn_packed_size_bf16(const frnn_dims *d, int with_ih);
int frnn_pack_forward_bf16(const frnn_dims *d, const float *W_ih, const float *W_hh, const float *W_hr, float *out);
/* The float32 pack with W_ih^T too (with_ih, W_ih non-NULL), in the blocks the input projection
 * packs it in: a forward of >= FRNN_SMALL_M rows (T * B) then packs nothing (the same bits). */
size_t frnn_packed_size_f32_ih(const frnn_dims *d, int with_ih);
int frnn_pack_forward_f32_ih(const frnn_dims *d, const float *W_ih, const float *W_hh, const float *W_hr, float *out);

/* Forward over a whole sequence. train != 0 writes the tape for backward; train == 0 uses
 * buf->tape as a frnn_work_size() workspace and keeps nothing. A single step for sampling is
 * this call with T == 1 and train == 0: no allocation anywhere. */
void frnn_forward_f32(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf, int train);
void frnn_forward_f64(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf, int train);

/* Backpropagation through time, reading the tape of the training forward with the same dims,
 * inputs and parameters. */
void frnn_backward_f32(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf);
void frnn_backward_f64(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf);

/* A stack of L layers x D directions (D = 2: bidirectional) run by one call. Layer k reads
 * acts[k] (T, B, F_k) and writes acts[k + 1] (T, B, D*P); going back, grads[k + 1] (the gradient
 * at layer k's output, grads[L] given) gives grads[k] (grads[0] = dx, NULL = not wanted).
 * run[k*D + d] holds the dims and buffers of layer k, direction d: parameters, states, tape,
 * lengths, packed, as for one layer. With D == 1 the call points x, y, dy, dx of every layer at
 * acts/grads itself. With D == 2 the caller gives each direction scratch of its own (T, B, F_k)
 * x (direction 1: the call writes each sequence reversed within its length there; direction 0
 * reads acts[k] -- give x = acts[k]), (T, B, P) y, and going back (T, B, P) dy and (T, B, F_k) dx.
 * masks[k] (k >= 1, (T, B, D*P), NULL = none) is the inter-layer inverted-dropout mask: the call
 * multiplies it into acts[k] in place going forward and into grads[k] in place going back.
 *
 * Scheduling (float32 engine): the directions of a layer run side by side on two halves of the
 * team (the "directions" decomposition of csrc/decomp.h); the layers of a unidirectional stack run as a wavefront -- each on its own group of
 * members, layer k + 1 starting a chunk of steps as soon as layer k has finished it (and going
 * back, layer k - 1 as soon as layer k has produced the chunk's dx) -- when that beats splitting
 * every step over the team (FASTRNN_WAVEFRONT=0/1 forces the choice). Results are the same bits
 * either way, for any thread count. Small steps may instead run as the batch split (csrc/decomp.h,
 * FASTRNN_DECOMP): chosen from the shape alone, its bits too are the same for any thread count. */
typedef struct {
    int L, D;
    const frnn_dims *dims;          /* L * D */
    frnn_buffers *run;              /* L * D */
    void **acts;                    /* L + 1 */
    void **grads;                   /* L + 1 (backward) */
    const void **masks;             /* L (masks[0] unused), or NULL for no dropout */
    int threads;                    /* as frnn_buffers.threads */
    /* Optional (NULL: none): layer 0's input row r (of T * B) is row rows_ids[r] of rows_table
     * (rows of dims[0].In values), e.g. a one-hot input's W_ih columns transposed (frnn_train_step).
     * Forward: the table is read (a one-hot layer 0 of a unidirectional stack without the batch
     * split: straight into its gate rows, acts[0] not written; else acts[0] is filled first).
     * Backward: the gradient at input row r is added into table row rows_ids[r], rows in order
     * (the one-hot layer 0 adds its gate gradients itself and grads[0] is not written; else
     * grads[0] is written and then added). */
    const int *rows_ids;
    void *rows_table;
} frnn_stack;

/* Return 0, -1 when memory for the call's bookkeeping cannot be allocated, or -2 for an unknown cell
 * (nothing was run either way). */
int frnn_stack_forward_f32(const frnn_blas *blas, const frnn_stack *st, int train);
int frnn_stack_forward_f64(const frnn_blas *blas, const frnn_stack *st, int train);
int frnn_stack_backward_f32(const frnn_blas *blas, const frnn_stack *st);
int frnn_stack_backward_f64(const frnn_blas *blas, const frnn_stack *st);

/* The decomposition a float32 call of L layers x D directions (dims L * D) runs on nth members
 * (csrc/decomp.h): 1 units, 2 batch, 3 pipeline, 4 one member, 5 directions (a bidirectional
 * stack's directions side by side); -1 for an unknown cell. train: a training forward or a
 * backward (0: inference, which may run as the batch split's inference chunks); precision as
 * frnn_buffers'. */
int frnn_decomposition(const frnn_dims *dims, int L, int D, int nth, int train, int precision);

/* Generation from a language model -- embedding or one-hot input, a unidirectional stack of L
 * layers, a linear head -- token by token in one call (csrc/generate.h, csrc/sampling.h).
 * Pointers are float* or double* by the dtype of the function called (the state, scratch, table
 * and head), int* or double* where typed. */
typedef struct {
    int L, B, V;              /* layers, sequences generated side by side, vocabulary */
    const frnn_dims *dims;    /* L: each layer's sizes with T == 1 and B rows */
    const frnn_buffers *run;  /* L: parameters (W_ih NULL for a one-hot layer 0), packed, and tape =
                                 a frnn_work_size() workspace; x, h0, c0, h_T, c_T, y are set here */
    const void *table;        /* (V, dims[0].In): layer 0's input row of each token (embedding rows,
                                 or the rows of W_ih_l0^T for a one-hot input) */
    const void *W_head;       /* (V, P of the last layer) */
    const void *b_head;       /* (V) or NULL */
    void *h;                  /* the state, updated in place: layer k's (B, P_k) one after another */
    void *c;                  /* LSTM: layer k's (B, H_k) one after another; else NULL */
    void *x, *logits;         /* scratch (B, dims[0].In), (B, V) */
    double *z, *scratch;      /* scratch (V), (2 V) */
    int *iscratch;            /* scratch (2 V) */
    double temperature;       /* < 1e-30: argmax */
    double top_p;             /* 0: off */
    int top_k;                /* 0: off */
    int argmax;               /* 1: always the most likely token (no draws) */
    int eos;                  /* ends a sequence (not emitted), or -1 */
    const char *text;         /* stop strings: every token's UTF-8 text back to back ... */
    const int *offsets;       /* (V + 1) ... token v is text[offsets[v] : offsets[v + 1]] */
    int word;                 /* word level: tokens joined by spaces, eos as a newline */
    const char *stop;         /* UTF-8 bytes ending a sequence once generated (kept), or NULL */
    int stop_len, stop_window;/* its bytes, and its characters (tokens decoded to look for it) */
    char *stop_buf;           /* scratch: stop_window * (longest token + 1) bytes */
    int *token;               /* (B) each sequence's next input token */
    int *out;                 /* (max_len, B) generated tokens */
    int *n_out;               /* (B) tokens generated so far */
    int *done;                /* (B) 1 once eos, the stop string or max_len ended the sequence */
    int max_len;
    const struct frnn_q8_mat *head_q8;  /* float32: W_head in int8 (csrc/int8.h), or NULL (last:
                                           positional initialisers above stay valid) */
    int head_bf16;            /* float32: the head's product in bf16 (frnn_matmul_bf16), as a
                                 Linear head with precision='bf16' runs it */
    const float *head_bf16_pack;  /* with head_bf16: W_head packed by frnn_head_bf16_pack, or NULL */
} frnn_gen;

/* feed != NULL: advance the state over tokens feed (steps, B), no output. feed == NULL: up to
 * `steps` rounds of: every sequence's token in, logits out, the next token of each live sequence
 * chosen (u (steps, B): its uniform draws in [0, 1), unused with argmax). Returns the rounds run
 * (fewer when every sequence is done), or -1 - b when sequence b's logits were NaN or all -inf,
 * or FRNN_GEN_NO_MEMORY (a bf16 head's pack buffer could not be allocated). */
#define FRNN_GEN_NO_MEMORY (-2147483647)
int frnn_generate_f32(const frnn_blas *blas, const frnn_gen *g, const int *feed, int steps, const double *u);
int frnn_generate_f64(const frnn_blas *blas, const frnn_gen *g, const int *feed, int steps, const double *u);

/* Elementwise activations over n values (in == out allowed), exposed for tests. */
void frnn_sigmoid_f32(float *out, const float *in, size_t n);
void frnn_sigmoid_f64(double *out, const double *in, size_t n);
void frnn_tanh_f32(float *out, const float *in, size_t n);
void frnn_tanh_f64(double *out, const double *in, size_t n);

/* The float32 engine (engine.h: packed panels, AVX-512/AVX2 micro-kernels, the thread team of
 * team.h) runs every float32 product unless it is off (FASTRNN_KERNELS=blas, frnn_set_engine(0))
 * or the CPU has neither ISA; float64 always runs on BLAS. Process-wide settings: */
int frnn_engine_enabled(void);
void frnn_set_engine(int on);
int frnn_threads(void);              /* members of the team a call may use */
void frnn_set_threads(int n);        /* n >= 1, or 0 for the default (FASTRNN_NUM_THREADS, else
                                        the CPUs this process may use) */
int frnn_isa_supported(int isa);     /* isa: 0 none, 2 AVX2+FMA, 3 AVX-512 */
int frnn_isa_active(void);
int frnn_set_isa(int isa);

/* Row-major C = op(A) @ op(B) + beta * C (beta 0 or 1) for float32 on the engine (BLAS when
 * the engine is off): the products of the Python models. */
void frnn_matmul_f32(const frnn_blas *blas, int trans_a, int trans_b, int m, int n, int k,
                     const float *a, int lda, const float *b, int ldb, int beta, float *c, int ldc);

/* The same product in bf16 mixed precision (a model's head under precision='bf16'): every
 * element is frnn_team_gemm_bf16's (engine_bf16.h) -- op(A) and op(B) rounded to bf16, the dot
 * products in VDPBF16PS order with float32 accumulation, C added in float32 after each block of
 * FRNN_KC of k -- the same bits for any CPU, bf16 kernel and thread count; runs whether the
 * float32 engine is on or not. Returns 0, or -1 when its pack buffer cannot be allocated
 * (nothing computed then). */
int frnn_matmul_bf16(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda, const float *b,
                     int ldb, int beta, float *c, int ldc);
/* A head's W (n, k) packed once for C (m, n) = A (m, k) @ W^T + beta C in bf16 (the bits of
 * frnn_matmul_bf16(0, 1, ...), without packing W per call: a generation loop's head). The pack
 * (frnn_head_bf16_floats floats) is for the active ISA's panel width; on another
 * one (frnn_set_isa since) or k == 0, frnn_matmul_bf16_packed computes nothing and returns 1: the
 * caller runs frnn_matmul_bf16. Else 0. */
size_t frnn_head_bf16_floats(int n, int k);
void frnn_head_bf16_pack(float *mem, int n, int k, const float *W, int ldw);
int frnn_matmul_bf16_packed(const float *mem, int m, int n, int k, const float *a, int lda, int beta, float *c,
                            int ldc);

/* Row-major C = alpha * op(A) @ op(B) + beta * C, exposed for the gemm() helper and tests. */
void frnn_gemm_f32(const frnn_blas *blas, int trans_a, int trans_b, int m, int n, int k,
                   float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                   float *c, int ldc);
void frnn_gemm_f64(const frnn_blas *blas, int trans_a, int trans_b, int m, int n, int k,
                   double alpha, const double *a, int lda, const double *b, int ldb, double beta,
                   double *c, int ldc);

#ifdef __cplusplus
}
#endif
#endif
