"""Issue 21, item 1: every decomposition (FASTRNN_DECOMP=units|batch|pipeline|directions|one,
csrc/decomp.h) equals the BLAS path (the engine off, as FASTRNN_KERNELS=blas) within float32
rounding: the engine's error against the same stack in float64 is at most a few times the BLAS
path's (the same sums in another order). test_engine.py checks this for the cost model's own
choice; test_decomp.py checks every decomposition against the float64 reference to a fixed 1e-4."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels
from test_kernels import rel_err

needs_engine = pytest.mark.skipif(_kernels.engine_info()["path"] != "engine",
                                  reason="float32 engine not active on this CPU / setting")

# (class, kwargs, kernel cell, the decompositions that run as named on this stack at 2+ threads)
STACKS = [(fastrnn.LSTM, dict(num_layers=2), "lstm", ("units", "batch", "pipeline", "one")),
          (fastrnn.GRU, dict(num_layers=1), "gru", ("units", "batch", "one")),
          (fastrnn.RNN, dict(num_layers=3, nonlinearity="relu"), "rnn_relu", ("units", "batch", "pipeline", "one")),
          (fastrnn.GRU, dict(num_layers=2, bidirectional=True), "gru", ("units", "batch", "directions", "one"))]
T, B, I, H = 7, 26, 9, 40            # B 26: 5 chunks of the batch split; H 40: steps split by units


def _run(cls, kw, dtype, params):
    layer = cls(I, H, dtype=dtype, seed=1, **kw)
    layer.params[...] = params
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    lengths = rng.integers(1, T + 1, B)
    y, _ = layer.forward(x, lengths=lengths)
    dx, _ = layer.backward(rng.standard_normal(y.shape).astype(dtype))
    return {"y": y, "dx": dx, "grads": layer.grads.copy()}


@needs_engine
@pytest.mark.usefixtures("restore_threads")
@pytest.mark.parametrize("stack", range(len(STACKS)))
def test_every_decomposition_equals_the_blas_path_within_rounding(stack, monkeypatch):
    cls, kw, cell, names = STACKS[stack]
    params = cls(I, H, dtype="float32", seed=1, **kw).params.astype(np.float64)
    monkeypatch.delenv("FASTRNN_DECOMP", raising=False)
    exact = _run(cls, kw, np.float64, params)
    _kernels.set_engine(False)
    try:
        blas = _run(cls, kw, np.float32, params)
    finally:
        _kernels.set_engine(True)
    _kernels.set_num_threads(2)
    D = 2 if kw.get("bidirectional") else 1
    for name in names:
        monkeypatch.setenv("FASTRNN_DECOMP", name)
        ran = _kernels.decomposition(cell, T, B, I, H, layers=kw["num_layers"], directions=D,
                                     threads=2)
        assert ran == name, (name, ran)          # the stack really runs the decomposition forced
        got = _run(cls, kw, np.float32, params)
        for key, value in got.items():
            err, err_blas = rel_err(value, exact[key], 1e-2), rel_err(blas[key], exact[key], 1e-2)
            assert err <= 3 * err_blas + 1e-6, (name, key, err, err_blas)    # errors ~2e-7
