"""torch's conventions, checked by running the SAME script against a torch module and its fastrnn
twin: training/eval mode (dropout > 0, several layers, every cell, bidirectional, every model
with dropout), parameter names, order and shapes from named_parameters()/parameters()/
state_dict(), the mode flags of every child, named_buffers(), load_state_dict's return value,
and eval() + forward + backward. float64 throughout, so "identical" means a tight tolerance.

torch is required under FASTRNN_REQUIRE_TORCH=1 (conftest), otherwise these tests skip.
"""
import numpy as np
import pytest

import fastrnn

torch = pytest.importorskip("torch")
nn = torch.nn

T, B = 5, 3


def arr(v):
    """NumPy of a torch tensor or a NumPy array (the script's outputs, either library)."""
    return v.detach().numpy() if hasattr(v, "detach") else np.asarray(v)


def flat(out):
    """The arrays of an RNN's (output, h_n) or (output, (h_n, c_n)), or a cell's h / (h, c)."""
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in flat(o)]
    return [arr(out)]


def script(m, x):
    """What a torch user does with a recurrent module; identical code for torch and fastrnn."""
    seen = {"fresh_training": [c.training for _, c in m.named_modules()]}
    seen["names"] = [n for n, _ in m.named_parameters()]
    seen["shapes"] = [tuple(p.shape) for p in m.parameters()]
    seen["state_keys"] = list(m.state_dict().keys())
    seen["state_shapes"] = [tuple(v.shape) for v in m.state_dict().values()]
    seen["buffers"] = [n for n, _ in m.named_buffers()]
    m.eval()
    seen["eval_flags"] = [c.training for _, c in m.named_modules()]
    seen["eval_out"] = flat(m(x))
    seen["eval_again"] = flat(m(x))
    m.train()
    seen["train_flags"] = [c.training for _, c in m.named_modules()]
    return seen


