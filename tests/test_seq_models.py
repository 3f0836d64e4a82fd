"""SequenceClassifier / SequenceTagger / SequenceRegressor: float64 finite differences (masks,
pooling, bidirectional, multi-label), PyTorch parity with pack_padded_sequence, save/load, and
bad input (named errors, and a hypothesis fuzz of every public entry point)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import SequenceClassifier, SequenceRegressor, SequenceTagger

B, T, V, E, H = 4, 6, 7, 3, 4
LENGTHS = np.array([6, 2, 1, 4])           # ragged, one full, one of a single step


def ids_batch(seed=0, lengths=LENGTHS):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (len(lengths), T)), lengths


def features(seed=0, F=3):
    return np.random.default_rng(seed).standard_normal((B, T, F))


def classifier_batch(m, seed=0):
    rng = np.random.default_rng(seed + 1)
    C = m.config["num_classes"]
    x = ids_batch(seed)[0] if m.config["vocab_size"] else features(seed, m.config["input_size"])
    y = rng.random((B, C)).round(1) if m.config["multi_label"] else rng.integers(0, C, B)
    return x, y, LENGTHS


def tagger_batch(m, seed=0):
    x = ids_batch(seed)[0] if m.config["vocab_size"] else features(seed, m.config["input_size"])
    tags = np.random.default_rng(seed + 1).integers(0, m.config["num_tags"], (B, T))
    tags[np.arange(T)[None] >= LENGTHS[:, None]] = -100      # padding labels are ignored
    return x, tags, LENGTHS


def regressor_batch(m, seed=0):
    x = features(seed, m.config["input_size"])
    O = m.config["output_size"]
    rng = np.random.default_rng(seed + 1)
    y = rng.standard_normal((B, T, O) if m.config["output"] == "sequence" else (B, O))
    return x, y, LENGTHS


CLASSIFIERS = [
    dict(cell="lstm", pooling="last"),
    dict(cell="lstm", pooling="last", bidirectional=True, num_layers=2),
    dict(cell="gru", pooling="mean", bidirectional=True),
    dict(cell="rnn", pooling="max"),
    dict(cell="lstm", pooling="max", bidirectional=True, multi_label=True),
    dict(cell="gru", pooling="last", bidirectional=True, input_size=3, vocab_size=None),
    dict(cell="lstm", pooling="mean", multi_label=True, input_size=3, vocab_size=None),
]
TAGGERS = [dict(cell="lstm"), dict(cell="gru", bidirectional=False),
           dict(cell="rnn", num_layers=2, input_size=3, vocab_size=None)]
REGRESSORS = [dict(cell="lstm"), dict(cell="gru", output="last", output_size=2, num_layers=2),
              dict(cell="rnn", output="sequence", output_size=1)]


def make_classifier(**kw):
    kw = dict(dict(num_classes=3, vocab_size=V, embed_size=E, hidden_size=H, dtype="float64", seed=1), **kw)
    return SequenceClassifier(**kw)


def make_tagger(**kw):
    kw = dict(dict(num_tags=3, vocab_size=V, embed_size=E, hidden_size=H, dtype="float64", seed=2), **kw)
    return SequenceTagger(**kw)


def make_regressor(**kw):
    return SequenceRegressor(**dict(dict(input_size=3, hidden_size=H, dtype="float64", seed=3), **kw))


CASES = [(make_classifier, classifier_batch, kw) for kw in CLASSIFIERS] + \
        [(make_tagger, tagger_batch, kw) for kw in TAGGERS] + \
        [(make_regressor, regressor_batch, kw) for kw in REGRESSORS]
IDS = [f"{make.__name__[5:]}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for make, _, kw in CASES]


@pytest.mark.parametrize("make, batch_of, kw", CASES, ids=IDS)
def test_gradients_match_finite_differences(make, batch_of, kw):
    m = make(**kw)
    batch = batch_of(m)
    m.zero_grad()
    m.forward(batch)
    m.backward()
    analytic = m.grads.copy()
    rng = np.random.default_rng(0)
    eps, worst = 1e-6, 0.0
    for i in rng.choice(m.params.size, min(m.params.size, 60), replace=False):
        old = m.params[i]
        m.params[i] = old + eps
        m.invalidate()
        up = m.forward(batch, train=False)
        m.params[i] = old - eps
        m.invalidate()
        down = m.forward(batch, train=False)
        m.params[i] = old
        m.invalidate()
        worst = max(worst, abs((up - down) / (2 * eps) - analytic[i]) / max(1e-3, abs(analytic[i])))
    assert worst < 1e-5
    assert np.abs(analytic).max() > 0


@pytest.mark.parametrize("make, batch_of, kw", CASES[1::2], ids=IDS[1::2])
def test_float32_matches_float64(make, batch_of, kw):
    m64, m32 = make(**kw), make(**dict(kw, dtype="float32"))
    m32.load_state_dict(m64.state_dict())
    batch, loss = batch_of(m64), {}
    for m in (m64, m32):
        m.zero_grad()
        loss[m.dtype.name] = m.forward(batch)
        m.backward()
        assert m.grads.dtype == m.dtype
    assert abs(loss["float32"] - loss["float64"]) < 1e-5 * max(1, abs(loss["float64"]))
    np.testing.assert_allclose(m32.grads, m64.grads, rtol=1e-3, atol=1e-5)


def test_padding_does_not_change_loss_or_gradients():
    """Extending the padding (and changing what is in it) changes nothing: the mask works."""
    for make, batch_of, kw in CASES:
        m = make(**kw)
        x, y, lengths = batch_of(m)
        m.zero_grad()
        loss = m.forward((x, y, lengths))
        m.backward()
        g = m.grads.copy()
        pad = [(0, 0), (0, 3)] + [(0, 0)] * (x.ndim - 2)
        x2 = np.pad(x, pad, constant_values=1)
        y2 = np.pad(y, pad[:y.ndim], constant_values=2) if y.ndim >= 2 and y.shape[1] == T else y
        m.zero_grad()
        assert abs(m.forward((x2, y2, lengths)) - loss) < 1e-12
        m.backward()
        np.testing.assert_allclose(m.grads, g, rtol=1e-10, atol=1e-13)


# ---- PyTorch parity ----------------------------------------------------------------------------
def torch_twin(m):
    """The same model in torch (embed / rnn / head with the same names), weights copied by name."""
    torch = pytest.importorskip("torch")
    c, nn = m.config, torch.nn
    Cell = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[c["cell"]]
    D = 2 if c.get("bidirectional") else 1
    net = nn.Module()
    if c.get("vocab_size"):
        net.embed = nn.Embedding(c["vocab_size"], c["embed_size"])
    net.rnn = Cell(c["embed_size"] if c.get("vocab_size") else c["input_size"], c["hidden_size"],
                   num_layers=c["num_layers"], bidirectional=D == 2)
    net.head = nn.Linear(D * c["hidden_size"], c.get("num_classes") or c.get("num_tags"))
    net = net.double()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    return torch, net


def torch_encode(torch, net, x, lengths):
    """(out (T, B, D*H) zero-padded, h_n) through pack_padded_sequence."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    xt = torch.from_numpy(np.ascontiguousarray(x.swapaxes(0, 1)))
    e = net.embed(xt) if hasattr(net, "embed") else xt
    out, h = net.rnn(pack_padded_sequence(e, torch.from_numpy(lengths), enforce_sorted=False))
    out, _ = pad_packed_sequence(out, total_length=x.shape[1])
    return out, h[0] if isinstance(h, tuple) else h


