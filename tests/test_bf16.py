"""bf16 mixed precision (issue 22): precision="bf16" on the kernels and the recurrent layers.

Checks: every bf16 kernel this CPU has gives the portable emulation's bits (the kernels on their
own, bit for bit against bf16.h, are in csrc/test_bf16.c); the kernels against a float64 NumPy
reference whose every product reads bf16-rounded operands (fastrnn.reference with its product
points patched), tightly for one step and relative to the size of the bf16 effect over sequences,
for every cell and option; 1-3 threads identical; the bf16 gradient of an exact toy problem within
the bf16 bound of the float32 one; bad arguments raise."""
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels, reference
from fastrnn.data import Vocab
from fastrnn.nn import MGU
from fastrnn.sample import generate, generate_stepwise

CELLS = ["rnn_tanh", "rnn_relu", "gru", "gru_reset_before", "gru_simplified", "lstm", "mgu"]
LAYERS = {"rnn_tanh": (fastrnn.RNN, {}), "rnn_relu": (fastrnn.RNN, dict(nonlinearity="relu")),
          "gru": (fastrnn.GRU, {}), "gru_reset_before": (fastrnn.GRU, dict(reset_after=False)),
          "gru_simplified": (fastrnn.SimplifiedGRU, {}), "lstm": (fastrnn.LSTM, {}), "mgu": (MGU, {})}


def bf16(a):
    """a rounded to bf16 (nearest even, denormals to zero) as float64: what every product reads."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = np.where(u & 0x7F800000 == 0, u & 0x80000000, (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000)
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


class _Bf16Reference:
    """fastrnn.reference with bf16 operands in every product (float64 arithmetic) while `on`."""

    def __init__(self, patches):
        self.patches, self.saved = patches, {k: getattr(reference, k) for k in patches}

    def __getattr__(self, name):
        return getattr(reference, name)

    def on(self, yes=True):
        for k in self.patches:
            setattr(reference, k, self.patches[k] if yes else self.saved[k])


@pytest.fixture
def bf16_reference():
    """A `_Bf16Reference` switched on; the plain reference is restored afterwards."""
    def lin(v, W, b, rows=slice(None)):
        out = bf16(v) @ bf16(W[rows]).T
        return out if b is None else out + b[rows]

    def lin_back(dout, v, W, dW, db, rows=slice(None)):
        dW[rows] += bf16(dout).T @ bf16(v)
        if db is not None:
            db[rows] += dout.sum(0)
        return bf16(dout) @ bf16(W[rows])

    step, back = reference._lstm_step, reference._lstm_back

    def lstm_step(x_t, states, p):      # the projection h = m W_hr^T in bf16 too
        if p["W_hr"] is None:
            return step(x_t, states, p)
        (m, c_new), sc = step(x_t, states, dict(p, W_hr=None))
        return (bf16(m) @ bf16(p["W_hr"]).T, c_new), sc

    def lstm_back(dnew, x_t, states, sc, p, g):
        if p["W_hr"] is None:
            return back(dnew, x_t, states, sc, p, g)
        g["W_hr"] += bf16(dnew[0]).T @ bf16(sc[5])
        dm = bf16(dnew[0]) @ bf16(p["W_hr"])
        return back([dm, dnew[1]], x_t, states, sc, dict(p, W_hr=None), g)

    ref = _Bf16Reference(dict(_lin=lin, _lin_back=lin_back, _lstm_step=lstm_step, _lstm_back=lstm_back))
    ref.on()
    yield ref
    ref.on(False)


def _plain(ref, fn, *args):
    """fn(*args) with the reference unpatched."""
    ref.on(False)
    try:
        return fn(*args)
    finally:
        ref.on()


def _problem(cell, T, B, I, H, P, peep, seed):
    rng = np.random.default_rng(seed)
    G = _kernels.gates(cell)
    # weights about torch's initial scale: contracting dynamics (with larger ones an operand that
    # float32 and float64 round to neighbouring bf16 values grows chaotically over the steps)
    f = lambda *s: (rng.standard_normal(s) * 0.25).astype(np.float32)   # noqa: E731
    a = dict(x=f(T, B, I), W_ih=f(G * H, I), W_hh=f(G * H, P), b_ih=f(G * H), b_hh=f(G * H),
             h0=f(B, P), c0=f(B, H) if cell == "lstm" else None,
             w_peep=f(3 * H) if peep else None, W_hr=f(P, H) if P != H else None)
    return a, rng


def _kernel(cell, a, lengths, dy, precision):
    """The kernels' forward and backward: outputs and gradients as a dict of float64 arrays."""
    T, B, _ = a["x"].shape
    tape = np.empty(_kernels.tape_size(cell, T, B, a["x"].shape[2], a["W_hh"].shape[0] // _kernels.gates(cell),
                                       a["W_hh"].shape[1], a["w_peep"] is not None), np.float32)
    kw = dict(w_peep=a["w_peep"], W_hr=a["W_hr"], lengths=lengths, precision=precision)
    args = (a["x"], a["W_ih"], a["W_hh"], a["b_ih"], a["b_hh"], a["h0"], a["c0"])
    y, h_T, c_T = _kernels.forward(cell, *args, tape=tape, **kw)
    dx, dh0, dc0, g = _kernels.backward(cell, tape, *args, dy=dy, **kw)
    out = dict(y=y, h_T=h_T, x=dx, h0=dh0, **g)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def _reference(ref, cell, a, lengths, dy):
    fwd, bwd, kw = ref.CELLS[cell]
    d = {k: None if v is None else v.astype(np.float64) for k, v in a.items()}
    extra = {}
    if cell == "lstm":
        extra = dict(w_peep=None if d["w_peep"] is None else d["w_peep"].reshape(3, -1), W_hr=d["W_hr"])
        y, (h_T, _), cache = fwd(d["x"], d["h0"], d["c0"], d["W_ih"], d["W_hh"], d["b_ih"], d["b_hh"],
                                 lengths=lengths, **extra)
        g = bwd(dy.astype(np.float64), None, cache)
    else:
        y, h_T, cache = fwd(d["x"], d["h0"], d["W_ih"], d["W_hh"], d["b_ih"], d["b_hh"], lengths=lengths, **kw)
        g = bwd(dy.astype(np.float64), None, cache)
    out = dict(y=y, h_T=h_T, **{k: v for k, v in g.items() if v is not None and k != "c0"})
    if out.get("w_peep") is not None:
        out["w_peep"] = out["w_peep"].reshape(-1)
    return out


