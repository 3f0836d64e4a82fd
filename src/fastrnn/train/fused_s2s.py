"""The fused training step of a `Seq2Seq`: the encoder side in Python (the source embedding and
the encoder, forward with their tapes, as `Seq2Seq.encode(train=True)`), the decoder side --
target embedding, decoder stack from the bridged encoder state, head, softmax cross-entropy masked
past each target's <eos> -- in one native call (a tagger's step, `fused_seq.native_step`, with
initial states and without an optimiser), the initial-state gradient back through the encoder in
Python (as `Seq2Seq.backward`), then the clip and the update over the whole model's flat buffers
in one native call (`fused_update.update`).

`fused.FusedStep` builds it for such a model (`FusedStep(model, ...).step_batch((src,
src_lengths, tgt, tgt_lengths))`); this module holds only what differs from a tagger's step, and
imports nothing of fused.py.
"""
import numpy as np

from . import fused_seq, fused_update


def why_not_model(model):
    """None when the Seq2Seq `model`'s decoder side can run the native step, else the reason. The
    encoder runs in Python (its own forward and backward), so any encoder does (bidirectional
    too)."""
    from ..nn import Linear, SoftmaxCrossEntropy
    if not isinstance(getattr(model, "head", None), Linear) or type(model.loss) is not SoftmaxCrossEntropy:
        return "the head is not a Linear with a softmax cross-entropy"
    dec = getattr(model, "decoder", None)
    if getattr(dec, "batch_first", True) or not hasattr(dec, "_stack_params") or dec.D != 1:
        return "the decoder is not a unidirectional fastrnn layer"
    if model.dtype not in (np.float32, np.float64):
        return f"dtype {model.dtype} is not float32/float64"
    return None


class S2SStep:
    """The step of a Seq2Seq for `owner` (a fused.FusedStep: its model, scratch buffers and
    optimiser spec)."""

    def __init__(self, owner):
        self.owner = owner

    def step(self, batch, opt_spec):
        """Train on one batch (src, src_lengths, tgt, tgt_lengths): returns (status, loss,
        grad_sumsq, param_sumsq) as fused_seq.SeqStep.step does, and leaves what the unfused calls
        leave (no pending tapes)."""
        m, buf = self.owner.model, self.owner._buffer
        src, src_lengths, tgt, tgt_lengths = m._check_batch(batch)
        dec_in, dec_out, steps = m._decoder_rows(tgt, tgt_lengths)
        T, B = dec_in.shape
        state = m.encode(src, src_lengths, train=True)         # the encoder's tapes kept
        dec = m.decoder
        h0, c0 = dec._split_state("h0", state)
        h0 = dec._as_state("h0", h0, B, dec.P, False)
        c0 = dec._as_state("c0", c0, B, dec.hidden_size, False)
        ids = buf("ids", (T, B), np.int32)
        ids[...] = dec_in
        targets = buf("targets", (T * B,), np.int32)
        targets[...] = dec_out.reshape(-1)
        # zeroes the whole model's gradients (the encoder's before its backward below) and fills
        # the decoder side's
        (_, loss, _, _), (dh0, dc0) = fused_seq.native_step(
            self.owner, dec, m.head, targets, dec._lengths(steps, T, B), "steps", None, ids=ids,
            embed=m.tgt_embed, h0=list(h0), c0=None if c0 is None else list(c0))
        m.loss._grad, m.loss.total, m._tape = None, float(steps.sum()), None
        m._encoder_backward((dh0, dc0) if dec.lstm else dh0, src.shape[1])
        return fused_update.update(m, loss, opt_spec)
