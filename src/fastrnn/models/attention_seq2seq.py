"""Sequence to sequence with attention (Luong et al. 2015, global attention without input
feeding): `Seq2Seq`'s encoder, bridge and decoder, and at every target step the decoder's
output attends over the encoder's outputs (masked past each source's length).

    src -> src_embed -> encoder -> memory m (B, T_x, D*H), h_n ─┐ bridge
    [<bos>, y_1 .. y_n] -> tgt_embed -> decoder -> h_t  (state from the bridge)
    c_t = Attention(h_t over m)                 (score "general" or "additive")
    o_t = tanh(combine([c_t ; h_t]))  -> head -> softmax-CE against [y_1 .. y_n, <eos>]

Without input feeding the decoder does not see c_t, so the whole target runs through the
recurrent kernels in one call, and attention, combine and head run over all steps at once.
Parameter names (as the same model built in PyTorch): Seq2Seq's, then `attention.*` and
`combine.weight`/`combine.bias` (a Linear(2*D*H, D*H)).

Decoding reuses Seq2Seq's greedy and beam search: the decoding state is the pair (recurrent
state, memory), both with the batch on axis 1 so the beam reorders them alike: the recurrent
state as (L, B, D*H) (an LSTM's h and c side by side, (L, B, 2*D*H)), the memory time-major
(T_x, B, D*H + 1) whose last channel is 1 on the valid source steps.

Dimension letters: B batch, T time, V vocabulary, E embedding, H hidden, L layers, D directions.
"""
import numpy as np

from .. import checks
from ..nn.loss_math import log_softmax
from ..nn import Attention, Linear
from .registry import register
from .seq2seq import Seq2Seq


