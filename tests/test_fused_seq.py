"""The fused native training step of a SequenceTagger and a SequenceClassifier (fastrnn.train
.fused_seq, csrc/head_seq.c) equals the Python steps: float64 to 1e-12 over cells, layers,
directions, lengths, embedding or feature inputs, poolings, dropout, clipping and every optimiser;
float32 within rounding; the same bits at 1, 2 and 3 threads; the Trainer uses it."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import optim
from fastrnn.models import SequenceClassifier, SequenceTagger
from fastrnn.nn.recurrent import block_names
from fastrnn.train import Trainer, TrainingDiverged
from fastrnn.train.fused import FusedStep, why_not
from test_fused_step import assert_same_runs
from test_fused_step import OPTIMIZERS   # the same optimiser variants as the LM's fused step

V, F, K = 11, 3, 4


def _model(kind, dtype, cell="lstm", layers=1, bidirectional=True, ids=True, dropout=0.0, pooling="last",
           hidden=7, seed=3):
    inp = dict(vocab_size=V, embed_size=5) if ids else dict(input_size=F)
    kw = dict(hidden_size=hidden, cell=cell, num_layers=layers, bidirectional=bidirectional, dropout=dropout,
              dtype=dtype, seed=seed, **inp)
    if kind == "tagger":
        return SequenceTagger(K, **kw)
    return SequenceClassifier(K, pooling=pooling, **kw)


def _batches(kind, ids, steps, B=4, T=6, seed=0, full=False):
    """(inputs, targets, lengths) batches; a tagger's targets are -100 past each length."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        lengths = np.full(B, T) if full else rng.integers(1, T + 1, B)
        x = rng.integers(0, V, (B, T)) if ids else rng.standard_normal((B, T, F))
        if kind == "tagger":
            y = rng.integers(0, K, (B, T))
            y[np.arange(T)[None, :] >= lengths[:, None]] = -100
        else:
            y = rng.integers(0, K, B)
        out.append((x, y, lengths))
    return out


def _train(fused, kind, dtype, opt_name, clip=None, clip_value=None, steps=3, batch_kw=None, **model_kw):
    """(losses, params, grads, optimiser, model) after `steps` batches."""
    return train_batches(_model(kind, dtype, **model_kw), fused, opt_name, clip, clip_value,
                         _batches(kind, model_kw.get("ids", True), steps, **(batch_kw or {})))


def train_batches(model, fused, opt_name, clip, clip_value, batches):
    """(losses, params, grads, optimiser, model) after training `model` on `batches` with the
    optimiser OPTIMIZERS[opt_name]: FusedStep.step_batch, or forward + backward + clips + step."""
    cls, kw = OPTIMIZERS[opt_name]
    opt = cls(model, lr=0.05, **kw)
    step = FusedStep(model, opt, clip=clip, clip_value=clip_value) if fused else None
    losses = []
    for batch in batches:
        if fused:
            loss = step.step_batch(batch)
            assert step.status == 0
        else:
            model.zero_grad()
            loss = model.forward(batch, train=True)
            model.backward()
            if clip:
                optim.clip_grad_norm(model, clip)
            if clip_value:
                optim.clip_grad_value(model, clip_value)
            opt.step()
        losses.append(loss)
    return np.array(losses), model.params.copy(), model.grads.copy(), opt, model


def close_runs(a, b, tol):
    """Two train_batches results: losses, parameters and gradients within tol."""
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


def same_optimiser(a, b, steps, tol=1e-12):
    """Two train_batches results' optimisers: the same step count, their state within tol."""
    assert a[3].steps == b[3].steps == steps
    for name in a[3].state_names:
        np.testing.assert_allclose(a[3].state[name], b[3].state[name], rtol=tol, atol=tol)


MODELS = [("tagger", "last"), ("classifier", "last"), ("classifier", "mean"), ("classifier", "max")]


@settings(max_examples=30, deadline=None)
@given(model=st.sampled_from(MODELS), cell=st.sampled_from(block_names()), layers=st.integers(1, 3),
       bidirectional=st.booleans(), ids=st.booleans(), opt=st.sampled_from(sorted(OPTIMIZERS)),
       clip=st.sampled_from([None, 0.3, 100.0]), clip_value=st.sampled_from([None, 0.01]),
       dropout=st.sampled_from([0.0, 0.4]), full=st.booleans())
