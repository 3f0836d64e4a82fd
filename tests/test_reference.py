"""fastrnn.reference == central finite differences (float64) and == torch.nn.RNN/GRU/LSTM.

The reference is the oracle for everything else, so it is checked against the definition of a
derivative for every cell and option, and against PyTorch for the options PyTorch has.
"""
import numpy as np
import pytest

from fastrnn import reference as ref

# name -> (forward, backward, gates, kwargs, lstm, peephole, projection)
CELLS = {
    "rnn_tanh": (ref.rnn_forward, ref.rnn_backward, 1, dict(nonlinearity="tanh"), False, False, False),
    "rnn_relu": (ref.rnn_forward, ref.rnn_backward, 1, dict(nonlinearity="relu"), False, False, False),
    "gru": (ref.gru_forward, ref.gru_backward, 3, dict(reset_after=True), False, False, False),
    "gru_reset_before": (ref.gru_forward, ref.gru_backward, 3, dict(reset_after=False), False, False, False),
    "gru_simplified": (ref.simplified_gru_forward, ref.simplified_gru_backward, 2, {}, False, False, False),
    "mgu": (ref.mgu_forward, ref.mgu_backward, 2, {}, False, False, False),
    "lstm": (ref.lstm_forward, ref.lstm_backward, 4, {}, True, False, False),
    "lstm_peephole": (ref.lstm_forward, ref.lstm_backward, 4, {}, True, True, False),
    "lstm_proj": (ref.lstm_forward, ref.lstm_backward, 4, {}, True, False, True),
    "lstm_peephole_proj": (ref.lstm_forward, ref.lstm_backward, 4, {}, True, True, True),
}


def make(name, T=4, B=3, I=3, H=4, bias=True, lengths=None, seed=0, dtype=np.float64):
    """Inputs, parameters and output gradients for one call of cell `name`."""
    fwd, bwd, G, kw, lstm, peep, proj = CELLS[name]
    rng = np.random.default_rng(seed)
    r = lambda *s: rng.uniform(-1, 1, s).astype(dtype)
    P = H - 1 if proj else H
    inputs = dict(x=r(T, B, I), h0=r(B, P), W_ih=r(G * H, I), W_hh=r(G * H, P),
                  b_ih=r(G * H) if bias else None, b_hh=r(G * H) if bias else None)
    if lstm:
        inputs.update(c0=r(B, H), w_peep=r(3, H) if peep else None, W_hr=r(P, H) if proj else None)
    out_grads = dict(dy=r(T, B, P), dh=r(B, P), dc=r(B, H) if lstm else None)
    return inputs, out_grads, dict(kw, lengths=lengths)


def run(name, inputs, kw):
    """Forward; returns (y, states tuple, cache)."""
    fwd, _, _, _, lstm, _, _ = CELLS[name]
    a = dict(inputs)
    if lstm:
        y, (h, c), cache = fwd(a.pop("x"), a.pop("h0"), a.pop("c0"), **a, **kw)
        return y, (h, c), cache
    y, h, cache = fwd(a.pop("x"), a.pop("h0"), **a, **kw)
    return y, (h,), cache


