"""Fuzz cases for the training API (fit, callbacks, schedulers), the scikit-learn estimators'
hyper-parameters and inputs, and the command line's corpus paths (issue 24)."""
import os
import tempfile

import numpy as np
from hypothesis import strategies as st

import fastrnn
from fastrnn import optim
from fastrnn.train import Callback, EarlyStopping, ModelCheckpoint

_NUMBERS = st.one_of(st.integers(-3, 5), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([None, True, "1", 0.5, 1e-9, 10**12]))


def _broken(draw, names):
    """The one argument to break (None: all valid, most of the time)."""
    return draw(st.sampled_from([None] * len(names) + list(names)), "broken")


def _data(draw):
    n = draw(st.integers(1, 4), "batches")
    x = np.random.default_rng(0).uniform(-1, 1, (n * 4, 3, 1))
    return [(x[i:i + 4], x[i:i + 4].sum(1)) for i in range(0, n * 4, 4)]


class _BadHook(Callback):
    on_validation_end = 3          # not callable


def _callback(draw, tmp, broken):
    if broken == "callback":
        return draw(st.sampled_from([None, 3, "EarlyStopping", lambda t: None, object(), _BadHook()]), "bad callback")
    kind = draw(st.sampled_from(["early", "checkpoint", "metric"]), "callback")
    if kind == "early":
        bad = broken == "early stopping"
        return EarlyStopping(draw(st.sampled_from(["", None, 3, "val_acc"]) if bad else
                                  st.sampled_from(["val_loss", "train_loss", "lr"]), "monitor"),
                             patience=draw(_NUMBERS if bad else st.integers(0, 3), "patience"),
                             min_delta=draw(_NUMBERS if bad else st.sampled_from([0.0, 0.1, 1e9]), "min_delta"),
                             mode=draw(st.sampled_from(["auto", "min", "max"] + ["up"] * bad), "mode"),
                             restore_best=draw(st.booleans(), "restore_best"))
    if kind == "checkpoint":
        paths = ["{x}.npz", "{0}.npz", 3] if broken == "checkpoint" else ["c.npz", "d/{iteration}.npz"]
        path = draw(st.sampled_from(paths), "path")
        return ModelCheckpoint(os.path.join(tmp, path) if isinstance(path, str) else path,
                               monitor="val_loss" if broken != "checkpoint" else "nope",
                               save_best_only=draw(st.booleans(), "best only"))
    values = _NUMBERS if broken == "metric" else st.floats(0, 1)
    return fastrnn.train.Metric("val_acc", lambda t: draw(values, "metric value"))


def _scheduler(draw, broken):
    kind = draw(st.sampled_from(["none", "step", "exp", "cosine", "plateau"]), "scheduler")
    if broken == "scheduler":
        return draw(st.sampled_from([3, lambda opt: "junk", optim.StepLR, "cosine",
                                     lambda opt: optim.StepLR(optim.SGD(fastrnn.LSTM(1, 1), lr=1), 1)]), "bad scheduler")
    bad = broken == "scheduler arguments"
    num = (lambda ok: _NUMBERS) if bad else (lambda ok: ok)
    if kind == "none":
        return None
    if kind == "step":
        a, b = draw(num(st.integers(1, 4)), "step_size"), draw(num(st.floats(0, 1)), "gamma")
        return lambda opt: optim.StepLR(opt, a, b)
    if kind == "exp":
        g = draw(num(st.floats(0, 1)), "gamma")
        return lambda opt: optim.ExponentialLR(opt, g)
    if kind == "cosine":
        t, lo = draw(num(st.integers(1, 5)), "T_max"), draw(num(st.floats(0, 0.1)), "eta_min")
        return lambda opt: optim.CosineAnnealingLR(opt, t, lo)
    f, p = draw(num(st.floats(0, 0.99)), "factor"), draw(num(st.integers(0, 3)), "patience")
    return lambda opt: optim.ReduceLROnPlateau(opt, factor=f, patience=p, cooldown=draw(num(st.integers(0, 2)), "cooldown"))


