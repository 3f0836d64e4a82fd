"""`SequenceTagger` (many-to-many, equal lengths): one label per step, e.g. named-entity tags.
ids or features -> (bidirectional by default) RNN/GRU/LSTM -> dropout -> `head` Linear at every
step -> softmax cross-entropy averaged over the valid steps only (padding costs no loss).
"""
import numpy as np

from .. import checks
from ..nn import Linear, SoftmaxCrossEntropy
from ..nn.module import to_numpy
from .encoder import EncoderModel, valid_mask
from .lm import _NO_TAPE
from .registry import register


@register
class SequenceTagger(EncoderModel):
    """Tag every step of a padded batch; batches are (inputs, tags[, lengths]).

    inputs (B, T) token ids (give vocab_size) or (B, T, input_size) floats; tags (B, T) integer
    tag ids in [0, num_tags) at the valid steps (anything, e.g. -100, past each length).

    Parameters
    ----------
    num_tags : int
    vocab_size : int, optional
        Inputs are (B, T) token ids from this many (an embedding of `embed_size` first).
    input_size : int, optional
        Inputs are (B, T, input_size) floats. Give exactly one of the two.
    embed_size : int, default 32
    hidden_size : int, default 64
    cell : str, default "lstm"
        A recurrent block name: "lstm", "gru", "rnn", ... (``fastrnn.nn.block_names()``).
    num_layers : int, default 1
    bidirectional : bool, default True
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

    def __init__(self, num_tags, vocab_size=None, input_size=None, embed_size=32, hidden_size=64,
                 cell="lstm", num_layers=1, bidirectional=True, dropout=0.0, dtype="float32", seed=None):
        K = checks.positive_int("num_tags", num_tags)
        config, rng = self._init_encoder(vocab_size, input_size, embed_size, hidden_size, cell,
                                         num_layers, bidirectional, dropout, dtype, seed)
        self.config = dict(config, num_tags=K)
        self.head = Linear(self.D * self.config["hidden_size"], K, seed=rng)
        self.loss = SoftmaxCrossEntropy()
        self._shape = None

    def logits(self, inputs, lengths=None, train=False):
        """((T, B, num_tags) time-major scores, lengths); train as `SequenceClassifier.logits`."""
        x, lengths = self._check_inputs(inputs, lengths)
        out, _, _ = self._encode(x, lengths, train)
        logits = self.head.forward(self.drop.forward(out, train), train=train)
        if self._mode(train)[1]:
            self._shape = logits.shape
        return logits, lengths

    def _check_tags(self, tags, lengths, T):
        """tags (B, T) as time-major (T, B) ids, checked at the valid steps, 0 elsewhere."""
        tags = to_numpy(tags)
        if tags.dtype.kind not in "iu":
            raise TypeError(f"targets: expected integer tag ids, got {tags.dtype.name}")
        if tags.shape != (len(lengths), T):
            raise ValueError(f"targets: expected shape {(len(lengths), T)} (as inputs), got {tags.shape}")
        valid = valid_mask(lengths, T)
        tags_tm = np.where(valid, tags.T, 0)
        K = self.config["num_tags"]
        if tags_tm.min() < 0 or tags_tm.max() >= K:
            raise ValueError(f"targets: expected tag ids in [0, {K}) within each length, got "
                             f"{tags.T[valid].min()}..{tags.T[valid].max()}")
        return tags_tm, valid

    def forward(self, batch, train=None):
        """Mean cross-entropy per valid step of a batch (inputs, tags[, lengths]); mode and tape
        as `SequenceClassifier.forward`."""
        inputs, tags, lengths = self._split_batch(batch)
        logits, lengths = self.logits(inputs, lengths, train)
        T, B, K = logits.shape
        tags_tm, valid = self._check_tags(tags, lengths, T)
        return float(self.loss.forward(logits.reshape(T * B, K), tags_tm.reshape(-1),
                                       valid.reshape(-1), keep=self._mode(train)[1]))

    def backward(self):
        """Accumulate into `grads` the gradient of the last training forward's loss."""
        if self._shape is None:
            raise RuntimeError(_NO_TAPE)
        shape, self._shape = self._shape, None
        dout = self.drop.backward(self.head.backward(self.loss.backward().reshape(shape)))
        self._encode_backward(dout)

    def predict(self, inputs, lengths=None):
        """The most likely tag of every valid step: a list of B lists of ints."""
        logits, lengths = self.logits(inputs, lengths)
        best = logits.argmax(axis=2).T                                     # (B, T)
        return [best[b, :n].tolist() for b, n in enumerate(lengths)]
