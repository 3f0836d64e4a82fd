"""Loss blocks: `forward(prediction, target, mask=None) -> loss`, `backward(dloss=1.0) -> dprediction`.

The maths (stable, with the gradient computed in the same pass) lives in `fastrnn.losses`;
these wrappers keep the gradient between the two calls so losses compose like other blocks.
"""
import numpy as np

from . import loss_math as F
from .grad import is_grad_enabled


class _Loss:
    fn = None

    def __init__(self):
        self._grad, self.total = None, None

    def forward(self, pred, target, mask=None, keep=None):
        """The mean loss (a float); its gradient is kept for `backward` when `keep` (None: unless
        under `fastrnn.no_grad()`), else the last kept one is left alone.

        `total` becomes the weight the mean was taken over (items, or the mask's sum): data-parallel
        training averages the ranks' gradients weighted by it, as one process over all items would.
        """
        loss, grad = type(self).fn(pred, target, mask)
        if is_grad_enabled() if keep is None else keep:
            self._grad = grad
        self.total = self._total(pred, mask)
        return loss

    @staticmethod
    def _total(pred, mask):
        """The elements the mean runs over: every element of `pred`, or the mask's weight."""
        return F._weights("mask", mask, np.shape(pred), np.float64)[1]

    __call__ = forward

    def backward(self, dloss=1.0):
        """d(dloss * loss)/d(prediction) of the last forward."""
        if self._grad is None:
            raise RuntimeError("backward: call forward first")
        g, self._grad = self._grad, None
        return g if dloss == 1.0 else g * dloss

    def __repr__(self):
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(_Loss):
    """logits (N, V), int targets (N,), mask (N,) of row weights."""
    fn = staticmethod(F.softmax_cross_entropy)

    @staticmethod
    def _total(pred, mask):
        return float(len(pred) if mask is None else np.sum(np.asarray(mask, np.float64)))


class BCEWithLogits(_Loss):
    """logits and targets in [0, 1] of one shape, mask leading their shape."""
    fn = staticmethod(F.binary_cross_entropy_with_logits)


class MSE(_Loss):
    """predictions and targets of one shape, mask leading their shape."""
    fn = staticmethod(F.mse)


softmax_cross_entropy = F.softmax_cross_entropy
binary_cross_entropy_with_logits = F.binary_cross_entropy_with_logits
mse = F.mse
