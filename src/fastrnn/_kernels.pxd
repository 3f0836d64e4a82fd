# The C API of csrc/ as Cython sees it: every `cdef extern` of the binding, in one place.
#
# Cython reads this file before _kernels.pyx (same module name), so _kernels.pyx and the .pxi files
# it includes (_ops, _stack, _generate, _int8) use these declarations without re-declaring them.
# Keep it in step with csrc/fastrnn.h and csrc/int8.h: a changed struct or signature there is
# changed here, and nowhere else in src/.
from libc.stdint cimport int8_t, int32_t, uint8_t


# csrc/int8.h (included by fastrnn.h): int8 weight matrices and their products
cdef extern from "int8.h" nogil:
    ctypedef struct frnn_q8_mat:
        const int8_t *w
        const float *scale
        const int32_t *comp
        int N, K, Kp
        int n0, Np
    ctypedef struct frnn_q8_layer:
        frnn_q8_mat ih, hh, hr
        int hstatic
    enum: FRNN_Q8_ALIGN, FRNN_Q8_KMAX
    size_t frnn_q8_packed_bytes(int N, int Kp)
    void frnn_q8_pack(const int8_t *q, size_t ldq, int N, int K, int Kp, int8_t *out)
    int frnn_q8_isa_supported(int isa)
    int frnn_q8_isa_active()
    int frnn_q8_set_isa(int isa)
    void frnn_q8_mul(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const float *A, size_t lda,
                     int beta, float *C, size_t ldc)


# csrc/fastrnn.h: dimensions, buffers, the cell table, layers, stacks, settings, array ops
cdef extern from "fastrnn.h" nogil:
    ctypedef void (*frnn_sgemm_t)(char *transa, char *transb, int *m, int *n, int *k, float *alpha,
                                  float *a, int *lda, float *b, int *ldb, float *beta, float *c,
                                  int *ldc) noexcept nogil
    ctypedef void (*frnn_dgemm_t)(char *transa, char *transb, int *m, int *n, int *k, double *alpha,
                                  double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                                  int *ldc) noexcept nogil
    ctypedef struct frnn_blas:
        frnn_sgemm_t sgemm
        frnn_dgemm_t dgemm
    ctypedef struct frnn_dims:
        int cell, T, B, In, H, P, peephole
    ctypedef struct frnn_buffers:
        const void *x
        const void *h0
        const void *c0
        const int *lengths
        const void *W_ih
        const void *W_hh
        const void *b_ih
        const void *b_hh
        const void *w_peep
        const void *W_hr
        void *y
        void *h_T
        void *c_T
        void *tape
        const void *dy
        const void *dh_T
        const void *dc_T
        void *dx
        void *dh0
        void *dc0
        void *dW_ih
        void *dW_hh
        void *db_ih
        void *db_hh
        void *dw_peep
        void *dW_hr
        const void *packed
        int threads
        const frnn_q8_layer *q8
        int precision
    int frnn_gates(int cell)
    ctypedef struct frnn_cell_row:
        const char *name
        int gates, has_c, aux, recurrent_copy, first_gates, folded_gates, barriers
    const frnn_cell_row *frnn_cell_info(int cell)
    enum: FRNN_NUM_CELLS
    size_t frnn_packed_size_f32(const frnn_dims *d)
    int frnn_pack_forward_f32(const frnn_dims *d, const float *W_hh, const float *W_hr, float *out)
    size_t frnn_packed_size_bf16(const frnn_dims *d, int with_ih)
    int frnn_pack_forward_bf16(const frnn_dims *d, const float *W_ih, const float *W_hh, const float *W_hr,
                               float *out)
    size_t frnn_packed_size_f32_ih(const frnn_dims *d, int with_ih)
    int frnn_pack_forward_f32_ih(const frnn_dims *d, const float *W_ih, const float *W_hh, const float *W_hr,
                                 float *out)
    size_t frnn_tape_size(const frnn_dims *d)
    size_t frnn_work_size(const frnn_dims *d)
    void frnn_forward_f32(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf, int train)
    void frnn_forward_f64(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf, int train)
    void frnn_backward_f32(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf)
    void frnn_backward_f64(const frnn_blas *blas, const frnn_dims *d, const frnn_buffers *buf)
    void frnn_sigmoid_f32(float *out, const float *inp, size_t n)
    void frnn_sigmoid_f64(double *out, const double *inp, size_t n)
    void frnn_tanh_f32(float *out, const float *inp, size_t n)
    void frnn_tanh_f64(double *out, const double *inp, size_t n)
    void frnn_gemm_f32(const frnn_blas *blas, int trans_a, int trans_b, int m, int n, int k,
                       float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                       float *c, int ldc)
    void frnn_gemm_f64(const frnn_blas *blas, int trans_a, int trans_b, int m, int n, int k,
                       double alpha, const double *a, int lda, const double *b, int ldb, double beta,
                       double *c, int ldc)
    void frnn_matmul_f32(const frnn_blas *blas, int trans_a, int trans_b, int m, int n, int k,
                         const float *a, int lda, const float *b, int ldb, int beta, float *c, int ldc)
    int frnn_matmul_bf16(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda,
                         const float *b, int ldb, int beta, float *c, int ldc)
    size_t frnn_head_bf16_floats(int n, int k)
    void frnn_head_bf16_pack(float *mem, int n, int k, const float *W, int ldw)
    int frnn_matmul_bf16_packed(const float *mem, int m, int n, int k, const float *a, int lda, int beta,
                                float *c, int ldc)
    int frnn_engine_enabled()
    void frnn_set_engine(int on)
    int frnn_threads()
    void frnn_set_threads(int n)
    int frnn_isa_supported(int isa)
    int frnn_isa_active()
    int frnn_set_isa(int isa)
    ctypedef struct frnn_stack:
        int L, D
        const frnn_dims *dims
        frnn_buffers *run
        void **acts
        void **grads
        const void **masks
        int threads
    int frnn_stack_forward_f32(const frnn_blas *blas, const frnn_stack *st, int train)
    int frnn_stack_forward_f64(const frnn_blas *blas, const frnn_stack *st, int train)
    int frnn_stack_backward_f32(const frnn_blas *blas, const frnn_stack *st)
    int frnn_stack_backward_f64(const frnn_blas *blas, const frnn_stack *st)

    # generation (csrc/generate.h through fastrnn.h): a language model's sampling loop
    ctypedef struct frnn_gen:
        int L, B, V
        const frnn_dims *dims
        const frnn_buffers *run
        const void *table
        const void *W_head
        const void *b_head
        const frnn_q8_mat *head_q8
        int head_bf16
        const float *head_bf16_pack
        void *h
        void *c
        void *x
        void *logits
        double *z
        double *scratch
        int *iscratch
        double temperature, top_p
        int top_k, argmax, eos
        const char *text
        const int *offsets
        int word
        const char *stop
        int stop_len, stop_window
        char *stop_buf
        int *token
        int *out
        int *n_out
        int *done
        int max_len
    enum: FRNN_GEN_NO_MEMORY
    int frnn_generate_f32(const frnn_blas *blas, const frnn_gen *g, const int *feed, int steps, const double *u)
    int frnn_generate_f64(const frnn_blas *blas, const frnn_gen *g, const int *feed, int steps, const double *u)

