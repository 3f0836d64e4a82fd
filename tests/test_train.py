"""Trainer: exact resume, checkpoints and logs, NaN handling, Ctrl-C."""
import json

import numpy as np
import pytest

from fastrnn import io
from fastrnn.data import Vocab, split
from fastrnn.models import LanguageModel
from fastrnn.train import Trainer, TrainingDiverged, init_uniform

TEXT = "".join(f"line {i}: the cat sat on the mat, {i * i % 97}\n" for i in range(60))


def setup(tmp_path, dropout=0.3, **kw):
    vocab = Vocab.build(TEXT)
    train_ids, val_ids, _ = split(vocab.encode(TEXT), 0.1, 0.0)
    model = LanguageModel(len(vocab), hidden_size=16, num_layers=2, dropout=dropout, seed=0)
    settings = dict(batch_size=4, seq_len=10, eval_every=4, out=str(tmp_path), progress=False)
    settings.update(kw)
    return Trainer(model, vocab, train_ids, val_ids, **settings), train_ids, val_ids


def test_resume_continues_exactly(tmp_path):
    """N iterations in one go == k iterations, save, load, N - k more (with dropout, across an epoch)."""
    full, train_ids, val_ids = setup(tmp_path / "a", epochs=3)
    n = len(full.batches) + 5                # cross an epoch boundary after resuming
    full.fit(max_iters=n)
    part, _, _ = setup(tmp_path / "b", epochs=3)
    part.fit(max_iters=7)
    resumed = Trainer.resume(tmp_path / "b" / "last.npz", train_ids, val_ids, progress=False)
    assert resumed.iteration == 7
    resumed.fit(max_iters=n - 7)
    np.testing.assert_array_equal(resumed.model.params, full.model.params)
    assert resumed.optimizer.lr == full.optimizer.lr


def test_checkpoints_and_log(tmp_path):
    trainer, _, _ = setup(tmp_path, epochs=2)
    summary = trainer.fit()
    assert summary["iterations"] == 2 * len(trainer.batches)
    assert (tmp_path / "best.npz").exists() and (tmp_path / "last.npz").exists()
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines and {"iteration", "train_loss", "val_loss", "val_ppl", "lr"} <= set(lines[0])
    assert lines[-1]["iteration"] == summary["iterations"]
    best_val = min(l["val_loss"] for l in lines)
    assert abs(best_val - summary["best_val"]) < 1e-12
    model, _, extra = io.load(tmp_path / "best.npz")
    assert extra["meta"]["training"]["best_val"] == pytest.approx(best_val)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer, _, _ = setup(tmp_path, epochs=5)
    trainer.fit(max_iters=4)
    good = (tmp_path / "last.npz").read_bytes()
    trainer.model.params[3] = np.nan
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        trainer.fit()
    assert (tmp_path / "last.npz").read_bytes() == good


def test_ctrl_c_saves_before_exiting(tmp_path, monkeypatch):
    trainer, _, _ = setup(tmp_path, epochs=5, eval_every=1000)
    step = trainer.train_step

    def interrupting_step():
        loss = step()
        if trainer.iteration == 3:
            trainer._interrupted = True       # what the SIGINT handler does
        return loss
    monkeypatch.setattr(trainer, "train_step", interrupting_step)
    summary = trainer.fit()
    assert summary["stopped"] == "interrupted" and summary["iterations"] == 3
    _, _, extra = io.load(tmp_path / "last.npz")
    assert extra["meta"]["training"]["iteration"] == 3


def test_time_budget_stops_training(tmp_path):
    trainer, _, _ = setup(tmp_path, epochs=1000, max_time=0.5)
    summary = trainer.fit()
    assert summary["stopped"] == "time budget" and 0 < summary["iterations"] < 1000 * len(trainer.batches)


def test_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="optimizer"):
        setup(tmp_path, optimizer="lbfgs")
    with pytest.raises(ValueError, match="eval_every"):
        setup(tmp_path, eval_every=0)
    for name in ("clip", "clip_value", "lr_decay", "max_time", "explode_factor"):   # True is no number
        with pytest.raises(ValueError, match=name):
            setup(tmp_path, **{name: True})
    for name, bad in (("clip_value", "x"), ("clip_value", -1.0), ("lr_decay_after", 1.5)):
        with pytest.raises(ValueError, match=name):
            setup(tmp_path, **{name: bad})


def test_learning_rate_decay_per_epoch_and_per_step(tmp_path):
    per_epoch, _, _ = setup(tmp_path / "a", epochs=2, lr=1e-3, lr_decay=0.5)
    per_epoch.fit()
    assert per_epoch.optimizer.lr == pytest.approx(1e-3 * 0.25)
    stepwise, _, _ = setup(tmp_path / "b", epochs=1, lr=1e-3, lr_decay=0.5, lr_decay_every=3)
    stepwise.fit(max_iters=7)
    assert stepwise.optimizer.lr == pytest.approx(1e-3 * 0.25)


def test_learning_rate_decay_starts_after_n_epochs(tmp_path):
    # char-rnn's learning_rate_decay_after: after epoch e, decay only when e >= N
    trainer, _, _ = setup(tmp_path / "a", epochs=3, lr=1e-3, lr_decay=0.5, lr_decay_after=2)
    per_epoch = len(trainer.batches)
    lrs = []
    for _ in range(3):
        trainer.fit(max_iters=per_epoch)
        lrs.append(trainer.optimizer.lr)
    assert lrs == pytest.approx([1e-3, 5e-4, 2.5e-4])
    with pytest.raises(ValueError, match="lr_decay_after"):
        setup(tmp_path / "b", lr_decay_after=-1)


def test_clip_value_clamps_every_gradient_element(tmp_path, monkeypatch):
    trainer, _, _ = setup(tmp_path, dropout=0.0, clip=None, clip_value=1e-4, lr=1.0, optimizer="sgd")
    before = trainer.model.params.copy()
    trainer.train_step()
    step = np.abs(trainer.model.params - before)        # SGD lr 1: the step is the gradient
    assert step.max() <= 1e-4 * (1 + 1e-3) and step.max() > 0.5e-4
    with pytest.raises(ValueError, match="clip_value"):
        setup(tmp_path, clip_value=-1)


def test_init_uniform_sets_lstm_forget_biases_of_every_layer_and_direction():
    from fastrnn.models import SequenceClassifier
    model = SequenceClassifier(3, vocab_size=7, embed_size=4, hidden_size=5, num_layers=2,
                               bidirectional=True, seed=0)
    init_uniform(model, 0.05, seed=1)
    for name, p in model.named_parameters():
        if name.startswith("rnn.bias_ih_l"):
            np.testing.assert_array_equal(p[5:10], 1.0, err_msg=name)
            assert np.abs(np.r_[p[:5], p[10:]]).max() <= 0.05
        else:
            assert np.abs(p).max() <= 0.05, name
    a = init_uniform(LanguageModel(9, hidden_size=4, num_layers=1, seed=0), 0.08, seed=3).params.copy()
    b = init_uniform(LanguageModel(9, hidden_size=4, num_layers=1, seed=5), 0.08, seed=3).params
    np.testing.assert_array_equal(a, b)                 # the draw depends on `seed` only
    with pytest.raises(ValueError, match="init_range"):
        init_uniform(model, 0)


def test_the_validation_line_shows_perplexity_only_for_a_token_cross_entropy(tmp_path, capsys):
    trainer, _, _ = setup(tmp_path, progress=True, epochs=1)
    trainer.fit(max_iters=4)
    assert "(ppl " in capsys.readouterr().out
