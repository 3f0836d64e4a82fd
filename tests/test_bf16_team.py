"""bf16 on AVX2: the team products of a call (input projection, weight gradients, dx) on the float32
kernels, their operands rounded and pair-swapped while being packed or transposed
(csrc/gemm_bf16_f32.h: bf32_trans) -- the portable emulation's bits, at 1-3 threads.

The shapes take those routes: an even input width (W_ih^T packed by the rounding transpose), T * B
above FRNN_KC = 256 rows (the weight gradients read dG^T and x^T in two blocks of K), hidden sizes
that leave partial panels and partial 8 x 8 tiles."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels

LAYERS = {"lstm": (fastrnn.LSTM, dict(proj_size=21)), "gru": (fastrnn.GRU, {}), "rnn_tanh": (fastrnn.RNN, {})}


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_team_products_on_float32_kernels_equal_the_emulation(cell):
    if "avx2" not in _kernels.bf16_info()["supported"]:
        pytest.skip("no AVX2 bf16 kernel on this CPU (the emulation is the only path)")
    cls, opts = LAYERS[cell]
    layer = cls(18, 45, num_layers=2, seed=5, precision="bf16", **opts)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((11, 30, 18)).astype(np.float32)      # 330 rows
    x[0, 0, :4] = [np.float32(1.00390625), np.float32(-1.01171875), 1e-40, -1e-41]   # ties, denormals
    got = []
    for name in ("avx2", "emulated"):
        for n in (1, 2, 3):
            _kernels.set_bf16_kernel(name)
            fastrnn.set_num_threads(n)
            try:
                assert _kernels.bf16_info()["kernel"] == name
                layer.zero_grad()
                y, _ = layer(x, train=True)
                dx, _ = layer.backward(np.cos(y))
                got.append((name, n, [y, dx, layer.grads.copy(), layer(x, train=False)[0]]))
            finally:
                _kernels.set_bf16_kernel(None)
                fastrnn.set_num_threads(0)
    for name, n, out in got[1:]:
        for i, (a, b) in enumerate(zip(got[0][2], out)):
            assert np.array_equal(a, b), (cell, name, n, i)
    assert np.isfinite(got[0][2][2]).all()
