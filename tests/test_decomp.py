"""Every decomposition of a kernel call (csrc/decomp.h; FASTRNN_DECOMP=units|batch|pipeline|one
forces one) against the float64 reference and, in float32, within rounding, with the same bits
at 1, 2 and 3 threads: every cell, packed-sequence lengths, bidirectional layers and stacks; and
what the cost model picks (`_kernels.decomposition`)."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels
from test_kernels import CASES, TOL, assert_match, make_case, run_kernel, run_reference

DECOMPS = ["units", "batch", "pipeline", "one"]


pytestmark = pytest.mark.usefixtures("restore_threads")


def _same_bits(a, b, what):
    for key in a:
        if a[key] is None:
            assert b[key] is None, key
            continue
        assert np.array_equal(a[key], b[key]), f"{what}: {key} differs"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", DECOMPS)
@pytest.mark.parametrize("case", list(CASES))
def test_layer_matches_reference_and_threads(case, name, dtype, monkeypatch):
    """One layer, forced decomposition: the reference's results (float64 to 1e-10, float32 to
    1e-4), bit-identical at 1, 2 and 3 threads. B = 20 makes 4 chunks for the batch split; H = 40
    makes float32 steps big enough to be split by units."""
    monkeypatch.setenv("FASTRNN_DECOMP", name)
    for seed, lengths in ((1, True), (2, False)):
        c = make_case(case, 6, 20, 5, 40 if dtype == np.float32 else 7, dtype, seed=seed, lengths=lengths)
        want = run_reference(c)
        first = None
        for threads in (1, 2, 3):
            _kernels.set_num_threads(threads)
            got = run_kernel(c)
            assert_match(c, got, want, TOL[dtype], what=f"{name} at {threads} threads: ")
            if first is None:
                first = got
            else:
                _same_bits(first, got, f"{case} {name}: {threads} threads vs 1")


def _stack_run(cls, kw, x, dy, lengths):
    layer = cls(x.shape[2], 24, dtype=x.dtype, seed=3, **kw)
    y, h = layer.forward(x, lengths=lengths)
    dx, _ = layer.backward(dy)
    out = {"y": y, "dx": dx}
    out.update({k: np.array(g) for k, g in layer.named_grads().items()})
    return out


STACKS = [(fastrnn.LSTM, dict(num_layers=2)), (fastrnn.LSTM, dict(num_layers=2, bidirectional=True)),
          (fastrnn.GRU, dict(num_layers=3, dropout=0.3)), (fastrnn.RNN, dict(num_layers=2, nonlinearity="relu")),
          (fastrnn.LSTM, dict(num_layers=2, proj_size=10, peephole=True)),
          (fastrnn.GRU, dict(num_layers=2, bidirectional=True, reset_after=False))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("stack", range(len(STACKS)))
def test_stacks_every_decomposition(stack, dtype, monkeypatch):
    """Stacks and bidirectional layers: units, pipeline and one give the same bits; the batch
    split the same within rounding (float64 1e-10, float32 1e-4); every decomposition, and the
    cost model's own choice, the same bits at 1, 2 and 3 threads."""
    cls, kw = STACKS[stack]
    rng = np.random.default_rng(stack)
    T, B = 7, 26
    x = rng.uniform(-1, 1, (T, B, 6)).astype(dtype)
    lengths = rng.integers(1, T + 1, B)
    D = 2 if kw.get("bidirectional") else 1
    P = kw.get("proj_size") or 24
    dy = rng.uniform(-1, 1, (T, B, D * P)).astype(dtype)
    results = {}
    for name in DECOMPS + ["auto"]:
        monkeypatch.setenv("FASTRNN_DECOMP", name)
        for threads in (1, 2, 3):
            _kernels.set_num_threads(threads)
            got = _stack_run(cls, kw, x, dy, lengths)
            if threads == 1:
                results[name] = got
            else:
                _same_bits(results[name], got, f"{name}: {threads} threads vs 1")
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for name in ("pipeline", "one"):
        _same_bits(results["units"], results[name], f"{name} vs units")
    for key, v in results["batch"].items():
        want = results["units"][key]
        err = np.abs(v.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-2)
        assert err <= tol, f"batch vs units: {key} relative error {err:.3g}"


