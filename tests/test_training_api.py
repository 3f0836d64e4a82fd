"""The public training API on a synthetic task: fastrnn.fit / Trainer callbacks, History,
EarlyStopping (right epoch, best weights restored), ModelCheckpoint, schedulers (the rates
torch's schedulers give), and the deprecated summary-dict access."""
import json
import signal
import warnings

import numpy as np
import pytest

import fastrnn
from fastrnn import optim
from fastrnn.train import Callback, EarlyStopping, ModelCheckpoint, SchedulerStep, Trainer

try:
    import torch
except ImportError:         # CI sets FASTRNN_REQUIRE_TORCH=1: conftest fails instead of skipping
    torch = None


def sum_data(n=48, T=5, seed=0, batch=16):
    """(inputs (B, T, 1), targets (B, 1) = the sum of the inputs) batches."""
    x = np.random.default_rng(seed).uniform(-1, 1, (n, T, 1))
    return [(x[i:i + batch], x[i:i + batch].sum(1)) for i in range(0, n, batch)]


def regressor(seed=0):
    return fastrnn.SequenceRegressor(1, hidden_size=4, output="last", dtype="float64", seed=seed)


class Scripted:
    """A forward whose validation loss follows `values` (training is real), and which keeps
    the parameters at every validation."""

    def __init__(self, model, values):
        self.model, self.values, self.k, self.params_at = model, list(values), 0, []

    def __call__(self, batch, train):
        loss = self.model.forward(batch, train)
        if train:
            return loss
        self.params_at.append(self.model.params.copy())
        self.k += 1
        return self.values[self.k - 1]


def test_early_stopping_stops_at_the_right_epoch_and_restores_the_best_weights(tmp_path):
    model = regressor()
    #        epoch:  1    2    3    4     5    6
    fwd = Scripted(model, [1.0, 0.8, 0.9, 0.81, 0.7, 0.6])
    stop = EarlyStopping("val_loss", patience=2, min_delta=0.0, restore_best=True)
    history = fastrnn.fit(model, sum_data(), sum_data(16, seed=1), epochs=6, forward=fwd,
                          callbacks=[stop], lr=0.01, out=str(tmp_path))
    # best at epoch 2 (0.8), no improvement at 3 and 4: stop after epoch 4
    assert history.stopped == "early stop" and len(history.epochs) == 4 and history.iterations == 12
    assert history.metric("val_loss") == [1.0, 0.8, 0.9, 0.81]
    assert stop.best == 0.8 and stop.best_iteration == 6 and stop.stopped_iteration == 12
    np.testing.assert_array_equal(model.params, fwd.params_at[1])        # epoch 2's weights
    assert not np.array_equal(fwd.params_at[1], fwd.params_at[3])
    best, _, _ = fastrnn.load(tmp_path / "best.npz")
    np.testing.assert_array_equal(best.params, fwd.params_at[1])
    # min_delta: 0.81 is not an improvement over 0.8 by more than 0.05, neither is 0.78
    fwd = Scripted(regressor(), [1.0, 0.8, 0.78, 0.9, 0.1])
    history = fastrnn.fit(fwd.model, sum_data(), sum_data(16, seed=1), epochs=5, forward=fwd,
                          callbacks=[EarlyStopping(patience=2, min_delta=0.05)])
    assert len(history.epochs) == 4 and history.stopped == "early stop"
    # mode max on a metric, patience 0: stops at the first validation that does not improve
    fwd = Scripted(regressor(), [3.0, 2.0, 1.0])
    acc = fastrnn.train.Metric("val_acc", lambda t: fwd.values[fwd.k - 1])
    history = fastrnn.fit(fwd.model, sum_data(), sum_data(16, seed=1), epochs=3, forward=fwd,
                          callbacks=[acc, EarlyStopping("val_acc", patience=0)])
    assert len(history.epochs) == 2


def test_early_stop_resumes_with_its_state(tmp_path):
    model = regressor()
    fwd = Scripted(model, [1.0, 0.9, 0.95, 0.97, 0.99, 1.2])
    t = Trainer(model, sum_data(), sum_data(16, seed=1), forward=fwd, epochs=6, eval_every=3,
                early_stop=2, out=str(tmp_path), progress=False)
    assert t.settings["early_stop"] == 2
    h = t.fit()
    assert h.stopped == "early stop" and h.iterations == 12
    # resumed with the same patience: stops at once; with more patience: goes on
    fwd2 = Scripted(None, [0.96, 0.5])
    r = Trainer.resume(str(tmp_path / "last.npz"), sum_data(), sum_data(16, seed=1), forward=fwd2,
                       progress=False)
    fwd2.model = r.model
    assert r.settings["early_stop"] == 2 and r.fit().iterations == 12
    r = Trainer.resume(str(tmp_path / "last.npz"), sum_data(), sum_data(16, seed=1), forward=fwd2,
                       progress=False, early_stop=4)
    fwd2.model = r.model
    h = r.fit()
    assert h.stopped == "done" and h.iterations == 18


