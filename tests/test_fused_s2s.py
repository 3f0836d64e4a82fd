"""The fused training step of a Seq2Seq (fastrnn.train.fused_s2s: the encoder in Python around the
decoder side's native step from the bridged state, then one native clip and update) equals the
Python steps: float64 to 1e-12 over cells, layers, bidirectional encoders, ragged source and target
lengths (an empty target too), clipping and every optimiser over several steps; float32 and bf16
within rounding; the same bits at 1, 2 and 3 threads; the Trainer and `fastrnn train --task
seq2seq` use it and get the same run."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import optim
from fastrnn.models import AttentionSeq2Seq, GridRNN, OutputRecurrentNet, Seq2Seq
from fastrnn.nn.recurrent import block_names
from fastrnn.train import Trainer
from fastrnn.train.fused import FusedStep, why_not
from test_bf16_head import _same_step
from test_fused_cond import (bad_losses_leave_the_parameters_alone, diverges_alike, same_bits_across_threads,
                             same_float64_runs, same_trainer_runs)
from test_fused_seq import close_runs, train_batches
from test_fused_step import OPTIMIZERS

VS, VT = 9, 8           # source and target vocabularies (target: <bos> 0, <eos> 1)


def _model(dtype, cell="lstm", layers=1, bidirectional=True, hidden=6, embed=5, seed=3):
    return Seq2Seq(VS, VT, cell=cell, embed_size=embed, hidden_size=hidden, num_layers=layers,
                   bidirectional=bidirectional, dtype=dtype, seed=seed)


def _batches(steps, B=4, Tx=6, Ty=5, seed=0):
    """(src, src_lengths, tgt, tgt_lengths) batches, ragged; the first holds an empty target."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(steps):
        tl = rng.integers(0, Ty + 1, B)
        if i == 0:
            tl[1] = 0
        out.append((rng.integers(0, VS, (B, Tx)), rng.integers(1, Tx + 1, B), rng.integers(0, VT, (B, Ty)), tl))
    return out


def _train(fused, dtype, opt_name, clip=None, clip_value=None, steps=3, batch_kw=None, **model_kw):
    """(losses, params, grads, optimiser, model) after `steps` batches."""
    return train_batches(_model(dtype, **model_kw), fused, opt_name, clip, clip_value,
                         _batches(steps, **(batch_kw or {})))


@settings(max_examples=30, deadline=None)
@given(cell=st.sampled_from(block_names()), layers=st.integers(1, 2), bidirectional=st.booleans(),
       opt=st.sampled_from(sorted(OPTIMIZERS)), clip=st.sampled_from([None, 0.3, 100.0]),
       clip_value=st.sampled_from([None, 0.01]), steps=st.integers(3, 4))
def test_float64_fused_step_equals_the_python_steps(cell, layers, bidirectional, opt, clip, clip_value, steps):
    a, b = same_float64_runs(_train, opt, clip, clip_value, steps, cell=cell, layers=layers,
                             bidirectional=bidirectional)
    assert a[4].loss.total == b[4].loss.total


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_every_optimiser_cell_and_encoder_with_both_clips_float64(opt, cell, bidirectional):
    """The sweep's combinations on every run (the hypothesis sweep draws 30 of them)."""
    same_float64_runs(_train, opt, 0.3, 0.01, 4, cell=cell, layers=2, bidirectional=bidirectional)


def _same_float32_step(a, b, batch):
    """a by zero_grad + forward + backward, b by the fused step without an optimiser: the same
    loss and gradients up to float32 rounding."""
    def unfused():
        loss = a.forward(batch, train=True)
        a.backward()
        return loss
    _same_step(a, b, unfused, lambda: FusedStep(b).step_batch(batch))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_float32_loss_and_gradients_equal_the_python_steps_within_rounding(cell, bidirectional):
    a, b = (_model("float32", cell=cell, layers=2, bidirectional=bidirectional) for _ in range(2))
    for batch in _batches(2):
        _same_float32_step(a, b, batch)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_bf16_fused_step_equals_the_python_steps_in_bf16(cell):
    a, b = (_model("float32", cell=cell, layers=2, hidden=20) for _ in range(2))
    for m in (a, b):
        m.precision = "bf16"
        assert m.decoder.precision == m.head.precision == "bf16"
    for batch in _batches(2, B=6, Tx=8, Ty=7):
        _same_float32_step(a, b, batch)


