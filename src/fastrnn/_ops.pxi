# Array operations of the Python models and the engine's settings (included by _kernels.pyx):
# activations, products on the engine or BLAS, thread/ISA settings, row gathers and scatters.

def _activation(int name, x, out):
    x = np.ascontiguousarray(x)
    if x.dtype not in _FLOATS:
        raise TypeError(f"x: expected float32 or float64, got {x.dtype.name}")
    out = np.empty_like(x) if out is None else _check("out", out, x.dtype, x.shape, writeable=True)
    cdef size_t n = x.size
    cdef void *pi = _ptr(x)
    cdef void *po = _ptr(out)
    cdef bint f64 = x.dtype == np.float64
    with nogil:
        if name == 0:
            if f64: frnn_sigmoid_f64(<double *>po, <const double *>pi, n)
            else: frnn_sigmoid_f32(<float *>po, <const float *>pi, n)
        else:
            if f64: frnn_tanh_f64(<double *>po, <const double *>pi, n)
            else: frnn_tanh_f32(<float *>po, <const float *>pi, n)
    return out


def sigmoid(x, out=None):
    """The kernels' vectorised sigmoid over an array (exposed for tests)."""
    return _activation(0, x, out)


def tanh(x, out=None):
    """The kernels' vectorised tanh over an array (exposed for tests)."""
    return _activation(1, x, out)


def gemm(a, b, trans_b=False, out=None, *, trans_a=False, accumulate=False, precision="float32",
         packed=None):
    """Row-major a @ b for 2-D float32/float64 arrays (a.T / b.T with trans_a / trans_b): float32
    on the engine's packed micro-kernels and thread team (SciPy's BLAS when the engine is off),
    float64 through SciPy's BLAS. `out` (m, n), when given, must be C-contiguous of the same
    dtype; it is overwritten, or added to with accumulate=True (out += a @ b).

    precision='bf16' (float32 arrays; ValueError for float64): bf16 mixed precision as the
    recurrent layers' products (csrc/engine_bf16.h's frnn_team_gemm_bf16) -- a and b rounded to
    bf16, the dot products in VDPBF16PS order with float32 accumulation, out added in float32
    after each block of 256 of k; the same bits on every CPU and thread count. `packed`: b's
    bf16 panels from `head_pack_bf16(b)` for a @ b.T (the same bits, no packing per call).

    The models use this rather than `@` so that every product runs on the threads the kernels
    already keep busy: NumPy's `@` goes through NumPy's own OpenBLAS, and two thread pools
    spinning on the same cores slow each other down severalfold.
    """
    if not isinstance(a, np.ndarray) or a.dtype not in _FLOATS:
        raise TypeError(f"a: expected a float32 or float64 numpy.ndarray, got {getattr(a, 'dtype', type(a).__name__)}")
    if not isinstance(b, np.ndarray) or b.dtype != a.dtype:
        raise TypeError(f"b: expected a numpy.ndarray of dtype {a.dtype.name}, got {getattr(b, 'dtype', type(b).__name__)}")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a, b: expected 2-D arrays, got shapes {a.shape} and {b.shape}")
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    if max(a.shape + b.shape) > _INT_MAX:
        raise ValueError(f"a, b: dimensions above {_INT_MAX} are not supported, got {a.shape} and {b.shape}")
    cdef int m = a.shape[1] if trans_a else a.shape[0]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef int n = b.shape[0] if trans_b else b.shape[1]
    kb = b.shape[1] if trans_b else b.shape[0]
    if kb != k:
        raise ValueError(f"b: expected {k} {'columns' if trans_b else 'rows'} to match a "
                         f"{a.shape}{' transposed' if trans_a else ''}, got {b.shape}")
    if out is None:
        if accumulate:
            raise ValueError("out: accumulate=True needs an out array to add to")
        out = np.empty((m, n), a.dtype)
    else:
        out = _check("out", out, a.dtype, (m, n), writeable=True)
    cdef int ta = 1 if trans_a else 0
    cdef int tb = 1 if trans_b else 0
    cdef int lda = a.shape[1], ldb = b.shape[1]
    cdef double beta = 1.0 if accumulate else 0.0
    cdef void *pa = _ptr(a)
    cdef void *pb = _ptr(b)
    cdef void *pc = _ptr(out)
    cdef bint f64 = a.dtype == np.float64
    cdef int bf16 = _precision_code(precision, f64)
    cdef int rc = 1
    cdef const float *pp = NULL
    if packed is not None:
        if not bf16 or trans_a or not trans_b:
            raise ValueError("packed: only for a @ b.T with precision='bf16'")
        _check("packed", packed, np.float32, (frnn_head_bf16_floats(n, k),))
        pp = <const float *>_ptr(packed)
    if m == 0 or n == 0:
        return out
    with nogil:
        if pp != NULL:      # 1: a pack for another ISA's panels (or k == 0): the plain call below
            rc = frnn_matmul_bf16_packed(pp, m, n, k, <const float *>pa, lda, 1 if beta else 0, <float *>pc, n)
        if bf16:
            if rc != 0:
                rc = frnn_matmul_bf16(ta, tb, m, n, k, <const float *>pa, lda, <const float *>pb, ldb,
                                      1 if beta else 0, <float *>pc, n)
        elif f64:
            frnn_gemm_f64(&BLAS, ta, tb, m, n, k, 1.0, <const double *>pa, lda, <const double *>pb, ldb,
                          beta, <double *>pc, n)
        else:
            frnn_matmul_f32(&BLAS, ta, tb, m, n, k, <const float *>pa, lda, <const float *>pb, ldb,
                            1 if beta else 0, <float *>pc, n)
    if bf16 and rc != 0:
        raise MemoryError("gemm: out of memory (the bf16 pack buffer)")
    return out