def training_api(draw):
    """fastrnn.fit with drawn callbacks, scheduler and early_stop: a History or a clear error."""
    broken = _broken(draw, ["callback", "callbacks", "early stopping", "checkpoint", "metric",
                            "scheduler", "scheduler arguments", "every", "early_stop"])
    train = _data(draw)
    val = _data(draw) if draw(st.booleans(), "with val") or broken is None else None
    with tempfile.TemporaryDirectory() as tmp:
        callbacks = [_callback(draw, tmp, broken) for _ in range(draw(st.integers(1 if broken else 0, 2), "callbacks"))]
        if broken == "callbacks":
            callbacks = draw(st.sampled_from([callbacks[0], "x", 3]), "callbacks")
        model = fastrnn.SequenceRegressor(1, hidden_size=3, output="last", dtype="float64", seed=0)
        epochs = draw(st.integers(1, 3), "epochs")
        scheduler = _scheduler(draw, broken)
        every = draw(st.sampled_from([None, "x", "validation", "iteration"] if broken == "every" else [None]), "every")
        early = draw(st.sampled_from([0, -1, True, 1.5, "2"] if broken == "early_stop" else [None, 1, 2]), "early_stop")
        h = fastrnn.fit(model, train, val, epochs=epochs, callbacks=callbacks, scheduler=scheduler,
                        scheduler_every=every, early_stop=early, optimizer="sgd", lr=0.01)
    assert h.stopped in ("done", "early stop") and 1 <= h.iterations <= epochs * len(train)
    assert len(h.epochs) == h.iterations // len(train) and len(h.records) >= 1
    assert all(np.isfinite(e["lr"]) and e["lr"] >= 0 for e in h.epochs)
    assert np.isfinite(model.params).all()


def lr_schedulers(draw):
    """A scheduler from drawn (possibly hostile) arguments, stepped with drawn metrics, and its
    state restored into a new one."""
    broken = _broken(draw, ["scheduler arguments", "metric", "state"])
    opt = optim.SGD(fastrnn.SequenceRegressor(1, hidden_size=2, output="last", seed=0), lr=0.1)
    make = _scheduler(draw, broken)
    if make is None:
        return
    sched = make(opt)
    for _ in range(draw(st.integers(0, 12), "steps")):
        if isinstance(sched, optim.ReduceLROnPlateau):
            sched.step(draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just("x"))
                            if broken == "metric" else st.floats(0, 10), "metric"))
        else:
            sched.step()
        assert np.isfinite(opt.lr) and opt.lr >= 0, opt.lr
    state = sched.state_dict()
    if broken == "state":
        state[draw(st.sampled_from(["nope", *sorted(state)]), "key")] = None
    again = make(optim.SGD(fastrnn.SequenceRegressor(1, hidden_size=2, output="last", seed=0), lr=0.1))
    again.load_state_dict(state)
    if broken != "state":
        assert again.state_dict() == state


