"""`Linear`: y = x W^T + b over the last axis, as torch.nn.Linear, with an explicit backward.

Dimension letters: N rows (all leading axes flattened), I in_features, O out_features.
"""
import numpy as np

from .. import checks
from .._kernels import gemm, head_pack_bf16, same_bytes
from .module import Module, to_numpy


def _rng(rng):
    """A numpy Generator from a Generator, a seed or None."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Linear(Module):
    """weight (O, I), bias (O,): initialised as torch, U(-1/sqrt(I), 1/sqrt(I)), from `seed`
    (an int, None or a numpy Generator, which is advanced: weight first, then bias).

    `precision` 'bf16' (float32 only): its three products (y = x W^T, dW += dy^T x, dx = dy W)
    in bf16 mixed precision, as the recurrent layers' (`_kernels.gemm(precision='bf16')`; a
    no-tape forward reads W packed once, never stale); a model's output head follows the model's
    precision (`fastrnn.precision`)."""
    linear_products = True     # a model's `head` of this class follows its precision (fastrnn.precision)

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
        precision, tape = self.precision, self._mode(train)[1]
        # bf16 without a tape (inference, decoding steps): W's panels packed once, not per call
        packed = self._bf16_packed() if precision == "bf16" and not tape and int8 is None else None
        # (N, O); a quantized head's inference product in int8 (fastrnn.quant)
        y = int8.matmul(x2) if int8 is not None else \
            gemm(x2, self._views["weight"], trans_b=True, precision=precision, packed=packed)
        if "bias" in self._views:
            y += self._views["bias"]
        if tape:                          # backward runs in the forward's precision
            self._x = (x2, x.shape, precision)
        return y.reshape(x.shape[:-1] + (self.out_features,))

    __call__ = forward

    def backward(self, dy):
        """dy (..., O) -> dx (..., I); accumulates dW += dy^T x, db += sum(dy)."""
        if self._x is None:
            raise RuntimeError("backward: nothing kept; call forward first, outside fastrnn.no_grad()")
        x2, shape, precision = self._x
        dy2 = np.ascontiguousarray(to_numpy(dy), dtype=self.dtype)
        if dy2.shape != shape[:-1] + (self.out_features,):
            raise ValueError(f"dy: expected shape {shape[:-1] + (self.out_features,)}, got {dy2.shape}")
        dy2 = dy2.reshape(-1, self.out_features)                                        # (N, O)
        gemm(dy2, x2, trans_a=True, out=self._grad_views["weight"], accumulate=True,   # dW += dy^T x
             precision=precision)
        if "bias" in self._grad_views:
            self._grad_views["bias"] += dy2.sum(0)
        self._x = None
        return gemm(dy2, self._views["weight"], precision=precision).reshape(shape)  # dx = dy W

    def _bf16_packed(self):
        """W's bf16 panels (`_kernels.head_pack_bf16`), kept while the parameters' version holds
        and, when a public view was handed out since or is alive, W still equals the copy the
        pack was made from (the recurrent layers' rule: fastrnn._packs)."""
        W, storage = self._views["weight"], self._storage
        hit = self.__dict__.get("_bf16_pack")
        if hit is not None and hit[0] == self.param_version and hit[3] is W:
            if hit[1] == storage.exposures and not storage.views_alive():
                return hit[2]
            if same_bytes(hit[4], W):
                self.__dict__["_bf16_pack"] = (hit[0], storage.exposures) + hit[2:]
                return hit[2]
        pack = head_pack_bf16(W)
        self.__dict__["_bf16_pack"] = (self.param_version, storage.exposures, pack, W, W.copy())
        return pack

    @property
    def precision(self):
        """The products' precision: 'float32' (default) or 'bf16' (float32 only)."""
        return self.__dict__.get("_linear_precision", "float32")

    @precision.setter
    def precision(self, value):
        from ..precision import check_precision
        check_precision(value)
        if value == "bf16" and self.dtype != np.float32:
            raise ValueError(f"precision: 'bf16' needs a float32 Linear, this one is {self.dtype.name}")
        # not `_precision`: that key marks a recurrent layer (fastrnn.precision.recurrent_blocks)
        self.__dict__["_linear_precision"] = value

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, dtype={self.dtype.name!r})"


def _int8_matrix(linear):
    from ..quant import head_matrix
    return head_matrix(linear)
