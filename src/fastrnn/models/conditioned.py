"""Conditioned generation (one-to-many): one conditioning input -> an initial recurrent state ->
a whole sequence.

`StateFromCondition` turns a class id (through an Embedding) or a real vector (through a Linear)
into the state of any unidirectional recurrent stack: state = tanh(proj(condition)), split into
h (L, B, H) and, for an LSTM, c (L, B, H). It is a block: `forward(condition)` -> state,
`backward(dstate)`. Any decoder (a `LanguageModel`, a Seq2Seq decoder, a layer) can start from it.

`ConditionedGenerator` composes it with a `LanguageModel`: condition -> initial state -> next-token
model over [<bos>, y_1 .. y_{T-1}] predicting [y_1 .. y_T]; `generate(condition, length)` samples
a sequence per condition, batched, in the language model's native generation loop
(`LanguageModel.generator`, csrc/generate.h: steps, head, temperature/top-k/top-p and the draw in
C, one call per `fastrnn.sample.CHUNK` tokens) started from the condition's state.
`fastrnn.generate(model, vocab, condition=...)` and `fastrnn.sample.stream` run the same loop as
text, from `condition_start` (with a prime, a stop string, <eos> ending the text, streaming).
"""
import numpy as np

from .. import checks
from ..nn import Embedding, Linear, Module
from ..nn.module import to_numpy
from ..sample import _load_state, check_sampling, next_token_probs, sample_native
from .lm import _NO_TAPE, CELLS, LanguageModel
from .registry import register

# the native loop's limits (fastrnn._kernels.Generator); past them generate steps in Python
_MAX_BATCH, _MAX_LENGTH = 1 << 20, 1 << 30


class StateFromCondition(Module):
    """condition -> initial state of an L-layer `cell` stack of hidden size H.

    Exactly one of num_classes (condition: int ids (B,)) or condition_size (condition: float
    (B, condition_size)) is given. The state is h (L, B, H), or (h, c) for cell="lstm".
    """

    def __init__(self, hidden_size, num_layers=1, cell="lstm", num_classes=None, condition_size=None,
                 dtype="float32", seed=None):
        if cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")
        if (num_classes is None) == (condition_size is None):
            raise ValueError("num_classes, condition_size: expected exactly one of them")
        super().__init__(dtype)
        self.H, self.L = checks.positive_int("hidden_size", hidden_size), checks.positive_int("num_layers", num_layers)
        self.parts = 2 if cell == "lstm" else 1
        width = self.parts * self.L * self.H
        if num_classes is not None:
            self.num_classes = checks.positive_int("num_classes", num_classes)
            self.proj = Embedding(self.num_classes, width, seed=seed)
        else:
            self.num_classes = None
            self.proj = Linear(checks.positive_int("condition_size", condition_size), width, seed=seed)
        self._s = None

    def forward(self, condition, train=None):
        """The state for `condition` (ids (B,) or vectors (B, condition_size)); the tape for
        `backward` is kept unless under `fastrnn.no_grad()` (or with the older train=False)."""
        if self.num_classes is not None:
            z = self.proj.forward(checks.ids("condition", condition, self.num_classes, ndim=1), train=train)
        else:
            condition = to_numpy(condition)
            if condition.dtype.kind != "f":
                raise TypeError(f"condition: expected a float array, got {condition.dtype.name}")
            if condition.ndim != 2 or condition.shape[1] != self.proj.in_features:
                raise ValueError(f"condition: expected shape (B, {self.proj.in_features}), got {condition.shape}")
            z = self.proj.forward(condition, train=train)
        B = z.shape[0]
        if B == 0:
            raise ValueError("condition: expected at least one condition")
        s = np.tanh(z)                                                   # (B, parts*L*H)
        if self._mode(train)[1]:
            self._s = s
        parts = s.reshape(B, self.parts, self.L, self.H).transpose(1, 2, 0, 3)   # (parts, L, B, H)
        parts = [np.ascontiguousarray(p) for p in parts]
        return tuple(parts) if self.parts == 2 else parts[0]

    __call__ = forward

    def backward(self, dstate):
        """Accumulate the gradient of a state gradient (as `forward` returned the state)."""
        if self._s is None:
            raise RuntimeError(_NO_TAPE)
        s, self._s = self._s, None
        parts = dstate if isinstance(dstate, tuple) else (dstate,)
        if len(parts) != self.parts or any(np.shape(p) != (self.L, s.shape[0], self.H) for p in parts):
            raise ValueError(f"dstate: expected {self.parts} array(s) of shape {(self.L, s.shape[0], self.H)}")
        ds = np.stack(parts).transpose(2, 0, 1, 3).reshape(s.shape)
        dz = ds * (1 - s * s)
        return self.proj.backward(dz)          # (None for a class-id condition)


