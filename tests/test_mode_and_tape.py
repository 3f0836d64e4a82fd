"""Mode and tape as in torch: train()/eval() decide dropout, the grad mode (fastrnn.no_grad)
decides the tape, the older train= keyword keeps its meaning, and a pending tape survives any
inference call: forward(batch A) -> inference forward(batch B) -> backward gives exactly the
gradients of batch A, for every model (the grid model and its loss block included) and for a
layer used from another thread."""
import threading

import numpy as np
import pytest

import fastrnn

T, B = 5, 3


def in_thread(fn):
    """Run fn in another thread; its exception, if any, is raised here."""
    errors = []

    def run():
        try:
            fn()
        except BaseException as e:      # noqa: BLE001  (re-raised in the caller)
            errors.append(e)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def x_of(seed, shape=(T, B, 4)):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- layers: mode, grad mode, legacy train= ----------------------------------------------------

def test_a_new_layer_trains_and_eval_turns_dropout_off():
    lstm = fastrnn.LSTM(4, 3, num_layers=3, dropout=0.5, dtype="float64", seed=0)
    x = x_of(0)
    assert lstm.training
    assert not np.array_equal(lstm(x)[0], lstm(x)[0])              # dropout in training mode
    lstm.eval()
    y = lstm(x)[0]
    np.testing.assert_array_equal(y, lstm(x)[0])
    np.testing.assert_array_equal(y, lstm.forward(x, train=False)[0])
    lstm.train()
    assert not np.array_equal(lstm(x)[0], y)


def test_the_older_train_keyword_keeps_its_meaning_whatever_the_mode():
    lstm = fastrnn.GRU(4, 3, num_layers=2, dropout=0.5, dtype="float64", seed=0).eval()
    x = x_of(1)
    clean = lstm(x)[0]
    assert not np.array_equal(lstm.forward(x, train=True)[0], clean)   # dropout on, as before
    lstm.backward(np.ones((T, B, 3)))                                    # and a tape
    lstm.train()
    np.testing.assert_array_equal(lstm.forward(x, train=False)[0], clean)
    with pytest.raises(RuntimeError, match="no tape"):
        lstm.backward(np.ones((T, B, 3)))


def test_no_grad_keeps_no_tape_and_runs_the_inference_path():
    rnn = fastrnn.RNN(4, 3, dtype="float64", seed=0)
    x = x_of(2)
    assert fastrnn.is_grad_enabled()
    with fastrnn.no_grad():
        assert not fastrnn.is_grad_enabled()
        y = rnn(x)[0]
        with fastrnn.enable_grad():
            assert fastrnn.is_grad_enabled()
    assert fastrnn.is_grad_enabled()
    with pytest.raises(RuntimeError, match="no tape"):
        rnn.backward(np.ones_like(y))
    np.testing.assert_array_equal(y, rnn(x)[0])
    rnn.backward(np.ones_like(y))                  # outside no_grad the tape is kept again


def test_no_grad_is_per_thread_and_works_as_a_decorator():
    seen = []

    @fastrnn.no_grad()
    def inside():
        seen.append(fastrnn.is_grad_enabled())
        in_thread(lambda: seen.append(fastrnn.is_grad_enabled()))

    inside()
    assert seen == [False, True] and fastrnn.is_grad_enabled()
    with pytest.raises(TypeError, match="mode"):
        fastrnn.set_grad_enabled(1)
    fastrnn.set_grad_enabled(False)                   # a plain call, as torch's
    assert not fastrnn.is_grad_enabled()
    with fastrnn.set_grad_enabled(True):
        assert fastrnn.is_grad_enabled()
    assert not fastrnn.is_grad_enabled()
    fastrnn.set_grad_enabled(True)
    assert inside() is None and fastrnn.is_grad_enabled()          # decorated: re-entrant
    with pytest.raises(ValueError, match="mode"):
        fastrnn.LSTM(2, 2).train("yes")


def test_dropout_in_training_mode_under_no_grad_matches_the_taped_forward():
    """no_grad changes only the tape: in training mode the inference path drops as the taped one."""
    make = lambda: fastrnn.LSTM(4, 3, num_layers=3, dropout=0.5, bidirectional=True, dtype="float64", seed=3)
    x = x_of(3)
    taped = make()(x)[0]
    with fastrnn.no_grad():
        np.testing.assert_allclose(make()(x)[0], taped, rtol=1e-12, atol=1e-14)


# ---- a pending tape survives inference -----------------------------------------------------------

def _layer_grads(layer, x, dy):
    layer.zero_grad()
    layer(x)
    dx, _ = layer.backward(dy)
    return dx, layer.grads.copy()


@pytest.mark.parametrize("inference", ["train_false", "no_grad", "step", "other_thread"])
def test_a_layer_tape_survives_inference_calls(inference):
    lstm = fastrnn.LSTM(4, 3, num_layers=2, bidirectional=inference != "step", dtype="float64", seed=0)
    xa, xb = x_of(4), x_of(5)
    dy = x_of(6, (T, B, lstm.D * 3))
    dx_ref, g_ref = _layer_grads(lstm, xa, dy)
    lstm.zero_grad()
    lstm(xa)
    if inference == "train_false":
        lstm.forward(xb, train=False)
    elif inference == "no_grad":
        with fastrnn.no_grad():
            lstm(xb)
    elif inference == "step":
        lstm.step(xb[0])
    else:
        in_thread(lambda: (lstm(xb), lstm.forward(xb, train=False)))
    dx, _ = lstm.backward(dy)
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_array_equal(lstm.grads, g_ref)


