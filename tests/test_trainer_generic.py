"""The one Trainer on a model that is not a language model (a many-to-one classifier composed
in this file from nn blocks), plus divergence detection and a second Ctrl-C during a save."""
import json
import math
import os
import signal

import numpy as np
import pytest

import fastrnn
from fastrnn import nn
from fastrnn.data import Vocab, split
from fastrnn.models import LanguageModel, register
from fastrnn.train import Metric, Trainer, TrainingDiverged


@register
class BitClassifier(nn.Module):
    """ids (B, T) of bits -> Embedding -> LSTM -> last output -> Dropout -> Linear -> softmax-CE."""

    def __init__(self, hidden=12, dropout=0.1, dtype="float64", seed=0):
        super().__init__(dtype)
        self.config = dict(hidden=hidden, dropout=dropout, dtype=dtype, seed=seed)
        rng = np.random.default_rng(seed)
        self.embed = nn.Embedding(2, 4, dtype=dtype, seed=rng)
        self.encoder = nn.LSTM(4, hidden, dtype=dtype, seed=int(rng.integers(2**31)))
        self.drop = nn.Dropout(dropout, dtype=dtype, seed=int(rng.integers(2**31)))
        self.head = nn.Linear(hidden, 2, dtype=dtype, seed=rng)
        self.loss = nn.SoftmaxCrossEntropy()

    def logits(self, ids, train):
        out, _ = self.encoder.forward(self.embed.forward(np.ascontiguousarray(ids.T), train), train=train)
        self._shape = out.shape                                              # (T, B, H)
        return self.head.forward(self.drop.forward(out[-1], train), train)  # (B, 2)

    def forward(self, batch, train=True):
        ids, labels = batch
        return self.loss.forward(self.logits(ids, train), labels)

    def backward(self):
        dlast = self.drop.backward(self.head.backward(self.loss.backward()))
        dout = np.zeros(self._shape)
        dout[-1] = dlast                       # only the last step feeds the head
        dx, _ = self.encoder.backward(dout)
        self.embed.backward(dx)


