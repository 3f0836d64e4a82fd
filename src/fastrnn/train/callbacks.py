"""Small Trainer callbacks for what differs between models.

A callback may implement any of: `on_step_end(trainer, loss)`, `on_epoch_end(trainer)`,
`on_validation_start(trainer)`, `metrics(trainer) -> {name: float}` (added to each log line),
`postfix(trainer) -> {name: str}` (shown in the progress bar until the next checkpoint),
`checkpoint_state() -> (json_dict, {array name: ndarray})` and `restore(json_dict, arrays)`
(for exact resume). `Callback` gives no-op defaults.

Newer hooks, called only where a callback defines them (fastrnn.train.hooks): `on_train_begin
(trainer)`, `on_train_end(trainer)`, `on_epoch_begin(trainer)`, `on_validation_end(trainer,
record)` (record: the log.jsonl line of that validation). A callback stops training with
`trainer.stop_training = True` (and optionally `trainer.stop_reason = "..."`), checked before
the next step; under MPI every rank must decide alike, as decisions on the validation records
(all-reduced, the same on every rank) do. Ready-made: EarlyStopping, ModelCheckpoint,
SchedulerStep, History.
"""
import numpy as np


class Callback:
    """Base class with no-op hooks (override the ones you need)."""

    def on_step_end(self, trainer, loss):
        """After every optimiser step."""

    def on_epoch_end(self, trainer):
        """After the last batch of an epoch."""

    def on_validation_start(self, trainer):
        """Before each pass over the validation batches."""

    def metrics(self, trainer):
        """Extra numbers for this checkpoint's log line."""
        return {}

    def postfix(self, trainer):
        """{name: text} to show in the progress bar after this checkpoint (called after
        `metrics`), e.g. the validation accuracy."""
        return {}

    def checkpoint_state(self):
        """(JSON-serialisable dict, {name: array}) needed to resume exactly."""
        return {}, {}

    def restore(self, state, arrays):
        """Inverse of `checkpoint_state`."""


class ModelForward:
    """The Trainer's default forward: `model.forward(batch, train=train)`. A named type (not a
    lambda) so that the fused native step can recognise it and know the model it calls; a task
    whose batches are not the model's overrides `model_batch` only (the fused step calls it)."""

    def __init__(self, model):
        self.model = model

    def model_batch(self, batch):
        """The batch as `model.forward` takes it."""
        return batch

    def __call__(self, batch, train):
        """The loss of `batch` from the model's own forward."""
        return self.model.forward(self.model_batch(batch), train=train)


class StateCarry(Callback):
    """Truncated BPTT for language models: the forward function that carries the recurrent
    state from one window to the next (reset at each epoch and at each validation pass).

    Use as `Trainer(model, batches, forward=StateCarry(model))`; batches are (inputs, targets).
    Its arrays are (layers, batch, hidden): data-parallel ranks each carry their streams' rows,
    and a checkpoint joins them along `sharded_axis`.
    """
    sharded_axis = 1

    def __init__(self, model):
        self.model, self.state, self.val_state = model, None, None

    def __call__(self, batch, train):
        """The loss of `batch`, continuing from the carried state."""
        inputs, targets = batch
        if train:
            loss, self.state = self.model.forward(inputs, targets, self.state, train=True)
        else:
            loss, self.val_state = self.model.forward(inputs, targets, self.val_state, train=False)
        return loss

    def on_epoch_end(self, trainer):
        self.state = None                   # the streams restart: nothing to carry

    def on_validation_start(self, trainer):
        self.val_state = None

    def checkpoint_state(self):
        s = self.state
        parts = () if s is None else s if isinstance(s, tuple) else (s,)
        return {}, {f"state/{k}": a for k, a in enumerate(parts)}

    def restore(self, state, arrays):
        parts = [arrays[f"state/{k}"] for k in range(2) if f"state/{k}" in arrays]
        self.state = None if not parts else parts[0] if len(parts) == 1 else tuple(parts)


class Metric(Callback):
    """A named number computed at each checkpoint, e.g. validation accuracy:
    `Metric("val_acc", lambda trainer: accuracy(trainer.model, val))`."""

    def __init__(self, name, fn):
        self.name, self.fn = name, fn

    def metrics(self, trainer):
        value = float(self.fn(trainer))
        return {self.name: value if np.isfinite(value) else None}
