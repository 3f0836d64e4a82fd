"""Layers == torch.nn.RNN/GRU/LSTM over a grid of options; step == forward; state dicts; errors.

Every case compares outputs, final states, input and initial-state gradients and every parameter
gradient (float64 to 1e-10 relative, float32 to 1e-4).
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

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
    lambda: fastrnn.GRU(I, H, bidirectional=True, reset_after=False, batch_first=True, dtype="float64", seed=1),
    lambda: layers.SimplifiedGRU(I, H, num_layers=2, bias=False, dtype="float64", seed=1),
    lambda: layers.SimplifiedGRU(I, H, bidirectional=True, dtype="float64", seed=1),
    lambda: fastrnn.LSTM(I, H, num_layers=2, bidirectional=True, peephole=True, dtype="float64", seed=1),
    lambda: fastrnn.MGU(I, H, num_layers=2, dtype="float64", seed=1),
    lambda: fastrnn.MGU(I, H, num_layers=2, bidirectional=True, batch_first=True, dtype="float64", seed=1),
], ids=["lstm-peephole-proj", "gru-reset-before", "bi-gru-reset-before", "simplified-gru",
        "bi-simplified-gru", "bi-lstm-peephole", "mgu", "bi-mgu"])
def test_options_torch_lacks_match_finite_differences(make):
    """Central differences (float64) of a random projection of (output, h_n[, c_n]) w.r.t. every
    parameter (sampled entries), the input and the initial state; relative error < 1e-6."""
    layer = make()
    rng = np.random.default_rng(0)
    n_b, n_t = 2, 4
    x = rng.standard_normal((n_b, n_t, I) if layer.batch_first else (n_t, n_b, I))
    lens = np.array([4, 2])
    states = [rng.standard_normal((layer.num_layers * layer.D, n_b, layer.P))]
    if layer.lstm:
        states.append(rng.standard_normal((layer.num_layers * layer.D, n_b, H)))
    y, s = layer(x, tuple(states) if layer.lstm else states[0], lengths=lens)
    dy = rng.standard_normal(y.shape)
    ds = [rng.standard_normal(v.shape) for v in (s if layer.lstm else (s,))]
    layer.zero_grad()
    dx, d0 = layer.backward(dy, tuple(ds) if layer.lstm else ds[0])
    d0 = d0 if layer.lstm else (d0,)

    def loss():
        y, s = layer(x, tuple(states) if layer.lstm else states[0], lengths=lens, train=False)
        return (y * dy).sum() + sum((v * w).sum() for v, w in zip(s if layer.lstm else (s,), ds))

    def numeric(a, k):
        """Central difference of the loss w.r.t. a[k] (a is perturbed in place and restored)."""
        old = a[k]
        a[k] = old + 1e-6
        plus = loss()
        a[k] = old - 1e-6
        minus = loss()
        a[k] = old
        return (plus - minus) / 2e-6

    def check(what, a, grad, count):
        flat, g = a.reshape(-1), grad.reshape(-1)
        for k in rng.choice(flat.size, min(flat.size, count), replace=False):
            num = numeric(flat, k)
            assert abs(num - g[k]) <= 1e-6 * max(1.0, abs(num)), f"{what}[{k}]: {g[k]} vs {num}"
    for name, p in layer.named_parameters():
        check(name, p, layer.named_grads()[name], 6)
    check("x", x, dx, 8)
    for what, state, g in zip(["h0", "c0"], states, d0):
        check(what, state, g, 6)


@pytest.mark.parametrize("make", [
    lambda: fastrnn.LSTM(I, H, num_layers=3, proj_size=2, peephole=True, dtype="float64", seed=2),
    lambda: fastrnn.GRU(I, H, num_layers=2, reset_after=False, dtype="float64", seed=2),
    lambda: fastrnn.RNN(I, H, num_layers=2, nonlinearity="relu", batch_first=True, dtype="float64", seed=2),
    lambda: fastrnn.MGU(I, H, num_layers=2, dtype="float64", seed=2),
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
    named = dict(layer.named_parameters())
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
    W = dict(layer.named_parameters())["weight_ih_l0"]
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


def test_initialisation_is_torch_like_and_seeded():
    a, b = fastrnn.GRU(I, 16, num_layers=2, seed=5), fastrnn.GRU(I, 16, num_layers=2, seed=5)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, fastrnn.GRU(I, 16, num_layers=2, seed=6).params)
    assert np.abs(a.params).max() <= 1 / 4 and np.abs(a.params).max() > 0.9 / 4   # U(-1/sqrt(H), 1/sqrt(H))
    assert a.params.dtype == np.float32 and not a.grads.any()


def test_rebind_moves_storage_and_the_layer_keeps_working():
    layer = fastrnn.LSTM(I, H, num_layers=2, peephole=True, proj_size=3, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    y, _ = layer(x)
    layer.backward(np.ones_like(y))
    before, grads_before = layer.params.copy(), layer.grads.copy()
    y_t, _ = layer.step(x[0])                        # fills the cached weight views
    big_p, big_g = np.zeros(layer.params.size + 10), np.zeros(layer.params.size + 10)
    layer.rebind(big_p[5:-5], big_g[5:-5])
    np.testing.assert_array_equal(big_p[5:-5], before)
    layer.params[...] *= 2                           # the layer must now read the new storage
    y2, _ = layer(x)
    assert not np.allclose(y2, y)
    layer.zero_grad()
    layer.backward(np.ones_like(y2))
    assert big_g[5:-5].any() and not big_g[:5].any() and not big_g[-5:].any()
    assert not np.array_equal(big_g[5:-5], grads_before)
    layer.params[...] = before                       # same numbers as before the move
    np.testing.assert_array_equal(layer.step(x[0])[0], y_t)


def test_inference_forward_keeps_the_pending_tape_and_backward_consumes_it():
    layer = fastrnn.GRU(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x, x_other = rng.standard_normal((T, B, I)), rng.standard_normal((T + 2, B + 1, I))
    y, _ = layer(x)
    dy = rng.standard_normal(y.shape)
    layer.zero_grad()
    dx, _ = layer.backward(dy)
    g = layer.grads.copy()
    y, _ = layer(x)
    layer(x_other, train=False)                      # evaluation between forward and backward
    layer.zero_grad()
    dx2, _ = layer.backward(dy)
    np.testing.assert_array_equal(dx2, dx)
    np.testing.assert_array_equal(layer.grads, g)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(dy)


def test_dropout_masks_are_inverted_and_scaled():
    layer = fastrnn.RNN(I, 200, num_layers=3, dropout=0.25, dtype="float64", seed=0)
    layer(np.ones((T, B, I)))
    masks = layer._buffers.tape["masks"]
    assert masks[0] is None and len(masks) == 3      # masks[k] multiplies layer k's input
    for m in masks[1:]:
        assert set(np.unique(m)) == {0.0, 1 / 0.75}
        assert abs((m > 0).mean() - 0.75) < 0.02


def test_zero_lengths_give_zero_outputs_and_the_initial_state():
    """Beyond torch's packing (lengths >= 1): a length-0 sequence passes its state through."""
    layer = fastrnn.LSTM(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((4, B, H)), rng.standard_normal((4, B, H))
    lens = np.array([T, 0, 2])
    y, (h_n, c_n) = layer(x, (h0, c0), lengths=lens)
    assert not y[:, 1].any() and not y[2:, 2].any()
    np.testing.assert_array_equal(h_n[:, 1], h0[:, 1])
    np.testing.assert_array_equal(c_n[:, 1], c0[:, 1])
    dx, (dh0, dc0) = layer.backward(np.ones_like(y), (np.ones_like(h_n), np.ones_like(c_n)))
    assert not dx[:, 1].any() and not dx[2:, 2].any()
    np.testing.assert_array_equal(dh0[:, 1], 1)      # the state passed straight through


@pytest.mark.parametrize("cls", [fastrnn.LSTM, fastrnn.GRU, layers.SimplifiedGRU])
def test_chunks_with_carried_state_equal_one_run(cls):
    """Remember states (torch-rnn's test): two chunks with the state carried equal the full run,
    and their backward passes, chained through the state gradient, give the same gradients."""
    layer = cls(I, H, num_layers=2, dtype="float64", seed=3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2 * T, B, I))
    dy = rng.standard_normal((2 * T, B, H))
    y, s = layer(x)
    layer.zero_grad()
    dx, _ = layer.backward(dy)
    g = layer.grads.copy()
    y1, s1 = layer(x[:T], train=False)
    y2, s2 = layer(x[T:], s1)
    np.testing.assert_allclose(np.concatenate([y1, y2]), y, rtol=1e-12, atol=1e-14)
    for a, b in zip(s2 if layer.lstm else (s2,), s if layer.lstm else (s,)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    layer.zero_grad()
    dx2, ds1 = layer.backward(dy[T:])
    layer(x[:T])
    dx1, _ = layer.backward(dy[:T], ds1)
    np.testing.assert_allclose(np.concatenate([dx1, dx2]), dx, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(layer.grads, g, rtol=1e-10, atol=1e-12)


def test_input_is_converted_to_the_layer_dtype():
    layer = fastrnn.GRU(I, H, dtype="float64", seed=0)
    x32 = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    y, h = layer(x32)
    assert y.dtype == h.dtype == np.float64
    np.testing.assert_array_equal(y, layer(x32.astype(np.float64))[0])
    y_list, _ = layer(x32.tolist())                  # array-likes too
    np.testing.assert_array_equal(y_list, y)


@pytest.mark.parametrize("cell,unbatched,dtype", [("rnn_relu", True, "float64"), ("gru", True, "float64"),
                                                  ("lstm", True, "float64"), ("lstm", False, "float32"),
                                                  ("gru", False, "float32")])
def test_cells_match_torch_unbatched_and_float32(cell, unbatched, dtype):
    torch = pytest.importorskip("torch")
    tdt = getattr(torch, dtype)
    tc = {"rnn_relu": lambda: torch.nn.RNNCell(I, H, nonlinearity="relu"), "gru": lambda: torch.nn.GRUCell(I, H),
          "lstm": lambda: torch.nn.LSTMCell(I, H)}[cell]().to(tdt)
    c = {"rnn_relu": fastrnn.RNNCell, "gru": fastrnn.GRUCell, "lstm": fastrnn.LSTMCell}[cell].from_torch(tc)
    assert c.dtype == np.dtype(dtype)
    rng = np.random.default_rng(1)
    shape = (I,) if unbatched else (B, I)
    hshape = (H,) if unbatched else (B, H)
    x, h, cc, dh = (rng.standard_normal(s).astype(dtype) for s in (shape, hshape, hshape, hshape))
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, h, cc))
    tol = 1e-10 if dtype == "float64" else 1e-4
    if cell == "lstm":
        h1, _ = c(x, (h, cc))
        th, _ = tc(xt, (ht, ct))
        (th * torch.tensor(dh)).sum().backward()
        dx, (dh0, dc0) = c.backward(dh)
        assert rel(dc0, ct.grad.numpy()) <= tol
    else:
        h1 = c(x, h)
        th = tc(xt, ht)
        (th * torch.tensor(dh)).sum().backward()
        dx, dh0 = c.backward(dh)
    assert h1.shape == hshape and dx.shape == shape
    for what, ours, theirs in [("h'", h1, th.detach()), ("dx", dx, xt.grad), ("dh", dh0, ht.grad)]:
        assert rel(ours, theirs.numpy()) <= tol, what
    for n, p in tc.named_parameters():
        assert rel(c.named_grads()[n], p.grad.numpy()) <= tol, n
    with pytest.raises(TypeError, match="hx"):
        fastrnn.LSTMCell(I, H)(x, h)