def test_cost_model_choices(monkeypatch):
    """The model's picks: forced ones win; the batch split is a choice of the shape alone (the
    same at 1, 2 and 3 threads); big steps stay split by units; one thread runs as one member;
    auto never picks the batch split until it measures faster (csrc/decomp_model.h frnn_model_batch)."""
    monkeypatch.delenv("FASTRNN_DECOMP", raising=False)
    monkeypatch.delenv("FASTRNN_WAVEFRONT", raising=False)
    monkeypatch.delenv("FASTRNN_BATCH_AUTO", raising=False)
    if _kernels.engine_info()["path"] != "engine":
        pytest.skip("float32 runs on BLAS here: one member")
    assert _kernels.decomposition("lstm", 50, 64, 512, 512, threads=2) == "units"
    assert _kernels.decomposition("lstm", 50, 64, 512, 512, threads=1) == "one"
    assert _kernels.decomposition("lstm", 100, 1, 64, 128, threads=2) != "batch"
    for shape in [(50, 50, 64, 64), (50, 50, 65, 128), (100, 32, 128, 256), (50, 50, 128, 128)]:
        for layers in (1, 2, 3):
            picks = {_kernels.decomposition("lstm", *shape, layers=layers, threads=n) == "batch" for n in (1, 2, 3)}
            assert len(picks) == 1, (shape, layers)
    for shape in [(50, 50, 64, 64), (50, 50, 65, 128), (100, 32, 128, 256)]:
        assert _kernels.decomposition("lstm", *shape, threads=2) != "batch", shape
    for name in DECOMPS:
        monkeypatch.setenv("FASTRNN_DECOMP", name)
        want = "units" if name == "pipeline" else name     # one layer: nothing to pipeline
        assert _kernels.decomposition("gru", 50, 32, 128, 256, threads=2) == want
    monkeypatch.setenv("FASTRNN_DECOMP", "pipeline")
    assert _kernels.decomposition("gru", 50, 32, 128, 256, layers=2, threads=2) == "pipeline"


@pytest.mark.parametrize("kw, word", [(dict(layers=0), "layers"), (dict(directions=3), "directions"),
                                      (dict(threads=0), "threads"), (dict(threads=1.5), "threads")])
def test_decomposition_rejects_bad_arguments(kw, word):
    with pytest.raises(ValueError, match=word):
        _kernels.decomposition("lstm", 5, 4, 3, 8, **kw)
    with pytest.raises(ValueError, match="cell"):
        _kernels.decomposition("nope", 5, 4, 3, 8)
    with pytest.raises(ValueError, match="B"):
        _kernels.decomposition("lstm", 5, 0, 3, 8)


def test_sync_count_counts_barriers(monkeypatch):
    """A units-split float32 call at 2 threads opens barriers; the batch split of the same call
    opens at most a few per call, not one per step."""
    if _kernels.engine_info()["path"] != "engine":
        pytest.skip("float32 runs on BLAS here: no team")
    _kernels.set_num_threads(2)
    c = make_case("lstm", 40, 24, 16, 64, np.float32, seed=0)
    counts = {}
    for name in ("units", "batch"):
        monkeypatch.setenv("FASTRNN_DECOMP", name)
        before = _kernels.sync_count()
        run_kernel(c)
        counts[name] = _kernels.sync_count() - before
    assert counts["units"] >= 40, counts
    assert counts["batch"] <= 2, counts


def test_batch_auto_lets_the_model_pick_the_batch_split(monkeypatch):
    """FASTRNN_BATCH_AUTO=1 lifts auto's veto (csrc/decomp.h FRNN_BATCH_AUTO): the model then picks
    the batch split for small steps and keeps big ones split by units, the same choice at 1, 2 and
    3 threads, and auto's results are the forced batch split's bits at every thread count."""
    monkeypatch.delenv("FASTRNN_DECOMP", raising=False)
    monkeypatch.delenv("FASTRNN_WAVEFRONT", raising=False)
    if _kernels.engine_info()["path"] != "engine":
        pytest.skip("float32 runs on BLAS here: one member")
    monkeypatch.setenv("FASTRNN_BATCH_AUTO", "1")
    for n in (1, 2, 3):
        assert _kernels.decomposition("lstm", 50, 50, 64, 64, threads=n) == "batch"
        assert _kernels.decomposition("lstm", 50, 50, 65, 128, layers=2, threads=n) == "batch"
        assert _kernels.decomposition("lstm", 50, 64, 512, 512, threads=n) != "batch"
    monkeypatch.setenv("FASTRNN_BATCH_AUTO", "0")
    assert _kernels.decomposition("lstm", 50, 50, 64, 64, threads=2) != "batch"
    monkeypatch.setenv("FASTRNN_BATCH_AUTO", "1")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 50, 64)).astype(np.float32)
    dy = rng.standard_normal((50, 50, 64)).astype(np.float32)
    outs = []
    for name, n in [("batch", 1), ("auto", 1), ("auto", 2), ("auto", 3)]:
        monkeypatch.setenv("FASTRNN_DECOMP", name)
        _kernels.set_num_threads(n)
        layer = fastrnn.LSTM(64, 64, dtype=np.float32, seed=2)
        y, _ = layer.forward(x)
        dx, _ = layer.backward(dy)
        out = {"y": y, "dx": dx}
        out.update({k: np.array(g) for k, g in layer.named_grads().items()})
        outs.append(out)
    for out in outs[1:]:
        _same_bits(outs[0], out, "auto with the batch split allowed")


