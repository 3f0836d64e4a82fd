"""The character/word language model: ids -> embedding (or one-hot) -> RNN/GRU/LSTM stack ->
`head` Linear -> softmax cross-entropy, composed from `fastrnn.nn` blocks.

Its parameters are one flat buffer (`model.params`) with PyTorch-style dotted names, so the same
model built in PyTorch maps onto it name by name:

    embed.weight (V, E)            only with embed_size
    rnn.weight_ih_l0 (G*H, E or V) ... as in the layers
    head.weight (V, H), head.bias (V,)

Dimension letters: B batch, T time steps, V vocabulary, E embedding, H hidden, G gates.
"""
import functools

import numpy as np

from .. import checks
from ..nn import Embedding, Linear, Module, SoftmaxCrossEntropy
from ..nn.generate import NativeStep, native_generator
from ..nn.recurrent import block_names, build_block
from .registry import register

# cell name -> layer constructor, from the one registry of recurrent blocks (fastrnn.nn.recurrent)
CELLS = {name: functools.partial(build_block, name) for name in block_names()}
_NO_TAPE = "backward: no tape; call forward first, outside fastrnn.no_grad()"


@register
class LanguageModel(Module):
    """Next-token model over a vocabulary of `vocab_size` ids; see the module docstring."""
    token_loss = True       # the loss is a mean token cross-entropy: the Trainer shows perplexity

    def __init__(self, vocab_size, cell="lstm", hidden_size=128, num_layers=2, dropout=0.0,
                 embed_size=None, dtype="float32", seed=None):
        if cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")
        V, H = checks.positive_int("vocab_size", vocab_size), checks.positive_int("hidden_size", hidden_size)
        L, E = checks.positive_int("num_layers", num_layers), checks.positive_int("embed_size", embed_size, True)
        super().__init__(dtype)
        self.config = dict(vocab_size=V, cell=cell, hidden_size=H, num_layers=L, dropout=float(dropout),
                           embed_size=E, dtype=checks.float_dtype(dtype).name, seed=seed)
        rng = np.random.default_rng(seed)       # draws in this order: stack seed, embedding, head
        rnn_seed = int(rng.integers(2**63))
        if E:
            self.embed = Embedding(V, E, seed=rng)
        self.rnn = CELLS[cell](E or V, H, num_layers=L, dropout=dropout, seed=rnn_seed)
        self.head = Linear(H, V, seed=rng)
        self.loss = SoftmaxCrossEntropy()
        self._tape = None

    # ---- forward / backward --------------------------------------------------------------------
    def _input(self, ids_tm, train):
        """The layer stack's input for time-major ids and its input mode: embedding rows, or the
        ids themselves, read as one-hot inputs by the stack (columns of W_ih, no one-hot matrix)."""
        if self.config["embed_size"]:
            return self.embed.forward(ids_tm, train=train), "features"
        return ids_tm, "ids"

    def forward(self, inputs, targets, state=None, train=None):
        """Mean cross-entropy (nats/token) of predicting `targets` (B, T) from `inputs` (B, T).

        `state` is the layer stack's state from a previous call (truncated BPTT) or None.
        Returns (loss, state). Dropout follows train()/eval(); the tape for `backward` is kept
        unless under `fastrnn.no_grad()` (the older train=True/False decides both).
        """
        tape = self._mode(train)[1]
        V = self.config["vocab_size"]
        inputs = checks.ids("inputs", inputs, V, ndim=2)
        targets = checks.ids("targets", targets, V, ndim=2)
        if targets.shape != inputs.shape:
            raise ValueError(f"targets: expected shape {inputs.shape} (as inputs), got {targets.shape}")
        ids_tm = np.ascontiguousarray(inputs.T)                                   # (T, B)
        x, mode = self._input(ids_tm, train)
        y, state = self.rnn.forward(x, state, train=train, input=mode)            # (T, B, H)
        T, B, _ = y.shape
        logits = self.head.forward(y, train=train).reshape(T * B, V)              # (T*B, V)
        loss = self.loss.forward(logits, targets.T.reshape(-1), keep=tape)
        if tape:            # an inference forward leaves a pending tape alone
            self._tape = ids_tm.shape
        return float(loss), state        # fresh arrays from the layers: safe to carry over

    def backward(self):
        """Accumulate into `model.grads` the gradient of the loss of the last training forward.

        Returns the gradient w.r.t. the `state` given to that forward (as the layer stack's
        `backward` returns dh0), so a state computed from a condition can be trained through it.
        """
        if self._tape is None:
            raise RuntimeError(_NO_TAPE)
        (T, B), self._tape = self._tape, None
        dlogits = self.loss.backward()                            # fused: (p - 1hot) / N
        dy = self.head.backward(dlogits.reshape(T, B, -1))        # (T, B, H)
        dx, dstate = self.rnn.backward(dy)      # one-hot input: the stack added into W_ih's columns
        if self.config["embed_size"]:
            self.embed.backward(dx)
        return dstate

    def step(self, ids, state=None):
        """Advance one token per sequence: ids (B,) -> (logits (B, V), state). Keeps no tape."""
        V = self.config["vocab_size"]
        if type(ids) is not np.ndarray or ids.ndim != 1 or ids.dtype.kind not in "iu":
            ids = checks.ids("ids", ids, V, ndim=1)     # (converts, or refuses the type / shape)
        # one native call for the stack and the head when it applies (nn/generate.py; it checks
        # the ids' range); its cache lives in the instance dict, outside the Module tree
        native = self.__dict__.get("_native_step") or self.__dict__.setdefault("_native_step", NativeStep())
        fast = native(self.rnn, self.head, self.embed if self.config["embed_size"] else None, ids, state)
        if fast is not None:
            return fast
        ids = checks.ids("ids", ids, V, ndim=1)
        x, mode = self._input(ids, train=False)
        y, state = self.rnn.step(x, state, input=mode)
        return self.head.forward(y, train=False), state

    def generator(self, batch, max_len, **sampling):
        """A native generation loop (`fastrnn._kernels.Generator`) over this model's current
        weights for `batch` sequences of at most `max_len` tokens; `sampling` as its keywords.
        The loop runs the same products as `step` + the head, so greedy decoding gives the same
        tokens; the weights must not change while it is used."""
        embed = self.embed if self.config["embed_size"] else None
        return native_generator(self.rnn, self.head, embed, batch=batch, max_len=max_len, **sampling)

    def __repr__(self):
        c = self.config
        return (f"LanguageModel(vocab_size={c['vocab_size']}, cell={c['cell']!r}, hidden_size="
                f"{c['hidden_size']}, num_layers={c['num_layers']}, embed_size={c['embed_size']}, "
                f"dtype={c['dtype']!r}, parameters={self.params.size})")
