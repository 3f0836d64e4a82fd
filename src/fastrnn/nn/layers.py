"""RNN / GRU / LSTM layers with PyTorch's constructor, weight names, shapes and outputs.

A model trained with torch.nn.LSTM runs here after `load_state_dict(module.state_dict())`, and
code ported from PyTorch changes only its import. Beyond PyTorch every layer has an explicit
`backward` (BPTT through the C kernels, accumulating into `layer.grads`) and a streaming `step`.

Dimension letters: T time, B batch, I input features, H hidden units, P = H_out (proj_size or H),
L layers, D directions (2 when bidirectional), G gates.
"""
import numpy as np

from .. import _kernels
from .._packs import PackCache
from .buffers import LayerBuffers
from .layer_inputs import LayerInputs, check_fits, check_options
from .layer_operands import LayerOperands
from .module import Module
from .module import to_numpy as _to_numpy


class _Recurrent(LayerInputs, LayerOperands, Module):
    """The machinery shared by RNN, GRU and LSTM: parameters, stacking, directions, dropout.

    Constructor arguments as torch.nn.RNN/GRU/LSTM: input_size I, hidden_size H, num_layers L,
    bias, batch_first, dropout (inverted dropout on every layer's output but the last, training
    only), bidirectional (D = 2), proj_size (LSTM: h has P = proj_size < H features). Beyond
    torch: peephole (LSTM), dtype ("float32" or "float64"; None: the enclosing model's, see
    fastrnn.nn.module), seed (initialisation as torch's, U(-1/sqrt(H), 1/sqrt(H)), and the
    dropout masks are reproducible from it). Subclasses only
    pick the kernel cell and their torch options. A layer is a `fastrnn.nn.Module`: alone it
    owns its buffers, inside a model it works on the model's slices.

    Mode as torch: dropout is on in training mode and off after `eval()`; the tape for `backward`
    is kept unless under `fastrnn.no_grad()`, so eval() + forward + backward works as in torch.

    Threads: one layer may be used by several threads at once for inference (no-grad `forward`,
    `step`): each thread has its own workspaces, and kernel calls share fastrnn's thread team one
    call at a time. A forward keeps its tape in the calling thread; no inference call (in any
    thread) touches it. Gradients are shared: concurrent training of one layer is not meaningful.
    Inference uses W_hh (and W_hr) packed once; an edit through any public view (`params`,
    `named_parameters()`, `state_dict()`, torch.from_numpy of one) is detected before the next
    such call (`fastrnn._packs`): `invalidate()` is never required.

    precision="bf16" (float32 layers; settable later as `layer.precision`): bf16 mixed precision
    -- the parameters, gradients and states stay float32; every product of forward, backward and
    step reads its operands rounded to bf16 and accumulates in float32 (`fastrnn._kernels.bf16_info()`
    says which kernel runs). The default "float32" is unchanged.
    """
    lstm = False
    _rng_attrs = ("_dropout_rng",)

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, peephole=False, dtype=None,
                 seed=None, precision="float32"):
        check_options(input_size, hidden_size, num_layers, proj_size, dropout)
        self.cell, self.G = cell, _kernels.gates(cell)
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.proj_size, self.peephole = bool(bidirectional), int(proj_size), bool(peephole)
        self.D = 2 if bidirectional else 1
        self.P = self.proj_size or self.hidden_size            # size of h (the output)
        super().__init__(dtype)
        check_fits(self._parameter_count(), self.dtype)       # fail fast, before any allocation
        init_seq, dropout_seq = np.random.SeedSequence(seed).spawn(2)
        self._dropout_rng = np.random.default_rng(dropout_seq)
        # per-thread tapes and workspaces (bounded), views of the weights, packed forward weights
        # (a tape and a workspace per direction, step workspaces for two batch sizes per layer,
        # and the stack's scratch arrays: see `_scratch`)
        self._buffers = LayerBuffers(self.dtype, max_keys=self.num_layers * (2 * self.D + 9), owner=self)
        self._weight_cache, self._packs = {}, PackCache()
        self.add_parameters(self._specs())
        bound = 1 / np.sqrt(self.hidden_size)                  # as PyTorch: U(-1/sqrt(H), 1/sqrt(H))
        self._params[...] = np.random.default_rng(init_seq).uniform(-bound, bound, self._params.size)
        self.precision = precision

    @property
    def precision(self):
        """'float32' or 'bf16' (see the class docstring)."""
        return self.__dict__["_precision"]

    @precision.setter
    def precision(self, value):
        if not isinstance(value, str) or value not in _kernels.PRECISIONS:
            raise ValueError(f"precision: expected one of {_kernels.PRECISIONS}, got {value!r}")
        if value == "bf16" and self.dtype != np.float32:
            raise ValueError(f"precision: 'bf16' needs a float32 layer, this one is {self.dtype.name}")
        self.__dict__["_precision"] = value

    # ---- parameters -----------------------------------------------------------------------------
    def _specs(self):
        """(name, shape) of every parameter in PyTorch's order (peepholes after each direction's)."""
        H, P, GH = self.hidden_size, self.P, self.G * self.hidden_size
        specs = []
        for k in range(self.num_layers):
            for sfx in self._suffixes(k):
                in_k = self.input_size if k == 0 else self.P * self.D
                specs += [(f"weight_ih{sfx}", (GH, in_k)), (f"weight_hh{sfx}", (GH, P))]
                if self.bias:
                    specs += [(f"bias_ih{sfx}", (GH,)), (f"bias_hh{sfx}", (GH,))]
                if self.proj_size:
                    specs += [(f"weight_hr{sfx}", (P, H))]
                if self.peephole:   # consecutive, so [ci, cf, co] is one (3H,) view for the kernel
                    specs += [(f"weight_c{g}{sfx}", (H,)) for g in "ifo"]
        return specs

    def _parameter_count(self):
        """Parameters of the stack, counted without building its list of shapes."""
        H, P, GH, D = self.hidden_size, self.P, self.G * self.hidden_size, self.D
        extra = (2 * GH if self.bias else 0) + (P * H if self.proj_size else 0) + (3 * H if self.peephole else 0)
        first = D * (GH * (self.input_size + P) + extra)
        return first + (self.num_layers - 1) * D * (GH * (D * P + P) + extra)

    def _suffixes(self, k):
        """Parameter-name suffixes of layer k's directions, as torch: _l{k} and _l{k}_reverse."""
        return [f"_l{k}", f"_l{k}_reverse"][:self.D]

    # params, grads, named_parameters, named_grads, zero_grad, state_dict, load_state_dict,
    # rebind, rng_state, set_rng_state, param_version: inherited from fastrnn.nn.Module
    @property
    def _flat(self):
        """The parameter storage the kernel-facing methods read (this module itself)."""
        return self

    def _dtype_changed(self):     # adopted by a float64 model: workspaces of the new dtype
        self.__dict__["_buffers"] = LayerBuffers(self.dtype, max_keys=self._buffers.max_keys, owner=self)

    def _storage_changed(self):
        self.__dict__["_weight_cache"] = {}     # cached views point into the old storage
        self.__dict__["_packs"] = PackCache()

    # ---- forward ----------------------------------------------------------------------------------
    def forward(self, x, h0=None, lengths=None, train=None, input_projected=False, *, hx=None, input=None):
        """Run the stack over x; returns (output, h_n), or (output, (h_n, c_n)) for an LSTM.

        x: (T, B, I), (B, T, I) with batch_first, or unbatched (T, I); float arrays are converted
        to the layer's dtype. h0 (or torch's name hx): (L*D, B, P) (LSTM: a tuple (h0, c0), c0
        (L*D, B, H)), unbatched (L*D, P), or None for zeros. lengths (B,): packed-sequence
        semantics (outputs past a length are zero, h_n is the state at the last valid step, the
        reverse direction starts there). Returns output (T, B, D*P) (batch_first: (B, T, D*P)),
        h_n (L*D, B, P) and c_n (L*D, B, H).

        Dropout (between layers) is on in training mode, off after `eval()`. The tape for
        `backward` is kept unless the grad mode is off (`with fastrnn.no_grad():`); it holds x
        by reference: do not modify x in place before calling backward. A forward without a tape
        runs the inference kernels and leaves any pending tape alone. train=True/False (the older
        API) overrides both: dropout and a tape, or neither.
        input (unidirectional only for the last two): "features" (the default, as above);
        "projected" (the older input_projected=True): x is already x @ weight_ih_l0.T, (T, B, G*H),
        and `backward` returns the gradient w.r.t. that projection and leaves weight_ih_l0's
        gradient untouched; "ids": x is integer ids (T, B) ((B, T), unbatched (T,)) in
        [0, input_size), a one-hot input read as columns of weight_ih_l0 without a one-hot matrix,
        and `backward` adds into those columns' gradient and returns dx = None.
        """
        mode = self._input_mode(input, input_projected)
        input_projected, ids = mode != "features", None
        if mode == "ids":
            ids, unbatched = self._as_ids("x", x)
            x = self._project_ids(ids)                                  # (T, B, G*H)
        else:
            width = self.G * self.hidden_size if input_projected else self.input_size
            x, unbatched = self._as_input("x", x, width)
        T, B, _ = x.shape
        if hx is not None:
            if h0 is not None:
                raise TypeError("h0 and hx: give the initial state once (hx is torch's name for h0)")
            h0 = hx
        h0, c0 = self._split_state("h0", h0)
        h0 = self._as_state("h0", h0, B, self.P, unbatched)
        c0 = self._as_state("c0", c0, B, self.hidden_size, unbatched)
        lengths = self._lengths(lengths, T, B)
        P, H, L, D = self.P, self.hidden_size, self.num_layers, self.D
        h_n = np.empty((L * D, B, P), self.dtype)
        c_n = np.empty((L * D, B, H), self.dtype) if self.lstm else None
        dropout, tape = self._mode(train)
        # acts[k] is layer k's input, acts[k + 1] its output (dropout applied in place by the call);
        # the output is new, the layers between are kept scratch (the tape's own while it lives)
        acts = [x] + [self._scratch(("act" if tape else "grad", k), (T, B, D * P)) for k in range(1, L)] \
            + [np.empty((T, B, D * P), self.dtype)]
        masks = [None] * L                       # masks[k]: inverted dropout on layer k's input
        if dropout and self.dropout:
            keep = 1 - self.dropout
            for k in range(1, L):
                masks[k] = (self._dropout_rng.random((T, B, D * P)) < keep).astype(self.dtype) / keep
        runs = [(k, d) for k in range(L) for d in range(D)]
        # this thread's cached tapes / workspaces, one per layer and direction
        kind, size = ("tape", _kernels.tape_size) if tape else ("work", _kernels.work_size)
        tapes = [self._buffers.get((kind, k, d), size(self.cell, T, B, acts[k].shape[2], H, P, self.peephole))
                 for k, d in runs]
        xs = ys = None
        if not tape:
            self._packs.check(self._storage, self._recurrent_weights)
        if D == 2:      # direction 1's input (each sequence reversed within its length), and outputs
            xs = [acts[k] if d == 0 else self._scratch(("xs", k) if tape else ("dxs", k, 1), acts[k].shape)
                  for k, d in runs]
            ys = [self._scratch(("dir", i), (T, B, P)) for i in range(L * D)]
        states = [(None if h0 is None else h0[j], None if c0 is None else c0[j]) for j in range(L * D)]
        _kernels.stack_forward(
            self.cell, self._stack_params(input_projected), acts, directions=D, train=tape,
            tapes=tapes, h0=[s[0] for s in states], c0=[s[1] for s in states], h_T=list(h_n),
            c_T=None if c_n is None else list(c_n), lengths=lengths, masks=masks, xs=xs, ys=ys,
            packed=None if tape else [self._packed_weights(k, d) for k, d in runs],
            precision=self.precision)
        if tape:
            self._buffers.tape = dict(acts=acts, masks=masks, xs=xs, tapes=tapes, states=states,
                                      lengths=lengths, unbatched=unbatched, ids=ids,
                                      input_projected=input_projected, shape=x.shape,
                                      precision=self.precision)
        else:
            self._buffers.trim()
        inp = acts[-1]
        y = self._from_time_major(inp, unbatched)
        if unbatched:
            h_n, c_n = h_n[:, 0], None if c_n is None else c_n[:, 0]
        return y, ((h_n, c_n) if self.lstm else h_n)

    __call__ = forward

    def _scratch(self, key, shape):
        """A kept (T, B, F) array of this thread for `key`, contents undefined (as np.empty): every
        element is written by the stack call before it is read. Fresh pages cost the kernel a
        zeroing fault per page (3.6 % of a bi-LSTM fwd+bwd), so the stack's intermediate arrays are
        reused while the shapes allow. Keys and lifetimes: ("act", k) layer k's input and ("xs", k)
        its reversed copy live with the training tape (an inference forward meanwhile uses the
        backward's keys instead); ("grad", k), ("dir", i) and ("dxs", k, d) are one call's scratch."""
        n = int(np.prod(shape))
        return self._buffers.get(key, n)[:n].reshape(shape)

    def release_buffers(self):
        """Free the calling thread's cached tapes and workspaces (and a pending tape) and the
        packed inference weights now; they are re-created when needed."""
        self._buffers.clear()
        self._buffers.tape = None
        self.__dict__["_packs"] = PackCache()

    # ---- backward ---------------------------------------------------------------------------------
    def backward(self, dout, dh_n=None):
        """BPTT through the last training forward; returns (dx, dh0) (LSTM: (dx, (dh0, dc0))).

        dout: gradient w.r.t. the output (its shape); dh_n: gradient w.r.t. h_n (LSTM: a tuple
        (dh_n, dc_n), either may be None), None for zeros. dx has x's shape (with input="projected",
        the projection's; None with input="ids"); dh0 (L*D, B, P), dc0 (L*D, B, H). Parameter gradients accumulate (+=)
        into `grads`. The tape is consumed: a second backward needs a new training forward.
        """
        tape = self._buffers.tape
        if tape is None:
            raise RuntimeError("backward: no tape; call forward first in this thread, outside "
                               "fastrnn.no_grad() (each forward allows one backward)")
        T, B, _ = tape["shape"]
        unbatched, lengths = tape["unbatched"], tape["lengths"]
        P, H, L, D = self.P, self.hidden_size, self.num_layers, self.D
        dy, dy_unbatched = self._as_input("dout", dout, D * P)
        if dy.shape[:2] != (T, B) or dy_unbatched != unbatched:
            want = (T, D * P) if unbatched else (B, T, D * P) if self.batch_first else (T, B, D * P)
            raise ValueError(f"dout: expected the forward's output shape {want}, got {_to_numpy(dout).shape}")
        dh_T, dc_T = self._split_state("dh_n", dh_n)
        dh_T = self._as_state("dh_n", dh_T, B, P, unbatched)
        dc_T = self._as_state("dc_n", dc_T, B, H, unbatched)
        dh0 = np.empty((L * D, B, P), self.dtype)
        dc0 = np.empty((L * D, B, H), self.dtype) if self.lstm else None
        acts, runs = tape["acts"], [(k, d) for k in range(L) for d in range(D)]
        # grads[k]: the gradient at layer k's input (grads[0] = dx), grads[L] = dout
        grads = [np.empty_like(acts[0])] + [self._scratch(("grad", k), acts[k].shape) for k in range(1, L)] + [dy]
        param_grads = []
        for k, d in runs:
            g = self._weights(k, d)[2]
            if k == 0 and tape["input_projected"]:
                g = {n: v for n, v in g.items() if n != "W_ih"}
            param_grads.append(g)
        dys = dxs = None
        if D == 2:          # each direction's half of the output gradient, and its input gradient
            dys = [self._scratch(("dir", i), (T, B, P)) for i in range(L * D)]
            dxs = [self._scratch(("dxs", k, d), acts[k].shape) for k, d in runs]
        states = tape["states"]
        _kernels.stack_backward(
            self.cell, self._stack_params(tape["input_projected"]), acts, grads, directions=D,
            tapes=tape["tapes"], h0=[s[0] for s in states], c0=[s[1] for s in states],
            dh_T=None if dh_T is None else list(dh_T), dc_T=None if dc_T is None else list(dc_T),
            dh0=list(dh0), dc0=None if dc0 is None else list(dc0), param_grads=param_grads,
            lengths=lengths, masks=tape["masks"], xs=tape["xs"], dys=dys, dxs=dxs,
            precision=tape.get("precision", self.precision))
        dy = grads[0]
        self._buffers.tape = None
        self._buffers.trim()
        if tape["ids"] is not None:     # one-hot input: into the columns of W_ih it read
            self._ids_backward(tape["ids"], dy)
        dx = None if tape["ids"] is not None else self._from_time_major(dy, unbatched)
        if unbatched:
            dh0, dc0 = dh0[:, 0], None if dc0 is None else dc0[:, 0]
        return dx, ((dh0, dc0) if self.lstm else dh0)

    # ---- streaming --------------------------------------------------------------------------------
    def step(self, x_t, state=None, input_projected=False, *, input=None):
        """One time step without a tape: x_t (B, I) or (I,) -> (y_t (B, P), state).

        state as h_n (LSTM: (h_n, c_n)) of `forward`, or None for zeros; the given state is not
        modified, the returned one is new. Unidirectional layers only (a reverse direction needs
        the future). input as `forward`'s: "projected" (input_projected=True): x_t is
        x_t @ weight_ih_l0.T, (B, G*H); "ids": x_t is integer ids (B,) or one id. Work buffers
        (for the last few batch sizes) and the packed weights are kept, so a sampling loop
        allocates only its outputs and packs the weights once.
        """
        if self.bidirectional:
            raise ValueError("step: a bidirectional layer cannot run one step at a time")
        mode = self._input_mode(input, input_projected)
        input_projected = mode != "features"
        x_t, unbatched = self._as_step_input(x_t, mode)
        self._packs.check(self._storage, self._recurrent_weights)
        B, L, H, P = x_t.shape[0], self.num_layers, self.hidden_size, self.P
        h, c = self._split_state("state", state)
        h = self._as_state("state h", h, B, P, unbatched)
        c = self._as_state("state c", c, B, H, unbatched)
        h_new = np.empty((L, B, P), self.dtype)
        c_new = np.empty((L, B, H), self.dtype) if self.lstm else None
        inp = x_t
        for k in range(L):
            args, kw, _ = self._weights(k, 0)
            if k == 0 and input_projected:
                args = (None,) + args[1:]
            hk = np.zeros((B, P), self.dtype) if h is None else h[k]
            ck = None if not self.lstm else np.zeros((B, H), self.dtype) if c is None else c[k]
            work = self._buffers.get(("step", k, B), _kernels.work_size(
                self.cell, 1, B, inp.shape[1], H, P, self.peephole))
            _kernels.step(self.cell, inp, hk, ck, *args, work=work, h_out=h_new[k],
                          c_out=None if c_new is None else c_new[k], packed=self._packed_weights(k, 0),
                          precision=self.precision, **kw)
            inp = h_new[k]
        y = inp.copy()          # the output must not alias the returned state
        if unbatched:
            y, h_new, c_new = y[0], h_new[:, 0], None if c_new is None else c_new[:, 0]
        return y, ((h_new, c_new) if self.lstm else h_new)

    # ---- PyTorch interop --------------------------------------------------------------------------
    @classmethod
    def from_torch(cls, module):
        """A layer with the configuration and weights of a torch.nn.RNN/GRU/LSTM `module`.

        torch is needed only to read the module; the layer keeps the module's dtype and its
        training/eval mode.
        """
        kw = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                  dropout=module.dropout, bidirectional=module.bidirectional,
                  dtype=str(next(module.parameters()).dtype).replace("torch.", ""))
        kw.update(cls._torch_options(module))
        layer = cls(module.input_size, module.hidden_size, **kw)
        layer.load_state_dict(module.state_dict())
        return layer.train(module.training)

    @classmethod
    def _torch_options(cls, module):
        """Constructor options only some torch modules have (nonlinearity, proj_size)."""
        return {}

    def __repr__(self):
        extra = "".join(f", {k}={getattr(self, k)!r}" for k in ("num_layers", "bidirectional", "proj_size",
                                                               "peephole", "dropout", "batch_first")
                        if getattr(self, k, None))
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra}, dtype={self.dtype.name!r})"


