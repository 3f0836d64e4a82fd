"""Sequence to sequence (T_x != T_y): an encoder reads the source, its final state starts a
decoder trained with teacher forcing; greedy and beam-search decoding through the layers' `step`.

    src (B, T_x) ids -> src_embed -> encoder (optionally bidirectional) -> h_n  ─┐ bridge
    [<bos>, y_1 .. y_n] -> tgt_embed -> decoder (state from the bridge) -> head -> softmax-CE
                                                      against [y_1 .. y_n, <eos>]

The bridge has no parameters: a bidirectional encoder's forward and backward final states are
concatenated per layer, so the decoder's hidden size is D*H. Targets are given without `<bos>`
and `<eos>` (the model adds them); the loss is the mean over the real target tokens plus `<eos>`,
masked past each target's length.

Dimension letters: B batch, T time, V vocabulary, E embedding, H hidden, L layers, D directions.
"""
import numpy as np

from .. import checks
from ..nn.loss_math import log_softmax
from ..nn import Embedding, Linear, Module, SoftmaxCrossEntropy
from .lm import _NO_TAPE, CELLS
from .registry import register


# decoding bounds: an untrained model may never emit <eos>, and a beam costs beam_width x V per
# step, so both are capped (a checkpoint's max_len or a --beam past them is refused, not run)
MAX_DECODE_LEN = 100_000
MAX_BEAM = 1_000


def _bounded(name, value, high):
    """A positive int no larger than `high` (ValueError naming `name` otherwise)."""
    value = checks.positive_int(name, value)
    if value > high:
        raise ValueError(f"{name}: expected at most {high}, got {value}")
    return value


def gnmt_penalty(n, alpha):
    """GNMT's length penalty ((5 + n) / 6) ** alpha: a hypothesis scores log P / penalty."""
    return ((5.0 + n) / 6.0) ** alpha


