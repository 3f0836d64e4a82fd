"""A wavefront's groups balanced (csrc/stack.h balance_pulls / balance_pushes): going back, the
layer below makes the dx chunks of the layer above (FASTRNN_PULL), going forward it makes the
first rows of each chunk's input projection above. Both move a product between members without
changing it, so the fused LM step and a stack's forward + backward give the same bits with the
balance off (FASTRNN_PULL=0), on wherever it can be (1) and as the model picks (unset), at 1, 2
and 3 threads -- with and without dropout between the layers, one-hot and embedded input."""
import numpy as np
import pytest

from fastrnn import _kernels, optim
from fastrnn.models import LanguageModel
from fastrnn.nn import LSTM, GRU
from fastrnn.train.fused import FusedStep

V = 17


@pytest.fixture(autouse=True)
def _restore_threads():
    before = _kernels.get_num_threads()
    yield
    _kernels.set_num_threads(before)


def _fused(layers, embed, dropout, steps=2, B=20, T=40, hidden=24):
    """Losses, parameters and gradients after `steps` fused Adam steps (a fresh model each time:
    the same seed gives the same dropout masks)."""
    model = LanguageModel(V, hidden_size=hidden, num_layers=layers, embed_size=embed, dropout=dropout,
                          dtype=np.float32, seed=4)
    opt = optim.Adam(model, lr=0.01)
    step = FusedStep(model, opt, clip=5.0)
    rng = np.random.default_rng(1)
    state, out = None, []
    for _ in range(steps):
        inputs, targets = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
        loss, state = step.step(inputs, targets, state)
        assert step.status == 0
        out.append(np.float64(loss))
    return out, model._params.copy(), model.grads.copy()


@pytest.mark.parametrize("layers,embed,dropout", [(2, None, 0.0), (3, None, 0.0), (2, 8, 0.0),
                                                  (2, None, 0.3), (4, None, 0.2)])
def test_fused_step_same_bits_with_and_without_the_balance(layers, embed, dropout, monkeypatch):
    """B 20, T 40: chunks of 3 steps (60 rows) -- the pushed share is a whole number of tiles."""
    monkeypatch.setenv("FASTRNN_DECOMP", "pipeline")        # the wavefront at any thread count
    monkeypatch.setenv("FASTRNN_PULL", "0")
    _kernels.set_num_threads(1)
    want = _fused(layers, embed, dropout)
    for pull in ("0", "1", ""):
        monkeypatch.setenv("FASTRNN_PULL", pull)
        for threads in (1, 2, 3):
            _kernels.set_num_threads(threads)
            got = _fused(layers, embed, dropout)
            assert got[0] == want[0], (pull, threads)
            assert np.array_equal(got[1], want[1]), f"params: PULL={pull!r} at {threads} threads"
            assert np.array_equal(got[2], want[2]), f"grads: PULL={pull!r} at {threads} threads"


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_stack_same_bits_with_and_without_the_balance(cls, monkeypatch):
    """A 3-layer stack on dense input (every layer has W_ih): y, dx and every weight gradient."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 16, 10)).astype(np.float32)
    dy = rng.standard_normal((30, 16, 20)).astype(np.float32)

    def run():
        rnn = cls(10, 20, num_layers=3, dtype=np.float32, seed=2)
        y, _ = rnn.forward(x)
        dx, _ = rnn.backward(dy)
        return [y, dx] + [np.array(g) for g in rnn.named_grads().values()]

    monkeypatch.setenv("FASTRNN_DECOMP", "pipeline")
    monkeypatch.setenv("FASTRNN_PULL", "0")
    _kernels.set_num_threads(1)
    want = run()
    for pull in ("0", "1", ""):
        monkeypatch.setenv("FASTRNN_PULL", pull)
        for threads in (2, 3):
            _kernels.set_num_threads(threads)
            for a, b in zip(run(), want):
                assert np.array_equal(a, b), f"PULL={pull!r} at {threads} threads"