def loss_and_grads(name, inputs, out_grads, kw):
    """A scalar loss (sum of outputs weighted by out_grads) and the reference's gradients of it."""
    y, states, cache = run(name, inputs, kw)
    loss = (y * out_grads["dy"]).sum() + (states[0] * out_grads["dh"]).sum()
    if CELLS[name][4]:
        loss += (states[1] * out_grads["dc"]).sum()
        grads = ref.lstm_backward(out_grads["dy"], (out_grads["dh"], out_grads["dc"]), cache)
    else:
        grads = CELLS[name][1](out_grads["dy"], out_grads["dh"], cache)
    return loss, grads


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lengths", [None, [4, 0, 2]])
@pytest.mark.parametrize("name", list(CELLS))
def test_gradients_match_central_finite_differences(name, lengths, bias):
    inputs, out_grads, kw = make(name, bias=bias, lengths=lengths, seed=len(name))
    _, grads = loss_and_grads(name, inputs, out_grads, kw)
    eps = 1e-6
    for key, value in inputs.items():
        if value is None:
            assert grads[key] is None, key
            continue
        numeric = np.zeros_like(value)
        flat, nflat = value.reshape(-1), numeric.reshape(-1)   # views: perturb in place
        for k in range(flat.size):
            old = flat[k]
            flat[k] = old + eps
            plus, _ = loss_and_grads(name, inputs, out_grads, kw)
            flat[k] = old - eps
            minus, _ = loss_and_grads(name, inputs, out_grads, kw)
            flat[k] = old
            nflat[k] = (plus - minus) / (2 * eps)
        err = np.abs(grads[key] - numeric).max() / max(np.abs(numeric).max(), 1e-8)
        assert err < 1e-6, f"{name} d{key}: relative error {err:.2e}"


@pytest.mark.parametrize("name", list(CELLS))
def test_float32_matches_float64(name):
    inputs, out_grads, kw = make(name, seed=3)
    loss64, g64 = loss_and_grads(name, inputs, out_grads, kw)
    to32 = lambda d: {k: None if v is None else v.astype(np.float32) for k, v in d.items()}
    loss32, g32 = loss_and_grads(name, to32(inputs), to32(out_grads), kw)
    for key, v in g64.items():
        if v is not None:
            assert g32[key].dtype == np.float32
            np.testing.assert_allclose(g32[key], v, rtol=1e-3, atol=1e-4, err_msg=key)


@pytest.mark.parametrize("name", ["rnn_tanh", "gru", "gru_reset_before", "gru_simplified",
                                  "lstm_peephole_proj"])
def test_chunked_run_with_carried_state_equals_one_run(name):
    """torch-rnn's 'remember states' check: two halves with the state carried == one full run."""
    inputs, _, kw = make(name, T=6, seed=5)
    y, states, _ = run(name, inputs, kw)
    first = dict(inputs, x=inputs["x"][:3])
    y1, s1, _ = run(name, first, kw)
    second = dict(inputs, x=inputs["x"][3:], h0=s1[0], **({"c0": s1[1]} if len(s1) > 1 else {}))
    y2, s2, _ = run(name, second, kw)
    np.testing.assert_allclose(np.concatenate([y1, y2]), y, rtol=1e-13, atol=1e-14)
    for a, b in zip(s2, states):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def test_lengths_freeze_state_and_zero_outputs():
    inputs, _, kw = make("lstm", T=5, seed=2, lengths=[5, 0, 3])
    y, (h, c), _ = run("lstm", inputs, kw)
    assert not y[3:, 2].any() and not y[:, 1].any()
    np.testing.assert_array_equal(h[1], inputs["h0"][1])
    np.testing.assert_array_equal(c[1], inputs["c0"][1])
    np.testing.assert_array_equal(h[2], y[2, 2])
    full, _, _ = make("lstm", T=5, seed=2)
    y_short, (h_short, _), _ = run("lstm", dict(full, x=full["x"][:3]), {})
    np.testing.assert_allclose(h[2], h_short[2], rtol=1e-14)


# ---- PyTorch parity ---------------------------------------------------------------------------

TORCH = {"rnn_tanh": "RNN", "rnn_relu": "RNN", "gru": "GRU", "lstm": "LSTM", "lstm_proj": "LSTM"}


