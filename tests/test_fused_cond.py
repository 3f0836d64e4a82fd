"""The fused training step of a ConditionedGenerator (fastrnn.train.fused_cond: the condition
block in Python around the language model's native forward and backward, then one native clip and
update) equals the Python steps: float64 to 1e-12 over cells, layers, class-id and vector
conditions, embedding or one-hot inputs, clipping and every optimiser over several steps; float32
within rounding; the same bits at 1, 2 and 3 threads; the Trainer uses it and gets the same run."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import optim
from fastrnn.models import ConditionedGenerator
from fastrnn.nn.recurrent import block_names
from fastrnn.train import Trainer, TrainingDiverged
from fastrnn.train.fused import FusedStep, why_not
from test_fused_seq import close_runs, same_optimiser, train_batches
from test_fused_step import OPTIMIZERS, assert_same_runs

V, C, F = 11, 3, 4      # vocabulary, condition classes, condition features


def _model(dtype, cell="lstm", layers=1, ids=True, embed=5, hidden=7, seed=3):
    cond = dict(num_classes=C) if ids else dict(condition_size=F)
    return ConditionedGenerator(V, cell=cell, hidden_size=hidden, num_layers=layers, embed_size=embed,
                                dtype=dtype, seed=seed, **cond)


def _batches(ids, steps, B=4, T=6, seed=0):
    """(condition, tokens) batches: class ids (B,) or vectors (B, F)."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, C, B) if ids else rng.standard_normal((B, F)), rng.integers(0, V, (B, T)))
            for _ in range(steps)]


def _train(fused, dtype, opt_name, clip=None, clip_value=None, steps=3, batch_kw=None, **model_kw):
    """(losses, params, grads, optimiser, model) after `steps` batches."""
    return train_batches(_model(dtype, **model_kw), fused, opt_name, clip, clip_value,
                         _batches(model_kw.get("ids", True), steps, **(batch_kw or {})))


@settings(max_examples=30, deadline=None)
@given(cell=st.sampled_from(block_names()), layers=st.integers(1, 2), ids=st.booleans(),
       embed=st.sampled_from([None, 5]), opt=st.sampled_from(sorted(OPTIMIZERS)),
       clip=st.sampled_from([None, 0.3, 100.0]), clip_value=st.sampled_from([None, 0.01]))
def test_float64_fused_step_equals_the_python_steps(cell, layers, ids, embed, opt, clip, clip_value):
    a, b = same_float64_runs(_train, opt, clip, clip_value, 3, cell=cell, layers=layers, ids=ids, embed=embed)
    assert a[4].lm.loss.total == b[4].lm.loss.total


def same_float64_runs(train, opt, clip, clip_value, steps, **kw):
    """`train(fused, "float64", opt, clip, clip_value, steps, **kw)` unfused and fused: the same
    losses, parameters, gradients and optimiser state to 1e-12; returns both runs."""
    a = train(False, "float64", opt, clip, clip_value, steps, **kw)
    b = train(True, "float64", opt, clip, clip_value, steps, **kw)
    close_runs(a, b, 1e-12)
    same_optimiser(a, b, steps)                         # the optimiser's state too
    return a, b


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("ids", [True, False], ids=["class-id", "vector"])
def test_every_optimiser_cell_and_condition_with_both_clips_float64(opt, cell, ids):
    """The sweep's combinations on every run (the hypothesis sweep draws 30 of them)."""
    same_float64_runs(_train, opt, 0.3, 0.01, 4, cell=cell, layers=2, ids=ids)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("ids", [True, False], ids=["class-id", "vector"])
