"""Shared checks for the model tests: finite-difference gradients and save/load round trips."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels


def check_gradients(model, batch, n=40, eps=1e-6, tol=1e-7, seed=0):
    """model.backward() against central differences of model.forward(batch) at `n` parameters."""
    model.zero_grad()
    model.forward(batch, train=True)
    model.backward()
    grads = model.grads.copy()
    rng = np.random.default_rng(seed)
    for i in rng.choice(model.params.size, min(n, model.params.size), replace=False):
        old = model.params[i]
        losses = []
        for value in (old + eps, old - eps):
            model.params[i] = value
            model.invalidate()
            losses.append(model.forward(batch, train=False))
        model.params[i] = old
        model.invalidate()
        numeric = (losses[0] - losses[1]) / (2 * eps)
        assert abs(numeric - grads[i]) < tol + 1e-6 * abs(numeric), (i, numeric, grads[i])
    return grads


def round_trip(model, tmp_path):
    """The model saved and loaded back through fastrnn.save/load (same type and parameters)."""
    fastrnn.save(tmp_path / "m.npz", model)
    loaded, vocab, _ = fastrnn.load(tmp_path / "m.npz")
    assert type(loaded) is type(model) and vocab is None
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.params, model.params)
    return loaded


@pytest.fixture
def single_thread():
    """One fastrnn thread for the learning tests: on a busy 2-core machine the engine's thread
    team waits on cores other processes hold (results do not depend on the thread count)."""
    _kernels.set_num_threads(1)
    yield
    _kernels.set_num_threads(None)       # the default again
