"""The engine's split of a few-row, deep product by columns (csrc/gemm.c cols_gemm): at 2+
members a product of at most FRNN_MC (96) rows and more than one FRNN_KC (256) block of depth --
the LM head's dW = dlogits^T y -- is shared out by panels of columns, each member packing its own
panels, with no barrier between the depth blocks. One member runs the row split; both must give
the same bits (every element is the same chain of fused multiply-adds in k order), and the product
equals float64 within float32 rounding."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels


@pytest.fixture(autouse=True)
def _restore():
    before = fastrnn.get_num_threads()
    yield
    fastrnn.set_num_threads(before)


def _run(threads, a, b, trans_a, trans_b, acc):
    fastrnn.set_num_threads(threads)
    out = None
    if acc is not None:
        out = acc.copy()
    r = _kernels.gemm(a, b, trans_b=trans_b, trans_a=trans_a, out=out, accumulate=acc is not None)
    return r


@pytest.mark.parametrize("M,K,N", [(65, 2500, 256), (65, 2500, 128), (8, 300, 40), (13, 513, 200),
                                   (96, 1030, 17), (97, 600, 64), (30, 257, 520)])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
def test_column_split_gives_the_row_split_bits(M, K, N, trans_a, trans_b, accumulate):
    if not _kernels.engine_info():
        pytest.skip("no float32 engine on this CPU")
    rng = np.random.default_rng(M * 7 + K + N)
    a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(np.float32)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(np.float32)
    acc = rng.standard_normal((M, N)).astype(np.float32) if accumulate else None
    one = _run(1, a, b, trans_a, trans_b, acc)          # one member: the row split
    for threads in (2, 3):
        many = _run(threads, a, b, trans_a, trans_b, acc)
        np.testing.assert_array_equal(many, one, err_msg=f"{threads} threads")
    a64 = a.astype(np.float64).T if trans_a else a.astype(np.float64)
    b64 = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    ref = a64 @ b64 + (acc.astype(np.float64) if accumulate else 0)
    np.testing.assert_allclose(one, ref, rtol=1e-4, atol=2e-5 * np.sqrt(K) * 4)


def test_column_split_writes_every_element_of_out():
    """Every column panel of the output is made by some member (the LM head writes dW in place):
    out starts as NaN and must come back finite with the same bits at 1, 2 and 3 members. (An
    output row wider than N, ldc > N, cannot be passed through the Python API's out=, which must be
    contiguous.)"""
    if not _kernels.engine_info():
        pytest.skip("no float32 engine on this CPU")
    rng = np.random.default_rng(5)
    a = rng.standard_normal((2500, 65)).astype(np.float32)
    b = rng.standard_normal((2500, 130)).astype(np.float32)     # 8 full panels and a 2-wide one
    outs = []
    for threads in (1, 2, 3):
        fastrnn.set_num_threads(threads)
        out = np.full((65, 130), np.nan, np.float32)
        _kernels.gemm(a, b, trans_a=True, out=out)
        assert np.isfinite(out).all(), threads
        outs.append(out)
    np.testing.assert_array_equal(outs[1], outs[0])
    np.testing.assert_array_equal(outs[2], outs[0])


def test_the_heads_weight_gradient_takes_one_barrier():
    """dW_head = dlogits^T y of the LM row (65 x 256, K = 2500: ten depth blocks) at 2 threads:
    one barrier at the end (the row split took two a block, 20)."""
    if not _kernels.engine_info() or _kernels.engine_info().get("path") != "engine":
        pytest.skip("float32 runs on BLAS here: no team")
    rng = np.random.default_rng(1)
    dlogits = rng.standard_normal((2500, 65)).astype(np.float32)
    y = rng.standard_normal((2500, 256)).astype(np.float32)
    out = np.zeros((65, 256), np.float32)
    fastrnn.set_num_threads(2)
    before = _kernels.sync_count()
    _kernels.gemm(dlogits, y, trans_a=True, out=out, accumulate=True)
    assert _kernels.sync_count() - before == 1


@pytest.mark.parametrize("M", [1, 3, 5, 7])
@pytest.mark.parametrize("K", [100, 600, 3000])
def test_few_rows_of_a_transposed_against_w_transposed(M, K):
    """Fewer than 8 rows of A^T against W^T do not read W in place (they pack, as more rows do):
    frnn_engine_gemm sized their pack buffer as for the in-place route (16 floats), a heap
    overrun that aborted the process at 2 threads on the session-start build."""
    if not _kernels.engine_info():
        pytest.skip("no float32 engine on this CPU")
    rng = np.random.default_rng(M + K)
    a = rng.standard_normal((K, M)).astype(np.float32)
    b = rng.standard_normal((400, K)).astype(np.float32)
    outs = []
    for threads in (1, 2, 3):
        fastrnn.set_num_threads(threads)
        outs.append(_kernels.gemm(a, b, trans_a=True, trans_b=True))
    np.testing.assert_array_equal(outs[1], outs[0])
    np.testing.assert_array_equal(outs[2], outs[0])
    ref = a.T.astype(np.float64) @ b.T.astype(np.float64)
    np.testing.assert_allclose(outs[0], ref, rtol=1e-4, atol=1e-4 * np.sqrt(K))
