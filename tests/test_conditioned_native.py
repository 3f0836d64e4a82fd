"""ConditionedGenerator.generate in the native generation loop (LanguageModel.generator) against the
stepwise Python loop it replaces (`_generate_stepwise`): the same greedy tokens and the same seeded
draws for every cell, depth, condition kind and dtype, the same tokens on every thread count, bf16
and int8 models, chunked calls, argument checks, and `fastrnn sample --condition` on the native path.
(That the draws follow the filtered distribution is tested for the LM's loop: test_generate_native.)"""
import numpy as np
import pytest

import fastrnn
from fastrnn.cli import main
from fastrnn.models import conditioned

V = 9
SETTINGS = [dict(), dict(temperature=0.7), dict(top_k=3), dict(top_p=0.8, temperature=1.5),
            dict(top_k=5, top_p=0.9, temperature=1.2)]


def _model(cell="lstm", layers=1, kind="class", dtype="float32", hidden=16, seed=0):
    kw = dict(num_classes=4) if kind == "class" else dict(condition_size=3)
    model = fastrnn.ConditionedGenerator(V, cell=cell, hidden_size=hidden, num_layers=layers, embed_size=5,
                                         dtype=dtype, seed=seed, **kw)
    # larger weights than the default init: greedy rows that are not one repeated token
    model.params[:] = np.random.default_rng(seed).uniform(-0.7, 0.7, model.params.size)
    model.invalidate()
    return model


def _conditions(model, B=4):
    if model.config["num_classes"] is not None:
        return np.arange(B) % model.config["num_classes"]
    return np.random.default_rng(1).standard_normal((B, 3)).astype(model.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["class", "vector"])
