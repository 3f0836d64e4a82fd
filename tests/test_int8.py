"""int8 inference (fastrnn.quantize, csrc/int8.h): every int8 path gives the bits of a NumPy
transcription of the scheme; layers give the same bits on every path and thread count; quantized
layers stay within a bound derived from the scales; forward, step, the native generation loop,
checkpoints and the CLI work on quantized models."""
import os

import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels, quant
from fastrnn.nn.recurrent import BLOCKS

PATHS = list(_kernels.INT8_ISAS)


def _need(isa):
    if isa not in _kernels.int8_isas():
        pytest.skip(f"this CPU cannot run the {isa} int8 path (it is tested where the CPU has it; "
                    f"here only through the reference's equality with the scheme)")


@pytest.fixture
def restore_isa():
    before = _kernels.int8_isa()
    yield
    _kernels.set_int8_isa(before)
    fastrnn.set_num_threads(0)


def scheme(x, q, s):
    """The int8 product of csrc/int8.h in NumPy: rows to 7 bits, exact integer sums, one epilogue."""
    m = np.abs(x).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = (np.float32(63) / m).astype(np.float32)
        qa = np.clip(np.rint(x * inv[:, None]), -63, 63)
    bad = ~np.isfinite(m) | (m == 0)
    qa[bad] = 0
    acc = (qa.astype(np.int64) @ q.T.astype(np.int64)).astype(np.int32)
    sa = np.where(np.isfinite(m), m / np.float32(63), np.float32(np.nan)).astype(np.float32)
    return acc.astype(np.float32) * (sa[:, None] * s[None, :])


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (1, 16, 64), (3, 5, 63), (5, 13, 130), (9, 7, 257)])
def test_product_equals_the_scheme_bit_for_bit(isa, M, N, K, restore_isa):
    _need(isa)
    _kernels.set_int8_isa(isa)
    rng = np.random.default_rng(M * 1000 + K)
    x = (rng.standard_normal((M, K)) * 3).astype(np.float32)
    if M >= 3:
        x[1] = 0
        x[2, K // 2] = np.nan
    q, s = quant.quantize_weight(rng.standard_normal((N, K)))
    got = _kernels.q8_matmul(x, q, s)
    np.testing.assert_array_equal(got, scheme(x, q, s))
    c = rng.standard_normal((M, N)).astype(np.float32)
    np.testing.assert_array_equal(_kernels.q8_matmul(x, q, s, out=c.copy(), accumulate=True), c + scheme(x, q, s))


def test_product_error_within_the_scales_bound():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 200)).astype(np.float32)
    W = rng.standard_normal((40, 200)).astype(np.float32)
    q, s = quant.quantize_weight(W)
    Wd = quant.dequantize_weight(q, s)
    sa = np.abs(x).max(axis=1) / 63
    # x W^T - x^ W^^T = x (W - W^)^T + (x - x^) W^^T: |.| <= |x| s_w/2 + s_x/2 |W^|, summed over k
    bound = np.abs(x) @ (s[:, None] / 2 * np.ones_like(W)).T + sa[:, None] / 2 * np.abs(Wd).sum(1)[None]
    err = np.abs(_kernels.q8_matmul(x, q, s) - x @ W.T)
    assert np.all(err <= bound * (1 + 1e-5) + 1e-6)
    assert err.max() > 0


def test_language_model_head_runs_in_int8():
    model, floats = fastrnn.quantize(_lm()), _lm()
    y = np.random.default_rng(7).standard_normal((5, 32)).astype(np.float32)
    q, s = model.head._int8["weights"]["weight"]
    want = _kernels.q8_matmul(y, q, s) + model.head._views["bias"]
    np.testing.assert_array_equal(model.head.forward(y, train=False), want)
    assert 0 < np.abs(want - floats.head.forward(y, train=False)).max() < 0.05
    # training runs the float (dequantized) weights
    np.testing.assert_allclose(model.head.forward(y, train=True),
                               y @ model.head._views["weight"].T + model.head._views["bias"], rtol=1e-5, atol=1e-6)


