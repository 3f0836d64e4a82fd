# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of csrc/: checks every buffer, then calls the C kernels with the GIL released.

Everything here is time-major and follows PyTorch's weight layout (see csrc/fastrnn.h). A wrong
argument raises TypeError (dtype) or ValueError (shape, contiguity, range) naming it; nothing
reaches C unchecked.
"""
import numpy as np
cimport numpy as cnp
from scipy.linalg.cython_blas cimport sgemm, dgemm
from libc.string cimport memcmp

cnp.import_array()

# The C API (csrc/fastrnn.h, csrc/int8.h) is declared once, in _kernels.pxd, which Cython reads
# before this file; this file and the .pxi files it includes use those declarations.

# SciPy's BLAS, handed to C as function pointers: the wheel links no BLAS of its own.
cdef frnn_blas BLAS
BLAS.sgemm = sgemm
BLAS.dgemm = dgemm

def cell_table():
    """The C cell table (csrc/cells.h): name -> dict(code, gates, state_parts, barriers)."""
    cdef const frnn_cell_row *row
    out = {}
    for code in range(FRNN_NUM_CELLS):
        row = frnn_cell_info(code)
        out[row.name.decode()] = dict(code=code, gates=row.gates, state_parts=2 if row.has_c else 1,
                                      barriers=row.barriers)
    return out


#: cell name -> frnn_cell code, from the C table
CELLS = {name: row["code"] for name, row in cell_table().items()}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT_MAX = 2 ** 31 - 1


cdef void *_ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def _check(name, a, dtype, shape, writeable=False, optional=False):
    """Return `a` if it is a C-contiguous ndarray of `dtype` and `shape`; else raise naming `name`."""
    if a is None:
        if optional:
            return None
        raise ValueError(f"{name}: required, expected an array of shape {shape}")
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of {np.dtype(dtype).name}, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype).name}, got {a.dtype.name}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array")
    return a


PRECISIONS = ("float32", "bf16")


def _precision_code(precision, f64):
    """0 for 'float32', 1 for 'bf16' (float32 arrays only)."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and f64:
        raise ValueError("precision: 'bf16' needs float32 arrays, got float64")
    return 1 if precision == "bf16" else 0


def _cell_code(cell):
    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")
    return CELLS[cell]


cdef frnn_dims _dims(int cell, Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, Py_ssize_t P,
                     bint peephole) except *:
    cdef frnn_dims d
    for name, v in (("T", T), ("B", B), ("I", I), ("H", H), ("P", P)):
        if not 1 <= v <= _INT_MAX:
            raise ValueError(f"{name}: expected a size in [1, {_INT_MAX}], got {v}")
    if P != H and cell != CELLS["lstm"]:
        raise ValueError(f"P: only an LSTM may have a projection (P={P} != H={H})")
    # every buffer a call touches is at most (T+1) * B * (a few widths) elements: refuse sizes
    # whose element counts (or byte counts) would not fit the 64-bit sizes the C code uses
    G = frnn_gates(cell)
    if (T + 1) * B * (8 * G * H + 4 * P + 4 * H + I) * 8 >= 2 ** 63 or G * H > _INT_MAX:
        raise ValueError(f"T, B, I, H: sizes T={T}, B={B}, I={I}, H={H} need buffers larger than "
                         f"this machine can address")
    d.cell, d.T, d.B, d.In, d.H, d.P, d.peephole = cell, T, B, I, H, P, peephole
    return d


def gates(cell):
    """Number of gates G of a cell: the weights have G * hidden_size rows."""
    return frnn_gates(_cell_code(cell))


def tape_size(cell, T, B, I, H, P=None, peephole=False):
    """Elements of the tape a training forward writes for these sizes."""
    cdef frnn_dims d = _dims(_cell_code(cell), T, B, I, H, H if P is None else P, peephole)
    return frnn_tape_size(&d)


def work_size(cell, T, B, I, H, P=None, peephole=False):
    """Elements of the workspace of an inference forward (which keeps no tape)."""
    cdef frnn_dims d = _dims(_cell_code(cell), T, B, I, H, H if P is None else P, peephole)
    return frnn_work_size(&d)


