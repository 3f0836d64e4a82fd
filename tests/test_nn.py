"""fastrnn.nn: the Module facade (names, slices, state dicts, versions, RNGs) and the blocks
(Linear, Embedding, Dropout, losses) against float64 finite differences and PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastrnn import nn, optim
from fastrnn.nn import Module


def numgrad(f, a, eps=1e-6, touch=lambda: None):
    """Central finite differences of the scalar f() w.r.t. every element of `a` (in place;
    `touch` is called after each write, e.g. a module's invalidate)."""
    g = np.zeros(a.shape)
    flat, gf = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        touch()
        up = f()
        flat[i] = old - eps
        touch()
        down = f()
        flat[i] = old
        touch()
        gf[i] = (up - down) / (2 * eps)
    return g


def assert_close(a, b, tol=1e-7):
    scale = max(1.0, np.abs(b).max())
    np.testing.assert_allclose(a, b, atol=tol * scale, rtol=0)


class Tiny(Module):
    """Embedding -> LSTM -> Linear, composed as a user would."""

    def __init__(self, dtype="float64", dropout=0.0):
        super().__init__(dtype)
        self.embed = nn.Embedding(7, 3, dtype=dtype, seed=0)
        self.encoder = nn.LSTM(3, 4, num_layers=2, dropout=dropout, dtype=dtype, seed=1)
        self.drop = nn.Dropout(0.5, dtype=dtype, seed=2)
        self.head = nn.Linear(4, 5, dtype=dtype, seed=3)


# ---- Module -------------------------------------------------------------------------------------

def test_dotted_names_in_declaration_order():
    m = Tiny()
    names = list(dict(m.named_parameters()))
    assert names[:3] == ["embed.weight", "encoder.weight_ih_l0", "encoder.weight_hh_l0"]
    assert names[-2:] == ["head.weight", "head.bias"]
    assert "encoder.weight_ih_l1" in names and list(m.named_grads()) == names
    assert m.params.size == sum(v.size for v in m.parameters())


def test_every_view_is_a_slice_of_the_root_buffer_and_values_survive_attaching():
    lstm = nn.LSTM(3, 4, dtype="float64", seed=5)
    before = lstm.state_dict()
    root = Module("float64")
    root.rnn = lstm
    root.head = nn.Linear(4, 2, dtype="float64")
    for name, v in before.items():
        np.testing.assert_array_equal(dict(root.named_parameters())["rnn." + name], v)
    for (name, p), g in zip(root.named_parameters(), root.named_grads().values()):
        assert np.shares_memory(p, root.params) and np.shares_memory(g, root.grads), name
    assert np.shares_memory(lstm.params, root.params) and lstm.params.size == sum(before[k].size for k in before)
    root.params[...] = 0.25                                  # writing the root writes every view
    assert (dict(root.head.named_parameters())["weight"] == 0.25).all()
    assert (dict(lstm.named_parameters())["weight_hh_l0"] == 0.25).all()
    with pytest.raises(ValueError, match="already belongs"):
        Module("float64").x = lstm
    with pytest.raises(TypeError, match="float32"):
        root.other = nn.Linear(2, 2, dtype="float32")


def test_the_layer_inside_a_model_still_computes_with_the_model_weights():
    m = Tiny()
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    alone = nn.LSTM(3, 4, num_layers=2, dtype="float64")
    alone.load_state_dict(m.encoder.state_dict())
    np.testing.assert_array_equal(m.encoder.forward(x, train=False)[0], alone.forward(x, train=False)[0])
    m.params[...] *= 0.5
    m.invalidate()
    assert not np.array_equal(m.encoder.forward(x, train=False)[0], alone.forward(x, train=False)[0])


def test_load_state_dict_is_all_or_nothing():
    m = Tiny()
    before = m.params.copy()
    bad = {k: v + 1 for k, v in m.state_dict().items()}
    bad["head.bias"] = np.zeros(6)                            # last in order: the others come first
    with pytest.raises(ValueError, match="head.bias"):
        m.load_state_dict(bad)
    np.testing.assert_array_equal(m.params, before)
    with pytest.raises(KeyError, match="missing"):
        m.load_state_dict({k: v for k, v in bad.items() if k != "embed.weight"})
    bad["head.bias"] = np.zeros(5, complex)
    with pytest.raises(TypeError, match="head.bias"):
        m.load_state_dict(bad)
    bad["head.bias"] = np.array(["a"] * 5)
    with pytest.raises(TypeError, match="head.bias"):
        m.load_state_dict(bad)
    with pytest.raises(TypeError, match="mapping"):
        m.load_state_dict([1, 2])
    np.testing.assert_array_equal(m.params, before)
    good = {k: v + 1 for k, v in m.state_dict().items()}
    m.load_state_dict(good)
    np.testing.assert_array_equal(m.params, before + 1)
    partial = Tiny()
    partial.load_state_dict({"head.bias": np.arange(5.0)}, strict=False)
    np.testing.assert_array_equal(dict(partial.head.named_parameters())["bias"], np.arange(5.0))


def test_load_state_dict_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    m = Tiny()
    state = {k: torch.tensor(v * 2) for k, v in m.state_dict().items()}
    before = m.params.copy()
    m.load_state_dict(state)
    np.testing.assert_array_equal(m.params, 2 * before)


def test_param_version_is_shared_and_bumped_by_every_write():
    m = Tiny()
    seen = [m.param_version]
    assert m.encoder.param_version == m.param_version == m.head.param_version

    def bumped():
        v = m.param_version
        assert v not in seen and m.encoder.param_version == v
        seen.append(v)
    m.load_state_dict(m.state_dict())
    bumped()
    m.rebind(np.zeros_like(m.params), np.zeros_like(m.grads))
    bumped()
    opt = optim.SGD(m, lr=0.1)
    m.grads[...] = 1
    opt.step()
    bumped()
    m.invalidate()
    bumped()
    m.encoder.invalidate()                 # any member of the tree bumps the one counter
    bumped()
    m.add_module("extra", nn.Linear(2, 2, dtype="float64"))   # re-layout moves storage
    bumped()
    x = np.zeros((2, 1, 3))
    m.encoder.forward(x, train=False)      # reading does not
    assert m.param_version == seen[-1]
    with pytest.raises(ValueError, match="part of a model"):
        m.encoder.rebind(np.zeros(m.encoder.params.size), np.zeros(m.encoder.params.size))


def test_rng_state_round_trip_covers_every_rng_in_the_tree():
    m = Tiny(dropout=0.5)
    assert set(m.rng_state()) == {"encoder._dropout_rng", "drop._rng"}
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    state = m.rng_state()
    a = m.drop.forward(m.encoder.forward(x)[0])
    m.set_rng_state(state)
    b = m.drop.forward(m.encoder.forward(x)[0])
    np.testing.assert_array_equal(a, b)
    c = m.drop.forward(m.encoder.forward(x)[0])
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="RNG states"):
        m.set_rng_state({"drop._rng": state["drop._rng"]})