def test_quantize_weight_is_per_row_symmetric():
    W = np.array([[0.5, -1.0, 0.25], [0, 0, 0], [3, 2, -1]], np.float32)
    q, s = quant.quantize_weight(W)
    np.testing.assert_array_equal(q, [[64, -127, 32], [0, 0, 0], [127, 85, -42]])
    np.testing.assert_array_equal(s, np.float32([1 / 127, 0, 3 / 127]))
    with pytest.raises(ValueError, match="non-finite"):
        quant.quantize_weight(np.array([[np.nan]]))


CASES = [(name, {}) for name in BLOCKS] + [("lstm", {"proj_size": 8}), ("lstm", {"peephole": True}),
                                          ("lstm", {"bidirectional": True}), ("gru", {"bidirectional": True})]


def _layer(name, opts, seed=0):
    cls, base, _ = BLOCKS[name]
    return cls(12, 48, num_layers=2, seed=seed, **base, **opts)


@pytest.mark.parametrize("name,opts", CASES)
def test_layer_same_bits_on_every_path_and_thread_count(name, opts, restore_isa):
    layer = fastrnn.quantize(_layer(name, opts))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5, 12)).astype(np.float32)
    lengths = np.array([6, 3, 0, 5, 6])
    first = None
    for isa in _kernels.int8_isas():
        _kernels.set_int8_isa(isa)
        for threads in (1, 2, 3):
            fastrnn.set_num_threads(threads)
            y, state = layer.forward(x, lengths=lengths, train=False)
            out = [y] + list(state if isinstance(state, tuple) else (state,))
            if first is None:
                first = out
            for a, b in zip(first, out):
                np.testing.assert_array_equal(a, b, err_msg=f"{isa} at {threads} threads")


def _step_bound(layer, x, h0, c0):
    """A bound on |h_1 - h_1(float)| after one step from (h0, c0), derived from the scales: each
    pre-activation is off by at most e = sum_k |a_k| s_w/2 + s_a/2 |W^_k| over both products (see
    test_product_error_within_the_scales_bound); through the cell's gates (sigmoid' <= 1/4,
    tanh' <= 1, the state and GRU's W_hn h + b_hn as multipliers) the state moves by at most
    (3 + |c0| + |hn|) e; a projection adds its own product's error and |W_hr| times that."""
    w = dict(layer.named_parameters())
    qi, qh = layer._int8["weights"]["weight_ih_l0"], layer._int8["weights"]["weight_hh_l0"]
    Wf_ih, Wf_hh = quant.dequantize_weight(*qi), quant.dequantize_weight(*qh)

    def e(a, W, s, floor=0):
        sa = np.maximum(np.abs(a).max(axis=1, keepdims=True), floor) / 63
        return (np.abs(a) @ np.broadcast_to(s[:, None] / 2, W.shape).T + sa / 2 * np.abs(W).sum(1)[None]).max()

    # h0's rows: dynamic scale max|row| / 63, or static 1/63 (|h0| <= 1): max(max|row|, 1) / 63 bounds both
    err = e(x, Wf_ih, qi[1]) + e(h0, Wf_hh, qh[1], floor=1)
    hn = np.abs(h0) @ np.abs(Wf_hh).T + (np.abs(w["bias_hh_l0"]) if "bias_hh_l0" in w else 0)
    peep = np.abs(w["weight_ci_l0"]).max() * 3 if "weight_ci_l0" in w else 0
    bound = (3 + (np.abs(c0).max() if c0 is not None else 0) + hn.max() + peep) * err
    if "weight_hr_l0" in w:
        qr = layer._int8["weights"]["weight_hr_l0"]
        Wr = quant.dequantize_weight(*qr)
        bound = np.abs(Wr).sum(1).max() * bound + e(np.ones((1, Wr.shape[1]), np.float32), Wr, qr[1])
    return bound


