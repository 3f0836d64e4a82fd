"""The fused native training step (fastrnn.train.fused, csrc/head.c, csrc/optim.c) equals the
Python steps: float64 to 1e-12, float32 within rounding, the same bits at 1, 2 and 3 threads; the
Trainer uses it where it applies and falls back cleanly where it does not."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import optim
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel
from fastrnn.nn.recurrent import block_names
from fastrnn.train import Trainer, TrainingDiverged
from fastrnn.train.fused import FusedStep, applies, why_not

OPTIMIZERS = {
    "sgd": (optim.SGD, {}),
    "sgd_momentum": (optim.SGD, dict(momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "sgd_nesterov": (optim.SGD, dict(momentum=0.8, nesterov=True)),
    "adam": (optim.Adam, {}),
    "adam_l2": (optim.Adam, dict(weight_decay=0.05, betas=(0.8, 0.95))),
    "adamw": (optim.AdamW, {}),
    "rmsprop": (optim.RMSprop, dict(alpha=0.9)),
    "adagrad": (optim.Adagrad, {}),
}
V = 13



def assert_same_runs(runs):
    """Every (loss, params, grads) of `runs` (one per thread count) bit for bit the first's."""
    for loss, p, g in runs[1:]:
        assert loss == runs[0][0]
        assert np.array_equal(p, runs[0][1]) and np.array_equal(g, runs[0][2])

def _model(dtype, cell="lstm", layers=2, embed=None, dropout=0.0, hidden=9, seed=5):
    return LanguageModel(V, cell=cell, hidden_size=hidden, num_layers=layers, embed_size=embed,
                         dropout=dropout, dtype=dtype, seed=seed)


def _batches(steps, B=3, T=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))) for _ in range(steps)]


def _train(fused, dtype, opt_name, clip=None, clip_value=None, steps=3, **model_kw):
    """(losses, params, grads, final state) after `steps` windows with the state carried."""
    model = _model(dtype, **model_kw)
    cls, kw = OPTIMIZERS[opt_name]
    opt = cls(model, lr=0.05, **kw)
    step = FusedStep(model, opt, clip=clip, clip_value=clip_value) if fused else None
    state, losses = None, []
    for inputs, targets in _batches(steps):
        if fused:
            loss, state = step.step(inputs, targets, state)
            assert step.status == 0
        else:
            model.zero_grad()
            loss, state = model.forward(inputs, targets, state, train=True)
            model.backward()
            if clip:
                optim.clip_grad_norm(model, clip)
            if clip_value:
                optim.clip_grad_value(model, clip_value)
            opt.step()
        losses.append(loss)
    parts = state if isinstance(state, tuple) else (state,)
    return np.array(losses), model.params.copy(), model.grads.copy(), [p.copy() for p in parts], opt


def _close(a, b, tol):
    for x, y in zip(a[:4], b[:4]):
        for u, v in zip(x if isinstance(x, list) else [x], y if isinstance(y, list) else [y]):
            np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


def _assert_same_steps_within_rounding(a, b, steps=2):
    """Two equal float32 models: `a` by forward + backward, `b` by the fused step, over `steps`
    windows with the state carried: the same losses and gradients within float32 rounding."""
    state_a = state_b = None
    for inputs, targets in _batches(steps):
        a.zero_grad()
        loss_a, state_a = a.forward(inputs, targets, state_a, train=True)
        a.backward()
        loss_b, state_b = FusedStep(b).step(inputs, targets, state_b)
        assert abs(loss_a - loss_b) <= 1e-6 * loss_a
        scale = np.abs(a.grads).max()
        np.testing.assert_allclose(b.grads, a.grads, rtol=1e-5, atol=1e-6 * scale)


@settings(max_examples=25, deadline=None)
@given(cell=st.sampled_from(block_names()), layers=st.integers(1, 3), embed=st.sampled_from([None, 4]),
       opt=st.sampled_from(sorted(OPTIMIZERS)), clip=st.sampled_from([None, 0.3, 100.0]),
       clip_value=st.sampled_from([None, 0.01]), dropout=st.sampled_from([0.0, 0.4]))
