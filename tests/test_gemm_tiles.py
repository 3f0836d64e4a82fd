"""The engine's row tiles: a product of M rows splits them into 6-row tiles and a remainder, and a
remainder of 1-3 rows after a whole tile goes as two shorter tiles (4 + 3, 4 + 4, 5 + 4: see
panel_rows in csrc/microkernel.h). Each element is the same chain of fused multiply-adds in k
order whatever tile computes it, so every row count gives the bits of the 48-row product (8
whole tiles) row for row."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels


@pytest.fixture(autouse=True)
def _one_thread():
    before = fastrnn.get_num_threads()
    fastrnn.set_num_threads(1)          # one member: all M rows in one call of the row tiles
    yield
    fastrnn.set_num_threads(before)


@pytest.mark.parametrize("K", [17, 256, 300])        # one K block, two (FRNN_KC = 256)
@pytest.mark.parametrize("trans_b", [False, True])
def test_every_row_count_gives_the_rows_of_whole_tiles(K, trans_b):
    if not _kernels.engine_info():
        pytest.skip("no float32 engine on this CPU")
    rng = np.random.default_rng(K)
    a = rng.standard_normal((48, K)).astype(np.float32)
    b = rng.standard_normal((40, K) if trans_b else (K, 40)).astype(np.float32)   # 2.5 panels
    full = _kernels.gemm(a, b, trans_b=trans_b)
    full_acc = np.ones((48, 40), np.float32)
    _kernels.gemm(a, b, trans_b=trans_b, out=full_acc, accumulate=True)
    for M in range(8, 48):              # below 8 rows the product reads W in place (another order)
        part = _kernels.gemm(a[:M], b, trans_b=trans_b)
        np.testing.assert_array_equal(part, full[:M], err_msg=f"M={M}")
        acc = np.ones((M, 40), np.float32)
        _kernels.gemm(a[:M], b, trans_b=trans_b, out=acc, accumulate=True)
        np.testing.assert_array_equal(acc, full_acc[:M], err_msg=f"M={M} accumulate")
    ref = a.astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
    np.testing.assert_allclose(full, ref, rtol=1e-4, atol=1e-4 * np.sqrt(K))