def test_more_bad_inputs():
    gru = fastrnn.GRU(I, H, num_layers=2)
    lstm = fastrnn.LSTM(I, H)
    x = np.zeros((T, B, I), np.float32)
    cases = [
        (lambda: fastrnn.GRU(I, H, bidirectional=True)(np.zeros((T, B, 3 * H)), input_projected=True),
         ValueError, "input_projected"),
        (lambda: gru(np.zeros((T, B, 3 * H + 1)), input_projected=True), ValueError, "x"),
        (lambda: gru(x, np.zeros((1, B, H))), ValueError, "h0"),
        (lambda: gru(x, np.zeros((2, B, H), np.int64)), TypeError, "h0"),
        (lambda: gru.step(x[0], np.zeros((2, B + 1, H))), ValueError, "state"),
        (lambda: lstm.step(x[0], np.zeros((1, B, H))), TypeError, "state"),
        (lambda: lstm.step(x[0].astype(int)), TypeError, "x_t"),
        (lambda: gru(np.zeros((0, B, I))), ValueError, "x"),
        (lambda: lstm.load_state_dict(dict(lstm.state_dict(), weight_ih_l0=np.zeros((4 * H, I), str))),
         TypeError, "weight_ih_l0"),
    ]
    for fn, exc, word in cases:
        with pytest.raises(exc, match=word):
            fn()
    gru(x)
    with pytest.raises(ValueError, match="dh_n"):
        gru.backward(np.zeros((T, B, H)), np.zeros((2, B, H + 1)))
    # a failed load changes nothing
    before = lstm.params.copy()
    bad = {k: v + 1 for k, v in lstm.state_dict().items()}
    bad["weight_hh_l0"] = np.zeros((1, 1))
    with pytest.raises(ValueError, match="weight_hh_l0"):
        lstm.load_state_dict(bad)
    np.testing.assert_array_equal(lstm.params, before)


