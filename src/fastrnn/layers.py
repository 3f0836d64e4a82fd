"""RNN / GRU / LSTM layers with PyTorch's constructor, weight names, shapes and outputs.

A model trained with torch.nn.LSTM runs here after `load_state_dict(module.state_dict())`, and
code ported from PyTorch changes only its import. Beyond PyTorch every layer has an explicit
`backward` (BPTT through the C kernels, accumulating into `layer.grads`) and a streaming `step`.

Dimension letters: T time, B batch, I input features, H hidden units, P = H_out (proj_size or H),
L layers, D directions (2 when bidirectional), G gates.
"""
import numpy as np

from . import _kernels
from .params import FlatParams, as_float_dtype


def _to_numpy(value):
    """NumPy view of an array-like or a torch tensor (without importing torch)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class _Recurrent:
    """The machinery shared by RNN, GRU and LSTM: parameters, stacking, directions, dropout."""
    lstm = False

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, peephole=False, dtype="float32",
                 seed=None):
        for name, v, low in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                             ("num_layers", num_layers, 1), ("proj_size", proj_size, 0)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
        if proj_size and proj_size >= hidden_size:
            raise ValueError(f"proj_size: expected less than hidden_size={hidden_size}, got {proj_size}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.cell, self.G = cell, _kernels.gates(cell)
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.proj_size, self.peephole = bool(bidirectional), int(proj_size), bool(peephole)
        self.D = 2 if bidirectional else 1
        self.P = self.proj_size or self.hidden_size            # size of h (the output)
        self.dtype = as_float_dtype(dtype)
        init_seq, dropout_seq = np.random.SeedSequence(seed).spawn(2)
        self._dropout_rng = np.random.default_rng(dropout_seq)
        self._flat = FlatParams(self._specs(), self.dtype)
        bound = 1 / np.sqrt(self.hidden_size)                  # as PyTorch: U(-1/sqrt(H), 1/sqrt(H))
        self._flat.params[...] = np.random.default_rng(init_seq).uniform(-bound, bound, self._flat.size)
        self._tape = None
        self._work, self._weight_cache = {}, {}

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

    def _suffixes(self, k):
        return [f"_l{k}", f"_l{k}_reverse"][:self.D]

    @property
    def params(self):
        """All parameters in one flat buffer (the named views share its memory)."""
        return self._flat.params

    @property
    def grads(self):
        """All parameter gradients in one flat buffer, laid out as `params`."""
        return self._flat.grads

    def rebind(self, params, grads, copy=True):
        """Move the parameters and gradients into the given 1-D buffers (e.g. a model's slices)."""
        self._flat.rebind(params, grads, copy=copy)
        self._weight_cache = {}

    def named_parameters(self):
        """{PyTorch name: view into `params`}, in PyTorch's order."""
        return self._flat.named_parameters()

    def named_grads(self):
        """{PyTorch name: view into `grads`}."""
        return self._flat.named_grads()

    def zero_grad(self):
        """Set all gradients to zero (backward accumulates)."""
        self._flat.zero_grad()

    def state_dict(self):
        """{name: copy of the parameter} as NumPy arrays."""
        return {k: v.copy() for k, v in self.named_parameters().items()}

    def load_state_dict(self, state, strict=True):
        """Copy parameters in by name from NumPy arrays or torch tensors (converted to our dtype).

        Raises KeyError naming missing/unexpected names (strict) and ValueError for a wrong shape.
        """
        own = self.named_parameters()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict: missing {missing}, unexpected {unexpected}")
        for name in own:
            if name in state:
                value = _to_numpy(state[name])
                if value.shape != own[name].shape:
                    raise ValueError(f"state_dict[{name!r}]: expected shape {own[name].shape}, "
                                     f"got {value.shape}")
                own[name][...] = value
        return self

    def rng_state(self):
        """The dropout RNG's state (JSON-serialisable), for exact resume."""
        return self._dropout_rng.bit_generator.state

    def set_rng_state(self, state):
        """Restore a state from `rng_state`."""
        self._dropout_rng.bit_generator.state = state

    def _weights(self, k, d):
        """Kernel arguments (W_ih, W_hh, b_ih, b_hh) and keywords (w_peep, W_hr) of layer k, direction d.

        Cached (the views stay valid while the storage does; `rebind` clears the cache), which
        matters for `step`, whose whole budget is a few tens of microseconds.
        """
        cached = self._weight_cache.get((k, d))
        if cached is None:
            cached = self._weight_cache[(k, d)] = self._weight_views(k, d)
        return cached

    def _weight_views(self, k, d):
        v, sfx = self._flat, self._suffixes(k)[d]
        args = (v[f"weight_ih{sfx}"], v[f"weight_hh{sfx}"],
                v[f"bias_ih{sfx}"] if self.bias else None, v[f"bias_hh{sfx}"] if self.bias else None)
        kw = dict(W_hr=v[f"weight_hr{sfx}"] if self.proj_size else None, w_peep=None)
        if self.peephole:   # the three (H,) views are adjacent in the flat buffer
            start = v[f"weight_ci{sfx}"]
            kw["w_peep"] = np.lib.stride_tricks.as_strided(start, (3 * self.hidden_size,), start.strides)
        return args, kw

    def _grads(self, k, d):
        """The gradient views of layer k, direction d, keyed as the kernel's `grads`."""
        g, sfx = self._flat.named_grads(), self._suffixes(k)[d]
        out = {"W_ih": g[f"weight_ih{sfx}"], "W_hh": g[f"weight_hh{sfx}"]}
        if self.bias:
            out.update(b_ih=g[f"bias_ih{sfx}"], b_hh=g[f"bias_hh{sfx}"])
        if self.proj_size:
            out["W_hr"] = g[f"weight_hr{sfx}"]
        if self.peephole:
            start = g[f"weight_ci{sfx}"]
            out["w_peep"] = np.lib.stride_tricks.as_strided(start, (3 * self.hidden_size,), start.strides)
        return out

    # ---- argument checking ------------------------------------------------------------------------
    def _as_input(self, name, x, width):
        """x as a time-major (T, B, width) C-contiguous array of our dtype, and whether it was unbatched."""
        x = _to_numpy(x)
        if x.dtype.kind != "f":
            raise TypeError(f"{name}: expected a float array, got {x.dtype.name}")
        layout = "(B, T, F)" if self.batch_first else "(T, B, F)"
        if x.ndim not in (2, 3) or x.shape[-1] != width:
            raise ValueError(f"{name}: expected shape {layout} or unbatched (T, F) with F={width}, got {x.shape}")
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one time step, got {x.shape}")
        return np.ascontiguousarray(x, dtype=self.dtype), unbatched

    def _from_time_major(self, y, unbatched):
        if unbatched:
            return y[:, 0]
        return np.ascontiguousarray(y.transpose(1, 0, 2)) if self.batch_first else y

    def _as_state(self, name, s, B, width, unbatched):
        """A state (L*D, B, width) of our dtype, or None; unbatched states are (L*D, width)."""
        if s is None:
            return None
        s = _to_numpy(s)
        want = (self.num_layers * self.D,) + (() if unbatched else (B,)) + (width,)
        if s.shape != want:
            raise ValueError(f"{name}: expected shape {want}, got {s.shape}")
        if s.dtype.kind != "f":
            raise TypeError(f"{name}: expected a float array, got {s.dtype.name}")
        return np.ascontiguousarray(s.reshape(want[0], B, width), dtype=self.dtype)

    def _split_state(self, state):
        """(h0, c0) from the user's state argument (LSTM: a (h0, c0) tuple)."""
        if not self.lstm:
            return state, None
        if state is None:
            return None, None
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError("h0: expected a tuple (h0, c0) for an LSTM")
        return state

    def _lengths(self, lengths, T, B):
        if lengths is None:
            return None
        lengths = _to_numpy(lengths)
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"lengths: expected integers, got {lengths.dtype.name}")
        if lengths.shape != (B,):
            raise ValueError(f"lengths: expected shape ({B},), got {lengths.shape}")
        if B and (lengths.min() < 0 or lengths.max() > T):
            raise ValueError(f"lengths: expected values in [0, {T}], got {lengths.min()}..{lengths.max()}")
        return lengths.astype(np.int64)

    # ---- forward ----------------------------------------------------------------------------------
    def forward(self, x, h0=None, lengths=None, train=True, input_projected=False, *, hx=None):
        """Run the stack over x; returns (output, h_n), or (output, (h_n, c_n)) for an LSTM.

        x: (T, B, I), (B, T, I) with batch_first, or unbatched (T, I). h0 (or torch's name hx): (L*D, B, P)
        (LSTM: (h0, c0), c0 (L*D, B, H)) or None for zeros. lengths (B,): packed-sequence
        semantics. train=True keeps the tape for `backward` and applies dropout.
        input_projected=True: x is already x @ weight_ih_l0.T, (T, B, G*H) (one-hot inputs as row
        gathers); then `backward` returns the gradient of that projection and leaves
        weight_ih_l0's gradient alone.
        """
        GH = self.G * self.hidden_size
        if input_projected and self.bidirectional:
            raise ValueError("input_projected: supported for unidirectional layers only")
        x, unbatched = self._as_input("x", x, GH if input_projected else self.input_size)
        T, B, _ = x.shape
        if hx is not None:
            if h0 is not None:
                raise TypeError("h0 and hx: give the initial state once (hx is torch's name for h0)")
            h0 = hx
        h0, c0 = self._split_state(h0)
        h0 = self._as_state("h0", h0, B, self.P, unbatched)
        c0 = self._as_state("c0", c0, B, self.hidden_size, unbatched)
        lengths = self._lengths(lengths, T, B)
        rev = None if not self.bidirectional else _reverse_index(T, B, lengths)
        h_n = np.empty((self.num_layers * self.D, B, self.P), self.dtype)
        c_n = np.empty((self.num_layers * self.D, B, self.hidden_size), self.dtype) if self.lstm else None
        tape = dict(layers=[], masks=[], lengths=lengths, rev=rev, unbatched=unbatched,
                    input_projected=input_projected, shape=x.shape) if train else None
        inp = x
        for k in range(self.num_layers):
            out = np.empty((T, B, self.D * self.P), self.dtype)
            runs = []
            for d in range(self.D):
                j = k * self.D + d
                xd = inp if d == 0 else _gather(inp, rev)
                args, kw = self._weights(k, d)
                if k == 0 and input_projected:
                    args = (None,) + args[1:]
                states = (None if h0 is None else h0[j], None if c0 is None else c0[j])
                t_buf = self._buffer(("tape", k, d), _kernels.tape_size(
                    self.cell, T, B, xd.shape[2], self.hidden_size, self.P, self.peephole)) if train else None
                work = None if train else self._buffer(("work", k, d), _kernels.work_size(
                    self.cell, T, B, xd.shape[2], self.hidden_size, self.P, self.peephole))
                y, _, _ = _kernels.forward(self.cell, xd, *args, *states, lengths=lengths, tape=t_buf,
                                           work=work, y=out if self.D == 1 else None, h_T=h_n[j],
                                           c_T=None if c_n is None else c_n[j], **kw)
                if self.D == 2:     # the reverse direction's outputs go back to forward time
                    out[:, :, d * self.P:(d + 1) * self.P] = y if d == 0 else _gather(y, rev)
                runs.append((xd, t_buf, states))
            mask = None
            if train and self.dropout and k < self.num_layers - 1:   # inverted dropout between layers
                keep = 1 - self.dropout
                mask = (self._dropout_rng.random(out.shape) < keep).astype(self.dtype) / keep
                out *= mask
            if train:
                tape["layers"].append(runs)
                tape["masks"].append(mask)
            inp = out
        self._tape = tape
        y = self._from_time_major(inp, unbatched)
        if unbatched:
            h_n, c_n = h_n[:, 0], None if c_n is None else c_n[:, 0]
        return y, ((h_n, c_n) if self.lstm else h_n)

    __call__ = forward

    def _buffer(self, key, size):
        """A reusable scratch/tape buffer of at least `size` elements (tapes live until backward)."""
        buf = self._work.get(key)
        if buf is None or buf.size < size:
            buf = self._work[key] = np.empty(size, self.dtype)
        return buf

    # ---- backward ---------------------------------------------------------------------------------
    def backward(self, dout, dh_n=None):
        """BPTT through the last training forward; returns (dx, dh0) (LSTM: (dx, (dh0, dc0))).

        dout: gradient w.r.t. the output (same shape); dh_n: gradient w.r.t. h_n (LSTM: a
        (dh_n, dc_n) tuple), None for zeros. Parameter gradients accumulate into `grads`.
        """
        tape = self._tape
        if tape is None:
            raise RuntimeError("backward: call forward(..., train=True) first (the tape is used once)")
        T, B, _ = tape["shape"]
        unbatched, lengths, rev = tape["unbatched"], tape["lengths"], tape["rev"]
        dy, _ = self._as_input("dout", dout, self.D * self.P)
        if dy.shape[:2] != (T, B):
            raise ValueError(f"dout: expected the shape of the forward's output, got {_to_numpy(dout).shape}")
        dh_T, dc_T = self._split_state(dh_n)
        dh_T = self._as_state("dh_n", dh_T, B, self.P, unbatched)
        dc_T = self._as_state("dc_n", dc_T, B, self.hidden_size, unbatched)
        dh0 = np.empty((self.num_layers * self.D, B, self.P), self.dtype)
        dc0 = np.empty((self.num_layers * self.D, B, self.hidden_size), self.dtype) if self.lstm else None
        for k in reversed(range(self.num_layers)):
            dx = None
            for d, (xd, t_buf, states) in enumerate(tape["layers"][k]):
                j = k * self.D + d
                args, kw = self._weights(k, d)
                grads = self._grads(k, d)
                if k == 0 and tape["input_projected"]:
                    args = (None,) + args[1:]
                    del grads["W_ih"]
                dyd = np.ascontiguousarray(dy[:, :, d * self.P:(d + 1) * self.P])
                dxd, _, _, _ = _kernels.backward(
                    self.cell, t_buf, xd, *args, *states, lengths=lengths,
                    dy=dyd if d == 0 else _gather(dyd, rev),
                    dh_T=None if dh_T is None else dh_T[j], dc_T=None if dc_T is None else dc_T[j],
                    dh0=dh0[j], dc0=None if dc0 is None else dc0[j], grads=grads, **kw)
                dxd = dxd if d == 0 else _gather(dxd, rev)
                dx = dxd if dx is None else dx + dxd
            if k > 0 and tape["masks"][k - 1] is not None:
                dx *= tape["masks"][k - 1]
            dy = dx
        self._tape = None
        dx = self._from_time_major(dy, unbatched)
        if unbatched:
            dh0, dc0 = dh0[:, 0], None if dc0 is None else dc0[:, 0]
        return dx, ((dh0, dc0) if self.lstm else dh0)

    # ---- streaming --------------------------------------------------------------------------------
    def step(self, x_t, state=None, input_projected=False):
        """One time step without a tape: x_t (B, I) or (I,) -> (y_t (B, P), state).

        state as h_n (LSTM: (h_n, c_n)) of `forward`, or None for zeros; the given state is not
        modified. Unidirectional layers only (a reverse direction needs the future).
        """
        if self.bidirectional:
            raise ValueError("step: a bidirectional layer cannot run one step at a time")
        width = self.G * self.hidden_size if input_projected else self.input_size
        x_t = _to_numpy(x_t)
        if x_t.dtype.kind != "f":
            raise TypeError(f"x_t: expected a float array, got {x_t.dtype.name}")
        if x_t.ndim not in (1, 2) or x_t.shape[-1] != width:
            raise ValueError(f"x_t: expected shape (B, {width}) or ({width},), got {x_t.shape}")
        unbatched = x_t.ndim == 1
        x_t = np.ascontiguousarray(x_t.reshape(-1, width), dtype=self.dtype)
        B = x_t.shape[0]
        h, c = self._split_state(state)
        h = self._as_state("h", h, B, self.P, unbatched)
        c = self._as_state("c", c, B, self.hidden_size, unbatched)
        L = self.num_layers
        h_new = np.empty((L, B, self.P), self.dtype)
        c_new = np.empty((L, B, self.hidden_size), self.dtype) if self.lstm else None
        inp = x_t
        for k in range(L):
            args, kw = self._weights(k, 0)
            if k == 0 and input_projected:
                args = (None,) + args[1:]
            hk = np.zeros((B, self.P), self.dtype) if h is None else h[k]
            ck = None if not self.lstm else np.zeros((B, self.hidden_size), self.dtype) if c is None else c[k]
            work = self._work.get(("step", k, B))       # sized once per batch size
            if work is None:
                work = self._work[("step", k, B)] = np.empty(_kernels.work_size(
                    self.cell, 1, B, inp.shape[1], self.hidden_size, self.P, self.peephole), self.dtype)
            _kernels.step(self.cell, inp, hk, ck, *args, work=work, h_out=h_new[k],
                          c_out=None if c_new is None else c_new[k], **kw)
            inp = h_new[k]
        y = inp.copy()
        if unbatched:
            y, h_new, c_new = y[0], h_new[:, 0], None if c_new is None else c_new[:, 0]
        return y, ((h_new, c_new) if self.lstm else h_new)

    # ---- PyTorch interop --------------------------------------------------------------------------
    @classmethod
    def from_torch(cls, module):
        """A layer with the configuration and weights of a torch.nn.RNN/GRU/LSTM `module`."""
        kw = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                  dropout=module.dropout, bidirectional=module.bidirectional,
                  dtype=str(next(module.parameters()).dtype).replace("torch.", ""))
        kw.update(cls._torch_options(module))
        return cls(module.input_size, module.hidden_size, **kw).load_state_dict(module.state_dict())

    @classmethod
    def _torch_options(cls, module):
        return {}

    def __repr__(self):
        extra = "".join(f", {k}={getattr(self, k)!r}" for k in ("num_layers", "bidirectional", "proj_size",
                                                               "peephole", "dropout", "batch_first")
                        if getattr(self, k, None))
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra}, dtype={self.dtype.name!r})"