def test_history_records_match_the_log(tmp_path):
    model = fastrnn.SequenceClassifier(2, input_size=1, hidden_size=4, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 1))
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int64)
    train = fastrnn.PaddedBatches(list(x[:48]), y[:48], batch_size=16, seed=0)
    val = fastrnn.PaddedBatches(list(x[48:]), y[48:], batch_size=16, shuffle=False)
    history = fastrnn.fit(model, train, val, epochs=3, callbacks=[train], out=str(tmp_path), lr=0.01)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert history.records == log and len(log) == 3          # fit validates once per epoch
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert [e["iteration"] for e in history.epochs] == [3, 6, 9]
    for e, r in zip(history.epochs, log):
        assert e["val_loss"] == r["val_loss"] and e["lr"] == 0.01 and e["train_loss"] > 0
    assert history.best_val == min(r["val_loss"] for r in log) and history.epochs_done == 3.0
    assert history.summary() == dict(stopped="done", iterations=9, epochs=3.0,
                                     best_val=history.best_val, seconds=history.seconds)
    with pytest.warns(DeprecationWarning, match="history.iterations"):
        assert history["iterations"] == 9
    with pytest.warns(DeprecationWarning, match="epochs_done"):
        assert history["epochs"] == 3.0
    with pytest.raises(KeyError):
        history["nope"]


def test_callback_hooks_order_and_stop_training():
    events = []

    class Spy(Callback):
        def on_train_begin(self, t): events.append("begin")
        def on_epoch_begin(self, t): events.append(f"e{t.epoch}<")
        def on_epoch_end(self, t): events.append(f"e{t.epoch}>")
        def on_validation_end(self, t, record): events.append(f"v{record['iteration']}")
        def on_train_end(self, t): events.append("end")

        def on_step_end(self, t, loss):
            if t.iteration == 5:
                t.stop_training = True

    h = fastrnn.fit(regressor(), sum_data(), sum_data(16, seed=1), epochs=4, callbacks=[Spy()])
    assert events == ["begin", "e0<", "e1>", "v3", "e1<", "v5", "end"]
    assert h.stopped == "stopped by a callback" and h.iterations == 5


@pytest.mark.parametrize("bad, match", [
    (lambda t: 0, "callbacks\\[0\\]: expected a fastrnn.train.Callback"),
    ("EarlyStopping", "callbacks: expected a list"),
    (EarlyStopping(), "callbacks: expected a list"),
])
def test_bad_callbacks_are_rejected(bad, match):
    with pytest.raises(TypeError, match=match):
        fastrnn.fit(regressor(), sum_data(), callbacks=[bad] if callable(bad) else bad)


def test_bad_scheduler_and_early_stopping_arguments():
    for bad in (optim.StepLR, 3, "cosine"):
        with pytest.raises((TypeError, ValueError), match="scheduler"):
            fastrnn.fit(regressor(), sum_data(), scheduler=bad if bad is not optim.StepLR else (lambda o: 1))
    with pytest.raises(ValueError, match="scheduler_every"):
        fastrnn.fit(regressor(), sum_data(), scheduler=lambda o: optim.ReduceLROnPlateau(o),
                    scheduler_every="epoch")
    with pytest.raises(ValueError, match="needs the validation"):
        fastrnn.fit(regressor(), sum_data(), scheduler=lambda o: optim.ReduceLROnPlateau(o))
    model = regressor()
    before = model.params.copy()
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(ValueError, match="needs validation data"):       # before any step
        fastrnn.fit(model, sum_data(), callbacks=[EarlyStopping()])
    np.testing.assert_array_equal(model.params, before)
    assert signal.getsignal(signal.SIGINT) is handler                    # Ctrl-C handling restored
    with pytest.raises(ValueError, match="monitor 'val_acc' is not in"):
        fastrnn.fit(regressor(), sum_data(), sum_data(16), callbacks=[EarlyStopping("val_acc")])
    for kw, match in ((dict(patience=-1), "patience"), (dict(min_delta=float("nan")), "min_delta"),
                      (dict(mode="up"), "mode"), (dict(monitor=3), "monitor"),
                      (dict(restore_best="yes"), "restore_best")):
        with pytest.raises((TypeError, ValueError), match=match):
            EarlyStopping(**kw)
    with pytest.raises(ValueError, match="early_stop"):
        Trainer(regressor(), sum_data(), early_stop=0)
    for make, match in ((lambda o: optim.CosineAnnealingLR(o, 0), "T_max"),
                        (lambda o: optim.ReduceLROnPlateau(o, factor=1.0), "factor"),
                        (lambda o: optim.StepLR(o, 0), "step_size"),
                        (lambda o: optim.ReduceLROnPlateau(o, mode="up"), "mode")):
        with pytest.raises(ValueError, match=match):
            make(optim.SGD(regressor(), lr=0.1))


