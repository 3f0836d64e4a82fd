# A language model's whole training step in one C call (csrc/train.h, head.c, optim.c), included
# by _kernels.pyx; fastrnn.train.fused builds the arguments from a model.
import math

# (the C declarations of csrc/train.h are in _kernels.pxd)

#: optimiser kinds of optim_step / train_step (fastrnn.optim's classes)
OPTIMIZER_KINDS = {"sgd": FRNN_OPT_SGD, "adam": FRNN_OPT_ADAM, "adamw": FRNN_OPT_ADAM,
                   "rmsprop": FRNN_OPT_RMSPROP, "adagrad": FRNN_OPT_ADAGRAD}


cdef object _fill_opt(frnn_opt *o, dict spec, params):
    """spec: kind, steps, lr, hyper-parameters, state (1-2 arrays like params), clip, clip_value,
    max_loss (see csrc/train.h). Returns the arrays to keep alive."""
    kind = spec.get("kind")
    if kind not in OPTIMIZER_KINDS:
        raise ValueError(f"optimizer kind: expected one of {sorted(OPTIMIZER_KINDS)}, got {kind!r}")
    o.kind, o.decoupled, o.nesterov = OPTIMIZER_KINDS[kind], kind == "adamw", bool(spec.get("nesterov", False))
    o.steps = int(spec["steps"])
    if o.steps < 1:
        raise ValueError(f"steps: expected >= 1, got {o.steps}")
    for name in ("lr", "momentum", "dampening", "weight_decay", "alpha", "eps", "clip", "clip_value"):
        v = float(spec.get(name) or 0.0)
        if not math.isfinite(v):
            raise ValueError(f"{name}: expected a finite number, got {v!r}")
    o.lr, o.momentum, o.dampening = float(spec["lr"]), float(spec.get("momentum", 0)), float(spec.get("dampening", 0))
    o.weight_decay, o.alpha, o.eps = float(spec.get("weight_decay", 0)), float(spec.get("alpha", 0)), float(spec.get("eps", 0))
    b1, b2 = spec.get("betas", (0.0, 0.0))
    o.beta1, o.beta2 = float(b1), float(b2)
    o.clip, o.clip_value = float(spec.get("clip") or 0), float(spec.get("clip_value") or 0)
    o.max_loss = float(spec.get("max_loss", math.inf))
    state = list(spec.get("state", ()))
    need = 2 if kind in ("adam", "adamw") else 1
    if len(state) != need:
        raise ValueError(f"state: expected {need} arrays for {kind}, got {len(state)}")
    for i, a in enumerate(state):
        _check(f"state[{i}]", a, params.dtype, params.shape, writeable=True)
        if np.shares_memory(a, params):
            raise ValueError(f"state[{i}]: must not share memory with params")
    o.state0 = _ptr(state[0])
    o.state1 = _ptr(state[1]) if need == 2 else NULL
    return state


def _flat_pair(params, grads):
    if not isinstance(params, np.ndarray) or params.dtype not in _FLOATS or params.ndim != 1:
        raise TypeError("params: expected a 1-D float32/float64 numpy.ndarray")
    _check("params", params, params.dtype, params.shape, writeable=True)
    _check("grads", grads, params.dtype, params.shape, writeable=True)
    if np.shares_memory(params, grads):
        raise ValueError("grads: must not share memory with params")


def optim_step(params, grads, spec):
    """Clip `grads` and update `params` in place as fastrnn.optim would (spec: see _fill_opt);
    returns (status, grad_sumsq, param_sumsq), status 0 updated or 2 non-finite gradients."""
    _flat_pair(params, grads)
    cdef frnn_opt o
    cdef frnn_step_result r
    keep = _fill_opt(&o, spec, params)
    cdef size_t n = params.shape[0]
    cdef void *pp = _ptr(params)
    cdef void *pg = _ptr(grads)
    cdef bint f64 = params.dtype == np.float64
    with nogil:
        if f64:
            frnn_optim_step_f64(&o, n, <double *>pp, <double *>pg, &r)
        else:
            frnn_optim_step_f32(&o, n, <float *>pp, <float *>pg, &r)
    if r.status < 0:
        raise MemoryError("optim_step: out of memory")
    return r.status, r.grad_sumsq, r.param_sumsq


