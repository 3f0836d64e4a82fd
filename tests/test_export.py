"""ONNX export: onnxruntime runs the exported graph with fastrnn's outputs and final states.

A grid over cell x layers x directions x batch_first x bias x lengths (x peephole for the LSTM,
x reset_after for the GRU), language models (embedding and both one-hot paths), the
`fastrnn export` command, and the clear errors. Skipped without onnx / onnxruntime.
"""
import itertools
import os
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from hypothesis import given, settings, strategies as st  # noqa: E402

import fastrnn  # noqa: E402
from fastrnn import GRU, LSTM, RNN, LanguageModel, SimplifiedGRU, export_onnx  # noqa: E402
from fastrnn.cli import main  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
T, B, I, H = 7, 3, 4, 5
RAGGED = np.array([7, 2, 5])            # lengths >= 1: see the module docstring of fastrnn.export


def run_onnx(path, feed):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))


def make_layer(cell, **kw):
    """A layer of the grid's `cell` variant ('rnn_tanh', 'rnn_relu', 'gru', 'gru_cho', 'lstm',
    'lstm_peephole')."""
    ctor = {"rnn_tanh": lambda: RNN(I, H, nonlinearity="tanh", **kw),
            "rnn_relu": lambda: RNN(I, H, nonlinearity="relu", **kw),
            "gru": lambda: GRU(I, H, reset_after=True, **kw),
            "gru_cho": lambda: GRU(I, H, reset_after=False, **kw),
            "lstm": lambda: LSTM(I, H, **kw),
            "lstm_peephole": lambda: LSTM(I, H, peephole=True, **kw)}
    return ctor[cell]()


def check_layer(layer, tmp_path, lengths=None, initial_state=True, seed=0, T=T, B=B):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size))
    x = x.astype(np.float32)
    LD = layer.num_layers * (2 if layer.bidirectional else 1)
    lstm = layer.cell == "lstm"
    feed = {"x": x}
    state = None
    if initial_state:
        feed["h0"] = rng.standard_normal((LD, B, layer.hidden_size)).astype(np.float32)
        if lstm:
            feed["c0"] = rng.standard_normal((LD, B, layer.hidden_size)).astype(np.float32)
        state = (feed["h0"], feed["c0"]) if lstm else feed["h0"]
    if lengths is not None:
        feed["lengths"] = np.asarray(lengths, np.int64)
    y, s = layer.forward(x, state, lengths=lengths, train=False)
    path = tmp_path / "layer.onnx"
    export_onnx(layer, path, lengths=lengths is not None, initial_state=initial_state)
    got = run_onnx(path, feed)
    np.testing.assert_allclose(got["output"], y, **TOL)
    if lstm:
        np.testing.assert_allclose(got["h_n"], s[0], **TOL)
        np.testing.assert_allclose(got["c_n"], s[1], **TOL)
    else:
        np.testing.assert_allclose(got["h_n"], s, **TOL)
    if lengths is not None:             # as fastrnn and torch: zeros past each length
        for b, n in enumerate(lengths):
            past = got["output"][b, n:] if layer.batch_first else got["output"][n:, b]
            assert not past.any()


GRID = list(itertools.product(["rnn_tanh", "rnn_relu", "gru", "gru_cho", "lstm", "lstm_peephole"],
                              [1, 2], [False, True], [False, True], [True, False], [None, "ragged"]))


@pytest.mark.parametrize("cell,layers,bidirectional,batch_first,bias,lengths", GRID)
def test_layer_grid(tmp_path, cell, layers, bidirectional, batch_first, bias, lengths):
    layer = make_layer(cell, num_layers=layers, bidirectional=bidirectional,
                       batch_first=batch_first, bias=bias, seed=7)
    check_layer(layer, tmp_path, lengths=None if lengths is None else RAGGED)