def test_float32_sgd_run_equals_the_python_steps_within_rounding():
    kw = dict(clip=0.5, layers=2)
    close_runs(_train(False, "float32", "sgd_momentum", **kw), _train(True, "float32", "sgd_momentum", **kw), 2e-5)


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_fused_step_is_bit_identical_across_thread_counts(opt):
    # big enough that the decoder stack (hidden 2 x 20), the head products and the update are shared
    same_bits_across_threads(lambda: _model("float32", cell="lstm", layers=2, hidden=20), opt,
                             _batches(2, B=24, Tx=16, Ty=20))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_without_an_optimiser_it_is_zero_grad_forward_backward(cell, bidirectional):
    a, b = (_model("float64", cell=cell, layers=2, bidirectional=bidirectional) for _ in range(2))
    grads = b.grads
    batch, = _batches(1)
    a.zero_grad()
    loss_a = a.forward(batch, train=True)
    a.backward()
    b.grads[...] = 7           # dirty, the encoder's span too: the fused step zeroes them
    loss_b = FusedStep(b).step_batch(batch)
    assert abs(loss_a - loss_b) < 1e-12 and b.loss.total == a.loss.total == batch[3].sum() + 4
    np.testing.assert_allclose(a.grads, b.grads, rtol=1e-12, atol=1e-13)
    # the initial-state gradient reached the encoder and the source embedding
    assert np.abs(b.encoder.grads).max() > 0 and np.abs(b.src_embed.grads).max() > 0 and b.grads is grads
    assert np.array_equal(a.params, b.params)
    for block in (b, b.encoder, b.decoder):      # no pending tape, as after the unfused backward
        with pytest.raises(RuntimeError):
            block.backward() if block is b else block.backward(np.zeros((1, 1, 1)))


def test_a_bad_loss_leaves_the_parameters_alone():
    model = _model("float64")
    bad_losses_leave_the_parameters_alone(model, model.head, _batches(1)[0])


def test_bad_batches_are_refused_as_the_model_refuses_them():
    model = _model("float64")
    step = FusedStep(model)
    src, sl, tgt, tl = _batches(1)[0]
    bad = [((src, sl, tgt), TypeError, "batch"), ((src, sl, np.full_like(tgt, VT), tl), ValueError, "tgt"),
           ((src, sl, tgt[:2], tl[:2]), ValueError, "tgt"), ((src, sl + 10, tgt, tl), ValueError, "src_lengths"),
           ((src, sl, tgt, tl + 10), ValueError, "tgt_lengths"),
           ((np.full_like(src, VS), sl, tgt, tl), ValueError, "src")]
    for batch, error, name in bad:
        with pytest.raises(error, match=name):
            model.forward(batch, train=True)
        with pytest.raises(error, match=name):
            step.step_batch(batch)
    with pytest.raises(TypeError, match="step_batch"):
        step.step(src, src)


def test_what_is_not_fused_says_why():
    assert why_not(_model("float32")) is None and why_not(_model("float32", bidirectional=False)) is None
    assert "does not update this model" in why_not(_model("float32"), optim.Adam(_model("float32")))

    class MySeq2Seq(Seq2Seq):
        pass
    assert "MySeq2Seq" in why_not(MySeq2Seq(VS, VT))
    for other in (AttentionSeq2Seq(VS, VT), OutputRecurrentNet(3, 2), GridRNN(2, 3)):
        assert why_not(other).startswith(f"the model is a {type(other).__name__}, not a ")
    odd = _model("float32")
    object.__setattr__(odd, "decoder", _model("float32").encoder)        # a bidirectional stack
    assert "the decoder is not a unidirectional fastrnn layer" in why_not(odd)
    odd = _model("float32")
    object.__setattr__(odd, "loss", fastrnn.nn.BCEWithLogits())
    assert "softmax cross-entropy" in why_not(odd)


def _trainer(fused, optimizer="adam", lr=0.01, **kw):
    model = _model("float64", cell="gru", layers=2)
    return model, Trainer(model, _batches(5, seed=1), _batches(2, seed=2), optimizer=optimizer, lr=lr,
                          progress=False, fused=fused, eval_every=4, epochs=3, **kw)


def _fit(fused, optimizer):
    model, trainer = _trainer(fused, optimizer, clip=0.2, clip_value=0.05)
    return model, trainer, trainer.fit(max_iters=12)         # across an epoch end


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_the_trainer_uses_the_fused_step_and_gets_the_same_history(optimizer):
    same_trainer_runs(_fit(False, optimizer), _fit(None, optimizer))


def test_a_diverging_run_stops_at_the_same_iteration_fused_or_not():
    diverges_alike(_trainer)


def test_a_forward_that_is_more_than_a_batch_conversion_turns_it_off():
    from fastrnn.train.callbacks import ModelForward

    class Logged(ModelForward):
        def __call__(self, batch, train):
            return super().__call__(batch, train)
    model = _model("float64")
    t = Trainer(model, _batches(2), progress=False, forward=Logged(model))
    t.fit(max_iters=2)
    assert t._fused_step is None


def test_fastrnn_train_seq2seq_runs_on_the_fused_step(tmp_path, monkeypatch):
    from fastrnn.cli import main
    from fastrnn.train import fused
    from test_cli_tasks import SMALL, seq2seq_file
    data = seq2seq_file(tmp_path / "d.txt", n=40)
    calls = []
    real = fused.FusedStep.step_batch
    monkeypatch.setattr(fused.FusedStep, "step_batch", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    args = ["train", "--task", "seq2seq", str(data), *SMALL, "--epochs", "1", "--dtype", "float64", "--out"]
    assert main([*args, str(tmp_path / "run")]) == 0
    assert calls
    monkeypatch.setenv("FASTRNN_FUSED", "0")
    calls.clear()
    assert main([*args, str(tmp_path / "run0")]) == 0
    assert not calls
    a, b = (fastrnn.load(tmp_path / r / "last.npz")[0] for r in ("run", "run0"))
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10, atol=1e-12)
