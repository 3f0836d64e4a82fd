"""`SequenceRegressor` (forecasting, x_{t+1} = f(x_t, ...)): real-valued features -> RNN/GRU/LSTM
-> dropout -> `head` Linear, at every step (output="sequence") or at each sequence's last valid
step (output="last"), trained with the mean squared error over the valid steps.

`forecast(history, steps)` runs the history through the encoder, then feeds each prediction back
as the next input, one `step` of the layer at a time (it needs output_size == input_size).
"""
import numpy as np

from .. import checks
from ..nn import MSE, Linear
from ..nn.module import to_numpy
from .encoder import EncoderModel, valid_mask
from .lm import _NO_TAPE
from .registry import register

OUTPUTS = ("sequence", "last")


@register
class SequenceRegressor(EncoderModel):
    """Predict real vectors from feature sequences; batches are (inputs, targets[, lengths]).

    inputs (B, T, input_size) floats; targets (B, T, output_size) with output="sequence" (e.g.
    the inputs shifted by one step), (B, output_size) with output="last"; lengths (B,) in [1, T].
    Unidirectional (the forecast runs forward in time).

    Parameters
    ----------
    input_size : int
        F, features of each step.
    output_size : int, optional
        Features of each prediction; default `input_size`.
    hidden_size : int, default 64
    cell : str, default "lstm"
        A recurrent block name (``fastrnn.nn.block_names()``).
    num_layers : int, default 1
    output : {"sequence", "last"}, default "sequence"
        A prediction at every step, or one per sequence at its last valid step.
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

    def __init__(self, input_size, output_size=None, hidden_size=64, cell="lstm", num_layers=1,
                 output="sequence", dropout=0.0, dtype="float32", seed=None):
        O = checks.positive_int("output_size", input_size if output_size is None else output_size)
        checks.choice("output", output, OUTPUTS)
        config, rng = self._init_encoder(None, input_size, 1, hidden_size, cell, num_layers,
                                         False, dropout, dtype, seed)
        self.config = dict(input_size=config["input_size"], output_size=O, hidden_size=config["hidden_size"],
                           cell=cell, num_layers=config["num_layers"], output=output,
                           dropout=config["dropout"], dtype=config["dtype"], seed=seed)
        self.head = Linear(self.config["hidden_size"], O, seed=rng)
        self.loss = MSE()
        self._tape = None

    def _predict(self, inputs, lengths, train):
        """(predictions, lengths); see `predict`."""
        x, lengths = self._check_inputs(inputs, lengths)
        out, h_last, _ = self._encode(x, lengths, train)
        last = self.config["output"] == "last"
        y = self.head.forward(self.drop.forward(h_last[0] if last else out, train), train=train)
        if self._mode(train)[1]:
            self._tape = out.shape
        if last:
            return y, lengths
        return np.swapaxes(y, 0, 1) * valid_mask(lengths, y.shape[0]).T[:, :, None], lengths

    def predict(self, inputs, lengths=None):
        """(B, T, output_size) with output="sequence" (0 past each length), else (B, output_size)."""
        return self._predict(inputs, lengths, False)[0]

    def forward(self, batch, train=None):
        """Mean squared error of a batch (inputs, targets[, lengths]) over the valid steps; mode
        and tape as `SequenceClassifier.forward`."""
        inputs, targets, lengths = self._split_batch(batch)
        y, lengths = self._predict(inputs, lengths, train)
        targets = to_numpy(targets)
        if targets.dtype.kind not in "fiu":
            raise TypeError(f"targets: expected real numbers, got {targets.dtype.name}")
        if targets.shape != y.shape:
            raise ValueError(f"targets: expected shape {y.shape}, got {targets.shape}")
        mask = None if self.config["output"] == "last" else valid_mask(lengths, y.shape[1]).T
        return float(self.loss.forward(y, targets, mask, keep=self._mode(train)[1]))

    def backward(self):
        """Accumulate into `grads` the gradient of the last training forward's loss."""
        if self._tape is None:
            raise RuntimeError(_NO_TAPE)
        shape, self._tape = self._tape, None
        dy = self.loss.backward()
        if self.config["output"] == "last":
            dh = self.drop.backward(self.head.backward(dy))
            self._encode_backward(np.zeros(shape, self.dtype), dh[None])
        else:
            dy = np.ascontiguousarray(np.swapaxes(dy, 0, 1))          # (T, B, O); 0 past lengths
            self._encode_backward(self.drop.backward(self.head.backward(dy)))

    def forecast(self, history, steps, lengths=None):
        """Continue each history `steps` steps, feeding every prediction back as the next input.

        history (T, F) (lengths: None or (1,)) or (B, T, F) with lengths (B,) or None; returns
        (steps, F) or (B, steps, F).
        """
        F = self.config["input_size"]
        if self.config["output_size"] != F:
            raise ValueError(f"forecast: needs output_size == input_size, got {self.config['output_size']} "
                             f"and {F}")
        checks.positive_int("steps", steps)
        history = to_numpy(history)
        unbatched = history.ndim == 2
        x, lengths = self._check_inputs(history[None] if unbatched else history, lengths, "history")
        _, h_last, state = self._encode(x, lengths, train=False)   # state at each last valid step
        preds = np.empty((steps, x.shape[0], F), self.dtype)
        preds[0] = self.head.forward(h_last[0], train=False)
        for s in range(1, steps):
            y, state = self.rnn.step(preds[s - 1], state)
            preds[s] = self.head.forward(y, train=False)
        preds = np.swapaxes(preds, 0, 1)
        return preds[0] if unbatched else preds