def assert_same_grads(m, net, loss_ours, loss_torch):
    loss_torch.backward()
    assert abs(loss_ours - loss_torch.item()) < 1e-8
    grads = m.named_grads()
    for name, p in net.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("kw", CLASSIFIERS, ids=[str(i) for i in range(len(CLASSIFIERS))])
def test_classifier_matches_pytorch(kw):
    m = make_classifier(**kw)
    torch, net = torch_twin(m)
    x, y, lengths = classifier_batch(m)
    m.zero_grad()
    loss = m.forward((x, y, lengths))
    m.backward()
    out, h_n = torch_encode(torch, net, x, lengths)
    pooling, D = m.config["pooling"], m.D
    if pooling == "last":
        feat = torch.cat(list(h_n[-D:]), dim=1)
    elif pooling == "mean":
        feat = out.sum(0) / torch.from_numpy(lengths)[:, None]
    else:
        valid = torch.from_numpy(np.arange(T)[:, None] < lengths[None])[:, :, None]
        feat = out.masked_fill(~valid, -np.inf).max(0).values
    logits = net.head(feat)
    if m.config["multi_label"]:
        ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(y))
    else:
        ref = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    assert_same_grads(m, net, loss, ref)
    np.testing.assert_allclose(m.predict_proba(x, lengths),
                               (torch.sigmoid(logits) if m.config["multi_label"]
                                else torch.softmax(logits, 1)).detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("kw", TAGGERS, ids=[str(i) for i in range(len(TAGGERS))])
def test_tagger_matches_pytorch(kw):
    m = make_tagger(**kw)
    torch, net = torch_twin(m)
    x, tags, lengths = tagger_batch(m)
    m.zero_grad()
    loss = m.forward((x, tags, lengths))
    m.backward()
    out, _ = torch_encode(torch, net, x, lengths)
    logits = net.head(out)                                    # (T, B, K)
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[2]),
                                            torch.from_numpy(np.ascontiguousarray(tags.T)).reshape(-1),
                                            ignore_index=-100)
    assert_same_grads(m, net, loss, ref)
    best = logits.argmax(2).T.numpy()
    assert m.predict(x, lengths) == [best[b, :n].tolist() for b, n in enumerate(lengths)]


