# Included by _kernels.pyx before fastrnn.h's declarations: csrc/int8.h's types and functions.
from libc.stdint cimport int8_t, int32_t, uint8_t

cdef extern from "int8.h" nogil:
    ctypedef struct frnn_q8_mat:
        const int8_t *w
        const float *scale
        const int32_t *comp
        int N, K, Kp
        int n0, Np
    ctypedef struct frnn_q8_layer:
        frnn_q8_mat ih, hh, hr
    enum: FRNN_Q8_ALIGN, FRNN_Q8_KMAX
    size_t frnn_q8_packed_bytes(int N, int Kp)
    void frnn_q8_pack(const int8_t *q, size_t ldq, int N, int K, int Kp, int8_t *out)
    int frnn_q8_isa_supported(int isa)
    int frnn_q8_isa_active()
    int frnn_q8_set_isa(int isa)
    void frnn_q8_mul(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const float *A, size_t lda,
                     int beta, float *C, size_t ldc)

