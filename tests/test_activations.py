"""The kernels' vectorised sigmoid/tanh (csrc/activations.h) against libm over the whole real line."""
import math
import warnings

import numpy as np
import pytest

from fastrnn import _kernels


def _points(dtype):
    fi = np.finfo(dtype)
    mags = np.concatenate([np.geomspace(fi.tiny, fi.max / 2, 4000),
                           np.linspace(0, 50, 20001), np.linspace(0.6, 0.65, 1001),
                           [0.625, np.nextafter(0.625, 0), fi.max, np.inf, fi.smallest_subnormal]])
    x = np.concatenate([mags, -mags]).astype(dtype)
    return x


def _libm_sigmoid(v):
    # exact to a couple of ulp: no cancellation on either branch
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def _rel_err(got, expected, dtype):
    """Relative error where the true value is a normal number; absolute in units of the smallest
    subnormal below that (both libm and we round there, relative error is meaningless)."""
    fi = np.finfo(dtype)
    got, expected = got.astype(np.float64), expected.astype(np.float64)
    normal = np.abs(expected) >= fi.tiny
    rel = np.abs(got[normal] - expected[normal]) / np.abs(expected[normal])
    sub = np.abs(got[~normal] - expected[~normal]) / float(fi.smallest_subnormal)
    return rel.max(initial=0.0), sub.max(initial=0.0)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_activation_accuracy_vs_libm(name, dtype, tol):
    x = _points(dtype)
    libm = {"sigmoid": _libm_sigmoid, "tanh": math.tanh}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no overflow or invalid-value warnings
        expected = np.array([libm(float(v)) for v in x]).astype(dtype)
        got = getattr(_kernels, name)(x)
    assert got.dtype == dtype
    rel, sub = _rel_err(got, expected, dtype)
    assert rel <= tol, f"{name} {np.dtype(dtype).name}: max relative error {rel:.3g}"
    assert sub <= 2, f"{name} {np.dtype(dtype).name}: subnormal results off by {sub} units"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_special_values(dtype):
    x = np.array([np.inf, -np.inf, 0.0, -0.0, np.nan], dtype)
    np.testing.assert_array_equal(_kernels.sigmoid(x)[:4], [1, 0, 0.5, 0.5])
    np.testing.assert_array_equal(_kernels.tanh(x)[:4], [1, -1, 0, 0])
    assert np.isnan(_kernels.sigmoid(x)[4]) and np.isnan(_kernels.tanh(x)[4])
    assert np.signbit(_kernels.tanh(x)[3])


def test_activation_rejects_integers():
    with pytest.raises(TypeError, match="x"):
        _kernels.tanh(np.arange(3))