# ---- behaviour -------------------------------------------------------------------------------------
def test_regressor_forecast_feeds_its_predictions_back():
    m = make_regressor(cell="gru")
    hist = features(5)
    lengths = np.array([6, 3, 5, 2])
    got = m.forecast(hist, 4, lengths)
    for b in range(B):          # the same as re-running the whole sequence with the predictions appended
        seq = hist[b, :lengths[b]]
        for s in range(4):
            nxt = m.predict(seq[None])[0, -1]
            np.testing.assert_allclose(got[b, s], nxt, rtol=1e-10, atol=1e-12)
            seq = np.vstack([seq, nxt])
    np.testing.assert_allclose(m.forecast(hist[1, :3], 4), got[1], rtol=1e-12)


def test_predict_is_per_sequence_independent_of_the_batch():
    m = make_classifier(bidirectional=True, pooling="mean")
    x, _, lengths = classifier_batch(m)
    p = m.predict_proba(x, lengths)
    for b in range(B):
        np.testing.assert_allclose(m.predict_proba(x[b:b + 1, :lengths[b]]), p[b:b + 1], rtol=1e-10)
    ml = make_classifier(multi_label=True)
    labels = ml.predict(x, lengths)
    assert labels.shape == (B, 3) and set(np.unique(labels)) <= {0, 1}
    assert (labels == (ml.predict_proba(x, lengths) > 0.5)).all()


@pytest.mark.parametrize("make, batch_of, kw", CASES[::2], ids=IDS[::2])
def test_save_load_round_trip(tmp_path, make, batch_of, kw):
    m = make(**dict(kw, dtype="float32"))
    x, y, lengths = batch_of(m)
    fastrnn.save(tmp_path / "m.npz", m)
    back, vocab, _ = fastrnn.load(tmp_path / "m.npz")
    assert type(back) is type(m) and back.config == m.config and vocab is None
    np.testing.assert_array_equal(back.params, m.params)
    if isinstance(m, SequenceRegressor):
        np.testing.assert_array_equal(back.predict(x, lengths), m.predict(x, lengths))
        if m.config["output_size"] == m.config["input_size"]:
            np.testing.assert_array_equal(back.forecast(x, 3, lengths), m.forecast(x, 3, lengths))
    elif isinstance(m, SequenceTagger):
        assert back.predict(x, lengths) == m.predict(x, lengths)
    else:
        np.testing.assert_array_equal(back.predict_proba(x, lengths), m.predict_proba(x, lengths))
    assert back.forward((x, y, lengths), train=False) == m.forward((x, y, lengths), train=False)