def head_pack_bf16(W):
    """W (n, k) float32 packed once in bf16 panels for `gemm(a, W, trans_b=True, precision='bf16',
    packed=...)` (csrc/fastrnn.h frnn_head_bf16_pack; made for the active ISA, and a call after an
    ISA switch packs W itself: the same bits either way)."""
    if not isinstance(W, np.ndarray) or W.ndim != 2:
        raise TypeError(f"W: expected a 2-D float32 numpy.ndarray, got {type(W).__name__}")
    W = _check("W", W, np.float32, W.shape)
    cdef int n = W.shape[0], k = W.shape[1]
    out = np.empty(frnn_head_bf16_floats(n, k), np.float32)
    frnn_head_bf16_pack(<float *>_ptr(out), n, k, <const float *>_ptr(W), k)
    return out


# ---- the engine's settings -------------------------------------------------------------------------

ISAS = {"none": 0, "avx2": 2, "avx512": 3}


def set_num_threads(n):
    """Threads of fastrnn's own team (float32 engine); None or 0 restores the default
    (FASTRNN_NUM_THREADS, else the CPUs this process may use). Results do not depend on it."""
    if n is None:
        n = 0
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n: expected a positive integer (or 0/None for the default), got {n!r}")
    frnn_set_threads(min(int(n), 256))


def get_num_threads():
    """Threads a kernel call may use (the team's size)."""
    return frnn_threads()


def set_engine(on):
    """Turn the float32 engine on (default) or off (then every product goes to SciPy's BLAS, as
    with FASTRNN_KERNELS=blas). For A/B comparisons and tests."""
    frnn_set_engine(1 if on else 0)


def set_isa(name):
    """Force the engine's micro-kernels to 'avx512', 'avx2' or 'none' (= the BLAS path); raises
    ValueError when this CPU lacks that ISA. FASTRNN_ISA sets it at start-up."""
    if name not in ISAS:
        raise ValueError(f"name: expected one of {sorted(ISAS)}, got {name!r}")
    if not frnn_isa_supported(ISAS[name]):
        raise ValueError(f"name: this CPU does not support {name!r}")
    frnn_set_isa(ISAS[name])


def supported_isas():
    """The engine ISAs this CPU can run, best first (always ends with 'none')."""
    return [n for n in ("avx512", "avx2", "none") if frnn_isa_supported(ISAS[n])]


def engine_info():
    """{'path': 'engine' or 'blas', 'isa': ..., 'threads': ...}: what float32 kernels run on
    (float64 always uses SciPy's BLAS)."""
    isa = {v: k for k, v in ISAS.items()}[frnn_isa_active()]
    return {"path": "engine" if frnn_engine_enabled() else "blas", "isa": isa, "threads": frnn_threads()}


BF16_KERNELS = {"emulated": 0, "avx2": 2, "avx512bf16": 4}


def bf16_info():
    """{'kernel': ..., 'supported': [...]}: the kernel running precision='bf16' products --
    'avx512bf16' (vdpbf16ps), 'avx2' (bf16 weights widened in the micro-kernel) or 'emulated'
    (plain C) -- and the ones this CPU can run. All give the same bits."""
    return {"kernel": frnn_bf16_kernel_name(frnn_bf16_kernel()).decode(),
            "supported": [n for n, k in BF16_KERNELS.items() if frnn_bf16_kernel_supported(k)]}


