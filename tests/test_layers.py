"""Layers == torch.nn.RNN/GRU/LSTM over a grid of options; step == forward; state dicts; errors.

Every case compares outputs, final states, input and initial-state gradients and every parameter
gradient (float64 to 1e-10 relative, float32 to 1e-4).
"""
import itertools

import numpy as np
import pytest

import fastrnn
from fastrnn import layers

T, B, I, H = 5, 3, 4, 5


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max(initial=0) / max(np.abs(b).max(initial=0), 1e-30)


def build(cell, num_layers, bidirectional, batch_first, bias, proj, dtype, seed=0):
    """A fastrnn layer and the torch module holding the same weights."""
    torch = pytest.importorskip("torch")
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    if cell == "lstm":
        tm = torch.nn.LSTM(I, H, proj_size=proj, **kw)
    elif cell == "gru":
        tm = torch.nn.GRU(I, H, **kw)
    else:
        tm = torch.nn.RNN(I, H, nonlinearity=cell[4:], **kw)
    tm = tm.to(getattr(torch, dtype))
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-0.6, 0.6)
    layer = {"lstm": fastrnn.LSTM, "gru": fastrnn.GRU}.get(cell, fastrnn.RNN).from_torch(tm)
    return layer, tm


def compare(cell, num_layers, bidirectional, batch_first, bias, proj, unbatched, lengths, state,
            dtype="float64", seed=0):
    torch = pytest.importorskip("torch")
    layer, tm = build(cell, num_layers, bidirectional, batch_first, bias, proj, dtype, seed)
    rng = np.random.default_rng(seed)
    D, P, lstm = 1 + bidirectional, proj or H, cell == "lstm"
    x = rng.standard_normal((T, I) if unbatched else (B, T, I) if batch_first else (T, B, I)).astype(dtype)
    sb = () if unbatched else (B,)
    h0 = rng.standard_normal((num_layers * D,) + sb + (P,)).astype(dtype) if state else None
    c0 = rng.standard_normal((num_layers * D,) + sb + (H,)).astype(dtype) if state and lstm else None
    lens = None
    if lengths:
        lens = rng.integers(1, T + 1, B)        # torch's packing needs lengths >= 1
        lens[rng.integers(B)] = T
    hx = ((h0, c0) if state else None) if lstm else h0

    y, s = layer(x, hx=hx, lengths=lens) if state else layer(x, lengths=lens)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dh = rng.standard_normal((s[0] if lstm else s).shape).astype(dtype)
    dc = rng.standard_normal(s[1].shape).astype(dtype) if lstm else None
    layer.zero_grad()
    dx, ds = layer.backward(dy, (dh, dc) if lstm else dh)

    xt = torch.tensor(x, requires_grad=True)
    h0t = None if h0 is None else torch.tensor(h0, requires_grad=True)
    c0t = None if c0 is None else torch.tensor(c0, requires_grad=True)
    inp = xt
    if lens is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lens), batch_first=batch_first,
                                                      enforce_sorted=False)
    ty, ts = tm(inp, ((h0t, c0t) if state else None) if lstm else h0t)
    if lens is not None:
        ty, _ = torch.nn.utils.rnn.pad_packed_sequence(ty, batch_first=batch_first, total_length=T)
    ts = ts if lstm else (ts,)
    loss = (ty * torch.tensor(dy)).sum() + (ts[0] * torch.tensor(dh)).sum()
    if lstm:
        loss = loss + (ts[1] * torch.tensor(dc)).sum()
    loss.backward()

    tol = 1e-10 if dtype == "float64" else 1e-4
    case = (f"{cell} L={num_layers} bidir={bidirectional} batch_first={batch_first} bias={bias} "
            f"proj={proj} unbatched={unbatched} lengths={lens} state={state} {dtype}")
    checks = [("output", y, ty), ("h_n", s[0] if lstm else s, ts[0]), ("dx", dx, xt.grad)]
    if lstm:
        checks.append(("c_n", s[1], ts[1]))
    if state:
        checks.append(("dh0", ds[0] if lstm else ds, h0t.grad))
        if lstm:
            checks.append(("dc0", ds[1], c0t.grad))
    grads = layer.named_grads()
    checks += [(f"grad {n}", grads[n], p.grad) for n, p in tm.named_parameters()]
    for what, ours, theirs in checks:
        err = rel(ours, theirs.detach().numpy())
        assert err <= tol, f"{what}: relative error {err:.2e} for {case}"