@pytest.mark.parametrize("kernel", ["avx2", "avx512bf16"])
@pytest.mark.parametrize("cell", CELLS)
def test_every_bf16_kernel_gives_the_emulations_bits(cell, kernel):
    if kernel not in _kernels.bf16_info()["supported"]:
        pytest.skip(f"this CPU has no {kernel} (the C test checks the kernel where it runs)")
    lstm = cell == "lstm"
    for B, proj, peep in [(1, 0, 0), (3, lstm, lstm), (9, lstm, 0)]:
        H = 37
        a, rng = _problem(cell, 5, B, 13, H, 20 if proj else H, peep, B)
        dy = rng.standard_normal((5, B, a["W_hh"].shape[1])).astype(np.float32)
        lengths = rng.integers(0, 6, B)
        got = {}
        for name in (kernel, "emulated"):
            _kernels.set_bf16_kernel(name)
            try:
                assert _kernels.bf16_info()["kernel"] == name
                got[name] = _kernel(cell, a, lengths, dy, "bf16")
            finally:
                _kernels.set_bf16_kernel(None)
        for k, v in got[kernel].items():
            assert np.array_equal(v, got["emulated"][k]), (k, B, proj, peep)


def _gamma(n):
    u = 2.0 ** -24
    return n * u / (1 - n * u)


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "gru", "gru_simplified", "lstm"])
def test_one_step_is_within_the_float32_accumulation_bound(cell, bf16_reference):
    """One step from given x, h0: the kernel reads exactly the reference's rounded operands, so
    they differ only by float32 accumulation (gamma_n sum |a||w| per pre-activation) and the
    float32 pointwise maths. (Cells whose second product reads r*h or f*h are in the test below:
    a float32 r*h may round to another bf16 than the float64 one.)"""
    I, H, B = 13, 37, 6
    a, rng = _problem(cell, 1, B, I, H, H, 0, 7)
    dy = rng.standard_normal((1, B, H)).astype(np.float32)
    got = _kernel(cell, a, None, dy, "bf16")
    want = _reference(bf16_reference, cell, a, None, dy)
    exact = _plain(bf16_reference, _reference, reference, cell, a, None, dy)   # no bf16 at all
    S = (np.abs(bf16(a["x"][0])) @ np.abs(bf16(a["W_ih"])).T + np.abs(bf16(a["h0"])) @ np.abs(bf16(a["W_hh"])).T
         + np.abs(a["b_ih"]) + np.abs(a["b_hh"]))
    tol = 4 * _gamma(I + H + 2) * S.max() + 2e-6
    err = np.abs(got["y"] - want["y"]).max()
    effect = np.abs(exact["y"] - want["y"]).max()
    assert err <= tol, (err, tol)
    assert effect > 10 * tol        # the bound can tell bf16 from float32 products