def majority_data(n, T=7, seed=0):
    bits = np.random.default_rng(seed).integers(0, 2, (n, T))
    return [(bits[i:i + 16], (bits[i:i + 16].sum(1) > T // 2).astype(np.int64)) for i in range(0, n, 16)]


def accuracy(model, batches):
    hits = sum((model.logits(x, False).argmax(1) == y).sum() for x, y in batches)
    return hits / sum(len(y) for _, y in batches)


def test_classifier_gradients_match_finite_differences():
    m = BitClassifier(hidden=3, dropout=0.0)
    x, y = majority_data(16)[0]
    m.zero_grad()
    m.forward((x, y))
    m.backward()
    rng = np.random.default_rng(1)
    for i in rng.choice(m.params.size, 30, replace=False):
        old = m.params[i]
        m.params[i] = old + 1e-6
        m.invalidate()
        up = m.forward((x, y), train=False)
        m.params[i] = old - 1e-6
        m.invalidate()
        down = m.forward((x, y), train=False)
        m.params[i] = old
        m.invalidate()
        assert abs((up - down) / 2e-6 - m.grads[i]) < 1e-7


def test_trainer_learns_a_classifier_checkpoints_and_resumes_exactly(tmp_path):
    train, val = majority_data(320, seed=0), majority_data(96, seed=1)
    model = BitClassifier(seed=0)
    trainer = Trainer(model, iter(train), val, lr=0.02, epochs=12, eval_every=40, out=str(tmp_path / "a"),
                      progress=False, callbacks=[Metric("val_acc", lambda t: accuracy(t.model, val))])
    summary = trainer.fit()
    assert summary["iterations"] == 12 * len(train)
    lines = [json.loads(l) for l in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["val_acc"] >= 0.95, lines[-1]
    assert lines[-1]["val_loss"] < lines[0]["val_loss"]
    best, vocab, _ = fastrnn.load(tmp_path / "a" / "best.npz")
    assert type(best) is BitClassifier and vocab is None
    # exact resume, across an epoch boundary, with dropout
    full = Trainer(BitClassifier(seed=3), train, val, lr=0.02, epochs=3, progress=False, eval_every=7,
                   out=str(tmp_path / "b"))
    full.fit(max_iters=30)
    part = Trainer(BitClassifier(seed=3), train, val, lr=0.02, epochs=3, progress=False, eval_every=7,
                   out=str(tmp_path / "c"))
    part.fit(max_iters=14)
    resumed = Trainer.resume(tmp_path / "c" / "last.npz", train, val, progress=False)
    assert resumed.iteration == 14 and resumed.window == 14 % len(train)
    resumed.fit(max_iters=16)
    np.testing.assert_array_equal(resumed.model.params, full.model.params)


TEXT = "".join(f"line {i}: the cat sat on the mat, {i * i % 97}\n" for i in range(60))


def lm_trainer(tmp_path, **kw):
    vocab = Vocab.build(TEXT)
    train_ids, val_ids, _ = split(vocab.encode(TEXT), 0.1, 0.0)
    model = LanguageModel(len(vocab), hidden_size=16, num_layers=1, seed=0)
    settings = dict(batch_size=4, seq_len=10, eval_every=4, out=str(tmp_path), progress=False, epochs=5)
    settings.update(kw)
    return Trainer(model, vocab, train_ids, val_ids, **settings)


def test_an_exploding_loss_stops_training_and_the_last_checkpoint_stays_good(tmp_path):
    trainer = lm_trainer(tmp_path, lr=1e-3)
    trainer.fit(max_iters=4)
    good = (tmp_path / "last.npz").read_bytes()
    trainer.optimizer.lr = 1e6              # as `--lr 1e6`
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        trainer.fit()
    assert (tmp_path / "last.npz").read_bytes() == good
    model, _, _ = fastrnn.load(tmp_path / "last.npz")
    assert np.isfinite(model.params).all()
    # from the start, with no checkpoint written yet, --lr 1e6 stops too (never runs to the end)
    fresh = lm_trainer(tmp_path / "fresh", lr=1e6, eval_every=1000)
    with pytest.raises(TrainingDiverged, match="no checkpoint"):
        fresh.fit()
    assert not (tmp_path / "fresh" / "last.npz").exists()


def test_a_nan_validation_loss_counts_as_divergence(tmp_path, monkeypatch):
    trainer = lm_trainer(tmp_path)
    trainer.fit(max_iters=4)
    good = (tmp_path / "last.npz").read_bytes()
    monkeypatch.setattr(trainer, "evaluate", lambda: math.nan)
    with pytest.raises(TrainingDiverged, match="validation loss became nan"):
        trainer.fit(max_iters=4)
    assert (tmp_path / "last.npz").read_bytes() == good
    trainer.model.params[0] = np.inf
    with pytest.raises(TrainingDiverged, match="non-finite"):
        trainer.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_a_second_ctrl_c_during_the_final_save_does_not_lose_it(tmp_path, monkeypatch):
    trainer = lm_trainer(tmp_path, eval_every=1000)
    save = trainer.save
    found = signal.getsignal(signal.SIGINT)    # default_int_handler, or SIG_IGN under nohup / `&`

    def slow_save(path):
        os.kill(os.getpid(), signal.SIGINT)    # the second press, while the checkpoint is written
        save(path)
    step = trainer.train_step

    def interrupting_step():
        loss = step()
        if trainer.iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)    # the first press: stop after this iteration
            monkeypatch.setattr(trainer, "save", slow_save)
        return loss
    monkeypatch.setattr(trainer, "train_step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    _, _, extra = fastrnn.load(tmp_path / "last.npz")       # complete, and from this run
    assert extra["meta"]["training"]["iteration"] == 3
    assert signal.getsignal(signal.SIGINT) is found            # the Trainer restores what it found


def test_a_second_ctrl_c_during_the_final_validation_waits_for_the_save(tmp_path, monkeypatch):
    trainer = lm_trainer(tmp_path, eval_every=1000)
    evaluate = trainer.evaluate

    def interrupted_evaluate():
        os.kill(os.getpid(), signal.SIGINT)    # the second press, while validating
        return evaluate()
    step = trainer.train_step

    def interrupting_step():
        loss = step()
        if trainer.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)
            monkeypatch.setattr(trainer, "evaluate", interrupted_evaluate)
        return loss
    monkeypatch.setattr(trainer, "train_step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    _, _, extra = fastrnn.load(tmp_path / "last.npz")
    assert extra["meta"]["training"]["iteration"] == 2
    assert (tmp_path / "best.npz").exists() and (tmp_path / "log.jsonl").read_text().count("\n") == 1


def test_bad_trainer_arguments(tmp_path):
    with pytest.raises(TypeError, match="batches"):
        Trainer(BitClassifier(), 5)
    with pytest.raises(ValueError, match="train"):
        Trainer(BitClassifier(), [])
    for bad in (dict(clip=-5), dict(lr_decay=-1), dict(epochs=0), dict(explode_factor=-1), dict(epochs=True)):
        with pytest.raises(ValueError):
            Trainer(BitClassifier(), majority_data(16), **bad)
