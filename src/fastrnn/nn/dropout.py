"""`Dropout`: inverted dropout (kept values scaled by 1/(1-p) in training), seeded for resume."""
import numpy as np

from .. import checks
from .module import Module, to_numpy


class Dropout(Module):
    """Zero each element with probability p in training mode; identity after `eval()` (or with
    the older train=False; train=True keeps following the mode, as it always did here).

    The masks come from the module's own RNG (seeded by `seed`), saved by `rng_state`.
    """
    _rng_attrs = ("_rng",)

    def __init__(self, p=0.5, dtype=None, seed=None):
        super().__init__(dtype)
        checks.probability("p", p)
        self.p, self._rng, self._mask = float(p), np.random.default_rng(seed), None

    def forward(self, x, train=None):
        """x -> x * mask / (1 - p); the mask is kept for `backward` unless under
        `fastrnn.no_grad()` (or with train=False), leaving the last kept one alone then."""
        x = checks.float_array("x", x)
        drop, tape = self._mode(train)
        mask = None
        if drop and self.training and self.p:
            keep = 1 - self.p
            mask = (self._rng.random(x.shape) < keep).astype(x.dtype) / keep
        if tape:
            self._mask = mask
        return x if mask is None else x * mask

    __call__ = forward

    def backward(self, dy):
        """dy times the last training mask (identity if the last forward dropped nothing)."""
        dy = to_numpy(dy)
        if self._mask is not None and dy.shape != self._mask.shape:
            raise ValueError(f"dy: expected shape {self._mask.shape}, got {dy.shape}")
        return dy if self._mask is None else dy * self._mask

    def __repr__(self):
        return f"Dropout(p={self.p})"
