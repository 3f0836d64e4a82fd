# Included by _kernels.pyx: the binding of csrc/generate.h (a language model's generation loop
# in one call per batch of sequences).

from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset

# frnn_gen and frnn_generate_*: declared in _kernels.pxd


cdef class Generator:
    """B sequences generated side by side from a language model: `layers` of one cell (per layer
    (W_ih, W_hh, b_ih, b_hh, w_peep, W_hr, packed), W_ih None for a one-hot layer 0), `table` (V, F0)
    the input row of each token, the head (W_head (V, P), b_head (V,) or None). The state starts at
    zeros; `feed` advances it over given tokens, `sample` generates. Outputs: `out` (max_len, B) and
    `n_out` (B,) tokens, `done` (B,). Sampling settings as fastrnn.sample.next_token_probs (top_k 0
    and top_p 0 mean off); `token_text` (every token's text), `word`, `eos` and `stop` as Vocab.decode
    and fastrnn.generate use them. head_int8: the head's int8 weights (a Q8Matrix, float32) or None.
    precision: the layers' products; head_precision: the head's ('float32', or 'bf16' for a float32
    model: nn.Linear's precision; a quantized head runs int8 either way).
    """
    cdef frnn_gen g
    cdef frnn_dims *dims
    cdef frnn_buffers *run
    cdef list keep
    cdef bint f64
    cdef public object out, n_out, done, token, h_state, c_state, logits
    cdef object h_shape, c_shape

    def __cinit__(self):
        self.dims = NULL
        self.run = NULL

    def __dealloc__(self):
        free(self.dims)
        free(self.run)

    def __init__(self, cell, layers, table, W_head, b_head, *, batch, max_len, temperature=1.0,
                 top_k=0, top_p=0.0, argmax=False, eos=-1, token_text=(), word=False, stop=None,
                 head_int8=None, precision="float32", head_precision="float32"):
        cdef int L = len(layers), k
        cdef _Layer lay
        if L < 1:
            raise ValueError("layers: expected at least one layer")
        if not isinstance(table, np.ndarray) or table.dtype not in _FLOATS or table.ndim != 2:
            raise TypeError("table: expected a 2-D float32 or float64 numpy.ndarray")
        dt = table.dtype
        V = table.shape[0]
        B, n = int(batch), int(max_len)
        if not 1 <= B <= 1 << 20 or not 0 <= n <= 1 << 30:
            raise ValueError(f"batch, max_len: expected 1..2^20 and 0..2^30, got {batch}, {max_len}")
        self.f64 = dt == np.float64
        self.keep = []
        self.dims = <frnn_dims *>calloc(L, sizeof(frnn_dims))
        self.run = <frnn_buffers *>calloc(L, sizeof(frnn_buffers))
        if self.dims == NULL or self.run == NULL:
            raise MemoryError()
        width, h_size, c_size = table.shape[1], 0, 0
        for k in range(L):
            W_ih, W_hh, b_ih, b_hh, w_peep, W_hr, packed = layers[k]
            lay = _Layer(cell, np.empty((1, B, width), dt), W_ih, W_hh, b_ih, b_hh, w_peep, W_hr, None)
            lay.set_precision(precision)     # the layers' products (the head's: head_precision)
            lay.set_packed(packed)
            work = np.empty(frnn_work_size(&lay.d), dt)
            lay.buf.tape = _ptr(work)
            self.dims[k], self.run[k] = lay.d, lay.buf
            self.keep += [lay, work]
            width = lay.d.P
            h_size += B * lay.d.P
            c_size += B * lay.d.H
        lstm = self.dims[0].cell == CELLS["lstm"]
        _check("table", table, dt, (V, self.dims[0].In))
        _check("W_head", W_head, dt, (V, width))
        _check("b_head", b_head, dt, (V,), optional=True)
        self.token = np.zeros(B, np.int32)
        self.out = np.zeros((n, B), np.int32)
        self.n_out = np.zeros(B, np.int32)
        self.done = np.zeros(B, np.int32) if n else np.ones(B, np.int32)
        h, c = np.zeros(h_size, dt), np.zeros(c_size, dt) if lstm else None
        x, logits = np.empty((B, self.dims[0].In), dt), np.empty((B, V), dt)
        z, scratch, iscratch = np.empty(V), np.empty(2 * V), np.empty(2 * V, np.int32)
        texts = [str(t).encode("utf-8", "surrogatepass") for t in token_text]
        if texts and len(texts) != V:
            raise ValueError(f"token_text: expected {V} texts, got {len(texts)}")
        offsets = np.zeros(V + 1, np.int32)
        offsets[1:] = np.cumsum([len(t) for t in texts] or [0] * V)
        text = np.frombuffer(b"".join(texts) + b"\0", np.uint8)
        stop_bytes = stop.encode("utf-8", "surrogatepass") if stop else b""
        if stop_bytes and not texts:
            raise ValueError("stop: needs token_text")
        window = len(stop) if stop else 0
        longest = max([len(t) for t in texts] or [0])
        stop_arr = np.frombuffer(stop_bytes + b"\0", np.uint8)
        stop_buf = np.empty(window * (longest + 1) + 1, np.uint8)
        self.h_state, self.c_state, self.logits = h, c, logits     # (model.step's fast path)
        # step_state's state shapes: every layer of a model's stack has the same P and H
        uniform = h_size == L * B * width and (not lstm or c_size == L * B * self.dims[L - 1].H)
        self.h_shape = (L, B, width) if uniform else None
        self.c_shape = (L, B, self.dims[L - 1].H) if uniform and lstm else None
        self.keep += [table, W_head, b_head, h, c, x, logits, z, scratch, iscratch, offsets, text,
                      stop_arr, stop_buf]
        g = &self.g
        g.L, g.B, g.V = L, B, V
        g.dims, g.run = self.dims, self.run
        g.table, g.W_head, g.b_head = _ptr(table), _ptr(W_head), _ptr(b_head)
        g.head_q8 = NULL
        g.head_bf16 = _precision_code(head_precision, self.f64)
        g.head_bf16_pack = NULL
        if g.head_bf16 and head_int8 is None:   # W_head packed once (the weights stay as they are)
            hpk = np.empty(frnn_head_bf16_floats(V, width), np.float32)
            frnn_head_bf16_pack(<float *>_ptr(hpk), V, width, <const float *>_ptr(W_head), width)
            self.keep.append(hpk)
            g.head_bf16_pack = <const float *>_ptr(hpk)
        if head_int8 is not None:       # a quantized head (fastrnn.quant): its logits in int8
            if not isinstance(head_int8, Q8Matrix) or self.f64 or (head_int8.N, head_int8.K) != (V, width):
                raise ValueError(f"head_int8: expected a Q8Matrix ({V}, {width}) for a float32 model")
            self.keep.append(head_int8)
            g.head_q8 = (<Q8Matrix>head_int8).ptr()
        g.h, g.c, g.x, g.logits = _ptr(h), _ptr(c), _ptr(x), _ptr(logits)
        g.z, g.scratch, g.iscratch = <double *>_ptr(z), <double *>_ptr(scratch), <int *>_ptr(iscratch)
        g.temperature, g.top_p, g.top_k = float(temperature), float(top_p), int(top_k)
        g.argmax, g.eos, g.word = bool(argmax), int(eos), bool(word)
        g.text, g.offsets = <const char *>_ptr(text), <const int *>_ptr(offsets)
        g.stop = <const char *>_ptr(stop_arr) if stop_bytes else NULL
        g.stop_len, g.stop_window, g.stop_buf = len(stop_bytes), window, <char *>_ptr(stop_buf)
        g.token, g.out = <int *>_ptr(self.token), <int *>_ptr(self.out)
        g.n_out, g.done, g.max_len = <int *>_ptr(self.n_out), <int *>_ptr(self.done), n

    def _tokens(self, name, ids, rows):
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        if ids.shape != (rows, self.g.B):
            raise ValueError(f"{name}: expected shape ({rows}, {self.g.B}), got {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.g.V):
            raise ValueError(f"{name}: expected ids in [0, {self.g.V}), got {ids.min()}..{ids.max()}")
        return ids

    def feed(self, ids):
        """Advance the state over ids (steps, B): every sequence's tokens, one row per step."""
        ids = self._tokens("ids", ids, len(ids))
        cdef const int *p = <const int *>_ptr(ids)
        cdef int steps = ids.shape[0]
        with nogil:
            if self.f64:
                frnn_generate_f64(&BLAS, &self.g, p, steps, NULL)
            else:
                frnn_generate_f32(&BLAS, &self.g, p, steps, NULL)

    def start(self, ids):
        """Set each sequence's next input token, ids (B,)."""
        self.token[:] = self._tokens("ids", np.asarray(ids).reshape(1, -1), 1)[0]

    def sample(self, int steps, u=None):
        """Run up to `steps` rounds (u (steps, B) uniform draws in [0, 1), None with argmax); returns
        the rounds run. ValueError when a sequence's logits are NaN or all -inf."""
        if not 0 <= steps <= 1 << 30:
            raise ValueError(f"steps: expected 0..2^30, got {steps}")
        if not self.g.argmax:
            u = _check("u", u, np.float64, (steps, self.g.B))
        cdef const double *pu = <const double *>_ptr(u) if u is not None else NULL
        cdef int rc
        with nogil:
            if self.f64:
                rc = frnn_generate_f64(&BLAS, &self.g, NULL, steps, pu)
            else:
                rc = frnn_generate_f32(&BLAS, &self.g, NULL, steps, pu)
        if rc == FRNN_GEN_NO_MEMORY:
            raise MemoryError("sample: out of memory (the bf16 head's pack buffer)")
        if rc < 0:
            raise ValueError(f"logits: NaN or all -inf for sequence {-1 - rc} (does the model have "
                             f"non-finite parameters?)")
        return rc

    def step(self, ids):
        """One step of every sequence from ids (B,) (any integer dtype, values in [0, V)): the
        layers advance `h_state`/`c_state` in place and the head fills `logits` (B, V), as
        `model.step` computes them (NaN logits are left to the caller). Needs a generator made
        with argmax=True and max_len=1 (its token choice is then a by-product)."""
        cdef int B = self.g.B, V = self.g.V, b, rc
        if not self.g.argmax or self.g.max_len != 1:
            raise ValueError("step: needs a generator made with argmax=True, max_len=1")
        ids = np.asarray(ids)
        if ids.shape != (B,) or ids.dtype.kind not in "iu":
            raise ValueError(f"ids: expected integer ids of shape ({B},), got {ids.dtype} {ids.shape}")
        cdef const long long[::1] v = np.ascontiguousarray(ids, np.int64)   # (uint64 >= 2^63: < 0)
        cdef int *tok = <int *>_ptr(self.token)
        cdef int *n_out = <int *>_ptr(self.n_out)
        cdef int *done = <int *>_ptr(self.done)
        for b in range(B):
            if v[b] < 0 or v[b] >= V:
                raise ValueError(f"ids: must be in [0, {V}), got {ids[b]}")
        for b in range(B):
            tok[b], n_out[b], done[b] = <int>v[b], 0, 0
        with nogil:
            if self.f64:
                rc = frnn_generate_f64(&BLAS, &self.g, NULL, 1, NULL)
            else:
                rc = frnn_generate_f32(&BLAS, &self.g, NULL, 1, NULL)
        if rc == FRNN_GEN_NO_MEMORY:
            raise MemoryError("step: out of memory (the bf16 head's pack buffer)")

    def step_state(self, ids, h=None, c=None):
        """`step` with the state passed in and out, in one call (model.step's fast path): ids (B,)
        an integer ndarray, range-checked here (ValueError as fastrnn.checks.ids words it); h
        (L, B, P) and, for an LSTM, c (L, B, H): C-contiguous arrays of the generator's dtype, or
        None for zeros (the caller converts other states). The given arrays are not modified.
        Returns (logits (B, V), h, c) as new arrays (c None without a cell state). Needs equal P
        and H in every layer (a model's stack), argmax=True and max_len=1 as `step`."""
        cdef int B = self.g.B, V = self.g.V, b, rc
        cdef long long t, lo, hi
        if not self.g.argmax or self.g.max_len != 1 or self.h_shape is None:
            raise ValueError("step_state: needs a generator made with argmax=True, max_len=1 whose "
                             "layers have equal sizes")
        if not isinstance(ids, np.ndarray) or ids.shape != (B,) or ids.dtype.kind not in "iu":
            raise ValueError(f"ids: expected an integer numpy.ndarray of shape ({B},)")
        given = ids
        if ids.dtype != np.int64 or not ids.flags.c_contiguous:
            ids = np.ascontiguousarray(ids, np.int64)       # (uint64 >= 2^63: < 0, refused below)
        cdef const long long *v = <const long long *>_ptr(ids)
        lo, hi = v[0], v[0]
        for b in range(1, B):
            t = v[b]
            if t < lo: lo = t
            if t > hi: hi = t
        if lo < 0 or hi >= V:
            raise ValueError(f"ids: ids must be in [0, {V}), got {given.min()}..{given.max()}")
        dt = self.h_state.dtype
        hn = np.empty(self.h_shape, dt)
        cn = None if self.c_shape is None else np.empty(self.c_shape, dt)
        for name, s, mine in (("state h", h, hn), ("state c", c, cn)):
            if s is None or mine is None:
                continue
            if (not isinstance(s, np.ndarray) or s.dtype != dt or s.shape != mine.shape
                    or not s.flags.c_contiguous):
                raise ValueError(f"{name}: expected a C-contiguous {dt.name} array of shape {mine.shape}")
        cdef size_t hbytes = hn.nbytes, cbytes = 0 if cn is None else cn.nbytes
        if h is None:
            memset(_ptr(self.h_state), 0, hbytes)
        else:
            memcpy(_ptr(self.h_state), _ptr(h), hbytes)
        if cn is not None:
            if c is None:
                memset(_ptr(self.c_state), 0, cbytes)
            else:
                memcpy(_ptr(self.c_state), _ptr(c), cbytes)
        cdef int *tok = <int *>_ptr(self.token)
        cdef int *n_out = <int *>_ptr(self.n_out)
        cdef int *done = <int *>_ptr(self.done)
        for b in range(B):
            tok[b], n_out[b], done[b] = <int>v[b], 0, 0
        with nogil:
            if self.f64:
                rc = frnn_generate_f64(&BLAS, &self.g, NULL, 1, NULL)
            else:
                rc = frnn_generate_f32(&BLAS, &self.g, NULL, 1, NULL)
        if rc == FRNN_GEN_NO_MEMORY:
            raise MemoryError("step: out of memory (the bf16 head's pack buffer)")
        logits = np.empty((B, V), dt)
        memcpy(_ptr(logits), _ptr(self.logits), logits.nbytes)
        memcpy(_ptr(hn), _ptr(self.h_state), hbytes)
        if cn is not None:
            memcpy(_ptr(cn), _ptr(self.c_state), cbytes)
        return logits, hn, cn