def check_same(ours, theirs):
    for key in ("fresh_training", "eval_flags", "train_flags"):     # every child follows
        assert set(ours[key]) == set(theirs[key]) == {key != "eval_flags"}, key
    for key in ("names", "shapes", "state_keys", "state_shapes", "buffers"):
        assert ours[key] == theirs[key], key
    assert len(ours["eval_out"]) == len(theirs["eval_out"])
    for a, b in zip(ours["eval_out"], theirs["eval_out"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(ours["eval_out"], ours["eval_again"]):
        np.testing.assert_array_equal(a, b)          # eval: no dropout, so no randomness


LAYERS = [
    (nn.RNN, fastrnn.RNN, dict(nonlinearity="tanh", num_layers=3, dropout=0.5)),
    (nn.RNN, fastrnn.RNN, dict(nonlinearity="relu", num_layers=2, dropout=0.3, bidirectional=True)),
    (nn.GRU, fastrnn.GRU, dict(num_layers=3, dropout=0.5, bidirectional=True)),
    (nn.GRU, fastrnn.GRU, dict(num_layers=2, dropout=0.4, batch_first=True)),
    (nn.LSTM, fastrnn.LSTM, dict(num_layers=3, dropout=0.5)),
    (nn.LSTM, fastrnn.LSTM, dict(num_layers=2, dropout=0.3, bidirectional=True, proj_size=2)),
]


@pytest.mark.parametrize("theirs, ours, kw", LAYERS, ids=[f"{t.__name__}-{i}" for i, (t, _, _) in enumerate(LAYERS)])
def test_layers_follow_torch_mode_and_names(theirs, ours, kw):
    torch.manual_seed(0)
    t = theirs(4, 3, **kw).double()
    f = ours(4, 3, dtype="float64", **kw)
    f.load_state_dict(t.state_dict())
    shape = (B, T, 4) if kw.get("batch_first") else (T, B, 4)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal(shape))
    check_same(script(f, x), script(t, x))
    # training mode really drops (both), and eval() really stops it (checked above)
    assert not np.array_equal(flat(f(x))[0], flat(f(x))[0])
    with torch.no_grad():
        assert not torch.equal(t(x)[0], t(x)[0])


@pytest.mark.parametrize("theirs, ours, kw", LAYERS, ids=[f"{t.__name__}-{i}" for i, (t, _, _) in enumerate(LAYERS)])
def test_eval_forward_backward_gives_torchs_gradients(theirs, ours, kw):
    """eval() turns dropout off but keeps the tape: backward works and matches torch's."""
    torch.manual_seed(0)
    t = theirs(4, 3, **kw).double().eval()
    f = ours.from_torch(t)
    assert not f.training                            # from_torch keeps the mode
    shape = (B, T, 4) if kw.get("batch_first") else (T, B, 4)
    x = np.random.default_rng(2).standard_normal(shape)
    xt = torch.from_numpy(x).requires_grad_()
    y_t, _ = t(xt)
    dy = np.random.default_rng(3).standard_normal(tuple(y_t.shape))
    (y_t * torch.from_numpy(dy)).sum().backward()
    y, _ = f(x)
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    dx, _ = f.backward(dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    grads = f.named_grads()
    for name, p in t.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


CELLS = [(nn.RNNCell, fastrnn.RNNCell, dict(nonlinearity="tanh")),
         (nn.RNNCell, fastrnn.RNNCell, dict(nonlinearity="relu")),
         (nn.GRUCell, fastrnn.GRUCell, {}), (nn.LSTMCell, fastrnn.LSTMCell, {})]


@pytest.mark.parametrize("theirs, ours, kw", CELLS, ids=["rnn_tanh", "rnn_relu", "gru", "lstm"])
def test_cells_follow_torch_mode_and_names(theirs, ours, kw):
    torch.manual_seed(0)
    t = theirs(4, 3, **kw).double()
    f = ours.from_torch(t)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((B, 4)))
    check_same(script(f, x), script(t, x))
    assert [n for n, _ in f.named_parameters(recurse=False)] == [n for n, _ in t.named_parameters(recurse=False)]


def test_from_torch_keeps_the_mode():
    for theirs, ours in ((nn.LSTM(2, 3, num_layers=2, dropout=0.5), fastrnn.LSTM), (nn.GRUCell(2, 3), fastrnn.GRUCell)):
        assert ours.from_torch(theirs.train()).training
        f = ours.from_torch(theirs.eval())
        assert not any(c.training for _, c in f.named_modules())


def test_load_state_dict_returns_missing_and_unexpected_keys_as_torch():
    torch.manual_seed(0)
    t = nn.LSTM(3, 4, num_layers=2).double()
    f = fastrnn.LSTM.from_torch(t)
    state = {k: v for k, v in t.state_dict().items() if not k.endswith("_l1")}
    state["extra.weight"] = torch.zeros(2)
    rt = t.load_state_dict(state, strict=False)
    rf = f.load_state_dict({k: v.numpy() for k, v in state.items()}, strict=False)
    assert (list(rf.missing_keys), list(rf.unexpected_keys)) == (list(rt.missing_keys), list(rt.unexpected_keys))
    assert rf.missing_keys == ["weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"]
    assert rf.unexpected_keys == ["extra.weight"]
    missing, unexpected = f.load_state_dict(t.state_dict())           # unpacks as torch's
    assert missing == [] and unexpected == []


def test_state_dict_shares_memory_and_torch_loads_it_as_documented():
    f = fastrnn.GRU(3, 4, num_layers=2, dtype="float64", seed=0)
    sd = f.state_dict()
    assert list(sd) == [n for n, _ in f.named_parameters()]
    assert all(np.shares_memory(v, f.params) for v in sd.values())
    sd["weight_hh_l1"][0, 0] = 7.0                                     # as torch: the module sees it
    assert dict(f.named_parameters())["weight_hh_l1"][0, 0] == 7.0
    t = nn.GRU(3, 4, num_layers=2).double()
    with pytest.raises(Exception):
        t.load_state_dict(f.state_dict())                              # NumPy arrays: torch refuses
    t.load_state_dict({k: torch.from_numpy(v) for k, v in f.state_dict().items()})   # the docstring's way
    for name, p in t.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), sd[name])
    x = np.random.default_rng(0).standard_normal((T, B, 3))
    with torch.no_grad():
        np.testing.assert_allclose(f.eval()(x)[0], t.eval()(torch.from_numpy(x))[0].numpy(), rtol=1e-10, atol=1e-12)


# ---- models with dropout, built the same way in torch ---------------------------------------------

class TorchSeqModel(nn.Module):
    """embed (ids) / rnn (with dropout) / drop / head, as fastrnn's padded-batch models and LM."""

    def __init__(self, m, out_features, drop=True):
        super().__init__()
        c = m.config
        Cell = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[c["cell"]]
        if c.get("embed_size") and c.get("vocab_size"):
            self.embed = nn.Embedding(c["vocab_size"], c["embed_size"])
        width = m.rnn.input_size
        self.rnn = Cell(width, c["hidden_size"], num_layers=c["num_layers"], dropout=c["dropout"],
                        bidirectional=bool(c.get("bidirectional")))
        if drop:
            self.drop = nn.Dropout(c["dropout"])
        self.head = nn.Linear(m.rnn.D * c["hidden_size"], out_features)
        self.double()
        self.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in m.state_dict().items()})

    def encode(self, x):
        x = torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, 0, 1)))
        if hasattr(self, "embed"):
            x = self.embed(x)
        return self.rnn(x)