def test_zero_grad_train_eval_and_cells_names():
    m = Tiny()
    m.grads[...] = 3
    m.head.zero_grad()
    assert (m.head.grads == 0).all() and (m.encoder.grads == 3).all()
    m.zero_grad()
    assert not m.grads.any()
    assert not m.eval().drop.training and m.train().drop.training
    cell = nn.GRUCell(3, 4)
    assert list(dict(cell.named_parameters())) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    host = Module("float32")
    host.cell = cell
    assert list(dict(host.named_parameters()))[0] == "cell.weight_ih"


# ---- blocks: float64 finite differences ----------------------------------------------------------

def test_linear_gradients():
    rng = np.random.default_rng(0)
    lin = nn.Linear(4, 3, dtype="float64", seed=0)
    x, w = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 3))
    f = lambda: float((lin.forward(x, train=False) * w).sum())
    lin.zero_grad()
    lin.forward(x)
    dx = lin.backward(w)
    assert_close(dx, numgrad(f, x))
    for name, p in lin.named_parameters():
        assert_close(lin.named_grads()[name], numgrad(f, p, touch=lin.invalidate))
    lin.forward(x)
    lin.backward(w)                          # accumulates
    assert_close(lin.named_grads()["bias"], 2 * numgrad(f, dict(lin.named_parameters())["bias"], touch=lin.invalidate))


def test_embedding_gradient_with_repeated_ids():
    rng = np.random.default_rng(1)
    emb = nn.Embedding(6, 3, dtype="float64", seed=0)
    ids = np.array([[0, 2, 2], [5, 0, 2]])
    w = rng.standard_normal((2, 3, 3))
    f = lambda: float((emb.forward(ids, train=False) * w).sum())
    emb.forward(ids)
    emb.backward(w)
    assert_close(emb.named_grads()["weight"], numgrad(f, dict(emb.named_parameters())["weight"], touch=emb.invalidate))
    with pytest.raises(ValueError, match="ids"):
        emb.forward(np.array([6]))
    with pytest.raises(TypeError, match="ids"):
        emb.forward(np.array([1.0]))


def test_dropout_gradient_with_a_fixed_mask():
    rng = np.random.default_rng(2)
    drop = nn.Dropout(0.4, dtype="float64", seed=0)
    x, w = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    state = drop.rng_state()

    def f():
        drop.set_rng_state(state)           # the same mask on every evaluation
        return float((drop.forward(x) * w).sum())
    y = (f(), drop.forward(x, train=False))
    assert y[1] is x or np.array_equal(y[1], x)
    f()
    dx = drop.backward(w)
    assert_close(dx, numgrad(f, x))
    assert set(np.unique(drop._mask)) <= {0.0, 1 / 0.6}
    with pytest.raises(ValueError, match="p"):
        nn.Dropout(1.0)


