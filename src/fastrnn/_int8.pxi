# Included by _kernels.pyx: the binding of csrc/int8.h (int8 inference weights and products).
#: int8 dot-product paths (csrc/int8.h)
INT8_ISAS = {"ref": 0, "avx2": 2, "avxvnni": 4, "avx512vnni": 5}


def int8_isa():
    """The active int8 path: 'ref', 'avx2', 'avxvnni' or 'avx512vnni'."""
    code = frnn_q8_isa_active()
    return next(n for n, c in INT8_ISAS.items() if c == code)


def int8_isas():
    """The int8 paths this CPU can run."""
    return [n for n, c in INT8_ISAS.items() if frnn_q8_isa_supported(c)]


def set_int8_isa(name):
    """Make `name` the int8 path (process-wide); ValueError when this CPU cannot run it."""
    if name not in INT8_ISAS or not frnn_q8_isa_supported(INT8_ISAS[name]):
        raise ValueError(f"name: expected one of {int8_isas()} on this CPU, got {name!r}")
    frnn_q8_set_isa(INT8_ISAS[name])


def _q8_padded(name, q, scale):
    """(w int8 packed in panels (csrc/int8.h), scale float32 (N,), comp int32 (N,)) of one
    quantized matrix."""
    if not isinstance(q, np.ndarray) or q.dtype != np.int8 or q.ndim != 2:
        raise TypeError(f"{name}: expected a 2-D int8 numpy.ndarray, got "
                        f"{getattr(q, 'dtype', type(q).__name__)} {getattr(q, 'shape', '')}")
    N, K = q.shape
    if N < 1 or K < 1:
        raise ValueError(f"{name}: expected a non-empty matrix, got {q.shape}")
    Kp = -(-K // FRNN_Q8_ALIGN) * FRNN_Q8_ALIGN
    if Kp > FRNN_Q8_KMAX:
        raise ValueError(f"{name}: at most {FRNN_Q8_KMAX} columns run in int8, got {K}")
    if q.min() < -127:
        raise ValueError(f"{name}: int8 weights are in [-127, 127], found -128")
    scale = np.asarray(scale)
    if scale.dtype != np.float32 or scale.shape != (N,):
        raise ValueError(f"{name} scales: expected float32 ({N},), got {scale.dtype} {scale.shape}")
    if not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ValueError(f"{name} scales: expected finite values >= 0")
    q = np.ascontiguousarray(q)
    w = np.empty(frnn_q8_packed_bytes(N, Kp), np.int8)
    cdef const int8_t *pq = <const int8_t *>_ptr(q)
    cdef int8_t *pw = <int8_t *>_ptr(w)
    cdef int Ni = N, Ki = K, Kpi = Kp
    with nogil:
        frnn_q8_pack(pq, Ki, Ni, Ki, Kpi, pw)
    comp = (64 * q.astype(np.int64).sum(axis=1)).astype(np.int32)
    return w, np.ascontiguousarray(scale), comp


cdef void _q8_fill(frnn_q8_mat *m, object parts, int K):
    if parts is None:
        m.N = 0
        return
    w, scale, comp = parts
    m.w, m.scale, m.comp = <const int8_t *>_ptr(w), <const float *>_ptr(scale), <const int32_t *>_ptr(comp)
    m.N, m.K = scale.shape[0], K
    m.Kp = -(-K // FRNN_Q8_ALIGN) * FRNN_Q8_ALIGN
    m.n0, m.Np = 0, w.shape[0] // m.Kp


cdef class Q8Layer:
    """A layer's int8 weights for inference (csrc/int8.h): `ih`, `hh`, `hr` each a pair
    (q int8 (N, K), scale float32 (N,)) for W_ih (G*H, I), W_hh (G*H, P), W_hr (P, H), or None
    (no W_ih: the float path projects; no W_hr: no projection). Pass it as `packed=` to forward,
    step, stack_forward or the Generator in place of packed float weights. hstatic: h_{t-1} in
    static rows (fixed scale 1/63, quantized as the gate step writes h) where the cell keeps
    |h| <= 1 and |h0| <= 1 (csrc/int8.h), else per-row dynamic scales."""
    cdef frnn_q8_layer q
    cdef object keep
    cdef public object shapes

    def __init__(self, ih=None, hh=None, hr=None, hstatic=False):
        if hh is None:
            raise ValueError("hh: required, the int8 W_hh and its scales")
        parts = [None if p is None else _q8_padded(n, *p) for n, p in (("ih", ih), ("hh", hh), ("hr", hr))]
        self.keep = parts
        self.shapes = [None if p is None else p[0].shape for p in (ih, hh, hr)]
        _q8_fill(&self.q.ih, parts[0], 0 if ih is None else ih[0].shape[1])
        _q8_fill(&self.q.hh, parts[1], hh[0].shape[1])
        _q8_fill(&self.q.hr, parts[2], 0 if hr is None else hr[0].shape[1])
        self.q.hstatic = bool(hstatic)

    cdef const frnn_q8_layer *ptr(self):
        return &self.q

    def check(self, GH, I, H, P, has_ih=True):
        """ValueError unless the weights fit a layer of these sizes (has_ih False: the input is
        already projected, W_ih is not used)."""
        want = [(GH, I) if has_ih else None, (GH, P), (P, H) if P != H else None]
        for name, have, exp in zip(("ih", "hh", "hr"), self.shapes, want):
            if have is not None and exp is not None and tuple(have) != exp:
                raise ValueError(f"packed: int8 {name} is {tuple(have)}, the layer needs {exp}")
        if (self.shapes[2] is None) != (P == H):
            raise ValueError("packed: int8 W_hr must be given exactly when the LSTM projects")


def q8_matmul(x, q, scale, out=None, accumulate=False):
    """x (M, K) float32 @ dequantized(q (N, K) int8, scale (N,))^T through the int8 kernel: x's
    rows quantized per row (csrc/int8.h), s32 sums, float32 out (M, N)."""
    w, s, comp = _q8_padded("q", q, scale)
    x = _check("x", x, np.float32, (x.shape[0] if isinstance(x, np.ndarray) and x.ndim == 2 else -1, q.shape[1]))
    M, N = x.shape[0], q.shape[0]
    if out is None:
        out = np.zeros((M, N), np.float32)
    _check("out", out, np.float32, (M, N), writeable=True)
    cdef frnn_q8_mat m
    _q8_fill(&m, (w, s, comp), q.shape[1])
    cdef const float *px = <const float *>_ptr(x)
    cdef float *po = <float *>_ptr(out)
    cdef int Mi = M, Ni = N, K = q.shape[1], beta = bool(accumulate)
    with nogil:
        frnn_q8_mul(&m, Ni, 0, Ni, Mi, px, K, beta, po, Ni)
    return out


cdef class Q8Matrix:
    """One int8 matrix (q int8 (N, K), scale float32 (N,)) for products x @ W^T in int8: a
    quantized head (`matmul`, and the native generation loop's logits)."""
    cdef frnn_q8_mat m
    cdef object keep
    cdef public int N, K

    def __init__(self, q, scale):
        self.keep = _q8_padded("q", q, scale)
        _q8_fill(&self.m, self.keep, q.shape[1])
        self.N, self.K = q.shape

    cdef const frnn_q8_mat *ptr(self):
        return &self.m

    def matmul(self, x):
        """x (M, K) float32 -> (M, N) float32 through the int8 kernel (as q8_matmul)."""
        x = _check("x", x, np.float32, (x.shape[0] if isinstance(x, np.ndarray) and x.ndim == 2 else -1, self.K))
        out = np.empty((x.shape[0], self.N), np.float32)
        cdef const float *px = <const float *>_ptr(x)
        cdef float *po = <float *>_ptr(out)
        cdef int M = x.shape[0]
        with nogil:
            frnn_q8_mul(&self.m, self.N, 0, self.N, M, px, self.K, 0, po, self.N)
        return out