GRID = [(c, L, bd) for c in ("rnn_tanh", "rnn_relu", "gru", "lstm") for L in (1, 2, 3) for bd in (False, True)]


@pytest.mark.parametrize("cell,num_layers,bidirectional", GRID)
def test_matches_torch_over_the_option_grid(cell, num_layers, bidirectional):
    projs = (0, 3) if cell == "lstm" else (0,)
    for batch_first, bias, proj, unbatched, lengths, state in itertools.product(
            (False, True), (True, False), projs, (False, True), (False, True), (False, True)):
        if unbatched and (lengths or batch_first):
            continue                    # torch packs only batched input; batch_first is moot unbatched
        compare(cell, num_layers, bidirectional, batch_first, bias, proj, unbatched, lengths, state)


@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "lstm"])
def test_matches_torch_in_float32(cell):
    for L, bd, proj in [(1, False, 0), (2, True, 0), (2, True, 3 if cell == "lstm" else 0)]:
        compare(cell, L, bd, True, True, proj, False, True, True, dtype="float32", seed=L)


@pytest.mark.parametrize("make", [
    lambda: fastrnn.LSTM(I, H, num_layers=2, proj_size=3, peephole=True, dtype="float64", seed=1),
    lambda: fastrnn.GRU(I, H, num_layers=2, reset_after=False, dtype="float64", seed=1),
    lambda: layers.SimplifiedGRU(I, H, num_layers=2, bias=False, dtype="float64", seed=1),
    lambda: fastrnn.LSTM(I, H, num_layers=2, bidirectional=True, peephole=True, dtype="float64", seed=1),
], ids=["lstm-peephole-proj", "gru-reset-before", "simplified-gru", "bi-lstm-peephole"])
def test_options_torch_lacks_match_finite_differences(make):
    layer = make()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, I))
    lens = np.array([4, 2])
    y, s = layer(x, lengths=lens)
    dy = rng.standard_normal(y.shape)
    layer.zero_grad()
    dx, _ = layer.backward(dy)

    def numeric(a, k):
        """Central difference of the loss w.r.t. a[k] (a is perturbed in place and restored)."""
        old = a[k]
        a[k] = old + 1e-6
        plus = (layer(x, lengths=lens, train=False)[0] * dy).sum()
        a[k] = old - 1e-6
        minus = (layer(x, lengths=lens, train=False)[0] * dy).sum()
        a[k] = old
        return (plus - minus) / 2e-6
    for name, p in layer.named_parameters().items():
        flat, g = p.reshape(-1), layer.named_grads()[name].reshape(-1)
        for k in rng.choice(flat.size, min(flat.size, 6), replace=False):
            num = numeric(flat, k)
            assert abs(num - g[k]) <= 1e-6 * max(1.0, abs(num)), f"{name}[{k}]: {g[k]} vs {num}"
    for idx in [(0, 0, 0), (3, 0, 2), (1, 1, 3)]:
        assert abs(numeric(x, idx) - dx[idx]) <= 1e-6, f"dx{idx}"