def _tokens(V, seed=0):
    return np.random.default_rng(seed).integers(0, V, (B, T))


def _lm(dropout):
    m = fastrnn.LanguageModel(7, cell="lstm", hidden_size=4, num_layers=3, dropout=dropout, embed_size=3,
                              dtype="float64", seed=0)
    t = TorchSeqModel(m, 7, drop=False)
    x, y = _tokens(7), _tokens(7, 1)

    def theirs():
        out, _ = t.encode(x)
        logits = t.head(out).reshape(T * B, -1)
        return nn.functional.cross_entropy(logits, torch.from_numpy(np.ascontiguousarray(y.T).reshape(-1)))
    return m, t, (lambda: m.forward(x, y)[0]), theirs


def _classifier(dropout):
    m = fastrnn.SequenceClassifier(3, vocab_size=7, embed_size=3, hidden_size=4, cell="gru", num_layers=2,
                                   bidirectional=True, dropout=dropout, dtype="float64", seed=0)
    t = TorchSeqModel(m, 3)
    x, y = _tokens(7), np.random.default_rng(2).integers(0, 3, B)

    def theirs():
        _, h = t.encode(x)
        pooled = torch.cat([h[-2], h[-1]], 1)
        return nn.functional.cross_entropy(t.head(t.drop(pooled)), torch.from_numpy(y))
    return m, t, (lambda: m.forward((x, y))), theirs


def _tagger(dropout):
    m = fastrnn.SequenceTagger(4, input_size=3, hidden_size=4, cell="lstm", num_layers=2, dropout=dropout,
                               dtype="float64", seed=0)
    t = TorchSeqModel(m, 4)
    x, y = np.random.default_rng(3).standard_normal((B, T, 3)), np.random.default_rng(4).integers(0, 4, (B, T))

    def theirs():
        out, _ = t.encode(x)
        logits = t.head(t.drop(out)).reshape(T * B, -1)
        return nn.functional.cross_entropy(logits, torch.from_numpy(np.ascontiguousarray(y.T).reshape(-1)))
    return m, t, (lambda: m.forward((x, y))), theirs


def _regressor(dropout):
    m = fastrnn.SequenceRegressor(3, hidden_size=4, cell="rnn", num_layers=3, dropout=dropout,
                                  dtype="float64", seed=0)
    t = TorchSeqModel(m, 3)
    x, y = np.random.default_rng(5).standard_normal((B, T, 3)), np.random.default_rng(6).standard_normal((B, T, 3))

    def theirs():
        out, _ = t.encode(x)
        pred = t.head(t.drop(out)).transpose(0, 1)
        return nn.functional.mse_loss(pred, torch.from_numpy(y))
    return m, t, (lambda: m.forward((x, y))), theirs


MODELS = {"lm": _lm, "classifier": _classifier, "tagger": _tagger, "regressor": _regressor}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_models_with_dropout_follow_torch_mode(kind):
    m, t, ours, theirs = MODELS[kind](0.5)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [tuple(p.shape) for p in m.parameters()] == [tuple(p.shape) for p in t.parameters()]
    assert list(m.state_dict()) == list(t.state_dict())
    assert all(c.training for _, c in m.named_modules()) and t.training
    m.eval(), t.eval()
    assert not any(c.training for _, c in m.named_modules())
    assert not any(c.training for _, c in t.named_modules())
    loss = ours()
    with torch.no_grad():
        assert abs(loss - theirs().item()) < 1e-10
    assert ours() == loss                                   # eval: deterministic
    m.train(), t.train()
    assert all(c.training for _, c in m.named_modules())
    assert len({ours() for _ in range(3)}) > 1              # training mode: dropout is on
    with torch.no_grad():
        assert len({theirs().item() for _ in range(3)}) > 1


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_models_eval_forward_backward_gives_torchs_gradients(kind):
    m, t, ours, theirs = MODELS[kind](0.5)
    m.eval(), t.eval()
    m.zero_grad()
    loss = ours()
    m.backward()
    lt = theirs()
    lt.backward()
    assert abs(loss - lt.item()) < 1e-10
    grads = m.named_grads()
    for name, p in t.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)