@pytest.mark.parametrize("cell", ["gru", "lstm_peephole", "rnn_relu"])
def test_without_initial_state_starts_from_zeros(tmp_path, cell):
    layer = make_layer(cell, num_layers=2, bidirectional=True, seed=3)
    check_layer(layer, tmp_path, lengths=RAGGED, initial_state=False)
    inputs = [i.name for i in onnx.load(tmp_path / "layer.onnx").graph.input]
    assert inputs == ["x", "lengths"]


def test_zero_length_is_the_documented_difference(tmp_path):
    """fastrnn.export's docstring: for a length of 0 ONNX Runtime returns a zero final state where
    fastrnn returns the initial one; the outputs (all zero) agree."""
    layer = GRU(I, H, seed=0)
    x = np.ones((T, 2, I), np.float32)
    h0 = np.full((1, 2, H), 0.5, np.float32)
    y, h = layer.forward(x, h0, lengths=np.array([0, 3]), train=False)
    export_onnx(layer, tmp_path / "g.onnx", lengths=True)
    got = run_onnx(tmp_path / "g.onnx", {"x": x, "h0": h0, "lengths": np.array([0, 3])})
    np.testing.assert_allclose(got["output"], y, **TOL)
    np.testing.assert_allclose(got["h_n"][:, 1], h[:, 1], **TOL)
    assert np.array_equal(h[:, 0], h0[:, 0]) and not got["h_n"][:, 0].any()


def test_dynamic_and_fixed_axes(tmp_path):
    layer = LSTM(I, H, num_layers=2, seed=1)
    export_onnx(layer, tmp_path / "a.onnx")
    for T_, B_ in [(1, 1), (12, 6)]:    # one file, any T and B
        check_layer(layer, tmp_path, T=T_, B=B_, seed=T_)
    proto = export_onnx(layer, tmp_path / "b.onnx", batch_size=2, seq_len=9, opset=14)
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [9, 2, I] and proto.opset_import[0].version == 14 and proto.ir_version == 7


def test_float64_layer_exports_float32_weights(tmp_path):
    layer = GRU(I, H, num_layers=2, dtype="float64", seed=2)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    y, h = layer.forward(x.astype(np.float64), train=False)
    export_onnx(layer, tmp_path / "g.onnx", initial_state=False)
    got = run_onnx(tmp_path / "g.onnx", {"x": x})
    np.testing.assert_allclose(got["output"], y, **TOL)
    np.testing.assert_allclose(got["h_n"], h, **TOL)


# ---- language models ------------------------------------------------------------------------

def lm_logits_by_steps(model, ids, state=None):
    """Logits (B, T, V) and the final state from fastrnn's own stepping."""
    out = []
    for t in range(ids.shape[1]):
        logits, state = model.step(ids[:, t], state)
        out.append(logits)
    return np.stack(out, 1), state


@pytest.mark.parametrize("cell,vocab,embed", [("lstm", 11, None),    # one-hot, V <= G*H
                                              ("gru", 40, None),     # one-hot, V > G*H
                                              ("rnn", 50, None),
                                              ("lstm", 30, 6), ("gru", 9, 4)])
def test_language_model(tmp_path, cell, vocab, embed):
    model = LanguageModel(vocab, cell=cell, hidden_size=8, num_layers=2, embed_size=embed, seed=4)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, vocab, (B, T))
    L = 2
    h0 = rng.standard_normal((L, B, 8)).astype(np.float32)
    c0 = rng.standard_normal((L, B, 8)).astype(np.float32)
    state = (h0, c0) if cell == "lstm" else h0
    want, final = lm_logits_by_steps(model, ids, state)
    export_onnx(model, tmp_path / "lm.onnx")
    feed = {"ids": ids, "h0": h0, **({"c0": c0} if cell == "lstm" else {})}
    got = run_onnx(tmp_path / "lm.onnx", feed)
    np.testing.assert_allclose(got["logits"], want, **TOL)
    np.testing.assert_allclose(got["h_n"], final[0] if cell == "lstm" else final, **TOL)
    if cell == "lstm":
        np.testing.assert_allclose(got["c_n"], final[1], **TOL)