def _models():
    """(model, batch A, batch B, run the model's own inference helpers on B)."""
    rng = np.random.default_rng(0)
    ids = lambda V, shape: rng.integers(0, V, shape)
    feats = lambda shape: rng.standard_normal(shape)
    f64 = dict(dtype="float64", seed=1)
    lm = fastrnn.LanguageModel(6, hidden_size=4, num_layers=2, dropout=0.3, embed_size=3, **f64)
    clf = fastrnn.SequenceClassifier(3, vocab_size=6, embed_size=3, hidden_size=4, dropout=0.3,
                                     bidirectional=True, **f64)
    tag = fastrnn.SequenceTagger(4, input_size=3, hidden_size=4, dropout=0.3, num_layers=2, **f64)
    reg = fastrnn.SequenceRegressor(3, hidden_size=4, dropout=0.3, num_layers=2, **f64)
    s2s = fastrnn.Seq2Seq(6, 7, embed_size=3, hidden_size=4, bidirectional=True, bos_id=0, eos_id=1, **f64)
    cond = fastrnn.ConditionedGenerator(6, num_classes=3, hidden_size=4, embed_size=3, **f64)
    orn = fastrnn.OutputRecurrentNet(3, 2, hidden_size=4, **f64)
    grid = fastrnn.GridRNN(2, 3, hidden_size=3, **f64)
    return {
        "lm": (lm, (ids(6, (B, T)), ids(6, (B, T))), (ids(6, (B, T)), ids(6, (B, T))),
               lambda m, b: m.step(b[0][:, 0])),
        "classifier": (clf, (ids(6, (B, T)), ids(3, B)), (ids(6, (B, T)), ids(3, B)),
                       lambda m, b: m.predict(b[0])),
        "tagger": (tag, (feats((B, T, 3)), ids(4, (B, T))), (feats((B, T, 3)), ids(4, (B, T))),
                   lambda m, b: m.predict(b[0])),
        "regressor": (reg, (feats((B, T, 3)), feats((B, T, 3))), (feats((B, T, 3)), feats((B, T, 3))),
                      lambda m, b: m.forecast(b[0], 2)),
        "seq2seq": (s2s, (ids(6, (B, T)), None, ids(7, (B, 4)), None), (ids(6, (B, T)), None, ids(7, (B, 4)), None),
                    lambda m, b: m.greedy(b[0], max_len=3)),
        "conditioned": (cond, (ids(3, B), ids(6, (B, T))), (ids(3, B), ids(6, (B, T))),
                        lambda m, b: m.generate(b[0], 3, seed=0)),
        "output_recurrent": (orn, (feats((B, T, 3)), feats((B, T, 2))), (feats((B, T, 3)), feats((B, T, 2))),
                             lambda m, b: m.predict(b[0])),
        "grid": (grid, (feats((B, 4, 3, 2)), ids(3, B)), (feats((B, 4, 3, 2)), ids(3, B)),
                 lambda m, b: m.predict(b[0])),
    }


def _forward(model, batch, **kw):
    if isinstance(model, fastrnn.LanguageModel):
        return model.forward(*batch, **kw)[0]
    return model.forward(batch, **kw)


@pytest.mark.parametrize("kind", sorted(_models()))
@pytest.mark.parametrize("inference", ["train_false", "no_grad", "helpers", "other_thread"])
def test_a_model_tape_survives_inference_calls(kind, inference):
    model, a, b, helpers = _models()[kind]
    model.eval()                       # no dropout: the reference and the checked run agree exactly
    model.zero_grad()
    loss_a = _forward(model, a)
    model.backward()
    ref = model.grads.copy()
    assert np.abs(ref).max() > 0

    model.zero_grad()
    assert _forward(model, a) == loss_a

    def infer():
        if inference == "helpers":
            helpers(model, b)
            return
        with fastrnn.no_grad():
            _forward(model, b)
        _forward(model, b, train=False)
    if inference == "other_thread":
        in_thread(infer)
    elif inference == "no_grad":
        with fastrnn.no_grad():
            _forward(model, b)
    elif inference == "train_false":
        _forward(model, b, train=False)
    else:
        infer()
    model.backward()
    np.testing.assert_array_equal(model.grads, ref)


def test_trainer_sets_train_mode_for_steps_and_eval_mode_for_validation():
    model = fastrnn.SequenceClassifier(2, vocab_size=5, embed_size=3, hidden_size=4, dropout=0.5, seed=0)
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 5, (2, 4)), rng.integers(0, 2, 2)) for _ in range(2)]
    modes = []
    from fastrnn.train import Trainer
    trainer = Trainer(model, batches, batches, progress=False,
                      forward=lambda batch, train: (modes.append((train, model.training, model.rnn.training)),
                                                    model.forward(batch, train=train))[1])
    model.eval()
    trainer.train_step()
    trainer.evaluate()
    assert (True, True, True) in modes and (False, False, False) in modes
    assert all(t == m == r for t, m, r in modes)
    assert model.training                  # validation put the mode back