def _rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


@pytest.mark.parametrize("cell, proj, peep", [(c, 0, 0) for c in CELLS] + [("lstm", 1, 0), ("lstm", 1, 1)])
@pytest.mark.parametrize("T", [1, 7])
def test_sequences_and_gradients_track_the_bf16_reference(cell, proj, peep, T, bf16_reference):
    """Forward and every gradient over sequences with lengths: the kernel is far closer to the
    bf16 reference than bf16 is to float64 (what remains: float32 accumulation, and operands that
    float32 and float64 round to neighbouring bf16 values)."""
    H = 24
    a, rng = _problem(cell, T, 5, 11, H, 16 if proj else H, peep, 11)
    dy = rng.standard_normal((T, 5, a["W_hh"].shape[1])).astype(np.float32)
    lengths = np.array([T, 1, max(T - 2, 0), 0, T])
    got = _kernel(cell, a, lengths, dy, "bf16")
    want = _reference(bf16_reference, cell, a, lengths, dy)
    exact = _plain(bf16_reference, _reference, reference, cell, a, lengths, dy)
    f32 = _kernel(cell, a, lengths, dy, "float32")
    for k in want:
        effect = _rel(exact[k], want[k])
        if effect < 1e-6:      # bf16 changes nothing here (relu's db at T = 1: dy itself)
            assert _rel(got[k], want[k]) <= 1e-5, k
            continue
        assert _rel(got[k], want[k]) <= 0.01 * effect, (k, _rel(got[k], want[k]), effect)
        assert _rel(f32[k], want[k]) > 0.3 * effect, k   # float32 products would fail


def _reference_stack(ref, layer, x, lengths):
    """A stack's outputs from `ref`, layer by layer and direction by direction (no initial state)."""
    fwd, _, kw = ref.CELLS[layer.cell]
    inp = x.astype(np.float64)
    for k in range(layer.num_layers):
        outs = []
        for d in range(layer.D):
            args, lkw, _ = layer._weights(k, d)
            W_ih, W_hh, b_ih, b_hh = (v.astype(np.float64) for v in args)
            xs = inp
            if d == 1:
                xs = np.zeros_like(inp)
                for b, n in enumerate(lengths):
                    xs[:n, b] = inp[:n, b][::-1]
            if layer.cell == "lstm":
                W_hr = None if lkw["W_hr"] is None else lkw["W_hr"].astype(np.float64)
                y = fwd(xs, None, None, W_ih, W_hh, b_ih, b_hh, W_hr=W_hr, lengths=lengths)[0]
            else:
                y = fwd(xs, None, W_ih, W_hh, b_ih, b_hh, lengths=lengths, **kw)[0]
            if d == 1:
                y2 = np.zeros_like(y)
                for b, n in enumerate(lengths):
                    y2[:n, b] = y[:n, b][::-1]
                y = y2
            outs.append(y)
        inp = np.concatenate(outs, axis=2)
    return inp


def bf16_stack(cell, layers, bidirectional, rng):
    """A bf16 stack of `cell` (the LSTM with a projection of 12), an input (8, 4, 9) from `rng`
    and lengths with an empty sequence."""
    cls, opts = LAYERS[cell]
    if cell == "lstm":
        opts = dict(proj_size=12)
    layer = cls(9, 20, num_layers=layers, bidirectional=bidirectional, seed=5, precision="bf16", **opts)
    return layer, rng.standard_normal((8, 4, 9)).astype(np.float32), np.array([8, 3, 0, 6])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers, bidirectional", [(3, False), (2, True)])