# ---- bad input -------------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    c, t, r = make_classifier(), make_tagger(), make_regressor()
    x, y, lengths = classifier_batch(c)
    f = features(0)
    cases = [
        (c, (x, y, lengths[:3]), ValueError, "lengths"),                    # mismatched lengths
        (c, (x, y, np.array([6, 2, 0, 4])), ValueError, "lengths"),          # an empty sequence
        (c, (x, y, np.array([7, 2, 1, 4])), ValueError, "lengths"),          # longer than inputs
        (c, (x, y, lengths.astype(float)), TypeError, "lengths"),
        (c, (x[:, :0], y, None), ValueError, "inputs"),                      # no time steps
        (c, (x, np.array([0, 1, 3, 0]), lengths), ValueError, "targets"),    # label out of range
        (c, (x, y[:3], lengths), ValueError, "targets"),
        (c, (x, y.astype(float), lengths), TypeError, "targets"),
        (c, (x.astype(float), y, lengths), TypeError, "inputs"),            # wrong dtype
        (c, (x + V, y, lengths), ValueError, "inputs"),
        (c, (f, y, lengths), TypeError, "inputs"),                           # features to an ids model
        (c, x, TypeError, "batch"),
        (t, (x, np.full((B, T), 3), lengths), ValueError, "targets"),       # tag out of range
        (t, (x, np.zeros((B, T - 1), int), lengths), ValueError, "targets"),
        (r, (f, f[:, :, :2], lengths), ValueError, "targets"),
        (r, (x, f, lengths), TypeError, "inputs"),                           # ids to a features model
        (r, (f[:, :, :2], f, lengths), ValueError, "inputs"),
    ]
    for model, batch, exc, name in cases:
        with pytest.raises(exc, match=name):
            model.forward(batch)
    ml = make_classifier(multi_label=True)
    with pytest.raises(ValueError, match="targets"):
        ml.forward((x, np.full((B, 3), 2.0), lengths))
    with pytest.raises(ValueError, match="steps"):
        r.forecast(f, 0)
    with pytest.raises(ValueError, match="history"):
        r.forecast(f[0, :, 0], 2)
    with pytest.raises(TypeError, match="history"):
        r.forecast(x, 2)
    with pytest.raises(ValueError, match="output_size"):
        make_regressor(output_size=2).forecast(f, 3)
    for bad, name in ((dict(pooling="sum"), "pooling"), (dict(cell="tcn"), "cell"),
                      (dict(input_size=3), "vocab_size"), (dict(num_classes=0), "num_classes"),
                      (dict(dropout=1.5), "dropout"), (dict(hidden_size=2.5), "hidden_size")):
        with pytest.raises(ValueError, match=name):
            make_classifier(**bad)
    with pytest.raises(ValueError, match="output"):
        make_regressor(output="first")
    with pytest.raises(RuntimeError, match="backward"):
        make_tagger().backward()


def test_a_state_from_another_model_is_refused_before_anything_changes():
    c, t = make_classifier(), make_tagger(bidirectional=False)
    before = c.params.copy()
    with pytest.raises(KeyError, match="missing"):
        c.load_state_dict(make_regressor().state_dict())
    bigger = make_classifier(hidden_size=H + 1).state_dict()
    with pytest.raises(ValueError, match="shape"):
        c.load_state_dict(bigger)
    with pytest.raises(ValueError, match="shape"):              # same names, other head size
        c.load_state_dict(t.state_dict() | {"head.weight": np.zeros((5, H)), "head.bias": np.zeros(5)})
    np.testing.assert_array_equal(c.params, before)


ARRAYS = st.sampled_from([np.int64, np.int32, np.float64, np.float32, np.bool_, np.complex128]).flatmap(
    lambda dt: st.lists(st.integers(0, 5), min_size=0, max_size=3).map(
        lambda shape: (np.random.default_rng(sum(shape)).integers(-2, 9, shape)).astype(dt)))
MODELS = [make_classifier(), make_classifier(multi_label=True, vocab_size=None, input_size=2),
          make_tagger(), make_regressor(input_size=2)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(MODELS) - 1), inputs=ARRAYS, targets=ARRAYS,
       lengths=st.one_of(st.none(), ARRAYS), call=st.sampled_from(["forward", "predict", "forecast", "predict_proba"]))
def test_fuzz_public_entry_points_raise_only_named_errors(which, inputs, targets, lengths, call):
    m = MODELS[which]
    try:
        if call == "forward":
            m.forward((inputs, targets, lengths))
            m.backward()
        elif call == "predict":
            m.predict(inputs, lengths)
        elif isinstance(m, SequenceRegressor):
            m.forecast(inputs, 2, lengths)
        elif isinstance(m, SequenceClassifier):
            m.predict_proba(inputs, lengths)
    except (ValueError, TypeError) as e:
        assert any(n in str(e) for n in ("inputs", "targets", "lengths", "batch", "history")), str(e)
