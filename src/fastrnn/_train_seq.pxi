# A tagger's or classifier's whole training step in one C call (csrc/train_seq.h, head_seq.c),
# included by _kernels.pyx after _train_step.pxi (whose _fill_opt / _flat_pair it uses);
# fastrnn.train.fused_seq builds the arguments from a model.

#: what the head reads (train_seq_step's pool)
POOLINGS = {"steps": FRNN_POOL_STEPS, "last": FRNN_POOL_LAST, "mean": FRNN_POOL_MEAN, "max": FRNN_POOL_MAX}


def train_seq_step(_Stack fwd, _Stack bwd, pool, targets, *, ids=None, table=None, table_grad=None,
                   drop=None, feat=None, dfeat=None, arg=None, dh_last=None, W_head, b_head=None,
                   dW_head, db_head=None, logits, nll, params, grads, opt=None, head_precision="float32"):
    """One training step of a tagger (pool "steps") or a classifier (pool "last", "mean", "max")
    (csrc/train_seq.h): fwd/bwd are the checked calls of stack_forward/stack_backward(...,
    _run=False) over the step's buffers (lengths given to both); targets (N,) int32 (N = T*B
    time-major, or B); ids (T, B) int32 with the embedding table (V, E) and its gradient, or None:
    fwd's acts[0] holds the features; drop (N, D*P) the dropout mask or None; feat (N, D*P)
    scratch (needed unless per step without dropout); pooled: dfeat (B, D*P), arg (B, D*P) int32
    for "max", dh_last: the D arrays (B, P) given to bwd as the last layer's dh_T for "last"; the
    head; scratch logits (N, K), nll (N,); the flat params/grads (zeroed first); opt: an optimiser
    spec (see optim_step) or None; head_precision: the head's products, 'float32' or 'bf16'
    (float32 only: nn.Linear's precision). Returns (status, loss, grad_sumsq, param_sumsq);
    the sums are None without an optimiser (opt None)."""
    _flat_pair(params, grads)
    cdef int head_bf16 = _precision_code(head_precision, params.dtype == np.float64)
    dt = params.dtype
    if fwd.f64 != (dt == np.float64) or bwd.f64 != fwd.f64:
        raise TypeError("fwd, bwd: expected stacks of the params' dtype")
    if pool not in POOLINGS:
        raise ValueError(f"pool: expected one of {sorted(POOLINGS)}, got {pool!r}")
    cdef int L = fwd.st.L, D = fwd.st.D, i
    if bwd.st.L != L or bwd.st.D != D or bwd.st.grads == NULL or bwd.st.grads[L] == NULL:
        raise ValueError("fwd, bwd: expected a stack's forward and backward with grads[L]")
    T, B, In, P = fwd.dims[0].T, fwd.dims[0].B, fwd.dims[0].In, fwd.dims[(L - 1) * D].P
    DP = D * P
    cdef const int *lens = fwd.st.run[0].lengths
    cdef const int *other
    cdef int j
    for i in range(2 * L * D):          # every layer's own copy holds the same lengths
        other = fwd.st.run[i % (L * D)].lengths if i < L * D else bwd.st.run[i % (L * D)].lengths
        if (other == NULL) != (lens == NULL):
            raise ValueError("fwd, bwd: expected the same lengths for every layer")
        for j in range(B if lens != NULL else 0):
            if other[j] != lens[j]:
                raise ValueError("fwd, bwd: expected the same lengths for every layer")
    if lens != NULL:
        for i in range(B):
            if lens[i] < 1 or lens[i] > T:
                raise ValueError(f"lengths: expected values in [1, {T}], got {lens[i]}")
    steps = pool == "steps"
    N = T * B if steps else B
    _check("W_head", W_head, dt, (W_head.shape[0] if isinstance(W_head, np.ndarray) and W_head.ndim == 2 else -1, DP))
    K = W_head.shape[0]
    _check("targets", targets, np.int32, (N,))
    if targets.min() < 0 or targets.max() >= K:
        raise ValueError(f"targets: expected ids in [0, {K}), got {targets.min()}..{targets.max()}")
    _check("b_head", b_head, dt, (K,), optional=True)
    _check("dW_head", dW_head, dt, (K, DP), writeable=True)
    _check("db_head", db_head, dt, (K,), writeable=True, optional=b_head is None)
    _check("logits", logits, dt, (N, K), writeable=True)
    _check("nll", nll, dt, (N,), writeable=True)
    _check("drop", drop, dt, (N, DP), optional=True)
    _check("feat", feat, dt, (N, DP), writeable=True, optional=steps and drop is None)
    if not steps:
        _check("dfeat", dfeat, dt, (B, DP), writeable=True)
    if pool == "max":
        _check("arg", arg, np.int32, (B, DP), writeable=True)
    dh = list(dh_last) if pool == "last" and dh_last is not None else []
    if pool == "last":
        if len(dh) != D:
            raise ValueError(f"dh_last: expected {D} arrays (B, P) for pool 'last'")
        for i in range(D):
            _check(f"dh_last[{i}]", dh[i], dt, (B, P), writeable=True)
            if bwd.st.run[(L - 1) * D + i].dh_T != _ptr(dh[i]):
                raise ValueError(f"dh_last[{i}]: expected the dh_T given to bwd for layer {L - 1}")
    if ids is not None:
        _check("ids", ids, np.int32, (T, B))
        _check("table", table, dt, (table.shape[0] if isinstance(table, np.ndarray) and table.ndim == 2 else -1, In))
        V = table.shape[0]
        if ids.min() < 0 or ids.max() >= V:
            raise ValueError(f"ids: expected ids in [0, {V}), got {ids.min()}..{ids.max()}")
        _check("table_grad", table_grad, dt, (V, In), writeable=True)
        if bwd.st.grads[0] == NULL:
            raise ValueError("bwd: expected grads[0] (the input gradient) for an embedding input")
    elif table is not None:
        raise ValueError("table: expected ids with it")
    if fwd.st.run[0].W_ih == NULL:
        raise ValueError("fwd: expected a stack whose layer 0 reads features (W_ih given)")
    cdef frnn_train_seq tr
    tr.T, tr.B, tr.K, tr.pool = T, B, K, POOLINGS[pool]
    tr.ids, tr.V = <const int *>_ptr(ids), table.shape[0] if table is not None else 0
    tr.table, tr.table_grad = _ptr(table), _ptr(table_grad)
    tr.targets = <const int *>_ptr(targets)
    tr.fwd, tr.bwd = &fwd.st, &bwd.st
    tr.drop, tr.feat, tr.dfeat = _ptr(drop), _ptr(feat), _ptr(dfeat)
    tr.arg = <int *>_ptr(arg) if pool == "max" else NULL
    tr.dh_last[0] = _ptr(dh[0]) if dh else NULL
    tr.dh_last[1] = _ptr(dh[1]) if len(dh) > 1 else NULL
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
            frnn_train_seq_step_f64(&BLAS, &tr, po, &r)
        else:
            frnn_train_seq_step_f32(&BLAS, &tr, po, &r)
    if r.status < 0:
        raise MemoryError("train_seq_step: out of memory")
    if opt is None:                 # loss and gradients only: no sums were taken
        return r.status, r.loss, None, None
    return r.status, r.loss, r.grad_sumsq, r.param_sumsq