def test_float64_fused_step_equals_the_python_steps(model, cell, layers, bidirectional, ids, opt, clip,
                                                    clip_value, dropout, full):
    kind, pooling = model
    kw = dict(cell=cell, layers=layers, bidirectional=bidirectional, ids=ids, dropout=dropout, pooling=pooling,
              batch_kw=dict(full=full))
    a = _train(False, kind, "float64", opt, clip, clip_value, **kw)
    b = _train(True, kind, "float64", opt, clip, clip_value, **kw)
    close_runs(a, b, 1e-12)
    same_optimiser(a, b, 3)                             # the optimiser's state too
    # the loss block's weight and the RNG streams as the unfused calls leave them
    assert a[4].loss.total == b[4].loss.total
    assert a[4].rng_state() == b[4].rng_state()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("ids", [True, False])
def test_float32_loss_and_gradients_equal_the_python_steps_within_rounding(model, cell, ids):
    kind, pooling = model
    a, b = (_model(kind, "float32", cell=cell, ids=ids, dropout=0.3, layers=2, pooling=pooling) for _ in "ab")
    for batch in _batches(kind, ids, 2):
        a.zero_grad()
        loss_a = a.forward(batch, train=True)
        a.backward()
        loss_b = FusedStep(b).step_batch(batch)
        assert abs(loss_a - loss_b) <= 1e-6 * loss_a
        scale = np.abs(a.grads).max()
        np.testing.assert_allclose(b.grads, a.grads, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("model", MODELS)
def test_float32_sgd_run_equals_the_python_steps_within_rounding(model):
    kind, pooling = model
    kw = dict(clip=0.5, ids=True, dropout=0.3, layers=2, pooling=pooling)
    close_runs(_train(False, kind, "float32", "sgd_momentum", **kw), _train(True, kind, "float32", "sgd_momentum", **kw),
           2e-5)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("ids", [True, False])
def test_fused_step_is_bit_identical_across_thread_counts(model, ids):
    kind, pooling = model
    runs = []
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            # big enough that the stack, the head products and the passes are shared
            m = _model(kind, "float32", cell="lstm", layers=2, ids=ids, dropout=0.2, pooling=pooling, hidden=40)
            opt = optim.Adam(m, lr=0.01)
            step = FusedStep(m, opt, clip=1.0)
            for batch in _batches(kind, ids, 2, B=24, T=20):
                loss = step.step_batch(batch)
            runs.append((loss, m.params.copy(), m.grads.copy()))
    finally:
        fastrnn.set_num_threads(None)
    assert_same_runs(runs)


@pytest.mark.parametrize("model", MODELS)
def test_without_an_optimiser_it_is_forward_plus_backward(model):
    kind, pooling = model
    a, b = (_model(kind, "float64", pooling=pooling, layers=2) for _ in "ab")
    batch, = _batches(kind, True, 1)
    a.zero_grad()
    loss_a = a.forward(batch, train=True)
    a.backward()
    b.grads[...] = 7           # dirty: the fused step zeroes them
    loss_b = FusedStep(b).step_batch(batch)
    assert abs(loss_a - loss_b) < 1e-12
    np.testing.assert_allclose(a.grads, b.grads, rtol=1e-12, atol=1e-13)
    assert np.array_equal(a.params, b.params)
    with pytest.raises(RuntimeError):     # no pending tape, as after the unfused backward
        b.backward()


def test_bad_batches_are_refused_as_the_model_refuses_them():
    tagger, clf = _model("tagger", "float64"), _model("classifier", "float64")
    x = np.zeros((2, 3), int)
    with pytest.raises(ValueError, match="targets"):
        FusedStep(tagger).step_batch((x, np.full((2, 3), K), [3, 3]))
    with pytest.raises(ValueError, match="targets"):
        FusedStep(clf).step_batch((x, np.array([0, K]), [3, 3]))
    with pytest.raises(TypeError, match="targets"):
        FusedStep(clf).step_batch((x, np.array([0.5, 1.0]), [3, 3]))
    with pytest.raises(ValueError, match="lengths"):
        FusedStep(clf).step_batch((x, np.array([0, 1]), [0, 3]))
    with pytest.raises(ValueError, match="inputs"):
        FusedStep(clf).step_batch((np.full((2, 3), V), np.array([0, 1]), [3, 3]))
    with pytest.raises(TypeError, match="step_batch"):
        FusedStep(clf).step(x, x)
    with pytest.raises(TypeError, match="step\\("):
        FusedStep(_lm()).step_batch((x, x))


def _lm():
    from fastrnn.models import LanguageModel
    return LanguageModel(V, hidden_size=4)


def test_what_is_not_fused_says_why():
    from fastrnn.models import SequenceRegressor
    assert why_not(_model("tagger", "float32")) is None
    assert why_not(_model("classifier", "float32", pooling="max")) is None
    multi = SequenceClassifier(K, vocab_size=V, multi_label=True)
    assert "binary cross-entropy" in why_not(multi)
    assert "not a LanguageModel, SequenceTagger, SequenceClassifier, ConditionedGenerator or Seq2Seq" in \
        why_not(SequenceRegressor(3))

    class MyTagger(SequenceTagger):
        pass
    assert "MyTagger" in why_not(MyTagger(K, vocab_size=V))
    other = _model("tagger", "float32")
    assert "does not update this model" in why_not(_model("tagger", "float32"), optim.Adam(other))


def _fit(fused, kind="tagger", pooling="last", optimizer="adam", iters=12, lr=0.01, **kw):
    model = _model(kind, "float64", dropout=0.25, layers=2, pooling=pooling)
    train = _batches(kind, True, 5, seed=1)
    val = _batches(kind, True, 2, seed=2)
    trainer = Trainer(model, train, val, optimizer=optimizer, lr=lr, progress=False, fused=fused, eval_every=4,
                      epochs=3, **kw)
    history = trainer.fit(max_iters=iters)       # across an epoch end
    return model, trainer, history


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_trainer_uses_the_fused_step_and_gets_the_same_run(model, optimizer):
    kind, pooling = model
    a, ta, ha = _fit(False, kind, pooling, optimizer, clip=0.2, clip_value=0.05)
    b, tb, hb = _fit(None, kind, pooling, optimizer, clip=0.2, clip_value=0.05)
    assert ta._fused_step is None and isinstance(tb._fused_step, FusedStep)
    assert ta.iteration == tb.iteration == 12 and ta.optimizer.steps == tb.optimizer.steps == 12
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-12)
    assert abs(ha.best_val - hb.best_val) < 1e-12
    assert a.rng_state() == b.rng_state()


