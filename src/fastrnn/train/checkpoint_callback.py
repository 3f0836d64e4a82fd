"""`ModelCheckpoint`: write a resumable checkpoint from a callback, after every validation or
only when a monitored value improves (Keras' ModelCheckpoint; the Trainer's own `out=` already
keeps best.npz/last.npz by the validation loss)."""
import math
import os

from .callbacks import Callback
from .early_stopping import _mode


class ModelCheckpoint(Callback):
    """Save `trainer.save(path)` at validations: every one, or with save_best_only only when
    `monitor` improves (mode "min"/"max"/"auto" as EarlyStopping).

    path may hold `{iteration}` and `{epoch}` fields (e.g. "run/iter{iteration}.npz") to keep
    one file per save; the writes are atomic (`fastrnn.save`). `saved` lists the paths written.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; may hold ``{iteration}`` and ``{epoch}`` fields.
    monitor : str, default "val_loss"
        A key of the validation records.
    save_best_only : bool, default True
        Save only when `monitor` improves.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better.

    Raises
    ------
    TypeError, ValueError
        A bad argument, named in the message.
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = True, mode: str = "auto"):
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise TypeError(f"path: expected a file path, got {path!r}")
        try:
            str(path).format(iteration=0, epoch=0)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"path: only {{iteration}} and {{epoch}} may be formatted in {str(path)!r} ({e})") from None
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected the name of a logged value, got {monitor!r}")
        self.path, self.monitor, self.save_best_only = str(path), monitor, bool(save_best_only)
        self.mode, self.best, self.saved = _mode(mode, monitor), None, []

    def on_validation_end(self, trainer, record):
        if self.save_best_only:
            if self.monitor not in record:
                raise ValueError(f"ModelCheckpoint: monitor {self.monitor!r} is not in the validation record")
            value = record[self.monitor]
            if value is None or not math.isfinite(value):
                return
            if self.best is not None and not (value < self.best if self.mode == "min" else value > self.best):
                return
            self.best = float(value)
        path = self.path.format(iteration=trainer.iteration, epoch=trainer.epoch)
        folder = os.path.dirname(path)
        if folder and trainer.is_root:
            os.makedirs(folder, exist_ok=True)
        trainer.save(path)
        self.saved.append(path)

    def checkpoint_state(self):
        return dict(best=self.best), {}

    def restore(self, state, arrays):
        self.best = state.get("best")
