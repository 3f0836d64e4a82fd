"""Inference calls as the batch split (csrc/decomp_model.h frnn_infer_chunks): a forward that keeps no
tape runs each member's share of the batch whole, with no barrier per step, when the recurrent
weights are small enough. It must give exactly the bits of every other decomposition -- the
units split and one member -- for every cell, packed-sequence lengths, initial states,
projections, bf16, stacks, at 1, 2 and 3 threads; and training calls keep their choices."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels
from test_kernels import CASES, make_case

pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture
def engine(monkeypatch):
    for name in ("FASTRNN_DECOMP", "FASTRNN_WAVEFRONT", "FASTRNN_BATCH_AUTO"):
        monkeypatch.delenv(name, raising=False)
    if _kernels.engine_info()["path"] != "engine":
        pytest.skip("float32 runs on BLAS here: one member, no decomposition to choose")
    return monkeypatch


def test_inference_picks_the_batch_split(engine):
    """train=False: the batch split with 2+ members and small weights; training calls, one member,
    bidirectional calls, one step and big weights keep their choices."""
    dec = _kernels.decomposition
    for precision in ("float32", "bf16"):
        for n in (2, 3):
            assert dec("lstm", 100, 32, 128, 256, threads=n, train=False, precision=precision) == "batch"
            assert dec("gru", 50, 50, 65, 128, layers=2, threads=n, train=False, precision=precision) == "batch"
        assert dec("lstm", 100, 32, 128, 256, threads=1, train=False, precision=precision) == "one"
        assert dec("lstm", 100, 32, 128, 256, threads=2, precision=precision) == "units"
        assert dec("lstm", 1, 32, 128, 256, threads=2, train=False, precision=precision) != "batch"
        assert dec("lstm", 100, 7, 128, 256, threads=2, train=False, precision=precision) != "batch"   # chunks < 4 rows
        assert dec("lstm", 100, 8, 128, 256, threads=2, train=False, precision=precision) == "batch"
        assert dec("lstm", 50, 50, 128, 256, layers=2, directions=2, threads=2, train=False,
                   precision=precision) == "directions"
    # W_hh of an LSTM with H = P = 1024: 16 MB in float32, 8 MB in bf16 -- split by units
    assert dec("lstm", 50, 64, 512, 1024, threads=2, train=False) == "units"
    assert dec("lstm", 50, 64, 512, 1024, threads=2, train=False, precision="bf16") == "units"
    engine.setenv("FASTRNN_DECOMP", "units")
    assert dec("lstm", 100, 32, 128, 256, threads=2, train=False) == "units"


def _forward(c, precision, work=True):
    p = c["params"]
    y, h_T, c_T = _kernels.forward(c["cell"], c["x"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], c["h0"],
                                   c["c0"], w_peep=p["w_peep"], W_hr=p["W_hr"], lengths=c["lengths"],
                                   precision=precision)
    return {"y": y, "h_T": h_T, "c_T": c_T}


def _same(a, b, what):
    for key in a:
        if a[key] is None:
            assert b[key] is None, key
            continue
        assert np.array_equal(a[key], b[key], equal_nan=True), f"{what}: {key} differs"
        assert np.isfinite(a[key]).all(), f"{what}: {key} not finite"


@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("case", list(CASES))
def test_layer_inference_same_bits_as_units(case, precision, engine):
    """One layer's inference forward: auto (the batch split at 2 and 3 threads) gives the units
    split's and one member's bits, with and without lengths and initial states; B = 23 cuts
    uneven chunks (12 + 11 rows, 8 + 8 + 7)."""
    for seed, lengths, state in ((1, True, True), (2, False, False), (3, True, False)):
        c = make_case(case, 7, 23, 5, 40, np.float32, seed=seed, lengths=lengths, state=state)
        H = c["params"]["W_hh"].shape[0] // _kernels.gates(c["cell"])
        P = c["params"]["W_hh"].shape[1]
        engine.setenv("FASTRNN_DECOMP", "one")
        _kernels.set_num_threads(1)
        want = _forward(c, precision)
        for threads in (2, 3):
            _kernels.set_num_threads(threads)
            engine.delenv("FASTRNN_DECOMP")
            assert _kernels.decomposition(c["cell"], 7, 23, 5, H, P, threads=threads, train=False,
                                          precision=precision) == "batch"
            _same(want, _forward(c, precision), f"{case} auto at {threads} threads vs one member")
            engine.setenv("FASTRNN_DECOMP", "units")
            _same(want, _forward(c, precision), f"{case} units at {threads} threads vs one member")


STACKS = [(fastrnn.LSTM, dict(num_layers=2)), (fastrnn.GRU, dict(num_layers=3, dropout=0.3)),
          (fastrnn.RNN, dict(num_layers=2, nonlinearity="relu")),
          (fastrnn.LSTM, dict(num_layers=2, proj_size=10, peephole=True))]


@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("stack", range(len(STACKS)))
def test_stack_inference_same_bits(stack, precision, engine):
    """A stack's forward under no_grad (eval: dropout off) runs its layers as the batch split
    at 2 and 3 threads: the bits of the units split, the pipeline and one member."""
    cls, kw = STACKS[stack]
    rng = np.random.default_rng(stack)
    T, B = 9, 26
    x = rng.uniform(-1, 1, (T, B, 6)).astype(np.float32)
    lengths = rng.integers(1, T + 1, B)
    layer = cls(6, 24, seed=3, **kw)
    layer.precision = precision
    layer.eval()
    P = kw.get("proj_size") or 24

    def run():
        with fastrnn.no_grad():
            y, state = layer.forward(x, lengths=lengths)
        out = {"y": np.array(y)}
        for i, s in enumerate(state if isinstance(state, tuple) else (state,)):
            out[f"state{i}"] = np.array(s)
        return out

    engine.setenv("FASTRNN_DECOMP", "one")
    _kernels.set_num_threads(1)
    want = run()
    for threads in (2, 3):
        _kernels.set_num_threads(threads)
        for name in ("auto", "units", "pipeline"):
            if name == "auto":
                engine.delenv("FASTRNN_DECOMP")
                cell = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn_relu"}[cls.__name__]
                assert _kernels.decomposition(cell, T, B, 6, 24, P, layers=kw["num_layers"], threads=threads,
                                              train=False, precision=precision) == "batch"
            else:
                engine.setenv("FASTRNN_DECOMP", name)
            _same(want, run(), f"{name} at {threads} threads vs one member")


def test_inference_rows_kept_between_calls(engine):
    """The members' rows stay in their threads' kept areas: repeated inference calls of one
    shape take no fresh pages (a shared area of every member's rows outgrew the one kept between
    calls at (50, 64, 512, 512): thousands of page faults a call)."""
    import resource
    rng = np.random.default_rng(0)
    T, B, I, H = 20, 64, 512, 256
    x = rng.uniform(-1, 1, (T, B, I)).astype(np.float32)
    W_ih = rng.uniform(-0.1, 0.1, (4 * H, I)).astype(np.float32)
    W_hh = rng.uniform(-0.1, 0.1, (4 * H, H)).astype(np.float32)
    _kernels.set_num_threads(2)
    assert _kernels.decomposition("lstm", T, B, I, H, threads=2, train=False) == "batch"
    work = np.empty(_kernels.work_size("lstm", T, B, I, H), np.float32)
    y = np.empty((T, B, H), np.float32)
    for _ in range(3):
        _kernels.forward("lstm", x, W_ih, W_hh, work=work, y=y)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        _kernels.forward("lstm", x, W_ih, W_hh, work=work, y=y)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # the rows are 20 x 32 x (512 + 256) floats a member: ~490 pages each, per call, if fresh
    assert faults < 100, faults


def test_bf16_inference_keeps_the_tile_path(engine):
    """bf16 products of >= 16 rows run on AMX tiles (here their emulation), whose bits are not the
    vector kernels': a batch of 30 cut into chunks of 15 would leave the tiles, so it stays split
    by units (and gives one member's bits); a batch of 64 (chunks of 32) stays on the tiles."""
    c = make_case("lstm", 4, 30, 5, 40, np.float32, seed=5, lengths=True)
    try:
        _kernels.set_amx("amx-emulated")
        for n in (2, 3):
            assert _kernels.decomposition("lstm", 4, 30, 5, 40, threads=n, train=False, precision="bf16") != "batch"
            assert _kernels.decomposition("lstm", 4, 30, 5, 40, threads=n, train=False) == "batch"   # float32
        assert _kernels.decomposition("lstm", 4, 64, 5, 40, threads=2, train=False, precision="bf16") == "batch"
        _kernels.set_num_threads(1)
        want = _forward(c, "bf16")
        for n in (2, 3):
            _kernels.set_num_threads(n)
            _same(want, _forward(c, "bf16"), f"tiles at {n} threads vs one member")
    finally:
        _kernels.set_amx(None)


@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_prepacked_inference_same_bits(cell, precision, engine):
    """An inference forward with W_hh and W_ih^T prepacked (pack_forward(..., W_ih=), as the
    layers pass them) on one member -- one thread, or each member's chunk -- writes its input
    projection block by block, in bf16 on AVX512-BF16 with the bias added by the kernels instead
    of filled (common.h projection_blocks): the bits of the call without a pack, at 1-3 threads."""
    c = make_case(cell, 9, 23, 5, 40, np.float32, seed=7, lengths=True)
    p = c["params"]
    packed = _kernels.pack_forward(c["cell"], p["W_hh"], precision=precision, W_ih=p["W_ih"])
    assert packed is not None
    for threads in (1, 2, 3):
        _kernels.set_num_threads(threads)
        want = _forward(c, precision)
        got = _kernels.forward(c["cell"], c["x"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], c["h0"], c["c0"],
                               lengths=c["lengths"], packed=packed, precision=precision)
        _same(want, {"y": got[0], "h_T": got[1], "c_T": got[2]}, f"prepacked at {threads} threads")


@pytest.mark.parametrize("cls", [fastrnn.LSTM, fastrnn.GRU])
def test_stack_inference_shared_size_same_bits(cls, engine):
    """A bf16 stack big enough that the units split really shares its steps (H 256): under
    no_grad one member (blocked projection, bias added by the kernels), the batch split's chunks
    and the units split (bias rows filled, then the product) give the same bits."""
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (5, 24, 32)).astype(np.float32)
    layer = cls(32, 256, num_layers=2, seed=4, precision="bf16")
    layer.eval()

    def run():
        with fastrnn.no_grad():
            return np.array(layer.forward(x)[0])

    engine.setenv("FASTRNN_DECOMP", "one")
    _kernels.set_num_threads(1)
    want = run()
    _kernels.set_num_threads(2)
    engine.setenv("FASTRNN_DECOMP", "units")
    assert np.array_equal(want, run()), "units vs one member"
    engine.delenv("FASTRNN_DECOMP")
    assert np.array_equal(want, run()), "auto (the batch split) vs one member"