def set_bf16_kernel(name):
    """Force the bf16 kernel ('emulated', 'avx2', 'avx512bf16', or None for the default);
    ValueError when this CPU lacks it. FASTRNN_BF16 sets it at start-up. The active float32 ISA
    bounds it (set_isa('none') runs the emulation; 'avx512bf16' needs the AVX-512 panels)."""
    if name is None:
        frnn_set_bf16_kernel(-1)
        return
    if name not in BF16_KERNELS:
        raise ValueError(f"name: expected one of {sorted(BF16_KERNELS)} or None, got {name!r}")
    if not frnn_bf16_kernel_supported(BF16_KERNELS[name]):
        raise ValueError(f"name: this CPU does not support {name!r}")
    frnn_set_bf16_kernel(BF16_KERNELS[name])


# ---- row gathers and scatter-adds: the one-hot / embedding input side of a model ----------------

ctypedef fused real:
    float
    double


def _scatter_add(real[:, ::1] dst, const cnp.int64_t[::1] ids, const real[:, ::1] rows, bint columns):
    cdef Py_ssize_t r, j, n = rows.shape[1]
    with nogil:
        for r in range(rows.shape[0]):
            if columns:                     # dst (n, V): column ids[r] += rows[r]
                for j in range(n):
                    dst[j, ids[r]] += rows[r, j]
            else:                           # dst (V, n): row ids[r] += rows[r]
                for j in range(n):
                    dst[ids[r], j] += rows[r, j]


def _check_ids(ids, V):
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":     # a float id would be silently truncated
        raise TypeError(f"ids: expected integer ids, got dtype {arr.dtype.name}")
    ids = np.ascontiguousarray(arr, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        raise ValueError(f"ids: expected values in [0, {V}), got {ids.min()}..{ids.max()}")
    return ids


def scatter_add_rows(dst, ids, rows, columns=False):
    """dst[ids[r]] += rows[r] for every r (repeated ids add up); with columns=True,
    dst[:, ids[r]] += rows[r]. The backward of a row gather, without a one-hot matrix.

    dst (V, n) (columns: (n, V)) C-contiguous and writeable; ids (R,) ints; rows (R, n).
    """
    if not isinstance(dst, np.ndarray) or dst.dtype not in _FLOATS or dst.ndim != 2:
        raise TypeError(f"dst: expected a 2-D float32/float64 numpy.ndarray, got {getattr(dst, 'dtype', type(dst).__name__)}")
    V, n = (dst.shape[1], dst.shape[0]) if columns else (dst.shape[0], dst.shape[1])
    ids = _check_ids(ids, V)
    _check("rows", rows, dst.dtype, (ids.shape[0], n))
    _check("dst", dst, dst.dtype, dst.shape, writeable=True)
    _scatter_add(dst, ids, rows, bool(columns))
    return dst


def _gather(real[:, ::1] out, const cnp.int64_t[::1] ids, const real[:, ::1] src, bint columns):
    cdef Py_ssize_t r, j, n = out.shape[1]
    with nogil:
        for r in range(out.shape[0]):
            if columns:                     # src (n, V): out[r] = src[:, ids[r]]
                for j in range(n):
                    out[r, j] = src[j, ids[r]]
            else:                           # src (V, n): out[r] = src[ids[r]]
                for j in range(n):
                    out[r, j] = src[ids[r], j]


def gather_rows(src, ids, columns=False):
    """src[ids] (R, n) for ids of any shape (the result has shape ids.shape + (n,)); with
    columns=True, src.T[ids] without transposing src. A one-hot input times W_ih^T is exactly
    this gather of W_ih's columns.
    """
    if not isinstance(src, np.ndarray) or src.dtype not in _FLOATS or src.ndim != 2:
        raise TypeError(f"src: expected a 2-D float32/float64 numpy.ndarray, got {getattr(src, 'dtype', type(src).__name__)}")
    shape = np.shape(ids)
    V, n = (src.shape[1], src.shape[0]) if columns else (src.shape[0], src.shape[1])
    ids = _check_ids(ids, V)
    _check("src", src, src.dtype, src.shape)
    out = np.empty((ids.shape[0], n), src.dtype)
    _gather(out, ids, src, bool(columns))
    return out.reshape(shape + (n,))


def same_bytes(a, b):
    """True when the C-contiguous arrays `a` and `b` hold the same bytes (one memcmp, no
    allocation): how a layer checks its packed weights against the weights they came from."""
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.nbytes != b.nbytes \
            or not (a.flags.c_contiguous and b.flags.c_contiguous):
        raise ValueError("a, b: expected two C-contiguous arrays of the same size")
    cdef size_t n = a.nbytes
    cdef const void *pa = _ptr(a)
    cdef const void *pb = _ptr(b)
    cdef int rc
    with nogil:
        rc = memcmp(pa, pb, n)
    return rc == 0