def test_stacks_track_the_bf16_reference(cell, layers, bidirectional, bf16_reference):
    layer, x, lengths = bf16_stack(cell, layers, bidirectional, np.random.default_rng(6))
    want = _reference_stack(bf16_reference, layer, x, lengths)
    exact = _plain(bf16_reference, _reference_stack, reference, layer, x, lengths)
    effect = _rel(exact, want)
    for train in (True, False):
        y, _ = layer(x, lengths=lengths, train=train)
        assert _rel(y, want) <= 0.1 * effect
    layer.precision = "float32"
    assert _rel(layer(x, lengths=lengths)[0], want) > 0.3 * effect


@pytest.mark.parametrize("cell", ["lstm", "gru", "mgu"])
def test_threads_give_identical_bits_in_bf16(cell):
    cls, opts = LAYERS[cell]
    layer = cls(6, 40, num_layers=2, bidirectional=True, seed=0, precision="bf16", **opts)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 24, 6)).astype(np.float32)
    lengths = rng.integers(0, 7, 24)
    uni = cls(6, 40, num_layers=3, seed=1, precision="bf16", **opts)    # the wavefront's chunks
    results = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        try:
            out = []
            for lay in (layer, uni):
                lay.zero_grad()
                y, h = lay(x, lengths=lengths)
                dx, dh = lay.backward(np.ones_like(y))
                out += [y, dx, lay.grads.copy(), lay(x, train=False)[0]]
            out.append(uni.step(x[0])[0])
            results.append(out)
        finally:
            fastrnn.set_num_threads(0)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


def test_step_and_packed_weights_equal_the_forward_in_bf16():
    layer = fastrnn.LSTM(5, 33, num_layers=2, proj_size=17, seed=2, precision="bf16")
    x = np.random.default_rng(1).standard_normal((4, 3, 5)).astype(np.float32)
    y, _ = layer(x, train=False)                         # packed bf16 weights
    state = None
    for t in range(4):
        yt, state = layer.step(x[t], state)
        assert np.array_equal(yt, y[t])
    assert np.array_equal(layer(x, train=True)[0], y)     # packing for itself: the same bits
    W_hh = layer._weights(0, 0)[0][1]
    W_hr = layer._weights(0, 0)[1]["W_hr"]
    p32 = _kernels.pack_forward("lstm", W_hh, W_hr)
    p16 = _kernels.pack_forward("lstm", W_hh, W_hr, precision="bf16")
    if p32 is not None:
        assert p16.size < p32.size                       # bf16 panels: about half the bytes


@pytest.mark.parametrize("cell", ["lstm", "gru_reset_before", "rnn_tanh"])
def test_many_rows_on_float32_panels_equal_the_emulation(cell):
    """A batch of >= 8 rows on AVX2 runs its recurrent products on float32 panels of bf16 values
    made once per call -- widened from the layer's prepacked bf16 panels (no-tape forward) or
    packed from W (training): the same bits as each other and as the portable emulation, with a
    projection (W_hr), at 1-3 threads; a batch of 1 (bf16 panels) as well."""
    cls, opts = LAYERS[cell]
    if cell == "lstm":
        opts = dict(opts, proj_size=19)
    layer = cls(7, 45, num_layers=2, seed=3, precision="bf16", **opts)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 13, 7)).astype(np.float32)
    kernels = [k for k in ("avx2", "emulated") if k in _kernels.bf16_info()["supported"]]
    got = []
    for name in kernels:
        for n in (1, 2, 3):
            _kernels.set_bf16_kernel(name)
            fastrnn.set_num_threads(n)
            try:
                layer.zero_grad()
                y, _ = layer(x, train=True)
                dx, _ = layer.backward(np.ones_like(y))
                got.append([layer(x, train=False)[0], y, dx, layer.grads.copy(), layer(x[:, :1], train=False)[0]])
            finally:
                _kernels.set_bf16_kernel(None)
                fastrnn.set_num_threads(0)
    for other in got:
        for a, b in zip(got[0], other):
            assert np.array_equal(a, b)
    assert np.array_equal(got[0][0], got[0][1])                    # prepacked (widened) == packed from W
    assert np.array_equal(got[0][4], layer(x[:, :1], train=True)[0])   # batch 1