def _torch_lrs(make, steps, metrics=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched, lrs = make(opt), []
    for k in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(*([] if metrics is None else [metrics[k]]))
    return lrs


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_epoch_schedulers_give_torchs_rates():
    cases = [(lambda o: optim.CosineAnnealingLR(o, T_max=3, eta_min=0.01),
              lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3, eta_min=0.01), True),
             (lambda o: optim.StepLR(o, step_size=2, gamma=0.5),
              lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5), False),
             (lambda o: optim.ExponentialLR(o, gamma=0.7),
              lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.7), False)]
    for ours, theirs, exact in cases:
        h = fastrnn.fit(regressor(), sum_data(), sum_data(16, seed=1), epochs=9, optimizer="sgd",
                        lr=0.1, scheduler=ours)
        lrs, want = [e["lr"] for e in h.epochs], _torch_lrs(theirs, 9)
        # the cosine is torch's recursive formula, float for float; the others torch computes
        # by repeated multiplication and we in closed form
        assert lrs == want if exact else lrs == pytest.approx(want, rel=1e-12, abs=0)


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_reduce_lr_on_plateau_gives_torchs_rates():
    values = [1.0, 0.9, 0.95, 0.96, 0.97, 0.85, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    fwd = Scripted(regressor(), values)
    h = fastrnn.fit(fwd.model, sum_data(), sum_data(16, seed=1), epochs=len(values), forward=fwd,
                    optimizer="sgd", lr=0.1,
                    scheduler=lambda o: optim.ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=1,
                                                                threshold=0.01, min_lr=0.02))
    want = _torch_lrs(lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
        o, factor=0.5, patience=1, cooldown=1, threshold=0.01, min_lr=0.02), len(values), values)
    assert h.metric("lr") == want and len(set(want)) > 2


def test_scheduler_state_is_checkpointed_and_resumed(tmp_path):
    def cosine(o):
        return optim.CosineAnnealingLR(o, T_max=4)
    t = Trainer(regressor(), sum_data(), sum_data(16, seed=1), epochs=6, eval_every=3, out=str(tmp_path),
                scheduler=cosine, progress=False, optimizer="sgd", lr=0.1)
    t.fit(max_iters=9)                          # 3 epochs, then stop
    r = Trainer.resume(str(tmp_path / "last.npz"), sum_data(), sum_data(16, seed=1), progress=False,
                       scheduler=cosine)
    rest = r.fit()
    model = regressor()
    whole = fastrnn.fit(model, sum_data(), sum_data(16, seed=1), epochs=6, scheduler=cosine,
                        optimizer="sgd", lr=0.1)
    assert [e["lr"] for e in rest.epochs] == [e["lr"] for e in whole.epochs[3:]]
    np.testing.assert_array_equal(r.model.params, model.params)


def test_model_checkpoint_callback(tmp_path):
    fwd = Scripted(regressor(), [1.0, 0.5, 0.7, 0.4])
    every = ModelCheckpoint(str(tmp_path / "all" / "it{iteration}.npz"), save_best_only=False)
    best = ModelCheckpoint(str(tmp_path / "best.npz"))
    fastrnn.fit(fwd.model, sum_data(), sum_data(16, seed=1), epochs=4, forward=fwd, callbacks=[every, best])
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["it12.npz", "it3.npz", "it6.npz", "it9.npz"]
    assert best.saved == [str(tmp_path / "best.npz")] * 3 and best.best == 0.4
    m, _, extra = fastrnn.load(tmp_path / "best.npz")
    np.testing.assert_array_equal(m.params, fwd.params_at[3])
    assert extra["meta"]["training"]["iteration"] == 12
    with pytest.raises(ValueError, match="path"):
        ModelCheckpoint("run/{step}.npz")


def test_scheduler_step_on_iterations():
    model = regressor()
    t = Trainer(model, sum_data(), epochs=2, progress=False, optimizer="sgd", lr=0.1)
    t.callbacks.append(SchedulerStep(optim.StepLR(t.optimizer, step_size=2, gamma=0.5), every="iteration"))
    t.fit()
    assert t.optimizer.lr == pytest.approx(0.1 * 0.5 ** 3)


def test_fit_without_warnings_on_the_new_api():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = fastrnn.fit(regressor(), sum_data(), epochs=1)
        assert h.stopped == "done" and h.iterations == 3 and h.records[0]["val_loss"] is None
