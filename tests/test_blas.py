"""fastrnn._kernels.gemm (the row-major helper every kernel uses) against numpy.matmul."""
import numpy as np
import pytest

from fastrnn import _kernels

SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 4), (4, 6, 1), (3, 8, 5), (17, 9, 33), (64, 128, 32)]
TOL = {np.float32: 1e-5, np.float64: 1e-13}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_matches_matmul(m, n, k, trans_b, dtype):
    rng = np.random.default_rng(m * 100 + n * 10 + k)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    expected = a @ (b.T if trans_b else b)
    got = _kernels.gemm(a, b, trans_b=trans_b)
    assert got.dtype == dtype and got.shape == (m, n)
    np.testing.assert_allclose(got, expected, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(k))


def test_gemm_writes_out_and_accepts_non_contiguous_inputs():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 8))[:, ::2]          # non-contiguous view (6, 4)
    b = rng.standard_normal((4, 5))
    out = np.full((6, 5), np.nan)
    assert _kernels.gemm(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-13)


@pytest.mark.parametrize("call,exc,word", [
    (lambda: _kernels.gemm(np.ones((2, 3), np.float32), np.ones((3, 2))), TypeError, "b"),
    (lambda: _kernels.gemm(np.ones((2, 3), np.int64), np.ones((3, 2), np.int64)), TypeError, "a"),
    (lambda: _kernels.gemm(np.ones((2, 3)), np.ones((4, 2))), ValueError, "b"),
    (lambda: _kernels.gemm(np.ones(3), np.ones((3, 2))), ValueError, "2-D"),
    (lambda: _kernels.gemm(np.ones((2, 3)), np.ones((3, 2)), out=np.ones((2, 3))), ValueError, "out"),
    (lambda: _kernels.gemm(np.ones((2, 3)), np.ones((3, 2)), out=np.ones((2, 2), np.float32)), TypeError, "out"),
])
def test_gemm_rejects_bad_arguments(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