@pytest.mark.parametrize("kind", ["ce", "bce", "mse"])
def test_loss_gradients_with_masks(kind):
    rng = np.random.default_rng(3)
    if kind == "ce":
        pred, target = rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, 6)
        mask, loss = np.array([1, 0, 1, 1, 0.5, 1]), nn.SoftmaxCrossEntropy()
    else:
        pred = rng.standard_normal((3, 2, 4)) * 3
        target = rng.random((3, 2, 4)) if kind == "bce" else rng.standard_normal((3, 2, 4))
        mask = np.array([[1, 0], [1, 1], [0, 1]])
        loss = nn.BCEWithLogits() if kind == "bce" else nn.MSE()
    f = lambda: loss.forward(pred, target, mask)
    f()
    g = loss.backward()
    assert_close(g, numgrad(f, pred))
    if kind != "ce":
        assert (g[0, 1] == 0).all()          # masked elements get no gradient
    f()
    assert_close(loss.backward(2.0), 2 * g)
    with pytest.raises(RuntimeError):
        loss.backward()
    with pytest.raises(ValueError, match="mask"):
        loss.forward(pred, target, np.zeros(mask.shape))


def test_masked_mean_equals_the_mean_over_the_kept_elements():
    rng = np.random.default_rng(4)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    mask = np.array([1, 0, 1, 0])
    full, _ = nn.mse(pred[mask == 1], target[mask == 1])
    assert nn.mse(pred, target, mask)[0] == pytest.approx(full, rel=1e-14)
    bce, _ = nn.binary_cross_entropy_with_logits(pred[mask == 1], (target[mask == 1] > 0) * 1.0)
    assert nn.binary_cross_entropy_with_logits(pred, (target > 0) * 1.0, mask)[0] == pytest.approx(bce, rel=1e-14)


# ---- PyTorch parity ---------------------------------------------------------------------------------

def test_linear_embedding_and_losses_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    lin, emb = nn.Linear(4, 3, dtype="float64", seed=0), nn.Embedding(6, 4, dtype="float64", seed=1)
    t_lin, t_emb = torch.nn.Linear(4, 3).double(), torch.nn.Embedding(6, 4).double()
    t_lin.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    t_emb.load_state_dict({k: torch.tensor(v) for k, v in emb.state_dict().items()})
    ids = rng.integers(0, 6, (3, 5))
    target = rng.integers(0, 3, 15)
    mask = (rng.random(15) > 0.3).astype(float)
    # ours
    logits = lin.forward(emb.forward(ids)).reshape(15, 3)
    ce = nn.SoftmaxCrossEntropy()
    loss = ce.forward(logits, target, mask)
    emb.backward(lin.backward(ce.backward().reshape(3, 5, 3)))
    # torch
    tl = t_lin(t_emb(torch.tensor(ids))).reshape(15, 3)
    per = torch.nn.functional.cross_entropy(tl, torch.tensor(target), reduction="none")
    t_loss = (per * torch.tensor(mask)).sum() / mask.sum()
    t_loss.backward()
    assert abs(loss - t_loss.item()) < 1e-10
    for m, t in ((lin, t_lin), (emb, t_emb)):
        for name, g in m.named_grads().items():
            np.testing.assert_allclose(g, dict(t.named_parameters())[name].grad.numpy(), atol=1e-10)
    x, y = rng.standard_normal((4, 3)) * 5, rng.random((4, 3))
    for ours, theirs in ((nn.binary_cross_entropy_with_logits, torch.nn.functional.binary_cross_entropy_with_logits),
                         (nn.mse, torch.nn.functional.mse_loss)):
        tx = torch.tensor(x, requires_grad=True)
        tloss = theirs(tx, torch.tensor(y))
        tloss.backward()
        loss, grad = ours(x, y)
        assert abs(loss - tloss.item()) < 1e-10
        np.testing.assert_allclose(grad, tx.grad.numpy(), atol=1e-10)


# ---- bad input never crashes ------------------------------------------------------------------------

arrays = st.one_of(
    st.integers(0, 4).flatmap(lambda n: st.lists(st.floats(allow_nan=True), min_size=n, max_size=n)).map(np.array),
    st.sampled_from([np.zeros((2, 4)), np.zeros((4, 2)), np.zeros(3, complex), np.array(["x"]),
                     np.zeros((2, 4), np.float32), np.zeros((0, 4)), np.zeros((2, 4), np.int64), None]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=60, deadline=None, derandomize=True)
@given(x=arrays, name=st.sampled_from(["weight", "bias", "nope"]), strict=st.booleans())
def test_fuzz_blocks_raise_clear_errors(x, name, strict):
    lin = nn.Linear(4, 2, dtype="float64")
    before = lin.params.copy()
    for call in (lambda: lin.forward(x), lambda: lin.load_state_dict({name: x}, strict=strict),
                 lambda: nn.Embedding(3, 2).forward(x), lambda: nn.mse(x, x, x),
                 lambda: nn.Dropout(0.5).forward(x)):
        try:
            call()
        except (ValueError, TypeError, KeyError):
            pass
    if name == "nope" or strict:
        np.testing.assert_array_equal(lin.params, before)
