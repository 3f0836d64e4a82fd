"""`EarlyStopping`: stop training once a monitored value has stopped improving (Keras' callback,
counted in validations), optionally putting back the best parameters at the end."""
import numpy as np

from .. import checks
from .callbacks import Callback


def _mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":      # losses and error rates go down, accuracies and F1 go up
        low = ("loss", "error", "mae", "rmse", "ppl", "rate")
        return "min" if any(w in monitor for w in low) else "max"
    return mode


class EarlyStopping(Callback):
    """Stop when `monitor` (a key of the validation records: "val_loss", "val_acc", ...) has not
    improved by more than `min_delta` for `patience` validations in a row.

    mode: "min", "max" or "auto" (min for names with loss/error/mae/rmse/ppl/rate in them).
    restore_best: at the end of training put back the parameters of the best validation
    (kept in memory, and in checkpoints for an exact resume). A run resumed with the same
    patience after an early stop stops at once. Validations happen every `eval_every`
    iterations: once per epoch when eval_every is the number of batches (task runs' default).

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the validation records.
    patience : int, default 5
        Validations without improvement before stopping (>= 0).
    min_delta : float, default 0.0
        Smallest change that counts as an improvement (>= 0).
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better.
    restore_best : bool, default False
        Put back the best validation's parameters at the end of training.

    Raises
    ------
    TypeError, ValueError
        A bad argument, named in the message.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best: bool = False):
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor: expected the name of a logged value such as 'val_loss', got {monitor!r}")
        checks.integer("patience", patience, 0, expected="an integer >= 0")
        checks.real("min_delta", min_delta, 0, expected="a finite number >= 0")
        if not isinstance(restore_best, (bool, np.bool_)):
            raise TypeError(f"restore_best: expected True or False, got {restore_best!r}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.mode, self.restore_best = _mode(mode, monitor), bool(restore_best)
        self.best, self.best_iteration, self.wait, self.stopped_iteration = None, None, 0, None
        self.best_params = None

    def _improved(self, value):
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, trainer):
        if self.monitor.startswith("val_") and not trainer.val_batches:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} needs validation data (val=...)")
        if self.wait and self.wait >= self.patience:
            self._stop(trainer)         # resumed after an early stop with the same patience

    def on_validation_end(self, trainer, record):
        if self.monitor not in record:
            names = ", ".join(sorted(k for k in record if k not in ("iteration", "epoch", "seconds")))
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not in the validation "
                             f"record (it has {names})")
        value = record[self.monitor]
        if value is None and self.monitor == "val_loss" and not trainer.val_batches:
            raise ValueError("EarlyStopping: monitor 'val_loss' needs validation data (val=...)")
        if value is not None and self._improved(value):
            self.best, self.best_iteration, self.wait = float(value), trainer.iteration, 0
            if self.restore_best:
                self.best_params = trainer.model.params.copy()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self._stop(trainer)

    def _stop(self, trainer):
        self.stopped_iteration = trainer.iteration
        trainer.stop_training, trainer.stop_reason = True, "early stop"

    def on_train_end(self, trainer):
        if self.restore_best and self.best_params is not None:
            trainer.model.params[...] = self.best_params
            invalidate = getattr(trainer.model, "invalidate", None)
            if invalidate is not None:      # weight caches keyed on the parameters' version
                invalidate()

    def checkpoint_state(self):
        state = dict(best=self.best, best_iteration=self.best_iteration, wait=self.wait)
        arrays = {"early_stop/best_params": self.best_params} if self.best_params is not None else {}
        return state, arrays

    def restore(self, state, arrays):
        self.best, self.best_iteration = state.get("best"), state.get("best_iteration")
        self.wait = state.get("wait", 0)
        if self.restore_best and "early_stop/best_params" in arrays:
            self.best_params = np.array(arrays["early_stop/best_params"])