@pytest.mark.parametrize("make", [
    lambda: fastrnn.LSTM(I, H, num_layers=3, proj_size=2, peephole=True, dtype="float64", seed=2),
    lambda: fastrnn.GRU(I, H, num_layers=2, reset_after=False, dtype="float64", seed=2),
    lambda: fastrnn.RNN(I, H, num_layers=2, nonlinearity="relu", batch_first=True, dtype="float64", seed=2),
])
def test_step_t_times_equals_forward(make):
    layer = make()
    x = np.random.default_rng(1).standard_normal((B, T, I) if layer.batch_first else (T, B, I))
    y, s = layer(x, train=False)
    state = None
    for t in range(T):
        y_t, state = layer.step(x[:, t] if layer.batch_first else x[t], state)
        np.testing.assert_allclose(y_t, y[:, t] if layer.batch_first else y[t], rtol=1e-12, atol=1e-13)
    for a, b in zip(state if layer.lstm else (state,), s if layer.lstm else (s,)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_dropout_is_reproducible_and_only_in_training():
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    a = fastrnn.LSTM(I, H, num_layers=3, dropout=0.5, seed=7)
    b = fastrnn.LSTM(I, H, num_layers=3, dropout=0.5, seed=7)
    ya, yb = a(x)[0], b(x)[0]
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a(x)[0], ya)          # a fresh mask each call
    no_drop = fastrnn.LSTM(I, H, num_layers=3, seed=7)
    np.testing.assert_array_equal(a(x, train=False)[0], no_drop(x, train=False)[0])
    # gradients flow only through kept units: compare with finite differences in float64
    d = fastrnn.GRU(I, H, num_layers=2, dropout=0.4, dtype="float64", seed=3)
    x64 = x.astype(np.float64)
    state = d.rng_state()
    y, _ = d(x64)
    dx, _ = d.backward(np.ones_like(y))
    eps = 1e-6
    x2 = x64.copy()
    x2[1, 1, 2] += eps
    d.set_rng_state(state)                           # the same mask again
    plus = d(x2)[0].sum()
    x2[1, 1, 2] -= 2 * eps
    d.set_rng_state(state)
    minus = d(x2)[0].sum()
    assert abs((plus - minus) / (2 * eps) - dx[1, 1, 2]) < 1e-6


def test_state_dict_round_trip_and_errors():
    a = fastrnn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2, seed=0)
    b = fastrnn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2, seed=1)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.params, b.params)
    sd = a.state_dict()
    assert list(sd)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    with pytest.raises(KeyError, match="weight_hr_l1_reverse"):
        b.load_state_dict({k: v for k, v in sd.items() if k != "weight_hr_l1_reverse"})
    with pytest.raises(KeyError, match="extra"):
        b.load_state_dict(dict(sd, extra=np.ones(1)))
    with pytest.raises(ValueError, match="weight_hh_l0"):
        b.load_state_dict(dict(sd, weight_hh_l0=np.ones((20, 5))))
    c = fastrnn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2, dtype="float64")
    c.load_state_dict(sd)                           # converted to the layer's dtype
    np.testing.assert_allclose(c.params, a.params.astype(np.float64))


def test_params_are_one_buffer_with_named_views():
    layer = fastrnn.GRU(I, H, num_layers=2, seed=0)
    named = layer.named_parameters()
    assert sum(v.size for v in named.values()) == layer.params.size
    named["bias_hh_l1"][...] = 3
    assert (layer.params == 3).sum() == 3 * H
    layer.params[...] = 0
    assert not named["weight_ih_l0"].any()


