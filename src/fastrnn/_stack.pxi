# Whole stacks in one call (included by _kernels.pyx): L layers x D directions, scheduled in C
# (csrc/stack.h: directions side by side, a wavefront over the layers of a unidirectional stack).
from libc.stdlib cimport malloc, free


def _entries(name, seq, n):
    """`seq` as a list of n entries (None: n Nones)."""
    if seq is None:
        return [None] * n
    seq = list(seq)
    if len(seq) != n:
        raise ValueError(f"{name}: expected {n} entries (layers x directions), got {len(seq)}")
    return seq


def _stack_sizes(params, acts, directions):
    """(L, D) of a stack call, checked."""
    if directions not in (1, 2):
        raise ValueError(f"directions: expected 1 or 2, got {directions!r}")
    params = list(params)
    if not params or len(params) % directions:
        raise ValueError(f"params: expected layers x {directions} entries, got {len(params)}")
    L = len(params) // directions
    if len(acts) != L + 1:
        raise ValueError(f"acts: expected {L + 1} arrays (the input and each layer's output), got {len(acts)}")
    return L, directions


cdef class _Stack:
    """The layers of one stack call and the C arrays pointing at their buffers (internal)."""
    cdef frnn_stack st
    cdef frnn_dims *dims        # st.dims (const there)
    cdef list layers            # the _Layer of each run (they hold the arrays)
    cdef list keep
    cdef bint f64

    def __cinit__(self):
        self.dims = NULL
        self.st.dims = NULL
        self.st.run = NULL
        self.st.acts = NULL
        self.st.grads = NULL
        self.st.masks = NULL

    def __dealloc__(self):
        free(self.dims)
        free(self.st.run)
        free(self.st.acts)
        free(self.st.grads)
        free(self.st.masks)

    cdef void setup(self, list layers, int L, int D, acts, grads, masks) except *:
        cdef _Layer first = layers[0]
        cdef _Layer lay
        cdef int i, n = L * D
        self.layers, self.keep, self.f64 = layers, [], first.f64
        dt, T, B = first.dtype, first.d.T, first.d.B
        self.st.L, self.st.D = L, D
        self.dims = <frnn_dims *>malloc(sizeof(frnn_dims) * n)
        self.st.dims = self.dims
        self.st.run = <frnn_buffers *>malloc(sizeof(frnn_buffers) * n)
        self.st.acts = <void **>malloc(sizeof(void *) * (L + 1))
        self.st.grads = <void **>malloc(sizeof(void *) * (L + 1)) if grads is not None else NULL
        self.st.masks = <const void **>malloc(sizeof(void *) * L)
        if not self.dims or not self.st.run or not self.st.acts or not self.st.masks \
                or (grads is not None and not self.st.grads):
            raise MemoryError("stack: cannot allocate the call's bookkeeping")
        for i in range(n):
            lay = layers[i]
            if lay.dtype != dt or lay.d.T != T or lay.d.B != B:
                raise ValueError("params/acts: every layer of a stack must have the same dtype, T and B")
            self.dims[i] = lay.d
            self.st.run[i] = lay.buf
        P = first.d.P
        for k in range(L + 1):
            width = acts[0].shape[2] if k == 0 else D * P
            a = self.hold(_check(f"acts[{k}]", acts[k], dt, (T, B, width), writeable=k > 0))
            self.st.acts[k] = _ptr(a)
            if grads is not None:
                g = grads[k]
                if g is None and 0 < k < L:
                    raise ValueError(f"grads[{k}]: required between layers, expected ({T}, {B}, {width})")
                self.st.grads[k] = _ptr(self.hold(_check(f"grads[{k}]", g, dt, (T, B, width),
                                                         writeable=k < L, optional=True)))
        for k in range(L):
            m = masks[k] if masks is not None and k > 0 else None
            self.st.masks[k] = _ptr(self.hold(_check(f"masks[{k}]", m, dt, (T, B, D * P), optional=True)))
        self.st.threads = first.buf.threads     # checked by each layer's set_threads

    cdef object hold(self, a):
        self.keep.append(a)
        return a

    cdef void run(self, bint backward, bint train) except *:
        cdef int rc
        with nogil:
            if backward:
                rc = frnn_stack_backward_f64(&BLAS, &self.st) if self.f64 else frnn_stack_backward_f32(&BLAS, &self.st)
            else:
                rc = frnn_stack_forward_f64(&BLAS, &self.st, train) if self.f64 else \
                    frnn_stack_forward_f32(&BLAS, &self.st, train)
        if rc != 0:
            raise MemoryError("stack: out of memory")


def _direction_input(k, d, D, acts, xs):
    """The input array of layer k, direction d: acts[k], or direction 1's own (reversed) copy."""
    if D == 1 or d == 0:
        return acts[k]
    if xs is None or xs[2 * k + 1] is None:
        raise ValueError(f"xs[{2 * k + 1}]: required for the reverse direction, expected an array "
                         f"shaped like acts[{k}]")
    return xs[2 * k + 1]