@pytest.mark.parametrize("cell,layers", [("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 2), ("rnn", 1),
                                         ("rnn", 2)])
def test_native_equals_the_stepwise_loop(cell, layers, kind, dtype):
    model = _model(cell, layers, kind, dtype)
    cond = _conditions(model)
    greedy = model.generate(cond, 25, argmax=True)
    assert greedy.dtype == np.int64 and greedy.shape == (4, 25)
    np.testing.assert_array_equal(greedy, model._generate_stepwise(cond, 25, argmax=True))
    assert len(np.unique(greedy)) > 2                 # a test of something: varied tokens
    for settings in SETTINGS:
        for seed in (0, 1, 2):
            got = model.generate(cond, 20, seed=seed, **settings)
            assert got.dtype == np.int64 and got.shape == (4, 20)
            np.testing.assert_array_equal(got, model._generate_stepwise(cond, 20, seed=seed, **settings),
                                          err_msg=f"{settings} seed {seed}")


def test_one_row_and_many_rows_and_repeated_conditions():
    model = _model("gru", 2)
    one = model.generate(np.array([2]), 30, seed=4)
    assert one.shape == (1, 30)
    np.testing.assert_array_equal(one, model._generate_stepwise(np.array([2]), 30, seed=4))
    cond = np.array([0, 0, 0, 1, 2, 3, 3])
    greedy = model.generate(cond, 15, argmax=True)
    np.testing.assert_array_equal(greedy[0], greedy[1])      # the same condition, the same greedy row
    sampled = model.generate(cond, 40, seed=5)
    assert not (sampled[0] == sampled[1]).all()             # independent draws per row
    np.testing.assert_array_equal(sampled, model._generate_stepwise(cond, 40, seed=5))


def test_chunks_keep_the_draws(monkeypatch):
    model = _model("lstm", 2, "vector")
    cond = _conditions(model, 3)
    whole = model.generate(cond, 23, seed=8, top_k=4)
    monkeypatch.setattr(fastrnn.sample, "CHUNK", 5)          # 5 + 5 + 5 + 5 + 3 tokens (sample_native)
    np.testing.assert_array_equal(model.generate(cond, 23, seed=8, top_k=4), whole)
    np.testing.assert_array_equal(whole, model._generate_stepwise(cond, 23, seed=8, top_k=4))


def test_past_the_native_limits_the_stepwise_loop_runs(monkeypatch):
    model = _model("rnn", 1)
    cond = np.arange(4)
    monkeypatch.setattr(conditioned, "_MAX_BATCH", 3)
    monkeypatch.setattr(model.lm, "generator", None)         # the native loop must not be asked
    np.testing.assert_array_equal(model.generate(cond, 12, seed=3, top_p=0.9),
                                  model._generate_stepwise(cond, 12, seed=3, top_p=0.9))


def test_same_tokens_on_every_thread_count():
    model = _model("lstm", 2, hidden=96)                  # wide enough for the team to split
    cond = np.arange(4)
    runs = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        try:
            runs.append([model.generate(cond, 60, argmax=True),
                         model.generate(cond, 60, temperature=1.3, top_k=6, seed=11),
                         model.generate(cond, 60, temperature=0.8, top_p=0.9, seed=11)])
        finally:
            fastrnn.set_num_threads(0)
    for run in runs[1:]:
        for got, want in zip(run, runs[0]):
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(runs[0][0], model._generate_stepwise(cond, 60, argmax=True))
    np.testing.assert_array_equal(runs[0][1], model._generate_stepwise(cond, 60, temperature=1.3, top_k=6,
                                                                       seed=11))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bf16_model_equals_the_stepwise_loop_under_bf16(cell):
    model = _model(cell, 2, hidden=48)
    cond = np.arange(4)
    floats = model.generate(cond, 40, argmax=True)
    model.precision = "bf16"
    assert model.lm.rnn.precision == "bf16" and model.lm.head.precision == "bf16"
    greedy = model.generate(cond, 40, argmax=True)
    np.testing.assert_array_equal(greedy, model._generate_stepwise(cond, 40, argmax=True))
    sampled = model.generate(cond, 40, seed=2, temperature=0.9)
    assert sampled.shape == (4, 40) and sampled.dtype == np.int64
    np.testing.assert_array_equal(sampled, model._generate_stepwise(cond, 40, seed=2, temperature=0.9))
    assert (greedy == floats).mean() > 0.5               # bf16 products, near the float32 tokens


def test_quantized_model_equals_the_stepwise_loop():
    model = fastrnn.quantize(_model("lstm", 2, hidden=32))
    cond = np.arange(4)
    np.testing.assert_array_equal(model.generate(cond, 30, argmax=True),
                                  model._generate_stepwise(cond, 30, argmax=True))
    np.testing.assert_array_equal(model.generate(cond, 30, seed=6, top_k=5),
                                  model._generate_stepwise(cond, 30, seed=6, top_k=5))


def test_non_finite_model_raises():
    model = _model("gru", 1)
    model.params[:] = np.nan
    model.invalidate()
    for argmax in (True, False):
        with pytest.raises(ValueError, match="NaN"):
            model.generate(np.arange(2), 5, argmax=argmax, seed=0)
        with pytest.raises(ValueError, match="NaN"):
            model._generate_stepwise(np.arange(2), 5, argmax=argmax, seed=0)


@pytest.mark.parametrize("kw, error, name", [
    (dict(length=0), ValueError, "length"), (dict(length=-3), ValueError, "length"),
    (dict(length=2.5), TypeError, "length"), (dict(length=True), TypeError, "length"),
    (dict(temperature=0), ValueError, "temperature"), (dict(temperature=float("nan")), ValueError, "temperature"),
    (dict(temperature="1"), TypeError, "temperature"), (dict(temperature=0, argmax=True), ValueError, "temperature"),
    (dict(top_k=0), ValueError, "top_k"), (dict(top_k=2.5), TypeError, "top_k"),
    (dict(top_p=0), ValueError, "top_p"), (dict(top_p=1.5), ValueError, "top_p"),
    (dict(condition=np.array([4])), ValueError, "condition"),
    (dict(condition=np.array([0.5])), TypeError, "condition"),
    (dict(condition=np.array([], np.int64)), ValueError, "condition")])
def test_bad_arguments_name_themselves(kw, error, name):
    model = _model("lstm", 1)
    args = dict(condition=np.array([0, 1]), length=4, seed=0) | kw
    for method in (model.generate, model._generate_stepwise):
        with pytest.raises(error, match=name):
            method(**args)


def test_sample_condition_runs_the_native_loop_and_stop(tmp_path, capsys, monkeypatch):
    vocab = fastrnn.Vocab.build("abcdefgh")
    model = fastrnn.ConditionedGenerator(len(vocab), num_classes=2, hidden_size=16, seed=0)
    model.params[:] = np.random.default_rng(0).uniform(-0.7, 0.7, model.params.size)
    model.invalidate()
    path = tmp_path / "cond.npz"
    fastrnn.save(path, model, vocab, labels=["x", "y"])
    ids = model._generate_stepwise(np.array([1]), 40, seed=3)[0].tolist()
    if vocab.eos_id in ids:
        ids = ids[:ids.index(vocab.eos_id)]
    want = vocab.decode(ids)
    assert len(want) > 3
    stop = want[2:4]
    # the CLI must not step in Python: the stepwise loop fails if it is called
    monkeypatch.setattr(fastrnn.ConditionedGenerator, "_stepwise", None)
    capsys.readouterr()
    assert main(["sample", str(path), "--condition", "y", "--length", "40", "--seed", "3"]) == 0
    assert capsys.readouterr().out == want + "\n"
    assert main(["sample", str(path), "--condition", "y", "--length", "40", "--seed", "3",
                 "--stop", stop]) == 0
    assert capsys.readouterr().out == want[:want.index(stop) + len(stop)] + "\n"