@register
class Seq2Seq(Module):
    """Encoder-decoder over source ids (vocabulary `src_vocab`) and target ids (`tgt_vocab`,
    which holds `bos_id` and `eos_id`); see the module docstring."""
    token_loss = True       # the loss is a mean token cross-entropy: the Trainer shows perplexity

    def __init__(self, src_vocab, tgt_vocab, cell="lstm", embed_size=32, hidden_size=64,
                 num_layers=1, bidirectional=False, bos_id=0, eos_id=1, dtype="float32", seed=None):
        if cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")
        Vs, Vt = checks.positive_int("src_vocab", src_vocab), checks.positive_int("tgt_vocab", tgt_vocab)
        E, H = checks.positive_int("embed_size", embed_size), checks.positive_int("hidden_size", hidden_size)
        L = checks.positive_int("num_layers", num_layers)
        for name, v in (("bos_id", bos_id), ("eos_id", eos_id)):
            checks.integer(name, v, 0, Vt - 1, expected=f"an id in [0, {Vt})")
        if bos_id == eos_id:
            raise ValueError(f"eos_id: expected an id other than bos_id={bos_id}")
        super().__init__(dtype)
        self.config = dict(src_vocab=Vs, tgt_vocab=Vt, cell=cell, embed_size=E, hidden_size=H,
                           num_layers=L, bidirectional=bool(bidirectional), bos_id=int(bos_id),
                           eos_id=int(eos_id), dtype=checks.float_dtype(dtype).name, seed=seed)
        self.D = 2 if bidirectional else 1
        rng = np.random.default_rng(seed)
        seeds = rng.integers(2**63, size=2)
        self.src_embed = Embedding(Vs, E, seed=rng)
        self.encoder = CELLS[cell](E, H, num_layers=L, bidirectional=bool(bidirectional), seed=int(seeds[0]))
        self.tgt_embed = Embedding(Vt, E, seed=rng)
        self.decoder = CELLS[cell](E, self.D * H, num_layers=L, seed=int(seeds[1]))
        self.head = Linear(self.D * H, Vt, seed=rng)
        self.loss = SoftmaxCrossEntropy()
        self._tape = None

    # ---- the bridge: encoder h_n (L*D, B, H) <-> decoder state (L, B, D*H) ----------------------
    def _bridge(self, s):
        L, D = self.config["num_layers"], self.D
        _, B, H = s.shape
        return np.ascontiguousarray(s.reshape(L, D, B, H).transpose(0, 2, 1, 3).reshape(L, B, D * H))

    def _unbridge(self, s):
        L, D = self.config["num_layers"], self.D
        B = s.shape[1]
        return np.ascontiguousarray(s.reshape(L, B, D, -1).transpose(0, 2, 1, 3).reshape(L * D, B, -1))

    def _map_state(self, fn, state):
        return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)

    # ---- training ------------------------------------------------------------------------------
    def _check_batch(self, batch):
        if not isinstance(batch, (tuple, list)) or len(batch) != 4:
            raise TypeError("batch: expected (src (B, T_x), src_lengths (B,) or None, "
                            "tgt (B, T_y), tgt_lengths (B,) or None)")
        src, src_lengths, tgt, tgt_lengths = batch
        src = checks.ids("src", src, self.config["src_vocab"], ndim=2)
        tgt = checks.ids("tgt", tgt, self.config["tgt_vocab"], ndim=2)
        if tgt.shape[0] != src.shape[0]:
            raise ValueError(f"tgt: expected {src.shape[0]} sequences (as src), got {tgt.shape[0]}")
        if src.shape[0] == 0:
            raise ValueError("src: expected at least one sequence")
        return (src, checks.lengths(src_lengths, *src.shape, name="src_lengths"), tgt,
                checks.lengths(tgt_lengths, *tgt.shape, name="tgt_lengths", allow_empty=True))

    def encode(self, src, src_lengths=None, train=False):
        """The decoder's initial state (h, or (h, c) for an LSTM; (L, B, D*H)) for src (B, T_x)."""
        src = checks.ids("src", src, self.config["src_vocab"], ndim=2)
        src_lengths = checks.lengths(src_lengths, *src.shape, name="src_lengths")
        x = self.src_embed.forward(np.ascontiguousarray(src.T), train=train)      # (T_x, B, E)
        _, h_n = self.encoder.forward(x, lengths=src_lengths, train=train)
        return self._map_state(self._bridge, h_n)

    def forward(self, batch, train=None):
        """Mean cross-entropy per target token of batch = (src, src_lengths, tgt, tgt_lengths).

        src (B, T_x) and tgt (B, T_y) are padded id arrays (tgt without <bos>/<eos>); a lengths
        entry of None means every sequence is full length. The tape is kept unless under
        `fastrnn.no_grad()` (the older train=True/False decides it; the model has no dropout).
        """
        src, src_lengths, tgt, tgt_lengths = self._check_batch(batch)
        B, Ty = tgt.shape
        dec_in, dec_out, steps = self._decoder_rows(tgt, tgt_lengths)
        mask = (np.arange(Ty + 1)[:, None] < steps).astype(self.dtype)           # (T, B)
        state = self.encode(src, src_lengths, train=train)
        x = self.tgt_embed.forward(dec_in, train=train)                          # (T, B, E)
        y, _ = self.decoder.forward(x, state, lengths=steps, train=train)        # (T, B, D*H)
        logits = self.head.forward(y, train=train).reshape((Ty + 1) * B, -1)
        tape = self._mode(train)[1]
        loss = self.loss.forward(logits, dec_out.reshape(-1), mask.reshape(-1), keep=tape)
        if tape:
            self._tape = (Ty + 1, B, src.shape[1])
        return float(loss)

    def backward(self):
        """Accumulate into `grads` the gradient of the last training forward's loss."""
        if self._tape is None:
            raise RuntimeError(_NO_TAPE)
        (T, B, Tx), self._tape = self._tape, None
        dy = self.head.backward(self.loss.backward().reshape(T, B, -1))
        dx, dstate = self.decoder.backward(dy)
        self.tgt_embed.backward(dx)
        self._encoder_backward(dstate, Tx)

    def _decoder_rows(self, tgt, tgt_lengths):
        """The decoder's time-major input ids [<bos>, y_1 .. y_T] and targets [y_1 .. y_n, <eos>,
        pad..] ((T_y + 1, B) each) and its lengths (the real tokens and <eos>) for checked tgt
        (B, T_y) and tgt_lengths (B,)."""
        c = self.config
        B, Ty = tgt.shape
        dec_in = np.empty((Ty + 1, B), np.int64)
        dec_in[0], dec_in[1:] = c["bos_id"], tgt.T
        dec_out = np.empty((Ty + 1, B), np.int64)
        dec_out[:Ty] = tgt.T
        dec_out[Ty] = c["eos_id"]
        dec_out[tgt_lengths, np.arange(B)] = c["eos_id"]
        return dec_in, dec_out, tgt_lengths + 1

    def _encoder_backward(self, dstate, Tx):
        """The encoder's and the source embedding's backward (after a training `encode` of T_x
        steps) from the gradient w.r.t. the decoder's initial state (the bridged layout)."""
        dstate = self._map_state(self._unbridge, dstate)
        B = (dstate[0] if isinstance(dstate, tuple) else dstate).shape[1]
        dout = np.zeros((Tx, B, self.D * self.config["hidden_size"]), self.dtype)
        dx, _ = self.encoder.backward(dout, dstate)
        self.src_embed.backward(dx)

    # ---- decoding --------------------------------------------------------------------------------
    def step(self, ids, state):
        """One decoder step: ids (B,) -> (log-probabilities (B, V), new state). Keeps no tape."""
        x = self.tgt_embed.forward(ids, train=False)
        y, state = self.decoder.step(x, state)
        return log_softmax(self.head.forward(y, train=False)), state

    def greedy(self, src, src_lengths=None, max_len=50):
        """The most likely next token at every step, batched: a list of B id lists (without <eos>)."""
        max_len = _bounded("max_len", max_len, MAX_DECODE_LEN)
        state = self.encode(src, src_lengths)
        B, eos = (state[0] if isinstance(state, tuple) else state).shape[1], self.config["eos_id"]
        ids = np.full(B, self.config["bos_id"], np.int64)
        out, done = [[] for _ in range(B)], np.zeros(B, bool)
        for _ in range(max_len):
            logp, state = self.step(ids, state)
            ids = logp.argmax(1)
            for b in np.flatnonzero(~done):
                if ids[b] == eos:
                    done[b] = True
                else:
                    out[b].append(int(ids[b]))
            if done.all():
                break
        return out

    def beam_search(self, src, src_lengths=None, beam_width=4, max_len=50, alpha=0.0):
        """Beam search per source sequence (the beams of one sequence run as one batch).

        Each step keeps the `beam_width` most likely extensions (by log-probability); one that
        ends in <eos>, or reaches `max_len` tokens, is finished. The result for each sequence is
        the finished hypothesis with the best log P / gnmt_penalty(length, alpha) (length counts
        <eos>; alpha=0: plain log P). Returns a list of (ids without <eos>, score) per sequence.
        """
        beam_width = _bounded("beam_width", beam_width, MAX_BEAM)
        max_len = _bounded("max_len", max_len, MAX_DECODE_LEN)
        checks.real("alpha", alpha, 0, expected="a non-negative number")
        state = self.encode(src, src_lengths)
        parts = state if isinstance(state, tuple) else (state,)
        return [self._beam([p[:, b:b + 1] for p in parts], beam_width, max_len, alpha)
                for b in range(parts[0].shape[1])]

    def _beam(self, parts, width, max_len, alpha):
        """Beam search from one sequence's state (a list of (L, 1, D*H) parts)."""
        eos, V = self.config["eos_id"], self.config["tgt_vocab"]
        seqs, scores = [[]], np.zeros(1)
        ids = np.array([self.config["bos_id"]], np.int64)
        finished = []                                    # (normalised score, ids, log P)
        for t in range(max_len):
            state = tuple(parts) if len(parts) == 2 else parts[0]
            logp, state = self.step(ids, state)
            parts = list(state) if isinstance(state, tuple) else [state]
            total = (scores[:, None] + logp).reshape(-1)             # (k*V,)
            k = min(width, total.size)
            best = np.argsort(-total, kind="stable")[:k]
            keep = []
            for i in best:
                beam, token = divmod(int(i), V)
                ys = seqs[beam] + [token]
                if token == eos or t == max_len - 1:
                    finished.append((total[i] / gnmt_penalty(len(ys), alpha), ys, total[i]))
                else:
                    keep.append((i, beam, ys))
            if not keep:
                break
            rows = np.array([beam for _, beam, _ in keep])
            seqs = [ys for _, _, ys in keep]
            scores = total[[i for i, _, _ in keep]]
            ids = np.array([ys[-1] for ys in seqs], np.int64)
            parts = [np.ascontiguousarray(p[:, rows]) for p in parts]
        score, ys, _ = max(finished, key=lambda f: f[0])
        return (ys[:-1] if ys[-1] == eos else ys), float(score)

    def __repr__(self):
        c = self.config
        return (f"Seq2Seq(src_vocab={c['src_vocab']}, tgt_vocab={c['tgt_vocab']}, cell={c['cell']!r}, "
                f"hidden_size={c['hidden_size']}, bidirectional={c['bidirectional']}, "
                f"parameters={self.params.size})")