def _lengths(lengths, B, T):
    """Checked int32 copy of `lengths` (B,) with every value in [0, T], or None."""
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers, got dtype {arr.dtype.name}")
    if arr.shape != (B,):
        raise ValueError(f"lengths: expected shape ({B},), got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > T):
        raise ValueError(f"lengths: expected values in [0, {T}], got min {arr.min()}, max {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int32)


include "_int8.pxi"


cdef class _Layer:
    """The checked sizes, parameters and buffers of one kernel call (internal)."""
    cdef frnn_dims d
    cdef frnn_buffers buf
    cdef object keep            # the arrays whose pointers are in buf
    cdef bint f64
    cdef bint train
    cdef public object dtype, lengths
    cdef object results         # what the call returns

    def __init__(self, cell, x, W_ih, W_hh, b_ih, b_hh, w_peep, W_hr, lengths):
        code = _cell_code(cell)
        if not isinstance(x, np.ndarray) or x.dtype not in _FLOATS:
            raise TypeError(f"x: expected a float32 or float64 numpy.ndarray, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.ndim != 3:
            raise ValueError(f"x: expected shape (T, B, I), got {x.shape}")
        T, B, I = x.shape
        G = frnn_gates(code)
        if not isinstance(W_hh, np.ndarray) or W_hh.ndim != 2 or W_hh.shape[0] % G:
            raise ValueError(f"W_hh: expected shape ({G}*H, P), got {getattr(W_hh, 'shape', None)}")
        H, P = W_hh.shape[0] // G, W_hh.shape[1]
        self.dtype = dt = x.dtype
        self.f64 = dt == np.float64
        self.d = _dims(code, T, B, I, H, P, w_peep is not None)
        _check("x", x, dt, (T, B, I))
        if W_ih is None and I != G * H:  # None: x holds the input projection (one-hot row gathers)
            raise ValueError(f"x: with W_ih=None, x must be the projected input (T, B, {G * H}), "
                             f"got {x.shape}")
        _check("W_ih", W_ih, dt, (G * H, I), optional=True)
        _check("W_hh", W_hh, dt, (G * H, P))
        _check("b_ih", b_ih, dt, (G * H,), optional=True)
        _check("b_hh", b_hh, dt, (G * H,), optional=True)
        if w_peep is not None and code != CELLS["lstm"]:
            raise ValueError("w_peep: peepholes exist only for cell 'lstm'")
        _check("w_peep", w_peep, dt, (3 * H,), optional=True)
        if W_hr is not None and code != CELLS["lstm"]:
            raise ValueError("W_hr: a projection exists only for cell 'lstm'")
        if P != H:
            _check("W_hr", W_hr, dt, (P, H))
        elif W_hr is not None:
            raise ValueError(f"W_hr: expected None when W_hh has H={H} columns (no projection); "
                             f"for projection size P, W_hh is (4*H, P) and W_hr is (P, H)")
        self.lengths = _lengths(lengths, B, T)
        self.keep = [x, W_ih, W_hh, b_ih, b_hh, w_peep, W_hr, self.lengths]
        self.buf.x, self.buf.W_ih, self.buf.W_hh = _ptr(x), _ptr(W_ih), _ptr(W_hh)
        self.buf.b_ih, self.buf.b_hh = _ptr(b_ih), _ptr(b_hh)
        self.buf.w_peep, self.buf.W_hr = _ptr(w_peep), _ptr(W_hr)
        self.buf.lengths = <const int *>_ptr(self.lengths)

    cdef object hold(self, a):
        self.keep.append(a)
        return a

    def set_threads(self, threads):
        """The most threads this call may use (0: the team's size)."""
        if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 0:
            raise ValueError(f"threads: expected a non-negative integer, got {threads!r}")
        self.buf.threads = min(int(threads), 256)

    def set_precision(self, precision):
        """'float32' (default) or 'bf16' (float32 arrays only; see `forward`). Before set_packed."""
        self.buf.precision = _precision_code(precision, self.f64)

    def set_packed(self, packed):
        """Use pre-packed forward weights (see pack_forward), int8 weights (Q8Layer), or None."""
        self.buf.q8 = NULL
        if isinstance(packed, Q8Layer):
            if self.f64:
                raise TypeError("packed: int8 weights run float32 layers only")
            packed.check(self.d.H * frnn_gates(self.d.cell), self.d.In, self.d.H, self.d.P,
                         self.buf.W_ih != NULL)
            self.buf.packed = NULL
            self.buf.q8 = (<Q8Layer>self.hold(packed)).ptr()
            return
        if packed is None:
            self.buf.packed = NULL
            return
        if not isinstance(packed, np.ndarray) or packed.dtype != np.float32 or packed.ndim != 1 \
                or not packed.flags.c_contiguous:
            raise TypeError("packed: expected the float32 array returned by pack_forward")
        if self.f64 or <size_t>packed.shape[0] < (frnn_packed_size_bf16(&self.d, 0) if self.buf.precision
                                                   else frnn_packed_size_f32(&self.d)):
            self.buf.packed = NULL      # not for this call: the kernel packs for itself
            return
        if packed.shape[0] >= 16 and packed[:16].view(np.int32)[7] == self.d.In \
                and <size_t>packed.shape[0] < (frnn_packed_size_bf16(&self.d, 1) if self.buf.precision
                                               else frnn_packed_size_f32_ih(&self.d, 1)):
            self.buf.packed = NULL      # claims W_ih but is too short for it
            return
        self.buf.packed = _ptr(self.hold(packed))

    cdef object out(self, name, a, shape):
        """A checked output buffer: `a`, or a new one when `a` is None."""
        if a is None:
            a = np.empty(shape, self.dtype)
        return self.hold(_check(name, a, self.dtype, shape, writeable=True))

    cdef object state(self, name, a, width):
        """A checked input state (B, width), or None for zeros."""
        return self.hold(_check(name, a, self.dtype, (self.d.B, width), optional=True))

    cdef object tape(self, name, a, size_t size):
        if not isinstance(a, np.ndarray) or a.dtype != self.dtype or a.ndim != 1 \
                or not a.flags.c_contiguous or not a.flags.writeable or <size_t>a.shape[0] < size:
            raise ValueError(f"{name}: expected a writeable 1-D {self.dtype.name} array of at least "
                             f"{size} elements, got {getattr(a, 'dtype', type(a).__name__)} "
                             f"{getattr(a, 'shape', '')}")
        return self.hold(a)

    cdef void run_forward(self, int train) noexcept nogil:
        if self.f64:
            frnn_forward_f64(&BLAS, &self.d, &self.buf, train)
        else:
            frnn_forward_f32(&BLAS, &self.d, &self.buf, train)

    cdef void run_backward(self) noexcept nogil:
        if self.f64:
            frnn_backward_f64(&BLAS, &self.d, &self.buf)
        else:
            frnn_backward_f32(&BLAS, &self.d, &self.buf)


def forward(cell, x, W_ih, W_hh, b_ih=None, b_hh=None, h0=None, c0=None, *, w_peep=None, W_hr=None,
            lengths=None, tape=None, work=None, y=None, h_T=None, c_T=None, packed=None, threads=0,
            precision="float32"):
    """Run a layer over a whole sequence; returns (y, h_T, c_T), c_T None unless cell is 'lstm'.

    x (T, B, I); W_ih (G*H, I), or None when x is already the input projection x @ W_ih.T
    (T, B, G*H) (then backward's dx is the gradient of that projection); W_hh (G*H, P); biases (G*H,) or None; h0 (B, P) and c0 (B, H)
    or None for zeros; w_peep (3*H,) LSTM peepholes; W_hr (P, H) LSTM projection; lengths (B,)
    for packed-sequence semantics. With `tape` (1-D, >= tape_size(...) elements) this is a
    training forward that records what backward needs; without, an inference forward using
    `work` (>= work_size(...) elements, allocated when None) and keeping nothing. y, h_T, c_T
    are written in place when given. `packed`: W_hh (and W_hr) as `pack_forward` returned them for
    these very weights (skips packing; stale or foreign packs are the caller's responsibility,
    a pack made for another ISA or size is ignored). `threads`: at most this many of fastrnn's
    threads (0: all; 1: only the calling thread, so that two independent calls can run side by
    side from two Python threads). Calls that use the team are serialised: a second one waits.
    `precision`: 'float32', or 'bf16' (float32 arrays): bf16 mixed precision -- every product
    reads its operands rounded to bf16 (nearest even) and accumulates in float32; gates, states,
    biases and gradient sums stay float32 (`bf16_info` says which kernel runs).
    """
    cdef _Layer L = _forward_layer(cell, x, W_ih, W_hh, b_ih, b_hh, h0, c0, w_peep, W_hr, lengths,
                                   tape, work, y, h_T, c_T, packed, threads, precision)
    with nogil:
        L.run_forward(L.train)
    return L.results


cdef _Layer _forward_layer(cell, x, W_ih, W_hh, b_ih, b_hh, h0, c0, w_peep, W_hr, lengths, tape,
                           work, y, h_T, c_T, packed, threads, precision="float32"):
    """The checked buffers of a forward call (see `forward`); L.results = (y, h_T, c_T)."""
    cdef _Layer L = _Layer(cell, x, W_ih, W_hh, b_ih, b_hh, w_peep, W_hr, lengths)
    L.set_precision(precision)
    L.set_packed(packed)
    L.set_threads(threads)
    L.train = tape is not None
    d = L.d
    lstm = d.cell == CELLS["lstm"]
    L.buf.h0 = _ptr(L.state("h0", h0, d.P))
    L.buf.c0 = _ptr(L.state("c0", c0, d.H)) if lstm else NULL
    if not lstm and c0 is not None:
        raise ValueError(f"c0: a cell state exists only for cell 'lstm', not {cell!r}")
    y = L.out("y", y, (d.T, d.B, d.P))
    h_T = L.out("h_T", h_T, (d.B, d.P))
    c_T = L.out("c_T", c_T, (d.B, d.H)) if lstm else None
    if L.train:
        L.buf.tape = _ptr(L.tape("tape", tape, frnn_tape_size(&L.d)))
    else:
        if work is None:
            work = np.empty(frnn_work_size(&L.d), L.dtype)
        L.buf.tape = _ptr(L.tape("work", work, frnn_work_size(&L.d)))
    L.buf.y, L.buf.h_T, L.buf.c_T = _ptr(y), _ptr(h_T), _ptr(c_T)
    L.results = (y, h_T, c_T)
    return L


def step(cell, x_t, h, c=None, W_ih=None, W_hh=None, b_ih=None, b_hh=None, *, w_peep=None, W_hr=None,
         work=None, h_out=None, c_out=None, packed=None, precision="float32"):
    """One time step without a tape: x_t (B, I), h (B, P), c (B, H) -> (h', c').

    `work` (>= work_size(cell, 1, B, I, H, P) elements), h_out and c_out may be given so that a
    sampling loop allocates nothing; h_out may be h itself (and c_out c) to update in place, but
    h and c must not overlap each other's buffers. `packed` and `precision` as in `forward`.
    """
    if not isinstance(x_t, np.ndarray) or x_t.ndim != 2:
        raise ValueError(f"x_t: expected a 2-D numpy.ndarray (B, I), got "
                         f"{getattr(x_t, 'shape', type(x_t).__name__)}")
    x_t = x_t[None]
    cdef _Layer L = _Layer(cell, x_t, W_ih, W_hh, b_ih, b_hh, w_peep, W_hr, None)
    L.set_precision(precision)
    L.set_packed(packed)
    d = L.d
    lstm = d.cell == CELLS["lstm"]
    _check("h", h, L.dtype, (d.B, d.P))
    h_out = L.out("h_out", h_out, (d.B, d.P))
    if lstm:
        _check("c", c, L.dtype, (d.B, d.H))
        c_out = L.out("c_out", c_out, (d.B, d.H))
    elif c is not None or c_out is not None:
        raise ValueError(f"c: a cell state exists only for cell 'lstm', not {cell!r}")
    if lstm:    # in-place updates are fine (h_out is h, c_out is c); crossed buffers are not
        for name, a, others in (("h_out", h_out, (c, c_out)), ("c_out", c_out, (h, h_out))):
            if any(np.shares_memory(a, o) for o in others):
                raise ValueError(f"{name}: must not share memory with the other state's buffers")
    # the kernel updates h_T/c_T in place, starting from h0/c0 (a no-op copy when they alias)
    L.buf.h0, L.buf.h_T = _ptr(L.hold(h)), _ptr(h_out)
    L.buf.c0 = _ptr(L.hold(c)) if lstm else NULL
    L.buf.c_T = _ptr(c_out) if lstm else NULL
    if work is None:
        work = np.empty(frnn_work_size(&L.d), L.dtype)
    L.buf.tape = _ptr(L.tape("work", work, frnn_work_size(&L.d)))
    L.buf.y = NULL
    with nogil:
        L.run_forward(0)
    return h_out, c_out


def pack_forward(cell, W_hh, W_hr=None, peephole=False, precision="float32", W_ih=None):
    """W_hh (and W_hr) packed for the float32 engine's forward kernels, as a float32 array to
    pass as `packed=` to forward/step while those weights are unchanged; None when float32 runs
    on BLAS here (engine off, no AVX2) or the weights are float64. precision='bf16': bf16
    panels for calls with precision='bf16' (half the bytes; a pack is used only by calls of its
    own precision), and W_ih's too when given (then a step reads no float32 weight). A float32
    pack with W_ih holds W_ih^T as the input projection packs it: a forward of T * B >= 8 rows
    then packs nothing (the same bits as without)."""
    if not isinstance(W_hh, np.ndarray) or W_hh.dtype != np.float32:
        return None
    cdef int bf16 = _precision_code(precision, False)
    code = _cell_code(cell)
    G = frnn_gates(code)
    if W_hh.ndim != 2 or W_hh.shape[0] % G:
        raise ValueError(f"W_hh: expected shape ({G}*H, P), got {W_hh.shape}")
    H, P = W_hh.shape[0] // G, W_hh.shape[1]
    cdef frnn_dims d = _dims(code, 1, 1, 1, H, P, peephole)
    _check("W_hh", W_hh, np.float32, (G * H, P))
    if W_ih is not None:
        if not isinstance(W_ih, np.ndarray) or W_ih.ndim != 2:
            raise ValueError(f"W_ih: expected shape ({G * H}, I), got {getattr(W_ih, 'shape', None)}")
        _check("W_ih", W_ih, np.float32, (G * H, W_ih.shape[1]))
        d.In = W_ih.shape[1]
    else:
        W_ih = None
    if P != H:
        _check("W_hr", W_hr, np.float32, (P, H))
    cdef size_t n = (frnn_packed_size_bf16(&d, W_ih is not None) if bf16
                     else frnn_packed_size_f32_ih(&d, W_ih is not None))
    if n == 0:
        return None
    out = np.empty(n, np.float32)
    cdef float *po = <float *>_ptr(out)
    cdef const float *pw = <const float *>_ptr(W_hh)
    cdef const float *pr = <const float *>_ptr(W_hr) if P != H else NULL
    cdef const float *pi = <const float *>_ptr(W_ih)
    cdef int rc
    with nogil:
        rc = frnn_pack_forward_bf16(&d, pi, pw, pr, po) if bf16 else frnn_pack_forward_f32_ih(&d, pi, pw, pr, po)
    return out if rc == 0 else None


def backward(cell, tape, x, W_ih, W_hh, b_ih=None, b_hh=None, h0=None, c0=None, *, w_peep=None,
             W_hr=None, lengths=None, dy=None, dh_T=None, dc_T=None, dx=None, dh0=None, dc0=None,
             grads=None, need_dx=True, threads=0, precision="float32"):
    """Backpropagation through time over the tape of a training `forward` with the same arguments.

    dy (T, B, P), dh_T (B, P), dc_T (B, H): gradients w.r.t. the forward's outputs (None = 0).
    Returns (dx, dh0, dc0, grads): dx (T, B, I) (None when need_dx is False), dh0, dc0
    overwritten; `grads` is a dict with keys among W_ih, W_hh, b_ih, b_hh, w_peep, W_hr whose
    arrays are ACCUMULATED into (+=); a parameter without an entry gets a new zeroed array.
    `threads` and `precision` as in `forward` (give the training forward's precision).
    """
    cdef _Layer L = _backward_layer(cell, tape, x, W_ih, W_hh, b_ih, b_hh, h0, c0, w_peep, W_hr,
                                    lengths, dy, dh_T, dc_T, dx, dh0, dc0, grads, need_dx, threads,
                                    precision)
    with nogil:
        L.run_backward()
    return L.results


cdef _Layer _backward_layer(cell, tape, x, W_ih, W_hh, b_ih, b_hh, h0, c0, w_peep, W_hr, lengths,
                            dy, dh_T, dc_T, dx, dh0, dc0, grads, need_dx, threads, precision="float32"):
    """The checked buffers of a backward call (see `backward`); L.results = (dx, dh0, dc0, grads)."""
    cdef _Layer L = _Layer(cell, x, W_ih, W_hh, b_ih, b_hh, w_peep, W_hr, lengths)
    L.set_threads(threads)
    L.set_precision(precision)
    d = L.d
    lstm = d.cell == CELLS["lstm"]
    L.buf.tape = _ptr(L.tape("tape", tape, frnn_tape_size(&L.d)))
    L.buf.dy = _ptr(L.hold(_check("dy", dy, L.dtype, (d.T, d.B, d.P), optional=True)))
    L.buf.dh_T = _ptr(L.state("dh_T", dh_T, d.P))
    L.buf.dc_T = _ptr(L.state("dc_T", dc_T, d.H)) if lstm else NULL
    dx = L.out("dx", dx, (d.T, d.B, d.In)) if need_dx else None
    dh0 = L.out("dh0", dh0, (d.B, d.P))
    dc0 = L.out("dc0", dc0, (d.B, d.H)) if lstm else None
    L.buf.dx, L.buf.dh0, L.buf.dc0 = _ptr(dx), _ptr(dh0), _ptr(dc0)
    grads = dict(grads or {})
    params = {"W_ih": W_ih, "W_hh": W_hh, "b_ih": b_ih, "b_hh": b_hh, "w_peep": w_peep, "W_hr": W_hr}
    for name in grads:
        if name not in params:
            raise ValueError(f"grads: unknown parameter {name!r}, expected among {sorted(params)}")
    for name, p in params.items():
        if p is None:
            if grads.get(name) is not None:
                raise ValueError(f"grads[{name!r}]: given, but the layer has no {name}")
            grads.pop(name, None)
            continue
        g = grads.get(name)
        grads[name] = L.hold(_check(f"grads[{name!r}]", np.zeros_like(p) if g is None else g,
                                    L.dtype, p.shape, writeable=True))
    L.buf.dW_ih, L.buf.dW_hh = _ptr(grads.get("W_ih")), _ptr(grads["W_hh"])
    L.buf.db_ih, L.buf.db_hh = _ptr(grads.get("b_ih")), _ptr(grads.get("b_hh"))
    L.buf.dw_peep, L.buf.dW_hr = _ptr(grads.get("w_peep")), _ptr(grads.get("W_hr"))
    L.results = (dx, dh0, dc0, grads)
    return L


include "_ops.pxi"
include "_amx.pxi"
include "_stack.pxi"
include "_generate.pxi"
include "_train_step.pxi"
include "_train_seq.pxi"
include "_decomp.pxi"
