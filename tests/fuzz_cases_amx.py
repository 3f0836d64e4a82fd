"""Fuzz case of the AMX tile mode (fastrnn._kernels.set_amx; issues 22/23): drawn (possibly hostile)
mode names and batch sizes around a tile's 16 rows -- a refused name raises ValueError and changes
nothing; an accepted one runs a bf16 layer finite and near the vector kernels, and an int8 layer
with the reference's bits."""
import numpy as np
from hypothesis import strategies as st

import fastrnn
from fastrnn import _kernels

GOOD = ["off", "amx-emulated", None]
JUNK = ["AMX", "emulated", "", "amx ", 1, b"amx", ["amx"], 2.0]


def amx_modes(draw):
    name = draw(st.sampled_from(GOOD + JUNK + ["amx"]), "mode")
    B = draw(st.integers(1, 20), "batch")
    ok = name in GOOD or (name == "amx" and _kernels.amx_info()["supported"])
    before = _kernels.amx_info()["mode"]
    x = np.random.default_rng(B).uniform(-1, 1, (2, B, 3)).astype(np.float32)
    layer = fastrnn.LSTM(3, 8, seed=0, precision="bf16")
    q = fastrnn.quantize(fastrnn.GRU(3, 8, seed=0))
    _kernels.set_amx("off")
    want, want_q = layer(x, train=False)[0], q(x, train=False)[0]
    _kernels.set_amx(None)
    try:
        _kernels.set_amx(name)
    except (ValueError, TypeError):
        assert not ok and _kernels.amx_info()["mode"] == before
        return
    try:
        assert ok
        y = layer(x, train=False)[0]
        assert np.isfinite(y).all() and np.allclose(y, want, rtol=1e-3, atol=1e-4)
        assert np.array_equal(q(x, train=False)[0], want_q)
    finally:
        _kernels.set_amx(None)