def test_float64_fused_step_equals_the_python_steps(cell, layers, embed, opt, clip, clip_value, dropout):
    kw = dict(cell=cell, layers=layers, embed=embed, dropout=dropout)
    a = _train(False, "float64", opt, clip, clip_value, **kw)
    b = _train(True, "float64", opt, clip, clip_value, **kw)
    _close(a, b, 1e-12)
    assert a[4].steps == b[4].steps == 3
    for name in a[4].state_names:                       # the optimiser's state too
        np.testing.assert_allclose(a[4].state[name], b[4].state[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("embed", [None, 4])
def test_float32_loss_and_gradients_equal_the_python_steps_within_rounding(cell, embed):
    a, b = _model("float32", cell=cell, embed=embed, dropout=0.3), _model("float32", cell=cell, embed=embed, dropout=0.3)
    _assert_same_steps_within_rounding(a, b)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bf16_fused_step_equals_the_python_steps_in_bf16(cell):
    """A bf16 model's fused step runs its stack in bf16 as its forward/backward do: the same
    products, so the same loss and gradients up to the head's float32 rounding."""
    a, b = _model("float32", cell=cell, embed=4), _model("float32", cell=cell, embed=4)
    a.precision = b.precision = "bf16"
    _assert_same_steps_within_rounding(a, b)
    f32 = _model("float32", cell=cell, embed=4)     # and bf16 really ran: float32 differs
    f32.zero_grad()
    f32.forward(*_batches(1)[0], None, train=True)
    f32.backward()
    b.zero_grad()
    FusedStep(b).step(*_batches(1)[0], None)
    assert not np.allclose(b.grads, f32.grads, rtol=1e-6, atol=0)


@pytest.mark.parametrize("opt", ["sgd", "sgd_momentum", "sgd_nesterov"])
@pytest.mark.parametrize("embed", [None, 4])
def test_float32_training_run_equals_the_python_steps_within_rounding(opt, embed):
    # SGD moves each weight by lr * gradient, so rounding in the gradients stays rounding in the
    # weights; the normalising optimisers (Adam, RMSprop, Adagrad) divide by the gradients' own
    # size, which turns a rounding difference in a near-zero gradient into a visible one: they are
    # checked here over whole runs more loosely, and bit for bit given the same gradients below
    a = _train(False, "float32", opt, clip=0.5, embed=embed, dropout=0.3, layers=2)
    b = _train(True, "float32", opt, clip=0.5, embed=embed, dropout=0.3, layers=2)
    _close(a, b, 2e-5)


@pytest.mark.parametrize("opt", ["adam", "adamw", "rmsprop", "adagrad"])
def test_float32_normalising_optimisers_stay_within_a_step_of_rounding(opt):
    a = _train(False, "float32", opt, clip=0.5, embed=4, dropout=0.3, layers=2)
    b = _train(True, "float32", opt, clip=0.5, embed=4, dropout=0.3, layers=2)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5)                  # the losses
    np.testing.assert_allclose(a[1], b[1], atol=0.05 * 3 * 1e-2)        # 1 % of three steps of lr


@settings(max_examples=40, deadline=None)
@given(opt=st.sampled_from(sorted(OPTIMIZERS)), dtype=st.sampled_from(["float32", "float64"]),
       clip_value=st.sampled_from([None, 0.3]), steps=st.integers(1, 3), n=st.integers(1, 40000),
       seed=st.integers(0, 2**32 - 1))
def test_the_native_update_is_optim_py_bit_for_bit(opt, dtype, clip_value, steps, n, seed):
    from fastrnn import _kernels
    from fastrnn.train.fused import KINDS
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [(rng.standard_normal(n) * 10.0 ** rng.integers(-8, 2)).astype(dtype) for _ in range(steps)]
    cls, kw = OPTIMIZERS[opt]
    ref_p, ref_g, fus_p, fus_g = p0.copy(), np.empty_like(p0), p0.copy(), np.empty_like(p0)
    ref, fus = cls((ref_p, ref_g), lr=0.01, **kw), cls((fus_p, fus_g), lr=0.01, **kw)
    for g in grads:
        ref_g[...] = g
        if clip_value:
            optim.clip_grad_value((ref_p, ref_g), clip_value)
        ref.step()
        fus_g[...] = g
        spec = dict(fus.hyper, kind=KINDS[cls], steps=fus.steps + 1, lr=fus.lr,
                    state=[fus.state[s] for s in fus.state_names], clip_value=clip_value)
        status, sumsq, psq = _kernels.optim_step(fus_p, fus_g, spec)
        fus.steps += 1
        assert status == 0 and math.isclose(sumsq, float(np.sum(g.astype(np.float64) ** 2)), rel_tol=1e-9)
        assert math.isclose(psq, float(np.sum(fus_p.astype(np.float64) ** 2)), rel_tol=1e-9)
    assert np.array_equal(ref_p, fus_p) and np.array_equal(ref_g, fus_g)
    for s in ref.state_names:
        assert np.array_equal(ref.state[s], fus.state[s])


def test_the_native_norm_clip_is_clip_grad_norm():
    from fastrnn import _kernels
    rng = np.random.default_rng(1)
    for dtype in ("float32", "float64"):
        p, g = rng.standard_normal(50000).astype(dtype), rng.standard_normal(50000).astype(dtype)
        ref_p, ref_g = p.copy(), g.copy()
        optim.clip_grad_norm((ref_p, ref_g), 3.0)
        optim.SGD((ref_p, ref_g), lr=0.1).step()
        status, sumsq, _ = _kernels.optim_step(p, g, dict(kind="sgd", steps=1, lr=0.1, clip=3.0,
                                                          state=[np.zeros_like(p)]))
        tol = 1e-6 if dtype == "float32" else 1e-14      # the norm's sum runs in another order
        np.testing.assert_allclose(g, ref_g, rtol=tol, atol=tol)
        np.testing.assert_allclose(p, ref_p, rtol=tol, atol=tol)
        bad = g.copy()
        bad[7] = np.nan
        assert _kernels.optim_step(p, bad, dict(kind="sgd", steps=1, lr=0.1, state=[np.zeros_like(p)]))[0] == 2


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("embed", [None, 4])
def test_fused_step_is_bit_identical_across_thread_counts(cell, embed):
    runs = []
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            # big enough that the stack, the head products and the passes are shared
            kw = dict(cell=cell, layers=2, embed=embed, dropout=0.2)
            model = _model("float32", hidden=48, **kw)
            opt = optim.Adam(model, lr=0.01)
            step = FusedStep(model, opt, clip=1.0)
            state = None
            for inputs, targets in _batches(2, B=16, T=20):
                loss, state = step.step(inputs, targets, state)
            runs.append((loss, model.params.copy(), model.grads.copy()))
    finally:
        fastrnn.set_num_threads(None)
    assert_same_runs(runs)


def test_without_an_optimiser_it_is_forward_plus_backward():
    a, b = _model("float64", embed=4), _model("float64", embed=4)
    (inputs, targets), = _batches(1)
    a.zero_grad()
    loss_a, (h_a, c_a) = a.forward(inputs, targets, train=True)
    a.backward()
    a.grads[...] += 0          # b's grads start dirty: the fused step zeroes them
    b.grads[...] = 7
    loss_b, (h_b, c_b) = FusedStep(b).step(inputs, targets)
    assert abs(loss_a - loss_b) < 1e-12
    np.testing.assert_allclose(a.grads, b.grads, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h_a, h_b, rtol=1e-12, atol=1e-13)
    assert np.array_equal(a.params, b.params)


def test_a_bad_loss_or_gradient_leaves_the_parameters_alone():
    model = _model("float64")
    opt = optim.SGD(model, lr=0.1)
    step = FusedStep(model, opt)
    before = model.params.copy()
    (inputs, targets), = _batches(1)
    loss, _ = step.step(inputs, targets, max_loss=0.0)      # any loss is "exploded"
    assert step.status == 1 and loss > 0 and opt.steps == 0
    assert np.array_equal(model.params, before)
    model.params[-1] = np.inf                               # the head's last bias
    step.step(inputs, targets)
    assert step.status in (1, 2)                            # NaN loss (or gradients)
    model.params[-1] = before[-1]
    assert np.array_equal(model.params, before) and opt.steps == 0


def test_what_does_not_apply_is_refused_with_the_reason():
    from fastrnn.models import SequenceRegressor
    model = _model("float32")
    assert applies(model, optim.Adam(model))
    other = _model("float32")
    assert "does not update this model" in why_not(model, optim.Adam(other))

    class MyAdam(optim.Adam):
        pass
    assert "not one of fastrnn.optim's" in why_not(model, MyAdam(model))
    reg = SequenceRegressor(3)      # (a tagger or a softmax classifier is fused: test_fused_seq.py)
    assert "not a LanguageModel" in why_not(reg)
    with pytest.raises(ValueError, match="FusedStep: the model is a SequenceRegressor"):
        FusedStep(reg)
    with pytest.raises(ValueError, match="clip"):
        FusedStep(model, clip=-1)
    with pytest.raises(ValueError, match="targets"):
        FusedStep(model).step(np.zeros((2, 3), int), np.zeros((2, 4), int))
    with pytest.raises(ValueError, match="ids must be in"):
        FusedStep(model).step(np.full((2, 3), V), np.zeros((2, 3), int))


TEXT = "the quick brown fox jumps over the lazy dog; " * 30


def _fit(fused, dtype="float64", monkeypatch=None, **kw):
    vocab = Vocab.build(TEXT)
    ids = vocab.encode(TEXT)
    model = LanguageModel(len(vocab), hidden_size=12, num_layers=2, dropout=0.25, dtype=dtype, seed=2)
    trainer = Trainer(model, vocab, ids[:1000], ids[1000:], batch_size=4, seq_len=8, progress=False,
                      fused=fused, eval_every=15, epochs=2, **kw)
    history = trainer.fit(max_iters=40)       # past an epoch end: the carried state resets
    return model, trainer, history


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adagrad"])
def test_the_trainer_uses_the_fused_step_and_gets_the_same_run(optimizer):
    a, ta, ha = _fit(False, optimizer=optimizer, clip=0.2, clip_value=0.05)
    b, tb, hb = _fit(None, optimizer=optimizer, clip=0.2, clip_value=0.05)
    assert ta._fused_step is None and isinstance(tb._fused_step, FusedStep)
    assert ta.iteration == tb.iteration == 40 and ta.optimizer.steps == tb.optimizer.steps == 40
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-12)
    assert abs(ha.best_val - hb.best_val) < 1e-12
    for x, y in zip(ta.forward.state, tb.forward.state):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)
    assert a.rng_state()["rnn._dropout_rng"] == b.rng_state()["rnn._dropout_rng"]


def test_fastrnn_fused_0_turns_it_off(monkeypatch):
    monkeypatch.setenv("FASTRNN_FUSED", "0")
    _, trainer, _ = _fit(None)
    assert trainer._fused_step is None


def test_the_trainer_falls_back_for_a_forward_that_is_not_statecarry():
    vocab = Vocab.build(TEXT)
    ids = vocab.encode(TEXT)
    model = LanguageModel(len(vocab), hidden_size=8, num_layers=1, dtype="float64", seed=2)
    from fastrnn.train import StateCarry
    carry = StateCarry(model)
    calls = []

    def forward(batch, train):
        calls.append(train)
        return carry(batch, train)
    trainer = Trainer(model, vocab, ids[:600], ids[600:], batch_size=2, seq_len=8, progress=False,
                      forward=forward, eval_every=1000)
    trainer.fit(max_iters=3)
    assert trainer._fused_step is None and calls.count(True) == 3


def test_a_diverging_run_stops_at_the_same_iteration_fused_or_not():
    def run(fused):
        with pytest.raises(TrainingDiverged, match="iteration") as e:
            _fit(fused, optimizer="sgd", lr=1e6, clip=0, explode_factor=1.5)
        return str(e.value)
    assert run(False) == run(None)
