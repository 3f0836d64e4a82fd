"""ONNX export of the padded-batch models: onnxruntime gives SequenceClassifier's logits and
probabilities, SequenceTagger's per-step logits and SequenceRegressor's predictions (float32, 1e-5)
over a grid of cell x layers x directions x pooling x multi-label x ids/features x ragged lengths;
the `fastrnn export` command on saved checkpoints; the clear errors. Skipped without onnx /
onnxruntime. (These models are batch-first only: they have no batch_first option to vary.)
"""
import itertools

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from hypothesis import given, settings, strategies as st  # noqa: E402

import fastrnn  # noqa: E402
from fastrnn import (ConditionedGenerator, GridRNN, OutputRecurrentNet, Seq2Seq,  # noqa: E402
                     SequenceClassifier, SequenceRegressor, SequenceTagger, export_onnx)
from fastrnn.cli import main  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
T, B, V, F, H = 7, 3, 13, 4, 5
RAGGED = np.array([7, 1, 4])


def run_onnx(path, feed):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))


def make_inputs(model, rng, T=T, B=B):
    """(the graph feed without lengths, the same inputs for the Python API): ids or features,
    random everywhere (also past each length: the export must ignore padding as fastrnn does)."""
    if model.config.get("vocab_size"):
        x = rng.integers(0, model.config["vocab_size"], (B, T))
        return {"ids": x}, x
    x = rng.standard_normal((B, T, model.config["input_size"])).astype(np.float32)
    return {"features": x}, x


def exported(model, tmp_path, x_feed, lengths, **kw):
    """Export `model` (with a lengths input iff lengths is given) and run it on the inputs."""
    path = tmp_path / "m.onnx"
    export_onnx(model, path, lengths=lengths is not None, **kw)
    feed = dict(x_feed, **({} if lengths is None else {"lengths": np.asarray(lengths, np.int64)}))
    return run_onnx(path, feed)


def sizes(inputs):
    return dict(vocab_size=V) if inputs == "ids" else dict(input_size=F)


def check_classifier(model, tmp_path, lengths, seed=0, T=T, B=B):
    feed, x = make_inputs(model, np.random.default_rng(seed), T, B)
    got = exported(model, tmp_path, feed, lengths)
    np.testing.assert_allclose(got["logits"], model.logits(x, lengths), **TOL)
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(x, lengths), **TOL)


CLASSIFIER_GRID = list(itertools.product(["lstm", "gru", "rnn"], [1, 2], [False, True],
                                         ["last", "mean", "max"], [False, True], ["ids", "features"],
                                         [None, "ragged"]))


@pytest.mark.parametrize("cell,layers,bidirectional,pooling,multi_label,inputs,lengths", CLASSIFIER_GRID)
def test_classifier_grid(tmp_path, cell, layers, bidirectional, pooling, multi_label, inputs, lengths):
    model = SequenceClassifier(4, **sizes(inputs), embed_size=6, hidden_size=H, cell=cell,
                               num_layers=layers, bidirectional=bidirectional, pooling=pooling,
                               multi_label=multi_label, dropout=0.3, seed=layers)
    check_classifier(model, tmp_path, None if lengths is None else RAGGED)


def test_classifier_outputs_are_probabilities(tmp_path):
    """Softmax rows sum to 1; multi-label sigmoids are independent (rows need not sum to 1)."""
    for multi_label in (False, True):
        model = SequenceClassifier(3, vocab_size=V, hidden_size=H, multi_label=multi_label, seed=3)
        got = exported(model, tmp_path, make_inputs(model, np.random.default_rng(0))[0], RAGGED)
        assert ((got["probabilities"] > 0) & (got["probabilities"] < 1)).all()
        sums = got["probabilities"].sum(axis=1)
        assert np.allclose(sums, 1, atol=1e-6) != multi_label


@pytest.mark.parametrize("cell,layers,bidirectional,inputs,lengths",
                         list(itertools.product(["lstm", "gru", "rnn"], [1, 2], [False, True],
                                                ["ids", "features"], [None, "ragged"])))
def test_tagger_grid(tmp_path, cell, layers, bidirectional, inputs, lengths):
    model = SequenceTagger(6, **sizes(inputs), embed_size=6, hidden_size=H, cell=cell,
                           num_layers=layers, bidirectional=bidirectional, seed=layers)
    lengths = None if lengths is None else RAGGED
    feed, x = make_inputs(model, np.random.default_rng(1))
    got = exported(model, tmp_path, feed, lengths)
    want, _ = model.logits(x, lengths)                               # time-major (T, B, K)
    np.testing.assert_allclose(got["logits"], np.swapaxes(want, 0, 1), **TOL)


@pytest.mark.parametrize("cell,layers,output,lengths",
                         list(itertools.product(["lstm", "gru", "rnn"], [1, 2], ["sequence", "last"],
                                                [None, "ragged"])))
def test_regressor_grid(tmp_path, cell, layers, output, lengths):
    model = SequenceRegressor(F, output_size=2, hidden_size=H, cell=cell, num_layers=layers,
                              output=output, seed=layers)
    lengths = None if lengths is None else RAGGED
    feed, x = make_inputs(model, np.random.default_rng(2))
    got = exported(model, tmp_path, feed, lengths)
    np.testing.assert_allclose(got["predictions"], model.predict(x, lengths), **TOL)
    if lengths is not None and output == "sequence":                 # zero past each length
        assert all(not got["predictions"][b, n:].any() for b, n in enumerate(lengths))


