"""`Linear`: y = x W^T + b over the last axis, as torch.nn.Linear, with an explicit backward.

Dimension letters: N rows (all leading axes flattened), I in_features, O out_features.
"""
import numpy as np

from .. import checks
from .._kernels import gemm
from .module import Module, to_numpy


def _rng(rng):
    """A numpy Generator from a Generator, a seed or None."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Linear(Module):
    """weight (O, I), bias (O,): initialised as torch, U(-1/sqrt(I), 1/sqrt(I)), from `seed`
    (an int, None or a numpy Generator, which is advanced: weight first, then bias)."""

    def __init__(self, in_features, out_features, bias=True, dtype=None, seed=None):
        super().__init__(dtype)
        checks.positive_int("in_features", in_features)
        checks.positive_int("out_features", out_features)
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng, bound = _rng(seed), 1 / np.sqrt(in_features)
        self.add_parameter("weight", (out_features, in_features))[...] = \
            rng.uniform(-bound, bound, (out_features, in_features))
        if bias:
            self.add_parameter("bias", (out_features,))[...] = rng.uniform(-bound, bound, out_features)
        self._x = None

    def forward(self, x, train=None):
        """x (..., I) -> (..., O); keeps x for `backward` unless under `fastrnn.no_grad()` (or
        with the older train=False), leaving the last kept one alone then."""
        x = checks.float_array("x", x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., {self.in_features}), got {x.shape}")
        x2 = np.ascontiguousarray(x.reshape(-1, self.in_features), dtype=self.dtype)   # (N, I)
        int8 = None if train or self.__dict__.get("_int8") is None else _int8_matrix(self)
        # (N, O); a quantized head's inference product in int8 (fastrnn.quant)
        y = int8.matmul(x2) if int8 is not None else gemm(x2, self._views["weight"], trans_b=True)
        if "bias" in self._views:
            y += self._views["bias"]
        if self._mode(train)[1]:
            self._x = (x2, x.shape)
        return y.reshape(x.shape[:-1] + (self.out_features,))

    __call__ = forward

    def backward(self, dy):
        """dy (..., O) -> dx (..., I); accumulates dW += dy^T x, db += sum(dy)."""
        if self._x is None:
            raise RuntimeError("backward: nothing kept; call forward first, outside fastrnn.no_grad()")
        x2, shape = self._x
        dy2 = np.ascontiguousarray(to_numpy(dy), dtype=self.dtype)
        if dy2.shape != shape[:-1] + (self.out_features,):
            raise ValueError(f"dy: expected shape {shape[:-1] + (self.out_features,)}, got {dy2.shape}")
        dy2 = dy2.reshape(-1, self.out_features)                                        # (N, O)
        gemm(dy2, x2, trans_a=True, out=self._grad_views["weight"], accumulate=True)   # dW = dy^T x
        if "bias" in self._grad_views:
            self._grad_views["bias"] += dy2.sum(0)
        self._x = None
        return gemm(dy2, self._views["weight"]).reshape(shape)                         # dx = dy W

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, dtype={self.dtype.name!r})"


def _int8_matrix(linear):
    from ..quant import head_matrix
    return head_matrix(linear)