@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "lstm"])
def test_cells_match_torch(cell):
    torch = pytest.importorskip("torch")
    tcls = {"rnn_tanh": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}[cell]
    ours = {"rnn_tanh": fastrnn.RNNCell, "gru": fastrnn.GRUCell, "lstm": fastrnn.LSTMCell}[cell]
    tc = tcls(I, H).double()
    c = ours.from_torch(tc)
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    xt, ht = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
    dh = rng.standard_normal((B, H))
    if cell == "lstm":
        cc = rng.standard_normal((B, H))
        ct = torch.tensor(cc, requires_grad=True)
        h1, c1 = c(x, (h, cc))
        th, tcs = tc(xt, (ht, ct))
        (th * torch.tensor(dh)).sum().backward()
        dx, (dh0, dc0) = c.backward(dh)
        np.testing.assert_allclose(c1, tcs.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(dc0, ct.grad.numpy(), rtol=1e-10, atol=1e-12)
    else:
        h1 = c(x, h)
        th = tc(xt, ht)
        (th * torch.tensor(dh)).sum().backward()
        dx, dh0 = c.backward(dh)
    np.testing.assert_allclose(h1, th.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0, ht.grad.numpy(), rtol=1e-10, atol=1e-12)
    for n, p in tc.named_parameters():
        np.testing.assert_allclose(c.named_grads()[n], p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


def test_input_projected_equals_the_full_input():
    layer = fastrnn.LSTM(I, H, num_layers=2, dtype="float64", seed=4)
    x = np.random.default_rng(2).standard_normal((T, B, I))
    y, _ = layer(x)
    layer.zero_grad()
    dx, _ = layer.backward(np.ones_like(y))
    g_full = layer.grads.copy()
    W = layer.named_parameters()["weight_ih_l0"]
    y2, _ = layer(x @ W.T, input_projected=True)
    np.testing.assert_allclose(y2, y, rtol=1e-12, atol=1e-14)
    layer.zero_grad()
    dxp, _ = layer.backward(np.ones_like(y))
    np.testing.assert_allclose(dxp @ W, dx, rtol=1e-12, atol=1e-13)
    grads = layer.named_grads()
    assert not grads["weight_ih_l0"].any()
    offset = grads["weight_hh_l0"].ctypes.data - layer.grads.ctypes.data
    np.testing.assert_allclose(layer.grads[offset // 8:], g_full[offset // 8:], rtol=1e-12, atol=1e-13)
    y_t, _ = layer.step((x @ W.T)[0], input_projected=True)
    np.testing.assert_allclose(y_t, y[0], rtol=1e-12, atol=1e-14)


def test_bad_input_raises_clear_errors():
    lstm = fastrnn.LSTM(I, H, num_layers=2)
    x = np.zeros((T, B, I), np.float32)
    cases = [
        (lambda: lstm(np.zeros((T, B, I + 1))), ValueError, "x"),
        (lambda: lstm(np.zeros((T, B, I), int)), TypeError, "x"),
        (lambda: lstm(np.zeros((2, T, B, I))), ValueError, "x"),
        (lambda: lstm(x, (np.zeros((2, B, H)), np.zeros((1, B, H)))), ValueError, "c0"),
        (lambda: lstm(x, (np.zeros((2, B + 1, H)), np.zeros((2, B, H)))), ValueError, "h0"),
        (lambda: lstm(x, np.zeros((2, B, H))), TypeError, "h0"),
        (lambda: lstm(x, hx=(np.zeros((2, B, H)),) * 2, h0=(np.zeros((2, B, H)),) * 2), TypeError, "hx"),
        (lambda: lstm(x, lengths=[1, 2]), ValueError, "lengths"),
        (lambda: lstm(x, lengths=[1, 2, T + 1]), ValueError, "lengths"),
        (lambda: lstm(x, lengths=[1.0, 2.0, 3.0]), TypeError, "lengths"),
        (lambda: fastrnn.LSTM(I, H).backward(x), RuntimeError, "forward"),
        (lambda: fastrnn.LSTM(I, H, proj_size=H), ValueError, "proj_size"),
        (lambda: fastrnn.LSTM(I, 0), ValueError, "hidden_size"),
        (lambda: fastrnn.GRU(I, H, dropout=1.0), ValueError, "dropout"),
        (lambda: fastrnn.RNN(I, H, nonlinearity="sigmoid"), ValueError, "nonlinearity"),
        (lambda: fastrnn.LSTM(I, H, dtype="float16"), TypeError, "dtype"),
        (lambda: fastrnn.LSTM(I, H, bidirectional=True).step(x[0]), ValueError, "bidirectional"),
        (lambda: lstm.step(np.zeros((B, I + 1))), ValueError, "x_t"),
    ]
    for fn, exc, word in cases:
        with pytest.raises(exc, match=word):
            fn()
    lstm(x)
    with pytest.raises(ValueError, match="dout"):
        lstm.backward(np.zeros((T, B + 1, H)))
