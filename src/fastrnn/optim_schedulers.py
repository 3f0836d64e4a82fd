"""Learning-rate schedulers with torch.optim.lr_scheduler's semantics: `CosineAnnealingLR`
(torch's recursive form, so the rates are the same floats) and `ReduceLROnPlateau`.

They work on any fastrnn optimiser (its `lr` attribute) and are exported from `fastrnn.optim`
next to `StepLR` and `ExponentialLR`. Plug one into training with
`fastrnn.fit(..., scheduler=lambda opt: CosineAnnealingLR(opt, T_max=10))`: epoch schedulers
step after every epoch, `ReduceLROnPlateau` after every validation with the validation loss.
`state_dict()`/`load_state_dict()` hold JSON-serialisable numbers, for checkpoints.
"""
import math

from . import checks
from .params import is_real


def _int(name, value, low):
    return checks.integer(name, value, low, expected=f"an integer >= {low}")


def _real(name, value, low=0.0, high=None, high_open=False):
    return checks.real(name, value, low, high, high_open=high_open)


def _optimizer(optimizer):
    if not is_real(getattr(optimizer, "lr", None)):
        raise TypeError(f"optimizer: expected a fastrnn.optim optimiser (with a numeric lr), "
                        f"got {type(optimizer).__name__}")
    return optimizer


class LRScheduler:
    """Base: holds the optimiser and `last_epoch`; state is every plain-number attribute."""

    def state_dict(self):
        """The scheduler's state (JSON-serialisable numbers), without the optimiser."""
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state):
        """Restore a `state_dict` of the same scheduler type."""
        unknown = sorted(set(state) - set(self.state_dict()))
        if unknown:
            raise ValueError(f"state: unknown keys {unknown} for {type(self).__name__}")
        vars(self).update(state)

    def get_last_lr(self):
        """The learning rate the last step set (a one-element list, as torch)."""
        return [self.optimizer.lr]


class CosineAnnealingLR(LRScheduler):
    """lr follows a cosine from its initial value down to eta_min over T_max steps (and back up
    over the next T_max, as torch), computed by torch's recursive formula.

    Parameters
    ----------
    optimizer : Optimizer
        The optimiser whose ``lr`` is scheduled.
    T_max : int
        Steps of the half period (>= 1).
    eta_min : float, default 0.0
        The lowest learning rate.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.optimizer = _optimizer(optimizer)
        self.T_max, self.eta_min = _int("T_max", T_max, 1), _real("eta_min", eta_min)
        self.base_lr, self.last_epoch = float(optimizer.lr), 0

    def step(self):
        """Advance one epoch (or iteration) and set the optimiser's lr."""
        self.last_epoch += 1
        e, T, lo, lr = self.last_epoch, self.T_max, self.eta_min, self.optimizer.lr
        if (e - 1 - T) % (2 * T) == 0:
            lr = lr + (self.base_lr - lo) * (1 - math.cos(math.pi / T)) / 2
        else:
            lr = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lr - lo) + lo
        self.optimizer.lr = lr


class ReduceLROnPlateau(LRScheduler):
    """Multiply lr by `factor` once the monitored value has not improved for `patience` steps,
    as torch's ReduceLROnPlateau (mode, threshold, threshold_mode, cooldown, min_lr, eps).

    Parameters
    ----------
    optimizer : Optimizer
        The optimiser whose ``lr`` is scheduled.
    mode : {"min", "max"}, default "min"
        Whether lower or higher values of the monitored quantity are better.
    factor : float, default 0.1
        The decay factor, in [0, 1).
    patience : int, default 10
        Steps without improvement tolerated before a decay.
    threshold : float, default 1e-4
        Smallest change that counts as an improvement.
    threshold_mode : {"rel", "abs"}, default "rel"
        `threshold` relative to the best value, or absolute.
    cooldown : int, default 0
        Steps to wait after a decay before counting again.
    min_lr : float, default 0.0
        The learning rate's floor.
    eps : float, default 1e-8
        Decays smaller than this are skipped.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        self.optimizer = _optimizer(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode: expected 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = _real("factor", factor, 0.0, 1.0, high_open=True)
        self.patience, self.cooldown = _int("patience", patience, 0), _int("cooldown", cooldown, 0)
        self.threshold, self.min_lr = _real("threshold", threshold), _real("min_lr", min_lr)
        self.eps = _real("eps", eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = self.last_epoch = 0

    def _is_better(self, a):
        rel, t, best = self.threshold_mode == "rel", self.threshold, self.best
        if self.mode == "min":
            return a < (best * (1 - t) if rel else best - t)
        return a > (best * (t + 1) if rel else best + t)

    def step(self, metrics):
        """Take one measurement of the monitored value (e.g. the validation loss)."""
        if not is_real(metrics):
            raise TypeError(f"metrics: expected a number, got {type(metrics).__name__}")
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def state_dict(self):
        """As the base, with an infinite `best` stored as None (JSON has no inf)."""
        state = super().state_dict()
        state["best"] = None if math.isinf(self.best) else self.best
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if self.best is None:
            self.best = math.inf if self.mode == "min" else -math.inf