cdef extern from "engine_bf16.h" nogil:
    int frnn_bf16_kernel_supported(int kernel)
    int frnn_bf16_kernel()
    int frnn_set_bf16_kernel(int kernel)
    const char *frnn_bf16_kernel_name(int kernel)

# csrc/amx.h: the AMX tile path of the bf16 and int8 products (hardware or its exact emulation)
cdef extern from "amx.h" nogil:
    int frnn_amx_cpu()
    int frnn_amx_supported()
    int frnn_amx_mode()
    int frnn_set_amx_mode(int mode)
    const char *frnn_amx_mode_name(int mode)

# csrc/decomp.h via fastrnn.h, team.h: the decomposition a call runs, barriers counted
cdef extern from "fastrnn.h" nogil:
    int frnn_decomposition(const frnn_dims *dims, int L, int D, int nth, int train, int precision)

cdef extern from "team.h" nogil:
    unsigned long frnn_sync_count()

# csrc/train.h: a language model's whole training step, the optimisers
cdef extern from "train.h" nogil:
    enum:
        FRNN_OPT_SGD
        FRNN_OPT_ADAM
        FRNN_OPT_RMSPROP
        FRNN_OPT_ADAGRAD
    ctypedef struct frnn_opt:
        int kind, decoupled, nesterov
        long steps
        double lr, momentum, dampening, weight_decay, alpha, beta1, beta2, eps
        void *state0
        void *state1
        double clip, clip_value, max_loss
    ctypedef struct frnn_step_result:
        double loss, grad_sumsq, param_sumsq
        int status
    ctypedef struct frnn_train:
        int T, B, V
        const int *ids
        const int *targets
        const void *table
        void *table_grad
        const void *W_ih0
        void *dW_ih0
        frnn_stack *fwd
        frnn_stack *bwd
        const void *W_head
        const void *b_head
        void *dW_head
        void *db_head
        void *logits
        void *nll
        size_t n
        void *params
        void *grads
        int head_bf16
    int frnn_optim_step_f32(const frnn_opt *o, size_t n, float *params, float *grads, frnn_step_result *r)
    int frnn_optim_step_f64(const frnn_opt *o, size_t n, double *params, double *grads, frnn_step_result *r)
    int frnn_train_step_f32(const frnn_blas *blas, const frnn_train *tr, const frnn_opt *opt, frnn_step_result *r)
    int frnn_train_step_f64(const frnn_blas *blas, const frnn_train *tr, const frnn_opt *opt, frnn_step_result *r)

# csrc/train_seq.h: a tagger's or classifier's whole training step
cdef extern from "train_seq.h" nogil:
    enum:
        FRNN_POOL_STEPS
        FRNN_POOL_LAST
        FRNN_POOL_MEAN
        FRNN_POOL_MAX
    ctypedef struct frnn_train_seq:
        int T, B, K, pool
        const int *ids
        int V
        const void *table
        void *table_grad
        const int *targets
        frnn_stack *fwd
        frnn_stack *bwd
        const void *drop
        void *feat
        void *dfeat
        int *arg
        void *dh_last[2]
        const void *W_head
        const void *b_head
        void *dW_head
        void *db_head
        void *logits
        void *nll
        size_t n
        void *params
        void *grads
        int head_bf16
    int frnn_train_seq_step_f32(const frnn_blas *blas, const frnn_train_seq *tr, const frnn_opt *opt, frnn_step_result *r)
    int frnn_train_seq_step_f64(const frnn_blas *blas, const frnn_train_seq *tr, const frnn_opt *opt, frnn_step_result *r)