def stack_forward(cell, params, acts, *, directions=1, train=False, tapes, h0=None, c0=None, h_T,
                  c_T=None, lengths=None, masks=None, xs=None, ys=None, packed=None, threads=0,
                  precision="float32", _run=True):
    """Run a stack of L layers x D directions in one C call (csrc/fastrnn.h, frnn_stack).

    params: L*D tuples (W_ih, W_hh, b_ih, b_hh, w_peep, W_hr) for layer k direction d at k*D + d
    (W_ih None: layer 0 reads a projected input, unidirectional only). acts: L + 1 arrays, acts[0]
    the input (T, B, I), acts[k + 1] (T, B, D*P) layer k's output, written (masks[k + 1], when
    given, is multiplied into it in place before layer k + 1 reads it). tapes: L*D training tapes
    (train=True) or workspaces. h0, c0: L*D initial states (None entries: zeros); h_T, c_T: L*D
    final-state outputs. masks: L entries of (T, B, D*P) or None (masks[0] unused). Bidirectional
    (directions=2): xs[2k+1] (T, B, F_k) receives layer k's input reversed within each length
    (keep it for backward), ys: L*D (T, B, P) scratch outputs. packed: L*D `pack_forward` results.
    precision: as in `forward`, for every layer.
    """
    L, D = _stack_sizes(params, acts, directions)
    n = L * D
    h0, c0, c_T, packed = (_entries(nm, v, n) for nm, v in
                           (("h0", h0), ("c0", c0), ("c_T", c_T), ("packed", packed)))
    tapes, h_T = _entries("tapes", tapes, n), _entries("h_T", h_T, n)
    ys = _entries("ys", ys, n) if D == 2 else None
    layers = []
    for i in range(n):
        k, d = divmod(i, D)
        W_ih, W_hh, b_ih, b_hh, w_peep, W_hr = params[i]
        x = _direction_input(k, d, D, acts, xs)
        y = acts[k + 1] if D == 1 else ys[i]
        if D == 1 and k < L - 1 and y is None:
            raise ValueError(f"acts[{k + 1}]: required, the output of layer {k}")
        layers.append(_forward_layer(cell, x, W_ih, W_hh, b_ih, b_hh, h0[i], c0[i], w_peep, W_hr,
                                     lengths, tapes[i] if train else None,
                                     None if train else tapes[i], y, h_T[i], c_T[i], packed[i], threads,
                                     precision))
    cdef _Stack s = _Stack()
    s.setup(layers, L, D, acts, None, masks)
    if not _run:            # the checked call, for a caller that runs it (_train_step.pxi)
        return s
    s.run(False, train)


def stack_backward(cell, params, acts, grads, *, directions=1, tapes, h0=None, c0=None, dh_T=None,
                   dc_T=None, dh0, dc0=None, param_grads, lengths=None, masks=None, xs=None,
                   dys=None, dxs=None, threads=0, precision="float32", _run=True):
    """BPTT through a stack's training `stack_forward` (same params, acts, tapes, masks, xs).

    grads: L + 1 arrays: grads[L] the gradient at the output (T, B, D*P) or None; grads[k] for
    0 < k < L scratch (T, B, D*P), written (and masked in place); grads[0] the gradient at the
    input (T, B, I), written, or None. dh_T, dc_T: L*D (None entries: zeros); dh0, dc0: L*D
    outputs. param_grads: L*D dicts as in `backward` (accumulated into). Bidirectional: dys
    (L*D, (T, B, P)) and dxs (L*D, (T, B, F_k)) scratch. precision: the forward's.
    """
    L, D = _stack_sizes(params, acts, directions)
    n = L * D
    grads = list(grads)
    if len(grads) != L + 1:
        raise ValueError(f"grads: expected {L + 1} entries, got {len(grads)}")
    h0, c0, dh_T, dc_T, dc0 = (_entries(nm, v, n) for nm, v in
                               (("h0", h0), ("c0", c0), ("dh_T", dh_T), ("dc_T", dc_T), ("dc0", dc0)))
    tapes, dh0, param_grads = (_entries(nm, v, n) for nm, v in
                               (("tapes", tapes), ("dh0", dh0), ("param_grads", param_grads)))
    if D == 2:
        dys, dxs = _entries("dys", dys, n), _entries("dxs", dxs, n)
    layers = []
    for i in range(n):
        k, d = divmod(i, D)
        W_ih, W_hh, b_ih, b_hh, w_peep, W_hr = params[i]
        x = _direction_input(k, d, D, acts, xs)
        if D == 1:
            dy, dx = grads[k + 1], grads[k]
        else:
            dy = dys[i] if grads[k + 1] is not None else None
            dx = dxs[i] if grads[k] is not None else None
            if (grads[k + 1] is not None and dy is None) or (grads[k] is not None and dx is None):
                raise ValueError(f"dys[{i}], dxs[{i}]: scratch required for layer {k}, direction {d}")
        layers.append(_backward_layer(cell, tapes[i], x, W_ih, W_hh, b_ih, b_hh, h0[i], c0[i], w_peep,
                                      W_hr, lengths, dy, dh_T[i], dc_T[i], dx, dh0[i], dc0[i],
                                      param_grads[i], dx is not None, threads, precision))
    cdef _Stack s = _Stack()
    s.setup(layers, L, D, acts, grads, masks)
    if not _run:
        return s
    s.run(True, True)