@pytest.mark.parametrize("name,opts", [c for c in CASES if not c[1].get("bidirectional")])
def test_quantized_step_within_the_scales_bound(name, opts):
    cls, base, _ = BLOCKS[name]
    floats = cls(12, 48, seed=4, **base, **opts)
    layer = fastrnn.quantize(cls(12, 48, seed=4, **base, **opts))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 12)).astype(np.float32)
    P, H = floats.P, floats.hidden_size
    h0 = (0.5 * rng.standard_normal((1, 5, P))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((1, 5, H))).astype(np.float32) if floats.lstm else None
    state = (h0, c0) if floats.lstm else h0
    yf, _ = floats.step(x, state)
    yq, _ = layer.step(x, state)
    err = np.abs(yq - yf).max()
    assert 0 < err <= _step_bound(layer, x, h0[0], None if c0 is None else c0[0])


def test_forward_equals_steps_and_train_forward_uses_the_floats():
    layer = fastrnn.quantize(_layer("lstm", {}))
    x = np.random.default_rng(5).standard_normal((7, 3, 12)).astype(np.float32)
    y, _ = layer.forward(x, train=False)
    state, ys = None, []
    for t in range(7):
        yt, state = layer.step(x[t], state)
        ys.append(yt)
    np.testing.assert_array_equal(y, np.stack(ys))
    yt, _ = layer.forward(x, train=True)      # training runs float32 on the dequantized weights
    assert 0 < np.abs(yt - y).max() < 0.05


def test_quantize_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="float32"):
        fastrnn.quantize(fastrnn.LSTM(4, 8, dtype="float64"))
    with pytest.raises(ValueError, match="no recurrent layer"):
        fastrnn.quantize(fastrnn.nn.Linear(4, 3))
    with pytest.raises(TypeError, match="model"):
        fastrnn.quantize("lstm")
    layer = fastrnn.LSTM(4, 8)
    layer.params[0] = np.nan
    with pytest.raises(ValueError, match="weight_ih_l0: .*non-finite"):
        fastrnn.quantize(layer)
    assert not quant.is_quantized(layer)


def test_edited_weights_are_quantized_again():
    layer = fastrnn.quantize(_layer("gru", {}))
    x = np.random.default_rng(6).standard_normal((3, 2, 12)).astype(np.float32)
    y0, _ = layer.forward(x, train=False)
    layer.load_state_dict({k: v * 0.5 for k, v in layer.state_dict().items()})
    y1, _ = layer.forward(x, train=False)
    assert np.abs(y1 - y0).max() > 1e-3


def _lm(cell="lstm", embed_size=None):
    return fastrnn.LanguageModel(30, cell=cell, hidden_size=32, num_layers=2, embed_size=embed_size, seed=0)


@pytest.mark.parametrize("embed_size", [None, 8])
def test_language_model_native_generation_equals_stepwise(embed_size):
    from fastrnn.sample import generate_stepwise
    vocab = fastrnn.Vocab.build("abcdefghij klmnopqrstuvwxyz.,\n")
    model = fastrnn.quantize(fastrnn.LanguageModel(len(vocab), hidden_size=32, num_layers=2,
                                                    embed_size=embed_size, seed=0))
    native = fastrnn.generate(model, vocab, prime="ab", length=40, argmax=True)
    stepwise = generate_stepwise(model, vocab, "ab", 40, 1.0, None, None, True, None, 0)
    assert native == stepwise and len(native) > 2