def sklearn_estimators(draw):
    """The estimators with drawn hyper-parameters and inputs: predictions or a clear error."""
    from fastrnn.sklearn import RNNSequenceClassifier, RNNSequenceRegressor
    broken = _broken(draw, ["hidden_size", "epochs", "lr", "cell", "batch_size", "dtype", "random_state",
                            "shape", "nan", "y"])

    def arg(name, valid, junk):
        return draw(st.sampled_from(junk if name == broken else valid), name)
    params = dict(hidden_size=arg("hidden_size", [2, 3], [0, -1, 2.5, "4", None]),
                  epochs=arg("epochs", [1, 2], [0, True, 1.0]),
                  lr=arg("lr", [0.01, 0.1], [0, -1.0, float("nan"), "x"]),
                  cell=arg("cell", ["gru", "lstm", "rnn"], ["GRU", None, "tcn"]),
                  batch_size=arg("batch_size", [4, 100], [0, 2.0]),
                  dtype=arg("dtype", ["float64", "float32"], ["int8", "float16", None]),
                  random_state=arg("random_state", [0, 1, None], [-5, "seed", 1.5]))
    n, T = draw(st.integers(1, 8), "n"), draw(st.integers(1, 4), "T")
    shape = arg("shape", [(n, T), (n, T, 2)], [(n,), (n, T, 1, 1), (0, T), (n, 0), (n, T, 0)])
    X = np.random.default_rng(1).normal(size=shape)
    if broken == "nan" and X.size:
        X.flat[draw(st.integers(0, X.size - 1), "where")] = draw(st.sampled_from([np.nan, np.inf]), "value")
    if draw(st.booleans(), "text classifier"):
        _text_classifier(draw, broken, params)
        return
    regress = draw(st.booleans(), "regressor")
    y = X.reshape(len(X), -1).sum(1) if X.ndim > 1 else np.zeros(len(X))
    y = y if regress else (y > 0).astype(int)
    if broken == "y":
        y = draw(st.sampled_from([y[:-1], np.full(len(y), np.nan), None, y.astype(str)[:, None, None]]), "bad y")
    est = (RNNSequenceRegressor if regress else RNNSequenceClassifier)(**params)
    est.fit(X, y)
    pred = est.predict(X)
    assert pred.shape == (len(X),) and (regress or set(pred) <= set(y))
    if not regress:
        assert np.allclose(est.predict_proba(X).sum(1), 1)


def _text_classifier(draw, broken, params):
    from fastrnn.sklearn import RNNTextClassifier
    texts = draw(st.lists(st.text(max_size=6), min_size=1, max_size=6), "texts")
    if broken == "shape":
        texts = draw(st.sampled_from(["a text", [1, "a"], [], np.array([["a"]]), [b"bytes"]]), "bad texts")
    y = [len(t) % 2 for t in texts] if isinstance(texts, list) else [0]
    if broken == "y":
        y = draw(st.sampled_from([y[:-1], None, [0.5] * len(y)]), "bad y")
    level = draw(st.sampled_from(["char", "word"] + ["byte"] * (broken == "cell")), "level")
    clf = RNNTextClassifier(level=level, embed_size=2, **params).fit(texts, y)
    pred = clf.predict(texts + [""])
    assert pred.shape == (len(texts) + 1,) and set(pred) <= set(y)


def corpus_paths(draw):
    """fastrnn.cli_paths.read_corpus on drawn paths: text, or one line ending the command."""
    from fastrnn.cli_paths import read_corpus
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "d", "sub"))
        os.makedirs(os.path.join(tmp, "empty"))
        drawn = draw(st.one_of(st.text(min_size=1, max_size=20).map(str.encode), st.binary(max_size=20)), "d/b.txt bytes")
        for name, data in (("a.txt", b"alpha\n"), ("d/b.txt", drawn), ("d/sub/c.txt", "gamma é".encode()),
                           ("d/bin", b"\x00\xff"), ("latin1.txt", b"caf\xe9")):
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        os.mkfifo(os.path.join(tmp, "fifo"))
        rel = draw(st.sampled_from(["a.txt", "d", "d/", "empty", "*.txt", "d/**/*.txt", "nope.txt", "nope*",
                                    "fifo", "latin1.txt", "d/bin", "[", ""]), "corpus")
        try:
            text = read_corpus(os.path.join(tmp, rel) if rel else rel)
        except SystemExit as e:
            message = e.code
            assert isinstance(message, str) and message.startswith("fastrnn: ") and "\n" not in message, message
            raise ValueError(message) from None
    assert isinstance(text, str) and text
    if rel in ("d", "d/"):      # b.txt (when UTF-8 without NUL), then sub/c.txt, sorted; the binary skipped
        try:
            b = drawn.decode("utf-8")
            ok = "\0" not in b
            # as every reader reads text: a leading BOM dropped, \r\n and \r as \n
            b = b.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            b, ok = "", False
        assert text == (b + ("" if b.endswith("\n") else "\n") if ok else "") + "gamma é", text