@register
class AttentionSeq2Seq(Seq2Seq):
    """Seq2Seq whose decoder attends over the encoder's outputs; see the module docstring.

    attention: "general" (Luong) or "additive" (Bahdanau); attn_size: the additive score's
    hidden size (default D*H). Other arguments as `Seq2Seq`.
    """

    onnx_export_error = ("model: AttentionSeq2Seq has no ONNX export: its decoding feeds each step's "
                         "choice back into the next step (greedy or beam search, run in Python), a loop "
                         "fastrnn's exporter does not build; export model.encoder and model.decoder "
                         "(plain layers) instead")

    def __init__(self, src_vocab, tgt_vocab, cell="lstm", embed_size=32, hidden_size=64,
                 num_layers=1, bidirectional=False, bos_id=0, eos_id=1, attention="general",
                 attn_size=None, dtype="float32", seed=None):
        if attention not in ("general", "additive"):
            raise ValueError(f"attention: expected 'general' or 'additive', got {attention!r}")
        attn_size = None if attn_size is None else checks.positive_int("attn_size", attn_size)
        super().__init__(src_vocab, tgt_vocab, cell=cell, embed_size=embed_size, hidden_size=hidden_size,
                         num_layers=num_layers, bidirectional=bidirectional, bos_id=bos_id,
                         eos_id=eos_id, dtype=dtype, seed=seed)
        self.config.update(attention=attention, attn_size=attn_size)
        K = self.D * self.config["hidden_size"]
        # its own stream, so Seq2Seq's parameters are drawn exactly as Seq2Seq draws them
        whole = checks.is_integer(seed)
        rng = np.random.default_rng([int(seed), 1] if whole else seed)
        self.attention = Attention(K, K, score=attention, attn_size=attn_size, seed=rng)
        self.combine = Linear(2 * K, K, seed=rng)

    # ---- training ------------------------------------------------------------------------------
    def forward(self, batch, train=True):
        """Mean cross-entropy per target token, as `Seq2Seq.forward`."""
        src, src_lengths, tgt, tgt_lengths = self._check_batch(batch)
        B, Ty = tgt.shape
        dec_in, dec_out, steps = self._decoder_rows(tgt, tgt_lengths)
        mask = (np.arange(Ty + 1)[:, None] < steps).astype(self.dtype)            # (T, B)
        x = self.src_embed.forward(np.ascontiguousarray(src.T), train=train)       # (T_x, B, E)
        memory, h_n = self.encoder.forward(x, lengths=src_lengths, train=train)   # (T_x, B, K)
        state = self._map_state(self._bridge, h_n)
        y, _ = self.decoder.forward(self.tgt_embed.forward(dec_in, train=train), state,
                                    lengths=steps, train=train)                    # (T, B, K)
        o = self._attend(y, memory, src_lengths, train)
        logits = self.head.forward(o, train=train).reshape((Ty + 1) * B, -1)
        loss = self.loss.forward(logits, dec_out.reshape(-1), mask.reshape(-1))
        self._tape = (Ty + 1, B, o) if train else None
        return float(loss)

    def _attend(self, y, memory, src_lengths, train):
        """o = tanh(combine([context; y])) for decoder outputs y (T, B, K), memory (T_x, B, K)."""
        context, _ = self.attention.forward(np.swapaxes(y, 0, 1), np.swapaxes(memory, 0, 1),
                                            src_lengths, train=train)             # (B, T, K)
        both = np.concatenate([np.swapaxes(context, 0, 1), y], axis=2)             # (T, B, 2K)
        return np.tanh(self.combine.forward(both, train=train))

    def backward(self):
        """Accumulate into `grads` the gradient of the last training forward's loss."""
        if self._tape is None:
            raise RuntimeError("backward: call forward(..., train=True) first")
        (T, B, o), self._tape = self._tape, None
        K = o.shape[2]
        do = self.head.backward(self.loss.backward().reshape(T, B, -1))
        dboth = self.combine.backward(do * (1 - o * o))                           # (T, B, 2K)
        dq, dmemory = self.attention.backward(np.swapaxes(dboth[..., :K], 0, 1))
        dy = np.ascontiguousarray(dboth[..., K:] + np.swapaxes(dq, 0, 1))
        dx, dstate = self.decoder.backward(dy)
        self.tgt_embed.backward(dx)
        dx, _ = self.encoder.backward(np.ascontiguousarray(np.swapaxes(dmemory, 0, 1)),
                                      self._map_state(self._unbridge, dstate))
        self.src_embed.backward(dx)

    # ---- decoding: Seq2Seq.greedy and beam_search call these ------------------------------------
    def encode(self, src, src_lengths=None):
        """The decoding state (recurrent state, memory) for src (B, T_x); see the module docstring."""
        src = checks.ids("src", src, self.config["src_vocab"], ndim=2)
        src_lengths = checks.lengths(src_lengths, *src.shape, name="src_lengths")
        x = self.src_embed.forward(np.ascontiguousarray(src.T), train=False)
        out, h_n = self.encoder.forward(x, lengths=src_lengths, train=False)
        valid = (np.arange(src.shape[1])[:, None] < src_lengths)[..., None]       # (T_x, B, 1)
        memory = np.concatenate([out, valid.astype(self.dtype)], axis=2)
        return self._pack(self._map_state(self._bridge, h_n)), memory

    def step(self, ids, state):
        """One decoder step: ids (B,) -> (log-probabilities (B, V), new state). Keeps no tape."""
        K = self.D * self.config["hidden_size"]
        if not isinstance(state, tuple) or len(state) != 2 or np.ndim(state[1]) != 3 \
                or np.shape(state[1])[2] != K + 1:
            raise ValueError(f"state: expected the (recurrent state, memory (T_x, B, {K + 1})) pair "
                             "of this model's encode or step")
        packed, memory = state
        y, rnn_state = self.decoder.step(self.tgt_embed.forward(ids, train=False), self._unpack(packed))
        lengths = memory[..., -1].sum(0).astype(np.int64)
        o = self._attend(y[None], memory[..., :-1], lengths, train=False)[0]
        return log_softmax(self.head.forward(o, train=False)), (self._pack(rnn_state), memory)

    def _pack(self, state):
        return np.concatenate(state, axis=2) if isinstance(state, tuple) else state

    def _unpack(self, packed):
        if self.config["cell"] != "lstm":
            return np.ascontiguousarray(packed)
        K = packed.shape[2] // 2
        return np.ascontiguousarray(packed[..., :K]), np.ascontiguousarray(packed[..., K:])

    def __repr__(self):
        return super().__repr__().replace("Seq2Seq(", f"AttentionSeq2Seq(attention={self.config['attention']!r}, ", 1)
