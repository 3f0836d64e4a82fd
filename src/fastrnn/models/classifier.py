"""`SequenceClassifier` (many-to-one): a variable-length sequence -> one label (softmax) or a set of
labels (sigmoid, multi-label), e.g. sentiment. ids or features -> RNN/GRU/LSTM -> pooling over
the valid steps -> dropout -> `head` Linear -> softmax cross-entropy or binary cross-entropy.

Pooling: "last" is the state at each sequence's last valid step (bidirectional: the forward
direction's last valid state next to the reverse direction's state at t=0, as torch's h_n with
pack_padded_sequence); "mean" and "max" pool the outputs over the valid steps only.
"""
import numpy as np

from .. import checks
from ..nn.loss_math import softmax
from ..nn import BCEWithLogits, Linear, SoftmaxCrossEntropy
from ..nn.module import to_numpy
from .encoder import EncoderModel, valid_mask
from .lm import _NO_TAPE
from .registry import register

POOLING = ("last", "mean", "max")


@register
class SequenceClassifier(EncoderModel):
    """Classify each sequence of a padded batch; batches are (inputs, labels[, lengths]).

    inputs (B, T) token ids (give vocab_size) or (B, T, input_size) floats; labels (B,) class ids,
    or (B, num_classes) targets in [0, 1] with multi_label=True; lengths (B,) in [1, T].

    Parameters
    ----------
    num_classes : int
    vocab_size : int, optional
        Inputs are (B, T) token ids from this many (an embedding of `embed_size` first).
    input_size : int, optional
        Inputs are (B, T, input_size) floats. Give exactly one of the two.
    embed_size : int, default 32
    hidden_size : int, default 64
    cell : str, default "lstm"
        A recurrent block name: "lstm", "gru", "rnn", ... (``fastrnn.nn.block_names()``).
    num_layers : int, default 1
    bidirectional : bool, default False
    pooling : {"last", "mean", "max"}, default "last"
        How the steps' outputs become one vector per sequence.
    multi_label : bool, default False
        Independent sigmoid outputs (binary cross-entropy) instead of a softmax.
    dropout : float, default 0.0
        Between the recurrent layers and on the encoder's features, in training mode; in [0, 1).
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional
        Seeds the weights and the dropout masks.

    Raises
    ------
    ValueError
        A bad size or option, named in the message.
    """

    def __init__(self, num_classes, vocab_size=None, input_size=None, embed_size=32, hidden_size=64,
                 cell="lstm", num_layers=1, bidirectional=False, pooling="last", multi_label=False,
                 dropout=0.0, dtype="float32", seed=None):
        C = checks.positive_int("num_classes", num_classes)
        checks.choice("pooling", pooling, POOLING)
        config, rng = self._init_encoder(vocab_size, input_size, embed_size, hidden_size, cell,
                                         num_layers, bidirectional, dropout, dtype, seed)
        self.config = dict(config, num_classes=C, pooling=pooling, multi_label=bool(multi_label))
        self.head = Linear(self.D * self.config["hidden_size"], C, seed=rng)
        self.loss = BCEWithLogits() if multi_label else SoftmaxCrossEntropy()
        self._tape = None

    # ---- forward / backward --------------------------------------------------------------------
    def _pool(self, out, h_last, lengths):
        """The (B, D*H) features of each sequence, and what `_unpool` needs."""
        pooling = self.config["pooling"]
        if pooling == "last":
            return np.concatenate(list(h_last), axis=1), None
        if pooling == "mean":
            return out.sum(axis=0) / lengths[:, None].astype(self.dtype), None
        masked = np.where(valid_mask(lengths, out.shape[0])[:, :, None], out, -np.inf)
        arg = masked.argmax(axis=0)                                   # (B, D*H) step of each max
        return np.take_along_axis(out, arg[None], axis=0)[0], arg

    def _unpool(self, dpooled, shape, lengths, arg):
        """(d out (T, B, D*H), d h_n of the last layer (D, B, H) or None) from d pooled."""
        T, B, DH = shape
        pooling = self.config["pooling"]
        if pooling == "last":
            return np.zeros(shape, self.dtype), dpooled.reshape(B, self.D, -1).transpose(1, 0, 2)
        if pooling == "mean":
            scale = valid_mask(lengths, T)[:, :, None] / lengths[None, :, None].astype(self.dtype)
            return (scale * dpooled[None]).astype(self.dtype), None
        dout = np.zeros(shape, self.dtype)
        np.put_along_axis(dout, arg[None], dpooled[None], axis=0)
        return dout, None

    def logits(self, inputs, lengths=None, train=False):
        """(B, num_classes) scores of a batch; train=False (the default here): no dropout, no
        tape; None: as `forward`; True: dropout and the tape for `backward`."""
        x, lengths = self._check_inputs(inputs, lengths)
        out, h_last, _ = self._encode(x, lengths, train)
        pooled, arg = self._pool(out, h_last, lengths)
        logits = self.head.forward(self.drop.forward(pooled, train), train=train)
        if self._mode(train)[1]:
            self._tape = (out.shape, lengths, arg)
        return logits

    def _check_targets(self, targets, B):
        targets = to_numpy(targets)
        if self.config["multi_label"]:
            C = self.config["num_classes"]
            if targets.dtype.kind not in "fiub":
                raise TypeError(f"targets: expected numbers in [0, 1], got {targets.dtype.name}")
            if targets.shape != (B, C):
                raise ValueError(f"targets: expected shape ({B}, {C}) for multi-label, got {targets.shape}")
            if not ((targets >= 0) & (targets <= 1)).all():
                raise ValueError("targets: expected values in [0, 1] for multi-label")
        elif targets.shape != (B,):
            raise ValueError(f"targets: expected shape ({B},) (a class id per sequence), got {targets.shape}")
        return targets

    def forward(self, batch, train=None):
        """Mean loss of a batch (inputs, targets[, lengths]). Dropout follows train()/eval(); the
        tape is kept unless under `fastrnn.no_grad()` (the older train=True/False decides both)."""
        inputs, targets, lengths = self._split_batch(batch)
        logits = self.logits(inputs, lengths, train)
        return float(self.loss.forward(logits, self._check_targets(targets, logits.shape[0]),
                                       keep=self._mode(train)[1]))

    def backward(self):
        """Accumulate into `grads` the gradient of the last training forward's loss."""
        if self._tape is None:
            raise RuntimeError(_NO_TAPE)
        (shape, lengths, arg), self._tape = self._tape, None
        dpooled = self.drop.backward(self.head.backward(self.loss.backward()))
        self._encode_backward(*self._unpool(dpooled, shape, lengths, arg))

    # ---- prediction ------------------------------------------------------------------------------
    def predict_proba(self, inputs, lengths=None):
        """(B, num_classes) class probabilities (softmax), or per-label probabilities (sigmoid)."""
        z = self.logits(inputs, lengths)
        if self.config["multi_label"]:
            return 0.5 * (1 + np.tanh(0.5 * z))          # the sigmoid, stable for any z
        return softmax(z)

    def predict(self, inputs, lengths=None, threshold=0.5):
        """(B,) class ids, or (B, num_classes) 0/1 labels (probability > threshold) if multi-label."""
        if self.config["multi_label"]:
            return (self.predict_proba(inputs, lengths) > threshold).astype(np.int64)
        return self.logits(inputs, lengths).argmax(axis=1)