@pytest.mark.parametrize("lengths", [None, [4, 1, 3]])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", list(TORCH))
def test_matches_torch(name, bias, lengths):
    torch = pytest.importorskip("torch")
    inputs, out_grads, kw = make(name, T=4, B=3, I=5, H=4, bias=bias, lengths=lengths, seed=9)
    y, states, cache = run(name, inputs, kw)
    _, grads = loss_and_grads(name, inputs, out_grads, kw)

    H, lstm = 4, CELLS[name][4]
    extra = dict(nonlinearity=name[4:]) if name.startswith("rnn") else {}
    if name == "lstm_proj":
        extra = dict(proj_size=H - 1)
    m = getattr(torch.nn, TORCH[name])(5, H, bias=bias, dtype=torch.float64, **extra)
    names = dict(W_ih="weight_ih_l0", W_hh="weight_hh_l0", b_ih="bias_ih_l0", b_hh="bias_hh_l0",
                 W_hr="weight_hr_l0")
    with torch.no_grad():
        for key, tname in names.items():
            if inputs.get(key) is not None:
                getattr(m, tname).copy_(torch.from_numpy(inputs[key]))
    t = {k: torch.tensor(inputs[k], requires_grad=True) for k in ("x", "h0", "c0") if k in inputs}
    state = (t["h0"][None], t["c0"][None]) if lstm else t["h0"][None]
    x = t["x"]
    if lengths is not None:
        x = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    ty, tstate = m(x, state)
    if lengths is not None:
        ty, _ = torch.nn.utils.rnn.pad_packed_sequence(ty, total_length=4)
    tstates = tstate if lstm else (tstate,)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(states, tstates):
        np.testing.assert_allclose(a, b[0].detach().numpy(), rtol=1e-10, atol=1e-12)

    loss = (ty * torch.from_numpy(out_grads["dy"])).sum() + (tstates[0][0] * torch.from_numpy(out_grads["dh"])).sum()
    if lstm:
        loss = loss + (tstates[1][0] * torch.from_numpy(out_grads["dc"])).sum()
    loss.backward()
    for key, tensor in t.items():
        np.testing.assert_allclose(grads[key], tensor.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)
    for key, tname in names.items():
        if inputs.get(key) is not None:
            np.testing.assert_allclose(grads[key], getattr(m, tname).grad.numpy(), rtol=1e-10,
                                       atol=1e-12, err_msg=key)


# ---- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("change,exc,word", [
    (dict(x=np.ones((3, 4))), ValueError, "x"),
    (dict(x=np.ones((2, 3, 3), np.int64)), TypeError, "x"),
    (dict(W_ih=np.ones((4, 3), np.float32)), TypeError, "W_ih"),
    (dict(W_ih=np.ones((4, 2))), ValueError, "W_ih"),
    (dict(W_hh=np.ones((5, 4))), ValueError, "W_hh"),
    (dict(b_ih=np.ones(3)), ValueError, "b_ih"),
    (dict(h0=np.ones((2, 4))), ValueError, "h0"),
    (dict(lengths=[1, 2]), ValueError, "lengths"),
    (dict(lengths=[1, 2, 9]), ValueError, "lengths"),
    (dict(lengths=[1.0, 2.0, 1.0]), TypeError, "lengths"),
    (dict(nonlinearity="sigmoid"), ValueError, "nonlinearity"),
])
def test_bad_input_raises_naming_the_argument(change, exc, word):
    inputs, _, kw = make("rnn_tanh", T=2, B=3, I=3, H=4)
    args = {**inputs, **kw, **change}
    with pytest.raises(exc, match=word):
        ref.rnn_forward(**args)


def test_lstm_bad_peephole_and_state_shapes():
    inputs, _, kw = make("lstm_peephole")
    with pytest.raises(ValueError, match="w_peep"):
        ref.lstm_forward(**dict(inputs, w_peep=np.ones(12)), **kw)
    with pytest.raises(ValueError, match="c0"):
        ref.lstm_forward(**dict(inputs, c0=np.ones((3, 5))), **kw)
    _, _, cache = run("lstm_peephole", inputs, kw)
    with pytest.raises(ValueError, match="dstate"):
        ref.lstm_backward(None, (np.ones((3, 4)), np.ones((3, 3))), cache)