def test_fastrnn_fused_0_and_a_custom_forward_turn_it_off(monkeypatch):
    model = _model("tagger", "float64")
    t = Trainer(model, _batches("tagger", True, 2), progress=False, forward=lambda b, train: model.forward(b, train))
    t.fit(max_iters=2)
    assert t._fused_step is None
    monkeypatch.setenv("FASTRNN_FUSED", "0")
    _, trainer, _ = _fit(None, iters=2)
    assert trainer._fused_step is None


def test_a_diverging_run_stops_at_the_same_iteration_fused_or_not():
    def run(fused):
        with pytest.raises(TrainingDiverged, match="iteration") as e:
            _fit(fused, optimizer="sgd", iters=30, lr=1e6, clip=0, explode_factor=1.5)
        return str(e.value)
    assert run(False) == run(None)


@pytest.mark.parametrize("task", ["classify", "tag"])
def test_fastrnn_train_runs_a_task_on_the_fused_step(tmp_path, monkeypatch, task):
    from fastrnn.cli import main
    from fastrnn.train import fused
    from test_cli_tasks import SMALL, classify_file, tag_file
    data = (classify_file if task == "classify" else tag_file)(tmp_path / "d.txt", n=40)
    calls = []
    real = fused.FusedStep.step_batch
    monkeypatch.setattr(fused.FusedStep, "step_batch", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    assert main(["train", "--task", task, str(data), *SMALL, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert calls
    monkeypatch.setenv("FASTRNN_FUSED", "0")
    calls.clear()
    assert main(["train", "--task", task, str(data), *SMALL, "--epochs", "1", "--out", str(tmp_path / "run0")]) == 0
    assert not calls