def test_float64_model_and_fixed_axes(tmp_path):
    model = SequenceClassifier(3, input_size=F, hidden_size=H, bidirectional=True, pooling="max",
                               dtype="float64", seed=0)
    feed, x = make_inputs(model, np.random.default_rng(3))
    got = exported(model, tmp_path, feed, RAGGED, batch_size=B, seq_len=T, opset=14)
    np.testing.assert_allclose(got["logits"], model.logits(x.astype(np.float64), RAGGED), **TOL)
    proto = onnx.load(tmp_path / "m.onnx")
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [B, T, F]
    assert [i.name for i in proto.graph.input] == ["features", "lengths"]


@pytest.mark.parametrize("opset", [14, 17, 18, onnx.defs.onnx_opset_version()])
def test_opsets(tmp_path, opset):
    """ReduceMax takes its axes as an attribute before opset 18 and as an input from 18."""
    model = SequenceClassifier(3, vocab_size=V, hidden_size=H, pooling="max", seed=1)
    feed, x = make_inputs(model, np.random.default_rng(4))
    got = exported(model, tmp_path, feed, RAGGED, opset=opset)
    np.testing.assert_allclose(got["logits"], model.logits(x, RAGGED), **TOL)


# ---- the command line ---------------------------------------------------------------------------

@pytest.mark.parametrize("model", [
    SequenceClassifier(4, vocab_size=V, hidden_size=H, bidirectional=True, pooling="mean",
                       multi_label=True, seed=5),
    SequenceTagger(3, input_size=F, hidden_size=H, cell="gru", num_layers=2, seed=6),
    SequenceRegressor(F, hidden_size=H, cell="rnn", output="last", seed=7)])
def test_cli_export_round_trip(tmp_path, capsys, model):
    ckpt, out = tmp_path / "m.npz", tmp_path / "m.onnx"
    fastrnn.save(ckpt, model)
    assert main(["export", str(ckpt), str(out), "--lengths"]) == 0
    assert type(model).__name__ in capsys.readouterr().out
    loaded, _, _ = fastrnn.load(ckpt)
    feed, x = make_inputs(loaded, np.random.default_rng(8))
    got = run_onnx(out, dict(feed, lengths=RAGGED))
    if isinstance(model, SequenceClassifier):
        want = model.logits(x, RAGGED)
    elif isinstance(model, SequenceTagger):
        want = np.swapaxes(model.logits(x, RAGGED)[0], 0, 1)
    else:
        want = model.predict(x, RAGGED)
    np.testing.assert_allclose(next(iter(got.values())), want, **TOL)
    # --no-initial-state is accepted (these models always start from zeros)
    assert main(["export", str(ckpt), str(out), "--no-initial-state"]) == 0


def test_cli_export_of_a_model_without_onnx_export(tmp_path):
    fastrnn.save(tmp_path / "s.npz", Seq2Seq(5, 6, hidden_size=4, seed=0))
    with pytest.raises(SystemExit) as e:
        main(["export", str(tmp_path / "s.npz"), str(tmp_path / "s.onnx")])
    assert "model: expected" in str(e.value) and "Seq2Seq" in str(e.value)
    assert not (tmp_path / "s.onnx").exists()


# ---- clear errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("model", [Seq2Seq(5, 6, hidden_size=4, seed=0),
                                   ConditionedGenerator(5, num_classes=2, hidden_size=4, seed=0),
                                   OutputRecurrentNet(3, 2, hidden_size=4, seed=0),
                                   GridRNN(1, 2, hidden_size=3, seed=0)])
def test_models_without_export_name_themselves(tmp_path, model):
    with pytest.raises(TypeError, match=f"model: expected .* got {type(model).__name__}"):
        export_onnx(model, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("kw,match", [(dict(initial_state=True), "initial_state: a SequenceTagger"),
                                      (dict(initial_state="yes"), "initial_state: expected"),
                                      (dict(lengths="yes"), "lengths: expected")])
def test_bad_arguments(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        export_onnx(SequenceTagger(3, vocab_size=V, hidden_size=H), tmp_path / "x.onnx", **kw)
    assert not (tmp_path / "x.onnx").exists()


# ---- property test: random classifiers, batch shapes and lengths ----------------------------------

@settings(max_examples=20, deadline=None, derandomize=True)
@given(cell=st.sampled_from(["lstm", "gru", "rnn"]), layers=st.integers(1, 3),
       bidirectional=st.booleans(), pooling=st.sampled_from(["last", "mean", "max"]),
       multi_label=st.booleans(), ids=st.booleans(), T_=st.integers(1, 6), B_=st.integers(1, 4),
       lengths_seed=st.one_of(st.none(), st.integers(0, 99)))
def test_property_random_classifiers(tmp_path_factory, cell, layers, bidirectional, pooling,
                                     multi_label, ids, T_, B_, lengths_seed):
    model = SequenceClassifier(2, **sizes("ids" if ids else "features"), embed_size=3, hidden_size=4,
                               cell=cell, num_layers=layers, bidirectional=bidirectional,
                               pooling=pooling, multi_label=multi_label, seed=layers)
    lengths = None
    if lengths_seed is not None:
        lengths = np.random.default_rng(lengths_seed).integers(1, T_ + 1, B_)
    check_classifier(model, tmp_path_factory.mktemp("p"), lengths, seed=T_, T=T_, B=B_)