def train_step(_Stack fwd, _Stack bwd, ids, targets, *, table=None, table_grad=None, W_ih0=None,
               dW_ih0=None, W_head, b_head=None, dW_head, db_head=None, logits, nll, params, grads,
               opt=None, head_precision="float32"):
    """One training step of a language model (csrc/train.h): fwd/bwd are the checked calls of
    stack_forward/stack_backward(..., _run=False) over the step's buffers; ids, targets (T, B)
    int32; the embedding table (V, E) or, for a one-hot input, W_ih0 (G*H, V), and their
    gradients; the head; scratch logits (T*B, V), nll (T*B,); the flat params/grads (zeroed
    first); opt: an optimiser spec (see optim_step) or None; head_precision: the head's products,
    'float32' or 'bf16' (float32 only: nn.Linear's precision). Returns (status, loss, grad_sumsq,
    param_sumsq); the sums are None without an optimiser (opt None)."""
    _flat_pair(params, grads)
    cdef int head_bf16 = _precision_code(head_precision, params.dtype == np.float64)
    dt = params.dtype
    if fwd.f64 != (dt == np.float64) or bwd.f64 != fwd.f64:
        raise TypeError("fwd, bwd: expected stacks of the params' dtype")
    cdef int L = fwd.st.L
    if fwd.st.D != 1 or bwd.st.L != L or bwd.st.D != 1 or bwd.st.grads == NULL:
        raise ValueError("fwd, bwd: expected a unidirectional stack's forward and backward")
    T, B, In, P = fwd.dims[0].T, fwd.dims[0].B, fwd.dims[0].In, fwd.dims[L - 1].P
    _check("ids", ids, np.int32, (T, B))
    _check("targets", targets, np.int32, (T, B))
    _check("W_head", W_head, dt, (W_head.shape[0] if isinstance(W_head, np.ndarray) and W_head.ndim == 2 else -1, P))
    V = W_head.shape[0]
    for name, a in (("ids", ids), ("targets", targets)):
        if a.size and (a.min() < 0 or a.max() >= V):
            raise ValueError(f"{name}: expected ids in [0, {V}), got {a.min()}..{a.max()}")
    _check("b_head", b_head, dt, (V,), optional=True)
    _check("dW_head", dW_head, dt, (V, P), writeable=True)
    _check("db_head", db_head, dt, (V,), writeable=True, optional=b_head is None)
    _check("logits", logits, dt, (T * B, V), writeable=True)
    _check("nll", nll, dt, (T * B,), writeable=True)
    if (table is None) == (W_ih0 is None):
        raise ValueError("table, W_ih0: expected exactly one (an embedding table or a one-hot layer 0)")
    if table is not None:
        _check("table", table, dt, (V, In))
        _check("table_grad", table_grad, dt, (V, In), writeable=True)
    else:
        _check("W_ih0", W_ih0, dt, (In, V))
        _check("dW_ih0", dW_ih0, dt, (In, V), writeable=True)
        if fwd.st.run[0].W_ih != NULL:
            raise ValueError("W_ih0: a one-hot input needs a stack whose layer 0 reads its projection")
    if bwd.st.grads[0] == NULL or bwd.st.grads[L] == NULL:
        raise ValueError("bwd: expected grads[0] and grads[L] buffers")
    cdef frnn_train tr
    tr.T, tr.B, tr.V = T, B, V
    tr.ids, tr.targets = <const int *>_ptr(ids), <const int *>_ptr(targets)
    tr.table, tr.table_grad = _ptr(table), _ptr(table_grad)
    tr.W_ih0, tr.dW_ih0 = _ptr(W_ih0), _ptr(dW_ih0)
    tr.fwd, tr.bwd = &fwd.st, &bwd.st
    tr.W_head, tr.b_head, tr.dW_head, tr.db_head = _ptr(W_head), _ptr(b_head), _ptr(dW_head), _ptr(db_head)
    tr.logits, tr.nll = _ptr(logits), _ptr(nll)
    tr.n, tr.params, tr.grads = params.shape[0], _ptr(params), _ptr(grads)
    tr.head_bf16 = head_bf16
    cdef frnn_opt o
    cdef frnn_opt *po = NULL
    cdef frnn_step_result r
    memset(&r, 0, sizeof(r))        # without an optimiser the step leaves the sums unset
    keep = None
    if opt is not None:
        keep = _fill_opt(&o, opt, params)
        po = &o
    cdef bint f64 = dt == np.float64
    with nogil:
        if f64:
            frnn_train_step_f64(&BLAS, &tr, po, &r)
        else:
            frnn_train_step_f32(&BLAS, &tr, po, &r)
    if r.status < 0:
        raise MemoryError("train_step: out of memory")
    if opt is None:                 # loss and gradients only: no sums were taken
        return r.status, r.loss, None, None
    return r.status, r.loss, r.grad_sumsq, r.param_sumsq