def _reverse_index(T, B, lengths):
    """(T, B) time indices that reverse each sequence within its own length (an involution)."""
    t = np.arange(T)[:, None]
    if lengths is None:
        return np.broadcast_to(T - 1 - t, (T, B))
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def _gather(a, rev):
    """a (T, B, F) with every sequence reversed within its length (rev from _reverse_index)."""
    return np.ascontiguousarray(a[rev, np.arange(a.shape[1])[None, :]])


class RNN(_Recurrent):
    """Elman RNN (tanh or relu), as torch.nn.RNN."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype="float32", seed=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype, seed=seed)

    @classmethod
    def _torch_options(cls, module):
        return dict(nonlinearity=module.nonlinearity)


class GRU(_Recurrent):
    """GRU as torch.nn.GRU; reset_after=False gives the original Cho et al. (2014) cell."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, reset_after=True, dtype="float32", seed=None):
        self.reset_after = bool(reset_after)
        super().__init__(self._cell(), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype, seed=seed)

    def _cell(self):
        return "gru" if self.reset_after else "gru_reset_before"


class SimplifiedGRU(GRU):
    """The simplified GRU of Andrew Ng's *Sequence Models* course: an update gate, no reset gate.

    z = σ(W_iz x + b_iz + W_hz h + b_hz), n = tanh(W_in x + b_in + W_hn h + b_hn),
    h' = (1 - z) * n + z * h; weights (2H, ·) in gate order z n, named as the GRU's.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype, seed=seed)

    def _cell(self):
        return "gru_simplified"


class LSTM(_Recurrent):
    """LSTM as torch.nn.LSTM (with proj_size), plus optional peephole connections.

    peephole=True adds weight_ci/cf/co_l{k} (H,): the input and forget gates see c_{t-1}, the
    output gate sees c_t (Gers & Schmidhuber).
    """
    lstm = True

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, peephole=False, dtype="float32",
                 seed=None):
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, peephole, dtype, seed)

    @classmethod
    def _torch_options(cls, module):
        return dict(proj_size=module.proj_size)


# ---- single-step cells ------------------------------------------------------------------------

class _Cell:
    """A one-layer, one-step layer with torch.nn.*Cell names (weight_ih, ...) and a backward."""
    layer_class = None

    def __init__(self, input_size, hidden_size, bias=True, dtype="float32", seed=None, **options):
        self._layer = self.layer_class(input_size, hidden_size, bias=bias, dtype=dtype, seed=seed, **options)
        # torch.nn.*Cell names its parameters without the "_l0" suffix
        self._names = {name: name[:-3] for name in self._layer.named_parameters()}
        self.input_size, self.hidden_size = input_size, hidden_size
        self.params, self.grads = self._layer.params, self._layer.grads

    def named_parameters(self):
        """{torch.nn.*Cell name: view into `params`}."""
        return {self._names[k]: v for k, v in self._layer.named_parameters().items()}

    def named_grads(self):
        """{torch.nn.*Cell name: gradient view}."""
        return {self._names[k]: v for k, v in self._layer.named_grads().items()}

    def zero_grad(self):
        """Set all gradients to zero."""
        self._layer.zero_grad()

    def state_dict(self):
        """{name: copy of the parameter}."""
        return {k: v.copy() for k, v in self.named_parameters().items()}

    def load_state_dict(self, state, strict=True):
        """Load torch.nn.*Cell-named parameters (NumPy arrays or torch tensors)."""
        inverse = {v: k for k, v in self._names.items()}
        unknown = [k for k in state if k not in inverse]
        if strict and unknown:
            raise KeyError(f"state_dict: unexpected {unknown}")
        self._layer.load_state_dict({inverse[k]: v for k, v in state.items() if k in inverse}, strict)
        return self

    @classmethod
    def from_torch(cls, module):
        """A cell with the configuration and weights of a torch.nn.RNNCell/GRUCell/LSTMCell."""
        extra = {"nonlinearity": module.nonlinearity} if hasattr(module, "nonlinearity") else {}
        dtype = str(next(module.parameters()).dtype).replace("torch.", "")
        return cls(module.input_size, module.hidden_size, bias=module.bias, dtype=dtype,
                   **extra).load_state_dict(module.state_dict())

    def __call__(self, x, hx=None, train=True):
        """x (B, I) or (I,) -> h' (LSTM: (h', c')); keeps the tape for `backward` when train."""
        x = _to_numpy(x)
        lstm = self._layer.lstm
        h, c = hx if lstm and hx is not None else (hx, None)
        state = None if h is None else ((h[None], c[None]) if lstm else h[None])
        y, s = self._layer.forward(x[None], state, train=train)
        return (s[0][0], s[1][0]) if lstm else s[0]

    forward = __call__

    def backward(self, dh, dc=None):
        """Gradients of the last call: returns (dx, dh_prev) (LSTM: (dx, (dh_prev, dc_prev)))."""
        dh = _to_numpy(dh)
        lstm = self._layer.lstm
        dstate = (None, None if dc is None else _to_numpy(dc)[None]) if lstm else None
        dx, ds = self._layer.backward(dh[None], dstate)
        return (dx[0], (ds[0][0], ds[1][0])) if lstm else (dx[0], ds[0])


class RNNCell(_Cell):
    """One Elman RNN step, as torch.nn.RNNCell."""
    layer_class = RNN

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, bias, dtype, seed, nonlinearity=nonlinearity)


class GRUCell(_Cell):
    """One GRU step, as torch.nn.GRUCell."""
    layer_class = GRU


class LSTMCell(_Cell):
    """One LSTM step, as torch.nn.LSTMCell."""
    layer_class = LSTM