def test_dout_must_have_the_output_shape():
    layer = fastrnn.GRU(I, H, batch_first=True)
    layer(np.zeros((1, T, I), np.float32))
    with pytest.raises(ValueError, match=r"dout: expected the forward's output shape \(1, 5, 5\)"):
        layer.backward(np.zeros((T, H), np.float32))       # unbatched dout for a batched forward
    layer(np.zeros((T, I), np.float32))
    with pytest.raises(ValueError, match=r"dout: .*\(5, 5\)"):
        layer.backward(np.zeros((1, T, H), np.float32))


MAKERS = {"rnn": lambda **kw: fastrnn.RNN(I, H, **kw), "gru": lambda **kw: fastrnn.GRU(I, H, **kw),
          "gru-reset-before": lambda **kw: fastrnn.GRU(I, H, reset_after=False, **kw),
          "simplified-gru": lambda **kw: layers.SimplifiedGRU(I, H, **kw),
          "lstm": lambda **kw: fastrnn.LSTM(I, H, proj_size=2, **kw),
          "lstm-peephole": lambda **kw: fastrnn.LSTM(I, H, peephole=True, **kw)}


@settings(max_examples=40, deadline=None, derandomize=True)   # CI must not be a lottery
@given(kind=st.sampled_from(sorted(MAKERS)), num_layers=st.integers(1, 3), bidirectional=st.booleans(),
       batch_first=st.booleans(), n_t=st.integers(1, 6), lens=st.lists(st.integers(0, 6), min_size=1, max_size=4),
       seed=st.integers(0, 2**16))