@pytest.mark.parametrize("cell", ["lstm", "gru", "mgu"])
def test_checkpoint_round_trip_keeps_the_int8_weights(tmp_path, cell):
    model = fastrnn.quantize(_lm(cell, 8))
    path = tmp_path / "q.npz"
    fastrnn.save(path, model)
    loaded, _, extra = fastrnn.load(path)
    assert quant.is_quantized(loaded) and extra["meta"]["int8"]["scheme"] == quant.SCHEME
    assert "head.weight" in extra["meta"]["int8"]["names"] and "head.bias" not in extra["meta"]["int8"]["names"]
    ids = np.random.default_rng(0).integers(0, 30, (4, 12))
    a, b = model.forward(ids[:, :-1], ids[:, 1:], train=False), loaded.forward(ids[:, :-1], ids[:, 1:], train=False)
    np.testing.assert_array_equal(a[0], b[0])
    for (_, la), (_, lb) in zip(quant.recurrent_layers(model), quant.recurrent_layers(loaded)):
        for k, (q, s) in la._int8["weights"].items():
            np.testing.assert_array_equal(q, lb._int8["weights"][k][0])
            np.testing.assert_array_equal(s, lb._int8["weights"][k][1])
    fastrnn.save(tmp_path / "f.npz", _lm(cell, 8))
    # each quantized weight takes 1 byte instead of 4 (plus a 4-byte scale per row and the
    # entries' headers)
    n = sum(q.size for _, la in quant.recurrent_layers(model) for q, _ in la._int8["weights"].values())
    assert os.path.getsize(path) < os.path.getsize(tmp_path / "f.npz") - 2.5 * n


def _damaged(tmp_path, edit):
    path = tmp_path / "q.npz"
    fastrnn.save(path, fastrnn.quantize(_lm()))
    arrays, meta = fastrnn.io.load_arrays(path)
    edit(arrays, meta)
    bad = tmp_path / "bad.npz"
    fastrnn.io.save_arrays(bad, arrays, {k: v for k, v in meta.items() if k not in ("format", "format_version")})
    return bad


@pytest.mark.parametrize("what,edit", [
    ("NaN scale", lambda a, m: a["int8scale/rnn.weight_hh_l0"].__setitem__(0, np.nan)),
    ("negative scale", lambda a, m: a["int8scale/rnn.weight_hh_l0"].__setitem__(0, -1)),
    ("short scale", lambda a, m: a.__setitem__("int8scale/rnn.weight_ih_l1", a["int8scale/rnn.weight_ih_l1"][:-1])),
    ("truncated int8", lambda a, m: a.__setitem__("int8/rnn.weight_hh_l1", a["int8/rnn.weight_hh_l1"][:-1])),
    ("float int8", lambda a, m: a.__setitem__("int8/rnn.weight_hh_l1", a["int8/rnn.weight_hh_l1"].astype(np.float32))),
    ("-128", lambda a, m: a["int8/rnn.weight_hh_l1"].__setitem__((0, 0), -128)),
    ("missing int8", lambda a, m: a.pop("int8/rnn.weight_ih_l0")),
    ("unknown scheme", lambda a, m: m["int8"].__setitem__("scheme", "other")),
    ("no metadata", lambda a, m: m.pop("int8")),
])
def test_damaged_int8_checkpoint_is_a_checkpoint_error(tmp_path, what, edit):
    bad = _damaged(tmp_path, edit)
    with pytest.raises(fastrnn.CheckpointError):
        fastrnn.load(bad)


def test_truncated_int8_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "q.npz"
    fastrnn.save(path, fastrnn.quantize(_lm()))
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) - 100):
        (tmp_path / "t.npz").write_bytes(data[:cut])
        with pytest.raises(fastrnn.CheckpointError):
            fastrnn.load(tmp_path / "t.npz")