def test_bf16_gradient_of_an_exact_toy_problem_is_within_the_bf16_bound():
    """A linear recurrence (relu on positive values) with dyadic weights and inputs: float32 is
    exact here (it equals float64), bf16 rounds the growing states and gate gradients. Each
    chain of products rounds each operand once by at most 2^-9 relative, and with every term
    positive no cancellation magnifies it: the bf16 gradient stays within 2 * depth * 2^-9 of
    the float32 one, element by element."""
    rng = np.random.default_rng(3)
    T, B, I, H = 3, 2, 3, 4
    x = rng.integers(1, 16, (T, B, I)).astype(np.float32) / 16
    W_ih = rng.integers(1, 8, (H, I)).astype(np.float32) / 16
    W_hh = rng.integers(1, 8, (H, H)).astype(np.float32) / 16
    b = np.full(H, 0.125, np.float32)
    dy = rng.integers(1, 8, (T, B, H)).astype(np.float32) / 8
    out = {}
    for precision in ("float32", "bf16"):
        tape = np.empty(_kernels.tape_size("rnn_relu", T, B, I, H), np.float32)
        args = (x, W_ih, W_hh, b, b)
        _kernels.forward("rnn_relu", *args, tape=tape, precision=precision)
        dx, dh0, _, g = _kernels.backward("rnn_relu", tape, *args, dy=dy, precision=precision)
        out[precision] = dict(x=dx, h0=dh0, **g)
    d64 = {k: v.astype(np.float64) for k, v in dict(x=x, W_ih=W_ih, W_hh=W_hh, b=b, dy=dy).items()}
    y64, _, cache = reference.rnn_forward(d64["x"], None, d64["W_ih"], d64["W_hh"], d64["b"], d64["b"],
                                          nonlinearity="relu")
    want = reference.rnn_backward(d64["dy"], None, cache)
    depth = 2 * T + 1                  # forward steps, backward steps, the weight-gradient product
    bound = 2 * depth * 2.0 ** -9
    differs = False
    for k, v in out["float32"].items():
        ref = want["h0" if k == "h0" else k]
        assert np.allclose(v, ref, rtol=1e-6, atol=0), k           # float32 is exact here
        v16 = out["bf16"][k]
        assert np.all(np.abs(v16 - v) <= bound * np.abs(v) + 1e-30), k
        differs |= not np.array_equal(v16, v)
    assert differs                                                 # bf16 rounded something


def test_bad_precision_raises_clear_errors():
    x = np.zeros((2, 1, 3), np.float32)
    W_ih, W_hh = np.zeros((4, 3), np.float32), np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="precision"):
        _kernels.forward("rnn_tanh", x, W_ih, W_hh, precision="fp16")
    with pytest.raises(ValueError, match="precision"):
        _kernels.forward("rnn_tanh", x.astype(np.float64), W_ih.astype(np.float64),
                         W_hh.astype(np.float64), precision="bf16")
    with pytest.raises(ValueError, match="precision"):
        fastrnn.GRU(3, 4, dtype="float64", precision="bf16")
    with pytest.raises(ValueError, match="precision"):
        fastrnn.LSTM(3, 4, precision=None)
    layer = fastrnn.RNN(3, 4)
    with pytest.raises(ValueError, match="precision"):
        layer.precision = "bfloat16"
    assert layer.precision == "float32"
    with pytest.raises(ValueError, match="name"):
        _kernels.set_bf16_kernel("amx")


def test_bf16_info_names_the_kernel_that_runs():
    info = _kernels.bf16_info()
    assert info["kernel"] in info["supported"] and "emulated" in info["supported"]
    isa = _kernels.engine_info()["isa"]
    try:
        _kernels.set_isa("none")
        assert _kernels.bf16_info()["kernel"] == "emulated"   # no ISA: the portable emulation
    finally:
        _kernels.set_isa(isa)


def test_native_generation_in_bf16_equals_the_stepwise_loop():
    vocab = Vocab.build("abcabd abd\n" * 3)
    model = fastrnn.LanguageModel(len(vocab), hidden_size=40, num_layers=2, seed=1)
    model.params[:] = np.random.default_rng(1).uniform(-0.7, 0.7, model.params.size)
    model.invalidate()
    f32 = generate(model, vocab, prime="ab", length=60, argmax=True)
    model.rnn.precision = "bf16"
    got = generate(model, vocab, prime="ab", length=60, argmax=True)
    assert got == generate_stepwise(model, vocab, prime="ab", length=60, argmax=True)
    assert model.generator(1, 5)                     # the native loop takes the layers' precision
    assert isinstance(f32, str) and isinstance(got, str)


def test_fastrnn_info_reports_the_bf16_kernel():
    r = subprocess.run([sys.executable, "-m", "fastrnn", "info"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("bf16 kernels"))
    assert _kernels.bf16_info()["kernel"] in line