def test_float32_loss_and_gradients_equal_the_python_steps_within_rounding(cell, ids):
    a, b = _model("float32", cell=cell, ids=ids, layers=2), _model("float32", cell=cell, ids=ids, layers=2)
    for batch in _batches(ids, 2):
        a.zero_grad()
        loss_a = a.forward(batch, train=True)
        a.backward()
        loss_b = FusedStep(b).step_batch(batch)
        assert abs(loss_a - loss_b) <= 1e-6 * loss_a
        scale = np.abs(a.grads).max()
        np.testing.assert_allclose(b.grads, a.grads, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("ids", [True, False], ids=["class-id", "vector"])
def test_float32_sgd_run_equals_the_python_steps_within_rounding(ids):
    kw = dict(clip=0.5, ids=ids, layers=2)
    close_runs(_train(False, "float32", "sgd_momentum", **kw), _train(True, "float32", "sgd_momentum", **kw), 2e-5)


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("ids", [True, False], ids=["class-id", "vector"])
def test_fused_step_is_bit_identical_across_thread_counts(opt, ids):
    # big enough that the stack, the head products and the update are shared
    same_bits_across_threads(lambda: _model("float32", cell="lstm", layers=2, ids=ids, hidden=40), opt,
                             _batches(ids, 2, B=24, T=20))


def same_bits_across_threads(make_model, opt, batches):
    """A model from `make_model()` trained by fused step_batch (OPTIMIZERS[opt], both clips) on
    `batches` at 1, 2 and 3 threads: the same loss, parameters and gradients bit for bit."""
    runs = []
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            m = make_model()
            cls, kw = OPTIMIZERS[opt]
            step = FusedStep(m, cls(m, lr=0.01, **kw), clip=0.5, clip_value=0.02)
            for batch in batches:
                loss = step.step_batch(batch)
                assert step.status == 0
            runs.append((loss, m.params.copy(), m.grads.copy()))
    finally:
        fastrnn.set_num_threads(None)
    assert_same_runs(runs)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_without_an_optimiser_it_is_zero_grad_forward_backward(cell):
    a, b = _model("float64", cell=cell, layers=2), _model("float64", cell=cell, layers=2)
    # the language model's gradients are the model's: one flat buffer, zeroed and filled in place
    assert np.shares_memory(b.lm.grads, b.grads) and np.shares_memory(b.condition.grads, b.grads)
    grads = b.grads
    batch, = _batches(True, 1)
    a.zero_grad()
    loss_a = a.forward(batch, train=True)
    a.backward()
    b.grads[...] = 7           # dirty, the condition's span too: the fused step zeroes them
    loss_b = FusedStep(b).step_batch(batch)
    assert abs(loss_a - loss_b) < 1e-12
    np.testing.assert_allclose(a.grads, b.grads, rtol=1e-12, atol=1e-13)
    assert np.abs(b.condition.grads).max() > 0 and b.grads is grads
    assert np.array_equal(a.params, b.params)
    with pytest.raises(RuntimeError):     # no pending tape, as after the unfused backward
        b.backward()


def test_a_bad_loss_leaves_the_parameters_alone():
    model = _model("float64")
    bad_losses_leave_the_parameters_alone(model, model.lm.head, _batches(True, 1)[0])


def bad_losses_leave_the_parameters_alone(model, head, batch):
    """A fused step_batch of `model` (float64, its output Linear `head`) on `batch`: no update for
    an "exploded" loss or a NaN one (status 1), then one update with the sums it reports."""
    opt = optim.SGD(model, lr=0.1)
    step = FusedStep(model, opt)
    before = model.params.copy()
    loss = step.step_batch(batch, max_loss=0.0)      # any loss is "exploded"
    assert step.status == 1 and loss > 0 and opt.steps == 0
    assert np.array_equal(model.params, before)
    b0, head._views["bias"][0] = head._views["bias"][0], np.nan
    step.step_batch(batch)
    assert step.status == 1 and opt.steps == 0                 # a NaN loss
    head._views["bias"][0] = b0
    assert np.array_equal(model.params, before)
    step.step_batch(batch)
    assert step.status == 0 and opt.steps == 1      # no clip: the gradients are as computed
    assert step.grad_sumsq == pytest.approx(float(model.grads @ model.grads), rel=1e-12)
    assert step.param_sumsq == pytest.approx(float(model.params @ model.params), rel=1e-12)


def test_bad_batches_are_refused_as_the_model_refuses_them():
    model = _model("float64")
    step = FusedStep(model)
    tokens = np.zeros((2, 3), int)
    with pytest.raises(TypeError, match="batch"):
        step.step_batch(tokens)
    with pytest.raises(ValueError, match="tokens"):
        step.step_batch((np.array([0, 1]), np.full((2, 3), V)))
    with pytest.raises(ValueError, match="tokens"):
        step.step_batch((np.array([0, 1, 2]), tokens))
    with pytest.raises(ValueError, match="condition"):
        step.step_batch((np.array([0, C]), tokens))
    with pytest.raises(TypeError, match="step_batch"):
        step.step(tokens, tokens)


def test_what_is_not_fused_says_why():
    model = _model("float32")
    assert why_not(model) is None and why_not(_model("float32", ids=False, embed=None)) is None
    assert "does not update this model" in why_not(model, optim.Adam(_model("float32")))

    class MyGenerator(ConditionedGenerator):
        pass
    assert "MyGenerator" in why_not(MyGenerator(V, num_classes=C))
    odd = _model("float32")
    object.__setattr__(odd, "condition", _model("float32").condition)    # not the model's buffers
    assert "not the model's whole parameters" in why_not(odd)


def _trainer(fused, ids=True, optimizer="adam", lr=0.01, **kw):
    model = _model("float64", cell="gru", layers=2, ids=ids)
    return model, Trainer(model, _batches(ids, 5, seed=1), _batches(ids, 2, seed=2), optimizer=optimizer, lr=lr,
                          progress=False, fused=fused, eval_every=4, epochs=3, **kw)


def _fit(fused, ids=True, optimizer="adam", iters=12, **kw):
    model, trainer = _trainer(fused, ids, optimizer, **kw)
    history = trainer.fit(max_iters=iters)       # across an epoch end
    return model, trainer, history


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("ids", [True, False], ids=["class-id", "vector"])
def test_the_trainer_uses_the_fused_step_and_gets_the_same_history(optimizer, ids):
    same_trainer_runs(_fit(False, ids, optimizer, clip=0.2, clip_value=0.05),
                      _fit(None, ids, optimizer, clip=0.2, clip_value=0.05))


def same_trainer_runs(unfused, fused):
    """Two (model, trainer, history) of 12 iterations over 5 batches a epoch, validated every 4:
    the second on the fused step, both with the same parameters and records to 1e-12."""
    (a, ta, ha), (b, tb, hb) = unfused, fused
    assert ta._fused_step is None and isinstance(tb._fused_step, FusedStep)
    assert ta.iteration == tb.iteration == 12 and ta.optimizer.steps == tb.optimizer.steps == 12
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-12)
    assert len(ha.records) == len(hb.records) == 3 and len(ha.epochs) == len(hb.epochs) == 2
    for ra, rb in zip(ha.records + ha.epochs, hb.records + hb.epochs):
        assert ra.keys() == rb.keys()
        for k in ("train_loss", "val_loss", "val_ppl"):
            if ra.get(k) is not None:
                assert abs(ra[k] - rb[k]) < 1e-12 * max(1, abs(ra[k])), k
    assert abs(ha.best_val - hb.best_val) < 1e-12


def test_fastrnn_fused_0_and_a_custom_forward_turn_it_off(monkeypatch):
    model = _model("float64")
    t = Trainer(model, _batches(True, 2), progress=False, forward=lambda b, train: model.forward(b, train))
    t.fit(max_iters=2)
    assert t._fused_step is None
    monkeypatch.setenv("FASTRNN_FUSED", "0")
    _, trainer, _ = _fit(None, iters=2)
    assert trainer._fused_step is None


def test_a_diverging_run_stops_at_the_same_iteration_fused_or_not():
    diverges_alike(_trainer)


def diverges_alike(make_trainer):
    """`make_trainer(fused, optimizer=, lr=, **settings)` -> (model, Trainer): an exploding SGD run
    stops with the same message after the same steps and parameters, fused or not."""
    def run(fused):
        model, trainer = make_trainer(fused, optimizer="sgd", lr=1e6, clip=0, explode_factor=1.5)
        with pytest.raises(TrainingDiverged, match="iteration") as e:
            trainer.fit(max_iters=30)
        return str(e.value), model.params.copy(), trainer.optimizer.steps
    a, b = run(False), run(None)
    assert a[0] == b[0] and a[2] == b[2]
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-12)    # the last good step's parameters