def test_q8layer_refuses_bad_arrays():
    q, s = quant.quantize_weight(np.ones((8, 4)))
    with pytest.raises(TypeError, match="int8"):
        _kernels.Q8Layer(hh=(q.astype(np.int16), s))
    with pytest.raises(ValueError, match="scales"):
        _kernels.Q8Layer(hh=(q, s[:-1]))
    with pytest.raises(ValueError, match="scales"):
        _kernels.Q8Layer(hh=(q, np.full(8, np.inf, np.float32)))
    with pytest.raises(ValueError, match="required"):
        _kernels.Q8Layer()
    lay = _kernels.Q8Layer(hh=(q, s))
    with pytest.raises(ValueError, match="packed"):      # a (8, 4) W_hh is no GRU's (3H, P)
        _kernels.step("gru", np.zeros((1, 2), np.float32), np.zeros((1, 5), np.float32),
                      W_ih=np.zeros((15, 2), np.float32), W_hh=np.zeros((15, 5), np.float32), packed=lay)
    with pytest.raises(TypeError, match="float32"):
        _kernels.step("gru", np.zeros((1, 2)), np.zeros((1, 5)), W_ih=np.zeros((15, 2)),
                      W_hh=np.zeros((15, 5)), packed=lay)
    with pytest.raises(ValueError, match="set_int8_isa|expected one of"):
        _kernels.set_int8_isa("sse9")


def test_benchmark_rows_run(monkeypatch, capsys):
    """bench/int8_rows.py (issue 23's rows of bench/targets.py) builds and runs every row; each
    callable is called once here (no timing claims: the numbers are not looked at)."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "int8_rows.py")
    if not os.path.exists(path):
        pytest.skip("no bench/ (installed without sources)")
    spec = importlib.util.spec_from_file_location("int8_rows", path)
    rows = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rows)
    calls = []
    monkeypatch.setattr(rows.timing, "time_interleaved",
                        lambda fns, *a, **k: {n: [(calls.append(n), f(), 1.0)[2]] for n, f in fns.items()})
    monkeypatch.setattr(rows, "layer", lambda cell, T, B, I, H, _f=rows.layer: _f(cell, 3, B, 8, 16))
    rows.run(0.01)
    table = capsys.readouterr().out
    assert sum(line.startswith("| int8 ") for line in table.splitlines()) == 5
    assert set(calls) == ({"int8", "float32", "torch"} if rows.torch is not None else {"int8", "float32"})


MODELS = {
    "classifier": lambda: fastrnn.SequenceClassifier(3, vocab_size=20, hidden_size=16, seed=0),
    "tagger": lambda: fastrnn.SequenceTagger(4, vocab_size=20, hidden_size=16, seed=0),
    "regressor": lambda: fastrnn.SequenceRegressor(3, hidden_size=16, seed=0),
    "seq2seq": lambda: fastrnn.Seq2Seq(20, 22, hidden_size=16, seed=0),
    "grid": lambda: fastrnn.GridRNN(2, 3, hidden_size=8, seed=0),
    "conditioned": lambda: fastrnn.ConditionedGenerator(20, num_classes=3, hidden_size=16, seed=0),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_with_recurrent_layers_quantizes_and_round_trips(name, tmp_path):
    model = fastrnn.quantize(MODELS[name]())
    assert quant.is_quantized(model) and quant.recurrent_layers(model)
    fastrnn.save(tmp_path / "m.npz", model)
    loaded, _, _ = fastrnn.load(tmp_path / "m.npz")
    assert quant.is_quantized(loaded)
    np.testing.assert_array_equal(loaded.params, model.params)


def test_quantized_classifier_predicts_near_the_float_one():
    ids = np.random.default_rng(0).integers(0, 20, (6, 9))
    floats, int8 = MODELS["classifier"](), fastrnn.quantize(MODELS["classifier"]())
    p, q = floats.predict_proba(ids), int8.predict_proba(ids)
    assert 0 < np.abs(p - q).max() < 0.02


def test_a_model_without_recurrent_layers_is_refused():
    with pytest.raises(ValueError, match="OutputRecurrentNet has no recurrent layer"):
        fastrnn.quantize(fastrnn.OutputRecurrentNet(3, 4, hidden_size=16, seed=0))
