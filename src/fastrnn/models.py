"""Models built from layers: the character/word language model.

A `LanguageModel` is  ids -> embedding (or one-hot) -> RNN/GRU/LSTM stack -> linear head ->
softmax cross-entropy. All its parameters live in one flat buffer (`model.params`) with
PyTorch-style dotted names, so the same model built in PyTorch maps onto it name by name:

    embed.weight (V, E)            only with embed_size
    rnn.weight_ih_l0 (G*H, E or V) ... as in the layers
    head.weight (V, H), head.bias (V,)

Dimension letters: B batch, T time steps, V vocabulary, E embedding, H hidden, G gates.
"""
import numpy as np

from . import layers
from ._kernels import gather_rows, gemm, scatter_add_rows
from .losses import softmax_cross_entropy
from .params import FlatParams, as_float_dtype

CELLS = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.RNN}


class LanguageModel:
    """Next-token model over a vocabulary of `vocab_size` ids; see the module docstring."""

    def __init__(self, vocab_size, cell="lstm", hidden_size=128, num_layers=2, dropout=0.0,
                 embed_size=None, dtype="float32", seed=None):
        if cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")
        for name, value in (("vocab_size", vocab_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if embed_size is not None and (not isinstance(embed_size, (int, np.integer)) or embed_size < 1):
            raise ValueError(f"embed_size: expected None or a positive integer, got {embed_size!r}")
        self.config = dict(vocab_size=int(vocab_size), cell=cell, hidden_size=int(hidden_size),
                           num_layers=int(num_layers), dropout=float(dropout),
                           embed_size=None if embed_size is None else int(embed_size),
                           dtype=as_float_dtype(dtype).name, seed=seed)
        self.dtype = as_float_dtype(dtype)
        V, H = self.config["vocab_size"], self.config["hidden_size"]
        rng = np.random.default_rng(seed)
        self.rnn = CELLS[cell](embed_size or V, H, num_layers=num_layers, dropout=dropout,
                               dtype=self.dtype, seed=int(rng.integers(2**63)))
        specs = [("embed.weight", (V, embed_size))] if embed_size else []
        specs += [("rnn." + n, p.shape) for n, p in self.rnn.named_parameters().items()]
        specs += [("head.weight", (V, H)), ("head.bias", (V,))]
        self._flat = FlatParams(specs, self.dtype)
        self.params, self.grads = self._flat.params, self._flat.grads
        # the layer stack moves into our buffer (keeping its initialisation)
        start = sum(int(np.prod(s)) for _, s in specs[:1 if embed_size else 0])
        stop = start + self.rnn.params.size
        self.rnn.rebind(self.params[start:stop], self.grads[start:stop])
        if embed_size:       # as torch.nn.Embedding: N(0, 1)
            self._flat["embed.weight"][...] = rng.standard_normal((V, embed_size))
        bound = 1 / np.sqrt(H)  # as torch.nn.Linear: U(-1/sqrt(in), 1/sqrt(in))
        self._flat["head.weight"][...] = rng.uniform(-bound, bound, (V, H))
        self._flat["head.bias"][...] = rng.uniform(-bound, bound, V)
        self._tape = None

    # ---- parameters ----------------------------------------------------------------------------
    def named_parameters(self):
        """{dotted name: view into model.params} in PyTorch's order."""
        return self._flat.named_parameters()

    def named_grads(self):
        """{dotted name: view into model.grads}."""
        return self._flat.named_grads()

    def zero_grad(self):
        """Set every gradient to zero (gradients accumulate across backward calls)."""
        self.grads[...] = 0

    def state_dict(self):
        """{name: copy of the parameter} (NumPy arrays), loadable by PyTorch or `load_state_dict`."""
        return {k: v.copy() for k, v in self.named_parameters().items()}

    def load_state_dict(self, state, strict=True):
        """Copy parameters in by name from NumPy arrays or torch tensors; checks names and shapes."""
        own = self.named_parameters()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"state: missing {missing}, unexpected {unexpected}")
        for name, value in state.items():
            if name not in own:
                continue
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            if value.shape != own[name].shape:
                raise ValueError(f"state[{name!r}]: expected shape {own[name].shape}, got {value.shape}")
            own[name][...] = value

    # ---- forward / backward --------------------------------------------------------------------
    def _check_ids(self, name, ids, ndim):
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{name}: expected integer token ids, got {ids.dtype.name}")
        if ids.ndim != ndim:
            raise ValueError(f"{name}: expected {ndim}-D ids ({'B, T' if ndim == 2 else 'B'}), "
                             f"got shape {ids.shape}")
        V = self.config["vocab_size"]
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueError(f"{name}: ids must be in [0, {V}), got {ids.min()}..{ids.max()}")
        return ids

    def _input(self, ids_tm):
        """The layer stack's input for time-major ids: embedding rows, or W_ih columns (one-hot)."""
        if self.config["embed_size"]:
            return gather_rows(self._flat["embed.weight"], ids_tm), False
        # one-hot x times W_ih^T is column `id` of W_ih: a gather, no one-hot matrix. Gathering
        # rows of a transposed copy is faster than strided columns when the copy is the smaller
        W = self._flat["rnn.weight_ih_l0"]
        if W.shape[1] <= ids_tm.size:
            return gather_rows(np.ascontiguousarray(W.T), ids_tm), True
        return gather_rows(W, ids_tm, columns=True), True

    def forward(self, inputs, targets, state=None, train=True):
        """Mean cross-entropy (nats/token) of predicting `targets` (B, T) from `inputs` (B, T).

        `state` is the layer stack's state from a previous call (truncated BPTT) or None.
        Returns (loss, state); with train=True the tape is kept for `backward`.
        """
        inputs = self._check_ids("inputs", inputs, 2)
        targets = self._check_ids("targets", targets, 2)
        if targets.shape != inputs.shape:
            raise ValueError(f"targets: expected shape {inputs.shape} (as inputs), got {targets.shape}")
        ids_tm = np.ascontiguousarray(inputs.T)                           # (T, B)
        x, projected = self._input(ids_tm)
        y, state = self.rnn.forward(x, state, train=train, input_projected=projected)   # (T, B, H)
        T, B, H = y.shape
        y2 = y.reshape(T * B, H)
        logits = gemm(y2, self._flat["head.weight"], trans_b=True)                    # (T*B, V)
        logits += self._flat["head.bias"]
        loss, dlogits = softmax_cross_entropy(logits, targets.T.reshape(-1))
        self._tape = (ids_tm, y2, dlogits, projected) if train else None
        return float(loss), state        # fresh arrays from the layers: safe to carry over

    def backward(self):
        """Accumulate into `model.grads` the gradient of the loss of the last training forward."""
        if self._tape is None:
            raise RuntimeError("backward: call forward(..., train=True) first")
        ids_tm, y2, dlogits, projected = self._tape
        g = self._flat.named_grads()
        gemm(dlogits, y2, trans_a=True, out=g["head.weight"], accumulate=True)  # fused softmax-CE:
        g["head.bias"] += dlogits.sum(0)                                         # dlogits = (p - 1hot) / N
        T, B = ids_tm.shape
        dy = gemm(dlogits, self._flat["head.weight"]).reshape(T, B, -1)
        dx, _ = self.rnn.backward(dy)
        # the input side: add each step's row gradient to the row (column of W_ih) of its id
        dx2, flat_ids = dx.reshape(T * B, -1), ids_tm.reshape(-1)
        if projected and g["rnn.weight_ih_l0"].shape[1] <= flat_ids.size:   # as in _input
            rows = np.zeros(g["rnn.weight_ih_l0"].shape[::-1], self.dtype)
            g["rnn.weight_ih_l0"] += scatter_add_rows(rows, flat_ids, dx2).T
        elif projected:
            scatter_add_rows(g["rnn.weight_ih_l0"], flat_ids, dx2, columns=True)
        else:
            scatter_add_rows(g["embed.weight"], flat_ids, dx2)
        self._tape = None

    def step(self, ids, state=None):
        """Advance one token per sequence: ids (B,) -> (logits (B, V), state). Keeps no tape."""
        ids = self._check_ids("ids", ids, 1)
        x, projected = self._input(ids)
        y, state = self.rnn.step(x, state, input_projected=projected)
        logits = gemm(y, self._flat["head.weight"], trans_b=True)
        logits += self._flat["head.bias"]
        return logits, state

    def __repr__(self):
        c = self.config
        return (f"LanguageModel(vocab_size={c['vocab_size']}, cell={c['cell']!r}, hidden_size="
                f"{c['hidden_size']}, num_layers={c['num_layers']}, embed_size={c['embed_size']}, "
                f"dtype={c['dtype']!r}, parameters={self.params.size})")
