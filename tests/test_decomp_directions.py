"""The direction split of bidirectional stacks (csrc/decomp.h "directions"; stack.h runs direction
d on half d of the team, no barrier per step between the halves): the same bits as units (the
directions in turn on the whole team) and as one member, at 1, 2 and 3 threads; equal within
rounding to the BLAS path (float64 runs on BLAS with one member whatever is forced); what the cost model picks; the
barriers it opens (a join per layer, not one per step)."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels

DECOMPS = ["directions", "units", "one", "auto"]


@pytest.fixture(autouse=True)
def _restore(restore_threads):
    yield
    _kernels.set_engine(True)


def _engine():
    if _kernels.engine_info()["path"] != "engine":
        pytest.skip("float32 runs on BLAS here: one member, no team")


def _same_bits(a, b, what):
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{what}: {key} differs"


def _run(cls, kw, x, dy, lengths, I, H):
    layer = cls(I, H, dtype=x.dtype, seed=4, bidirectional=True, **kw)
    y, h = layer.forward(x, lengths=lengths)
    dx, _ = layer.backward(dy)
    out = {"y": y, "dx": dx}
    out.update({k: np.array(g) for k, g in layer.named_grads().items()})
    return out


CASES = [(fastrnn.LSTM, dict(num_layers=2)), (fastrnn.LSTM, dict(num_layers=1)),
         (fastrnn.GRU, dict(num_layers=2, dropout=0.25)), (fastrnn.RNN, dict(num_layers=3)),
         (fastrnn.LSTM, dict(num_layers=2, proj_size=12, peephole=True))]


@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_directions_same_bits_as_units_and_one_at_every_thread_count(case, lengths, monkeypatch):
    """float32, H = 48 (steps big enough for units to split them at 2-3 threads): forced
    directions, units, one and auto give the same bits at 1, 2 and 3 threads -- each direction's
    maths is its one-member run -- and the BLAS path's results within rounding."""
    _engine()
    cls, kw = CASES[case]
    rng = np.random.default_rng(case)
    T, B, I, H = 9, 20, 16, 48
    x = rng.uniform(-1, 1, (T, B, I)).astype(np.float32)
    lens = rng.integers(1, T + 1, B) if lengths else None
    P = kw.get("proj_size") or H
    dy = rng.uniform(-1, 1, (T, B, 2 * P)).astype(np.float32)
    monkeypatch.setenv("FASTRNN_DECOMP", "one")
    _kernels.set_num_threads(1)
    want = _run(cls, kw, x, dy, lens, I, H)
    for name in DECOMPS:
        monkeypatch.setenv("FASTRNN_DECOMP", name)
        for threads in (1, 2, 3):
            _kernels.set_num_threads(threads)
            _same_bits(want, _run(cls, kw, x, dy, lens, I, H), f"{name} at {threads} threads vs one")
    _kernels.set_engine(False)
    blas = _run(cls, kw, x, dy, lens, I, H)
    for key, v in blas.items():
        err = np.abs(want[key].astype(np.float64) - v).max() / max(np.abs(v).max(), 1e-2)
        assert err <= 1e-4, f"engine vs BLAS: {key} relative error {err:.3g}"


def test_cost_model_picks_directions(monkeypatch):
    """Auto runs a bidirectional stack as the direction split on an even team (2: a direction a
    member, no barrier per step; 4: two units-split halves), as units on 3 (a whole direction on
    one member would leave the pair of the other half idle for half the time), on the caller
    alone at 1 thread and for steps too small to repay waking a member; forced units runs the
    directions in turn; a unidirectional call never reports directions."""
    _engine()
    monkeypatch.delenv("FASTRNN_DECOMP", raising=False)
    monkeypatch.delenv("FASTRNN_BATCH_AUTO", raising=False)
    for shape in [(50, 50, 128, 256), (50, 64, 512, 512), (100, 32, 128, 256), (50, 50, 65, 128)]:
        for n in (2, 4):
            assert _kernels.decomposition("lstm", *shape, layers=2, directions=2, threads=n) == "directions"
        assert _kernels.decomposition("lstm", *shape, layers=2, directions=2, threads=3) == "units"
        assert _kernels.decomposition("lstm", *shape, layers=2, directions=2, threads=1) == "one"
    for n in (1, 2, 3):
        assert _kernels.decomposition("lstm", 5, 2, 4, 8, layers=2, directions=2, threads=n) == "one"
    monkeypatch.setenv("FASTRNN_DECOMP", "units")
    assert _kernels.decomposition("lstm", 50, 50, 128, 256, layers=2, directions=2, threads=2) == "units"
    monkeypatch.setenv("FASTRNN_DECOMP", "directions")
    assert _kernels.decomposition("lstm", 50, 50, 128, 256, layers=2, directions=2, threads=2) == "directions"
    assert _kernels.decomposition("lstm", 50, 50, 128, 256, layers=2, threads=2) == "units"


def test_directions_opens_a_join_per_layer_not_a_barrier_per_step(monkeypatch):
    """2 threads, 2-layer bidirectional LSTM, T = 30: the direction split opens at most 3
    barriers per layer for forward + backward; units (directions in turn, split by units) at
    least one per step."""
    _engine()
    _kernels.set_num_threads(2)
    T, B, I, H = 30, 24, 32, 96
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dy = rng.standard_normal((T, B, 2 * H)).astype(np.float32)
    layer = fastrnn.LSTM(I, H, num_layers=2, bidirectional=True, dtype=np.float32, seed=0)
    counts = {}
    for name in ("directions", "units"):
        monkeypatch.setenv("FASTRNN_DECOMP", name)
        before = _kernels.sync_count()
        layer.forward(x)
        layer.backward(dy)
        counts[name] = _kernels.sync_count() - before
    assert counts["directions"] <= 3 * 2, counts
    assert counts["units"] >= 2 * 2 * T, counts


def test_fused_tagger_step_runs_the_direction_split(monkeypatch):
    """The fused training step of a bidirectional tagger (csrc/train_seq.h calls the stack) runs
    the direction split at 2 threads -- a few barriers per step, not one per time step as with
    units -- and gives the same parameters at 1, 2 and 3 threads and under units."""
    _engine()
    from fastrnn import optim
    from fastrnn.models import SequenceTagger
    from fastrnn.train.fused import FusedStep
    rng = np.random.default_rng(9)
    B, T, V, K = 12, 16, 30, 5
    lengths = rng.integers(1, T + 1, B)
    tags = rng.integers(0, K, (B, T))
    tags[np.arange(T)[None, :] >= lengths[:, None]] = -100
    batch = (rng.integers(0, V, (B, T)), tags, lengths)

    def train(name, threads):
        monkeypatch.setenv("FASTRNN_DECOMP", name)
        _kernels.set_num_threads(threads)
        model = SequenceTagger(K, vocab_size=V, embed_size=16, hidden_size=48, num_layers=2,
                               bidirectional=True, dtype=np.float32, seed=5)
        step = FusedStep(model, optim.SGD(model, lr=0.1))
        step.step_batch(batch)
        before = _kernels.sync_count()
        step.step_batch(batch)
        assert step.status == 0
        return model.params.copy(), _kernels.sync_count() - before

    want, _ = train("one", 1)
    counts = {}
    for name, threads in [("directions", 2), ("units", 2), ("auto", 2), ("auto", 3), ("directions", 3)]:
        got, counts[name, threads] = train(name, threads)
        assert np.array_equal(want, got), f"{name} at {threads} threads"
    assert counts["units", 2] >= 2 * T, counts
    assert counts["directions", 2] < T and counts["auto", 2] == counts["directions", 2], counts