class RNN(_Recurrent):
    """Elman RNN (tanh or relu), as torch.nn.RNN.

    Parameters
    ----------
    input_size, hidden_size : int
        I input features, H hidden units.
    num_layers : int, default 1
    nonlinearity : {"tanh", "relu"}, default "tanh"
    bias : bool, default True
    batch_first : bool, default False
        (B, T, ...) inputs and outputs instead of (T, B, ...).
    dropout : float, default 0.0
        On every layer's output but the last, in training mode; in [0, 1).
    bidirectional : bool, default False
    dtype : {"float32", "float64"}, default None (the enclosing model's while one is built, else "float32")
    seed : int, optional
        Seeds the initialisation (torch's) and the dropout masks.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=None, seed=None,
                 precision="float32"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype, seed=seed, precision=precision)

    @classmethod
    def _torch_options(cls, module):
        return dict(nonlinearity=module.nonlinearity)


class GRU(_Recurrent):
    """GRU as torch.nn.GRU; reset_after=False gives the original Cho et al. (2014) cell.

    Parameters
    ----------
    input_size, hidden_size : int
        I input features, H hidden units.
    num_layers : int, default 1
    bias : bool, default True
    batch_first : bool, default False
        (B, T, ...) inputs and outputs instead of (T, B, ...).
    dropout : float, default 0.0
        On every layer's output but the last, in training mode; in [0, 1).
    bidirectional : bool, default False
    reset_after : bool, default True
    dtype : {"float32", "float64"}, default None (the enclosing model's while one is built, else "float32")
    seed : int, optional
        Seeds the initialisation (torch's) and the dropout masks.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, reset_after=True, dtype=None, seed=None,
                 precision="float32"):
        self.reset_after = bool(reset_after)
        super().__init__(self._cell(), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype, seed=seed, precision=precision)

    def _cell(self):
        return "gru" if self.reset_after else "gru_reset_before"


class SimplifiedGRU(GRU):
    """The simplified GRU of Andrew Ng's *Sequence Models* course: an update gate, no reset gate.

    z = σ(W_iz x + b_iz + W_hz h + b_hz), n = tanh(W_in x + b_in + W_hn h + b_hn),
    h' = (1 - z) * n + z * h; weights (2H, ·) in gate order z n, named as the GRU's.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None, seed=None, precision="float32"):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype, seed=seed, precision=precision)

    def _cell(self):
        return "gru_simplified"


class LSTM(_Recurrent):
    """LSTM as torch.nn.LSTM (with proj_size), plus optional peephole connections.

    peephole=True adds weight_ci/cf/co_l{k} (H,): the input and forget gates see c_{t-1}, the
    output gate sees c_t (Gers & Schmidhuber).

    Parameters
    ----------
    input_size, hidden_size : int
        I input features, H hidden units.
    num_layers : int, default 1
    bias : bool, default True
    batch_first : bool, default False
        (B, T, ...) inputs and outputs instead of (T, B, ...).
    dropout : float, default 0.0
        On every layer's output but the last, in training mode; in [0, 1).
    bidirectional : bool, default False
    proj_size : int, default 0
        P < H projected features of h; 0: none.
    peephole : bool, default False
    dtype : {"float32", "float64"}, default None (the enclosing model's while one is built, else "float32")
    seed : int, optional
        Seeds the initialisation (torch's) and the dropout masks.
    """
    lstm = True

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, peephole=False, dtype=None,
                 seed=None, precision="float32"):
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, peephole, dtype, seed, precision)

    @classmethod
    def _torch_options(cls, module):
        return dict(proj_size=module.proj_size)
