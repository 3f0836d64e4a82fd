"""`History`: what `Trainer.fit` / `fastrnn.fit` return -- one record per validation (the lines
of log.jsonl) and one per completed epoch, and how the run ended.

`Trainer.fit()` used to return a summary dict; `history["stopped"]` (and "iterations",
"epochs", "best_val", "seconds") still work, with a DeprecationWarning: use the attributes.
"""
import math
import time
import warnings

import numpy as np

from .callbacks import Callback

SUMMARY_KEYS = ("stopped", "iterations", "epochs", "best_val", "seconds")


class History(Callback):
    """Records of one `fit` call.

    records: per-validation dicts, as written to log.jsonl (iteration, epoch, train_loss,
    val_loss, lr, the callbacks' metrics, ...); epochs: per-epoch dicts (epoch, iteration,
    train_loss = mean over the epoch's steps, lr at its last step, seconds, and the validation
    values when a validation fell on the epoch's end). After fit: stopped ("done", "time budget",
    "interrupted", "early stop", ...), iterations, epochs_done (float), best_val, seconds.

    Attributes
    ----------
    records : list of dict
        One per validation, as written to log.jsonl.
    epochs : list of dict
        One per epoch.
    stopped : str or None
        Why the run ended.
    iterations : int
        Training steps run.
    epochs_done : float
        Epochs run (fractional when stopped mid-epoch).
    best_val : float or None
        The best validation loss.
    seconds : float
        Wall time of the run.
    """

    def __init__(self):
        self.records, self.epochs = [], []
        self.stopped, self.iterations, self.epochs_done = None, 0, 0.0
        self.best_val, self.seconds = math.inf, 0.0
        self._losses, self._t0, self._elapsed0 = [], None, 0.0

    # ---- hooks (the Trainer adds the History as its first callback during fit) -----------------
    def on_train_begin(self, trainer):
        self._t0, self._elapsed0 = time.perf_counter(), trainer.elapsed

    def on_step_end(self, trainer, loss):
        self._losses.append(loss)

    def on_epoch_end(self, trainer):
        self.epochs.append(dict(epoch=trainer.epoch, iteration=trainer.iteration,
                                train_loss=float(np.mean(self._losses)) if self._losses else None,
                                lr=trainer.optimizer.lr,
                                seconds=round(self._elapsed0 + time.perf_counter() - self._t0, 3)))
        self._losses = []

    def on_validation_end(self, trainer, record):
        self.records.append(dict(record))
        last = self.epochs[-1] if self.epochs else None
        if last is not None and last["iteration"] == record["iteration"]:
            last.update((k, v) for k, v in record.items() if k not in last)

    def finish(self, summary):
        """Fill in how the run ended from the Trainer's summary; returns self."""
        self.stopped, self.iterations = summary["stopped"], summary["iterations"]
        self.epochs_done, self.best_val = summary["epochs"], summary["best_val"]
        self.seconds = summary["seconds"]
        return self

    # ---- reading ---------------------------------------------------------------------------------
    def metric(self, name: str) -> list:
        """The values of `name` over the validation records (None where a record lacks it).

        Parameters
        ----------
        name : str
            A key of the records, e.g. "val_loss".

        Returns
        -------
        list
            One value (or None) per validation record.
        """
        return [r.get(name) for r in self.records]

    def summary(self) -> dict:
        """The dict `Trainer.fit()` returned before it returned a History."""
        return dict(stopped=self.stopped, iterations=self.iterations, epochs=self.epochs_done,
                    best_val=self.best_val, seconds=self.seconds)

    def __getitem__(self, key):
        if key not in SUMMARY_KEYS:
            raise KeyError(key)
        warnings.warn(f"history[{key!r}]: the summary-dict access of Trainer.fit()'s result is "
                      f"deprecated; use history.{'epochs_done' if key == 'epochs' else key}",
                      DeprecationWarning, stacklevel=2)
        return self.summary()[key]

    def __repr__(self):
        return (f"History(stopped={self.stopped!r}, iterations={self.iterations}, "
                f"{len(self.epochs)} epochs, {len(self.records)} validations, best_val={self.best_val:.4g})")
