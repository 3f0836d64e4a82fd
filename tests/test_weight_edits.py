"""Never stale: an in-place edit of the weights through any public view -- `params[...] =`, a
`named_parameters()` view, a `state_dict()` view, `torch.from_numpy(view).copy_()/.mul_()` --
is seen by the next inference call (no-grad / train=False forward, `step`, sampling), for
every cell, without `invalidate()`. float32, where the layers keep packed copies of W_hh for
inference; and the check costs nothing once no public view is left."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels, _packs

T, B, I, H = 4, 2, 3, 5

CELLS = {
    "rnn_tanh": lambda: fastrnn.RNN(I, H, num_layers=2, seed=0),
    "rnn_relu": lambda: fastrnn.RNN(I, H, nonlinearity="relu", num_layers=2, seed=0),
    "gru": lambda: fastrnn.GRU(I, H, num_layers=2, seed=0),
    "gru_reset_before": lambda: fastrnn.GRU(I, H, reset_after=False, seed=0),
    "gru_simplified": lambda: fastrnn.SimplifiedGRU(I, H, num_layers=2, seed=0),
    "lstm": lambda: fastrnn.LSTM(I, H, num_layers=2, seed=0),
    "lstm_proj": lambda: fastrnn.LSTM(I, H, num_layers=2, proj_size=3, seed=0),
    "lstm_peephole": lambda: fastrnn.LSTM(I, H, peephole=True, seed=0),
}


def _edit(layer, route):
    """Scale every recurrent weight (W_hh, and W_hr) in place the way a user would; returns what
    the user still holds (None: nothing)."""
    recurrent = lambda name: name.startswith(("weight_hh", "weight_hr"))
    if route == "params":
        names = [n for n, _ in layer.named_parameters()]
        sizes = [p.size for p in layer.parameters()]
        start = 0
        for name, n in zip(names, sizes):
            if recurrent(name):
                layer.params[start:start + n] *= 1.5
            start += n
        return None
    if route == "named_parameters":
        for name, p in layer.named_parameters():
            if recurrent(name):
                p *= 1.5
        return None
    if route == "state_dict":
        sd = layer.state_dict()
        for name in sd:
            if recurrent(name):
                sd[name][...] = sd[name] * 1.5
        return sd                       # still held: edits keep being looked for
    torch = pytest.importorskip("torch")
    held = []
    for name, p in layer.named_parameters():
        if recurrent(name):
            t = torch.from_numpy(p)
            if route == "torch_copy":
                t.copy_(t * 1.5)
            else:
                t.mul_(1.5)
                held.append(t)
    return held or None


def _outputs(layer, x):
    with fastrnn.no_grad():
        a = layer.eval()(x)[0]
    b = layer.forward(x, train=False)[0]
    steps = []
    state = None
    for t in range(x.shape[0]):
        y, state = layer.step(x[t], state)
        steps.append(y)
    return a, b, np.stack(steps)


def _steps(m, x, n=3):
    """The output of the n-th step (from a zero state only the second step on reads W_hh)."""
    state = None
    for _ in range(n):
        y, state = m.step(x, state)
    return y


def _reference(make, layer):
    """A fresh layer holding (copies of) the current weights: it has never packed anything."""
    ref = make()
    ref.load_state_dict({k: v.copy() for k, v in layer.state_dict().items()})
    return ref


ROUTES = ["params", "named_parameters", "state_dict", "torch_copy", "torch_mul"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_an_edit_through_any_public_view_is_seen_by_the_next_inference_call(cell, route):
    make = CELLS[cell]
    layer = make()
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    before = _outputs(layer, x)               # packs W_hh for inference (float32 engine)
    _outputs(layer, x)
    held = _edit(layer, route)
    after = _outputs(layer, x)
    expected = _outputs(_reference(make, layer), x)
    for a, e, b in zip(after, expected, before):
        np.testing.assert_array_equal(a, e)
        assert not np.allclose(a, b), "the edit changed nothing: the test would not see staleness"
    del held


def test_packing_is_active_here_so_the_tests_above_can_fail():
    """On the float32 engine inference uses packed W_hh: a stale pack would be used."""
    W = np.zeros((4 * H, H), np.float32)
    if _kernels.pack_forward("lstm", W) is None:
        pytest.skip("the float32 engine is off here: no packed copies to go stale")
    lstm = CELLS["lstm"]()
    lstm.step(np.zeros((B, I), np.float32))
    assert lstm._packs.entries and all(v[1] is not None for v in lstm._packs.entries.values())


def test_model_step_and_sampling_see_an_edit_of_model_params():
    vocab = fastrnn.Vocab(["<unk>", "<eos>"] + list("abcdefg"))
    lm = fastrnn.LanguageModel(len(vocab), hidden_size=6, num_layers=2, seed=0)
    ids = np.array([1, 2])
    logits = _steps(lm, ids)
    text = fastrnn.generate(lm, vocab, "ab", 20, argmax=True)
    lm.forward(np.array([[1, 2, 3]]), np.array([[2, 3, 4]]), train=False)
    lm.params[...] *= -1.5                                 # every weight, W_hh included
    ref = fastrnn.LanguageModel(len(vocab), hidden_size=6, num_layers=2, seed=1)
    ref.load_state_dict({k: v.copy() for k, v in lm.state_dict().items()})
    np.testing.assert_array_equal(_steps(lm, ids), _steps(ref, ids))
    assert not np.allclose(_steps(lm, ids), logits)
    assert fastrnn.generate(lm, vocab, "ab", 20, argmax=True) == fastrnn.generate(ref, vocab, "ab", 20, argmax=True)
    assert fastrnn.generate(lm, vocab, "ab", 20, argmax=True) != text


def test_rebound_storage_is_always_checked():
    lstm = CELLS["lstm"]()
    p, g = np.empty_like(lstm.params), np.empty_like(lstm.grads)
    lstm.rebind(p, g)
    x = np.ones((B, I), np.float32)
    before = _steps(lstm, x)
    p *= 0.5                                               # the caller's own array
    ref = _reference(CELLS["lstm"], lstm)
    np.testing.assert_array_equal(_steps(lstm, x), _steps(ref, x))
    assert not np.allclose(_steps(lstm, x), before)


def test_the_check_costs_nothing_once_no_public_view_is_left(monkeypatch):
    calls = []
    real = _packs.same_bytes
    monkeypatch.setattr(_packs, "same_bytes", lambda a, b: calls.append(1) or real(a, b))
    lstm = CELLS["lstm"]()
    x = np.ones((B, I), np.float32)
    lstm.step(x)                                  # packs; nothing handed out since construction
    n = len(calls)
    for _ in range(3):
        lstm.step(x)
    assert len(calls) == n                        # no view out: no compare at all
    held = dict(lstm.named_parameters())          # a view is alive: every call compares
    lstm.step(x)
    lstm.step(x)
    assert len(calls) >= n + 2
    del held
    lstm.step(x)                                  # one last check after the views are gone...
    n = len(calls)
    for _ in range(3):
        lstm.step(x)
    assert len(calls) == n                        # ... then none
    lstm.params[0] += 0                           # a transient access: exactly one more check
    lstm.step(x)
    lstm.step(x)
    assert len(calls) > n