def test_packed_batch_equals_each_sequence_alone(kind, num_layers, bidirectional, batch_first, n_t, lens, seed):
    """Without torch: a padded batch with lengths gives, for every sequence, what running that
    sequence alone (cut to its length) gives -- outputs, final states, input and state gradients --
    and parameter gradients that are the sum of the single-sequence ones."""
    layer = MAKERS[kind](num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
                         dtype="float64", seed=seed)
    lens = np.minimum(lens, n_t)
    n_b, lstm = len(lens), layer.lstm
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_b, n_t, I) if batch_first else (n_t, n_b, I))
    states = [rng.standard_normal((num_layers * layer.D, n_b, w)) for w in ((layer.P, H) if lstm else (layer.P,))]
    pack = lambda v: tuple(v) if lstm else v[0]
    unpack = lambda v: v if lstm else (v,)
    y, s = layer(x, pack(states), lengths=lens)
    dy = rng.standard_normal(y.shape)
    ds = [rng.standard_normal(v.shape) for v in unpack(s)]
    layer.zero_grad()
    dx, d0 = layer.backward(dy, pack(ds))
    total = layer.grads.copy()
    layer.zero_grad()
    seq = (lambda a, b, n: a[b, :n]) if batch_first else (lambda a, b, n: a[:n, b])
    for b, n in enumerate(lens):
        one = [v[:, b] for v in states]
        if n == 0:          # nothing to run: the state passes through, outputs are zero
            assert not seq(y, b, n_t).any() and not seq(dx, b, n_t).any()
            for a, b_ in zip(unpack(s), one):
                np.testing.assert_array_equal(a[:, b], b_)
            continue
        y1, s1 = layer(seq(x, b, n), pack(one))                     # unbatched: (n, I)
        np.testing.assert_allclose(y1, seq(y, b, n), rtol=1e-10, atol=1e-12)
        assert not seq(y, b, n_t)[n:].any() and not seq(dx, b, n_t)[n:].any()
        for a, b_ in zip(unpack(s1), unpack(s)):
            np.testing.assert_allclose(a, b_[:, b], rtol=1e-10, atol=1e-12)
        dx1, d01 = layer.backward(seq(dy, b, n), pack([d[:, b] for d in ds]))
        np.testing.assert_allclose(dx1, seq(dx, b, n), rtol=1e-10, atol=1e-12)
        for a, b_ in zip(unpack(d01), unpack(d0)):
            np.testing.assert_allclose(a, b_[:, b], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads, total, rtol=1e-9, atol=1e-11)