def test_batch_split_area_kept_between_calls_of_other_shapes(monkeypatch):
    """The batch split keeps its area for the next call (csrc/decomp.h frnn_area_take): a call
    after bigger and smaller ones (other T, B, widths, layers, a long one that does not keep its
    area) gives the bits it gave first, at 1 and 2 threads."""
    monkeypatch.setenv("FASTRNN_DECOMP", "batch")
    rng = np.random.default_rng(7)

    def run(T, B, I, H, L, threads):
        _kernels.set_num_threads(threads)
        layer = fastrnn.LSTM(I, H, num_layers=L, dtype=np.float32, seed=1)
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        y, _ = layer.forward(x)
        dx, _ = layer.backward(np.ones_like(y))
        out = {"y": y, "dx": dx}
        out.update({k: np.array(g) for k, g in layer.named_grads().items()})
        return out
    for threads in (1, 2):
        rng = np.random.default_rng(7)
        first = run(20, 26, 12, 32, 2, threads)
        run(30, 50, 40, 64, 2, threads)
        run(2000, 12, 64, 64, 1, threads)           # 9 MB of rows a member: not kept
        run(5, 7, 3, 8, 1, threads)
        rng = np.random.default_rng(7)
        _same_bits(first, run(20, 26, 12, 32, 2, threads), f"after other shapes, {threads} threads")


def test_wave_rule_weighs_step_time(monkeypatch):
    """The wavefront's step bound (csrc/decomp_model.h frnn_model_wave) is per float32 ISA (16 MFLOP on
    AVX2, 64 on AVX-512, as measured), and bf16 steps on AVX512-BF16 -- twice the float32 rate --
    count half their flops: at batch 50, 2x256 / 3x256 and 2x384 / 3x384 LM stacks are the
    pipeline on AVX-512 and split by units on AVX2 (bf16 on the AVX2 kernel too: float32's rate);
    2x512 / 3x512 are the pipeline in bf16 on AVX512-BF16 only; 768 stays units. And such a stack trained as the pipeline gives the units split's bits at 1,
    2 and 3 threads, in float32 and bf16."""
    for name in ("FASTRNN_DECOMP", "FASTRNN_WAVEFRONT", "FASTRNN_BATCH_AUTO"):
        monkeypatch.delenv(name, raising=False)
    if _kernels.engine_info()["path"] != "engine":
        pytest.skip("float32 runs on BLAS here: one member")
    pick = lambda layers, H, precision: _kernels.decomposition(    # noqa: E731
        "lstm", 50, 50, H, H, layers=layers, threads=2, precision=precision)
    isa, bf16_fast = _kernels.engine_info()["isa"], _kernels.bf16_info()["kernel"] == "avx512bf16"
    for layers in (2, 3):
        for H in (256, 384):                  # 26 and 59 MFLOP steps
            assert pick(layers, H, "float32") == pick(layers, H, "bf16") == ("pipeline" if isa == "avx512" else "units")
        # 2x512 (105 MFLOP): units in float32; the bf16 halving alone makes it the pipeline
        assert pick(layers, 512, "float32") == "units"
        assert pick(layers, 512, "bf16") == ("pipeline" if bf16_fast else "units")
        assert pick(layers, 768, "bf16") == "units"
    if "avx2" in _kernels.supported_isas():
        _kernels.set_isa("avx2")              # the AVX2 kernels, bf16 on its widening kernel
        try:
            assert _kernels.bf16_info()["kernel"] == "avx2"
            assert pick(2, 256, "float32") == pick(2, 256, "bf16") == "units"
            assert pick(2, 128, "float32") == pick(2, 128, "bf16") == "pipeline"
        finally:
            _kernels.set_isa(isa)
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (4, 50, 256)).astype(np.float32)
    dy = rng.uniform(-1, 1, (4, 50, 256)).astype(np.float32)
    for precision in ("float32", "bf16"):
        results = {}
        for wave in ("0", "1"):
            monkeypatch.setenv("FASTRNN_WAVEFRONT", wave)
            for threads in (1, 2, 3):
                _kernels.set_num_threads(threads)
                layer = fastrnn.LSTM(256, 256, num_layers=2, seed=3)
                layer.precision = precision
                y, _ = layer.forward(x)
                dx, _ = layer.backward(dy)
                got = {"y": y, "dx": dx, **{k: np.array(g) for k, g in layer.named_grads().items()}}
                results.setdefault(wave, got)
                _same_bits(results[wave], got, f"{precision} FASTRNN_WAVEFRONT={wave}: {threads} threads vs 1")
        _same_bits(results["0"], results["1"], f"{precision} pipeline vs units")
