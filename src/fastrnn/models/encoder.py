"""The part every padded-batch sequence model shares: inputs (token ids through an Embedding, or
real-valued features), checked `lengths`, and a recurrent encoder run with packed-sequence
semantics; the classifier, tagger and regressor add a head and a loss on top.

Parameter names (as the same model built in PyTorch): `embed.weight` (ids only),
`rnn.weight_ih_l0` ... (with `_reverse` for the backward direction), then the model's `head.*`.
Inputs are batch-first, (B, T) ids or (B, T, F) features; the encoder runs time-major.

Dimension letters: B batch, T time steps, F features, E embedding, H hidden, D directions.
"""
import numpy as np

from .. import checks
from ..nn import Dropout, Embedding, Module
from ..nn.module import to_numpy
from .lm import CELLS


def valid_mask(lengths, T):
    """(T, B) bool: step t of sequence b is inside its length."""
    return np.arange(T)[:, None] < lengths[None, :]


class EncoderModel(Module):
    """Base of the padded-batch models: `embed` (ids only), `rnn`, `drop` (on the encoder's
    features before the head); subclasses attach `head` and a loss after `_init_encoder`."""

    def _init_encoder(self, vocab_size, input_size, embed_size, hidden_size, cell, num_layers,
                      bidirectional, dropout, dtype, seed):
        """Check the shared constructor arguments, build the children; returns the config and rng."""
        if (vocab_size is None) == (input_size is None):
            raise ValueError("vocab_size, input_size: give exactly one (token ids or feature vectors), "
                             f"got vocab_size={vocab_size!r}, input_size={input_size!r}")
        V, F = checks.positive_int("vocab_size", vocab_size, True), checks.positive_int("input_size", input_size, True)
        E, H = checks.positive_int("embed_size", embed_size), checks.positive_int("hidden_size", hidden_size)
        L = checks.positive_int("num_layers", num_layers)
        checks.choice("cell", cell, CELLS)
        checks.probability("dropout", dropout)
        super().__init__(dtype)
        config = dict(vocab_size=V, input_size=F, embed_size=E, hidden_size=H, cell=cell, num_layers=L,
                      bidirectional=bool(bidirectional), dropout=float(dropout),
                      dtype=checks.float_dtype(dtype).name, seed=seed)
        rng = np.random.default_rng(seed)    # draws in this order: stack, dropout, embedding, head
        rnn_seed, drop_seed = (int(s) for s in rng.integers(2**63, size=2))
        if V:
            self.embed = Embedding(V, E, seed=rng)
        self.rnn = CELLS[cell](E if V else F, H, num_layers=L, dropout=dropout,
                               bidirectional=bool(bidirectional), seed=rnn_seed)
        self.drop = Dropout(dropout, seed=drop_seed)
        self.D = 2 if bidirectional else 1
        return config, rng

    # ---- inputs ---------------------------------------------------------------------------------
    def _check_inputs(self, inputs, lengths, name="inputs"):
        """(inputs as an array, lengths (B,) int64): (B, T) ids or (B, T, F) float features;
        errors name the argument `name`."""
        V, F = self.config.get("vocab_size"), self.config["input_size"]
        if V:
            x = checks.ids(name, inputs, V, ndim=2)
        else:
            x = to_numpy(inputs)
            if x.dtype.kind != "f":
                raise TypeError(f"{name}: expected float features, got {x.dtype.name}")
            if x.ndim != 3 or x.shape[2] != F:
                raise ValueError(f"{name}: expected shape (B, T, {F}), got {x.shape}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{name}: expected at least one sequence of at least one step, got {x.shape}")
        return x, checks.lengths(lengths, x.shape[0], x.shape[1])

    @staticmethod
    def _split_batch(batch):
        """(inputs, targets, lengths or None) from a batch tuple (inputs, targets[, lengths])."""
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise TypeError(f"batch: expected a tuple (inputs, targets[, lengths]), got "
                            f"{type(batch).__name__} of {len(batch) if hasattr(batch, '__len__') else '?'}")
        return tuple(batch) + (None,) * (3 - len(batch))

    # ---- the encoder ------------------------------------------------------------------------------
    def _encode(self, x, lengths, train):
        """(out (T, B, D*H) zero past each length, h_n of the last layer (D, B, H), the stack's
        final state as the layer returns it (for `step`))."""
        x_tm = np.ascontiguousarray(np.swapaxes(x, 0, 1))
        if self.config.get("vocab_size"):
            x_tm = self.embed.forward(x_tm, train=train)
        out, state = self.rnn.forward(x_tm, lengths=lengths, train=train)
        h_n = state[0] if isinstance(state, tuple) else state
        return out, h_n[-self.D:], state

    def _encode_backward(self, dout, dh_last=None):
        """Backward through the encoder from d(out) and optionally d(h_n of the last layer)."""
        dh_n = None
        if dh_last is not None:
            LD, B, H = self.rnn.num_layers * self.D, dh_last.shape[1], self.rnn.hidden_size
            dh_n = np.zeros((LD, B, H), self.dtype)
            dh_n[-self.D:] = dh_last
            if self.config["cell"] == "lstm":
                dh_n = (dh_n, None)
        dx, _ = self.rnn.backward(dout, dh_n)
        if self.config.get("vocab_size"):
            self.embed.backward(dx)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config.items())}, " \
               f"parameters={self.params.size})"