def test_cli_export_round_trip(tmp_path):
    vocab = fastrnn.Vocab.build("abcdefghijkl ", level="char")
    V = len(vocab)
    model = LanguageModel(V, cell="lstm", hidden_size=6, num_layers=2, seed=5)
    ckpt, out = tmp_path / "m.npz", tmp_path / "m.onnx"
    fastrnn.save(ckpt, model, vocab)
    assert main(["export", str(ckpt), str(out), "--no-initial-state", "--lengths"]) == 0
    ids = np.random.default_rng(2).integers(0, V, (2, 5))
    got = run_onnx(out, {"ids": ids, "lengths": np.array([5, 5])})
    want, (h, c) = lm_logits_by_steps(model, ids)
    np.testing.assert_allclose(got["logits"], want, **TOL)
    np.testing.assert_allclose(got["h_n"], h, **TOL)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_cli_export_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "m.onnx")])
    assert "missing.npz" in str(e.value)
    vocab = fastrnn.Vocab.build("abc", level="char")
    fastrnn.save(tmp_path / "m.npz", LanguageModel(len(vocab), hidden_size=4, num_layers=1, seed=0), vocab)
    with pytest.raises(SystemExit) as e:
        main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx"), "--opset", "11"])
    assert "opset" in str(e.value)
    assert not (tmp_path / "m.onnx").exists()


# ---- clear errors and the atomic write ------------------------------------------------------

@pytest.mark.parametrize("model,match", [
    (LSTM(I, H, proj_size=3), "proj_size"),
    (SimplifiedGRU(I, H), "simplified GRU"),
    (LanguageModel(5, cell="lstm", hidden_size=4, num_layers=1), None),   # fine: control
    (object(), "model: expected"),
    (fastrnn.LSTMCell(I, H), "model: expected"),
])
def test_clear_errors(tmp_path, model, match):
    path = tmp_path / "x.onnx"
    if match is None:
        export_onnx(model, path)
        assert path.exists()
        return
    with pytest.raises((ValueError, TypeError), match=match):
        export_onnx(model, path)
    assert not path.exists()


@pytest.mark.parametrize("kw,match", [(dict(opset=13), "opset"), (dict(opset=10**6), "opset"),
                                      (dict(opset="17"), "opset"), (dict(batch_size=0), "batch_size"),
                                      (dict(seq_len=2.5), "seq_len")])
def test_bad_arguments(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        export_onnx(GRU(I, H), tmp_path / "x.onnx", **kw)


def test_missing_onnx_is_a_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)      # `import onnx` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'fastrnn\[onnx\]'"):
        export_onnx(GRU(I, H), tmp_path / "x.onnx")


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "x.onnx"
    path.write_bytes(b"old")

    def fail(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        export_onnx(GRU(I, H), path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.onnx"]
    monkeypatch.undo()
    export_onnx(GRU(I, H), path)
    assert onnx.load(path).producer_name == "fastrnn"


# ---- property test: random configurations and ragged lengths --------------------------------

@settings(max_examples=25, deadline=None, derandomize=True)
@given(cell=st.sampled_from(["rnn_tanh", "rnn_relu", "gru", "gru_cho", "lstm", "lstm_peephole"]),
       layers=st.integers(1, 3), bidirectional=st.booleans(), batch_first=st.booleans(),
       bias=st.booleans(), T_=st.integers(1, 6), lengths_seed=st.one_of(st.none(), st.integers(0, 99)),
       B_=st.integers(1, 4))
def test_property_random_layers(tmp_path_factory, cell, layers, bidirectional, batch_first, bias, T_,
                                lengths_seed, B_):
    layer = make_layer(cell, num_layers=layers, bidirectional=bidirectional,
                       batch_first=batch_first, bias=bias, seed=layers)
    lengths = None
    if lengths_seed is not None:
        lengths = np.random.default_rng(lengths_seed).integers(1, T_ + 1, B_)
    check_layer(layer, tmp_path_factory.mktemp("p"), lengths=lengths, T=T_, B=B_)