@register
class ConditionedGenerator(Module):
    """A language model whose initial state comes from a condition (class id or vector)."""
    token_loss = True       # the loss is a mean token cross-entropy: the Trainer shows perplexity

    def __init__(self, vocab_size, num_classes=None, condition_size=None, cell="lstm", hidden_size=64,
                 num_layers=1, embed_size=16, bos_id=0, dtype="float32", seed=None):
        V = checks.positive_int("vocab_size", vocab_size)
        checks.integer("bos_id", bos_id, 0, V - 1, expected=f"an id in [0, {V})")
        super().__init__(dtype)
        self.config = dict(vocab_size=V, num_classes=num_classes, condition_size=condition_size, cell=cell,
                           hidden_size=hidden_size, num_layers=num_layers, embed_size=embed_size,
                           bos_id=int(bos_id), dtype=checks.float_dtype(dtype).name, seed=seed)
        rng = np.random.default_rng(seed)
        seeds = [int(s) for s in rng.integers(2**63, size=2)]
        self.condition = StateFromCondition(hidden_size, num_layers, cell, num_classes, condition_size,
                                            dtype=dtype, seed=seeds[0])
        self.lm = LanguageModel(V, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                                embed_size=embed_size, dtype=dtype, seed=seeds[1])

    def forward(self, batch, train=None):
        """Mean cross-entropy per token of batch = (condition (B,) or (B, C), tokens (B, T));
        the tape is kept unless under `fastrnn.no_grad()` (or with the older train=False)."""
        state, inputs, tokens = self._lm_batch(batch, train)
        loss, _ = self.lm.forward(inputs, tokens, state, train=train)
        return loss

    def _lm_batch(self, batch, train):
        """The checked batch as the language model's: (initial state from the condition -- its
        tape kept as `forward` keeps it --, inputs [<bos>, y_1 .. y_{T-1}], targets y) (the fused
        step, train/fused_cond.py, runs the same)."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("batch: expected (condition, tokens (B, T))")
        condition, tokens = batch
        tokens = checks.ids("tokens", tokens, self.config["vocab_size"], ndim=2)
        if tokens.shape[1] == 0:
            raise ValueError("tokens: expected at least one token per sequence")
        state = self.condition.forward(condition, train=train)
        B = (state[0] if isinstance(state, tuple) else state).shape[1]
        if tokens.shape[0] != B:
            raise ValueError(f"tokens: expected {B} sequences (one per condition), got {tokens.shape[0]}")
        inputs = np.empty_like(tokens)
        inputs[:, 0], inputs[:, 1:] = self.config["bos_id"], tokens[:, :-1]
        return state, inputs, tokens

    def backward(self):
        """Accumulate the gradient of the last training forward (LM, then the condition)."""
        self.condition.backward(self.lm.backward())

    def generate(self, condition, length, temperature=1.0, top_k=None, top_p=None, argmax=False, seed=None):
        """Sample `length` tokens for each condition: ids (B, length) int64, one row per condition.

        Temperature, top-k and top-p as `fastrnn.sample`; argmax=True is greedy. Reproducible from
        `seed` (the same tokens on every thread count). No token ends a row early (<eos> included).
        Bad arguments raise TypeError/ValueError naming them (the sampling ones even with argmax);
        a model whose logits become NaN raises ValueError.

        The loop is native: the state from the condition is loaded into the language model's
        generation loop (`LanguageModel.generator`), which steps the layers, the head and the
        draw in C, one call per `fastrnn.sample.CHUNK` tokens, with the same draws in the same
        order as the stepwise loop (`_generate_stepwise`, one uniform per token and row). Greedy
        tokens are the stepwise loop's. A draw takes the first token whose running sum of the
        filtered probabilities exceeds u * their sum (csrc/sampling.h) where the stepwise loop
        searches the cumulative sum of the normalized probabilities for u: the same token for the
        same seed except where u lands within rounding of a bucket edge (and where rounding leaves
        u above every cumulative sum, the stepwise loop takes the last token, the native loop the
        last one with probability > 0). Past the native loop's limits (2^20 conditions, 2^30
        tokens) the stepwise loop runs.
        """
        length = checks.positive_int("length", length)
        check_sampling(temperature, top_k, top_p)
        rng = np.random.default_rng(seed)
        state = self.condition.forward(condition, train=False)
        B = (state[0] if isinstance(state, tuple) else state).shape[1]
        if B > _MAX_BATCH or length > _MAX_LENGTH:
            return self._stepwise(state, length, temperature, top_k, top_p, argmax, rng)
        gen = self.lm.generator(B, length, temperature=temperature, top_k=top_k or 0,
                                top_p=0.0 if top_p is None else top_p, argmax=argmax, eos=-1)
        _load_state(gen, state)
        gen.start(np.full(B, self.config["bos_id"], np.int32))
        sample_native(gen, length, argmax, rng)
        return gen.out.T.astype(np.int64)

    def condition_start(self, condition):
        """Where text from one `condition` (a class id, or one vector of condition_size numbers)
        starts: (the language model, its initial state for one sequence, the first input token
        bos_id). `fastrnn.generate` and `fastrnn.sample.stream` with `condition=` run the language
        model's native loop from there (prime, stop and streaming as for a language model)."""
        one = to_numpy(condition)
        if self.condition.num_classes is not None:
            want, ndim = f"one class id in [0, {self.condition.num_classes})", 0
        else:
            want, ndim = f"one vector of {self.condition.proj.in_features} numbers", 1
        if one.ndim != ndim or (ndim == 1 and one.shape[0] != self.condition.proj.in_features):
            raise ValueError(f"condition: expected {want}, got shape {one.shape}")
        return self.lm, self.condition.forward(one[None], train=False), self.config["bos_id"]

    def _generate_stepwise(self, condition, length, temperature=1.0, top_k=None, top_p=None, argmax=False,
                           seed=None):
        """`generate` as a Python loop over `self.lm.step` (one draw per token and row): the
        reference the native loop is tested against."""
        length = checks.positive_int("length", length)
        check_sampling(temperature, top_k, top_p)
        rng = np.random.default_rng(seed)
        state = self.condition.forward(condition, train=False)
        return self._stepwise(state, length, temperature, top_k, top_p, argmax, rng)

    def _stepwise(self, state, length, temperature, top_k, top_p, argmax, rng):
        B = (state[0] if isinstance(state, tuple) else state).shape[1]
        ids = np.full(B, self.config["bos_id"], np.int64)
        out = np.empty((B, length), np.int64)
        for t in range(length):
            logits, state = self.lm.step(ids, state)
            if argmax:
                if np.isnan(logits).any():      # (as the native loop and fastrnn.generate)
                    raise ValueError("logits: NaN (does the model have non-finite parameters?)")
                ids = logits.argmax(1)
            else:
                for b in range(B):
                    p = next_token_probs(logits[b], temperature, top_k, top_p)
                    ids[b] = min(int(np.searchsorted(np.cumsum(p), rng.random(), side="right")), len(p) - 1)
            out[:, t] = ids
        return out

    def __repr__(self):
        return f"ConditionedGenerator(condition={self.condition.proj!r}, lm={self.lm!r})"
