"""C kernels (fastrnn._kernels) == the NumPy reference (fastrnn.reference), for every cell and option.

"fast == slow" over random shapes (T=1, B=1, I != H), dtypes, biases, initial states and
packed-sequence lengths (with zeros and full lengths); a failure prints the case that broke it.
"""
import threading

import numpy as np
import pytest

from fastrnn import _kernels, reference

# kernel cell, reference call, peephole, projection
CASES = {
    "rnn_tanh": ("rnn_tanh", False, False),
    "rnn_relu": ("rnn_relu", False, False),
    "gru": ("gru", False, False),
    "gru_reset_before": ("gru_reset_before", False, False),
    "gru_simplified": ("gru_simplified", False, False),
    "mgu": ("mgu", False, False),
    "lstm": ("lstm", False, False),
    "lstm_peephole": ("lstm", True, False),
    "lstm_proj": ("lstm", False, True),
    "lstm_peephole_proj": ("lstm", True, True),
}
TOL = {np.float32: 1e-4, np.float64: 1e-10}
# Relative errors are taken against max(|value|, FLOOR): a float32 gradient whose O(0.1) terms
# cancel to 1e-4 carries their rounding (~1e-8 absolute), so below 1% of the O(1) inputs the
# comparison becomes absolute. float64 keeps no floor.
FLOOR = {np.float32: 1e-2, np.float64: 1e-30}


def rel_err(a, b, floor=1e-30):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), floor)
    return np.abs(a - b).max(initial=0) / scale


def make_case(case, T, B, I, H, dtype, seed, bias=True, lengths=False, state=True):
    """Random inputs, PyTorch-layout parameters and output gradients for one kernel call."""
    cell, peep, proj = CASES[case]
    rng = np.random.default_rng(seed)
    G = _kernels.gates(cell)
    H = max(H, 2) if proj else H     # a projection needs P < H (as in PyTorch)
    P = H - 1 if proj else H
    r = lambda *s: rng.uniform(-0.8, 0.8, s).astype(dtype)
    p = dict(W_ih=r(G * H, I), W_hh=r(G * H, P), b_ih=r(G * H) if bias else None,
             b_hh=r(G * H) if bias else None, w_peep=r(3 * H) if peep else None,
             W_hr=r(P, H) if proj else None)
    lstm = cell == "lstm"
    return dict(cell=cell, lstm=lstm, params=p, x=r(T, B, I),
                h0=r(B, P) if state else None, c0=r(B, H) if state and lstm else None,
                lengths=rng.integers(0, T + 1, B) if lengths else None,
                dy=r(T, B, P), dh_T=r(B, P), dc_T=r(B, H) if lstm else None)


def run_kernel(c, grads=None):
    p = c["params"]
    args = (c["cell"], c["x"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], c["h0"], c["c0"])
    kw = dict(w_peep=p["w_peep"], W_hr=p["W_hr"], lengths=c["lengths"])
    T, B, I = c["x"].shape
    H = p["W_hh"].shape[0] // _kernels.gates(c["cell"])
    tape = np.full(_kernels.tape_size(c["cell"], T, B, I, H, p["W_hh"].shape[1], p["w_peep"] is not None),
                   np.nan, c["x"].dtype)   # NaN-filled: any read of an unwritten slot shows up
    y, h_T, c_T = _kernels.forward(*args, tape=tape, **kw)
    dx, dh0, dc0, g = _kernels.backward(args[0], tape, *args[1:], dy=c["dy"], dh_T=c["dh_T"],
                                        dc_T=c["dc_T"], grads=grads, **kw)
    return dict(y=y, h_T=h_T, c_T=c_T, x=dx, h0=dh0, c0=dc0, **g)


def run_reference(c):
    """The reference's results for case c, always computed in float64: a float32 kernel is then
    compared with the exact answer, not with another float32 rounding of it."""
    up = lambda v: None if v is None or not isinstance(v, np.ndarray) or v.dtype.kind != "f" else v.astype(np.float64)
    c = {k: up(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for k, v in c.items()}
    c["params"] = {k: up(v) for k, v in c["params"].items()}
    p = c["params"]
    lengths = c["lengths"]
    cell = c["cell"]
    weights = (p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"])
    if c["lstm"]:
        w_peep = None if p["w_peep"] is None else p["w_peep"].reshape(3, -1)
        y, (h_T, c_T), cache = reference.lstm_forward(c["x"], c["h0"], c["c0"], *weights, w_peep=w_peep,
                                                      W_hr=p["W_hr"], lengths=lengths)
        g = reference.lstm_backward(c["dy"], (c["dh_T"], c["dc_T"]), cache)
        if g.get("w_peep") is not None:
            g["w_peep"] = g["w_peep"].reshape(-1)
    else:
        if cell.startswith("rnn"):
            y, h_T, cache = reference.rnn_forward(c["x"], c["h0"], *weights, nonlinearity=cell[4:], lengths=lengths)
            g = reference.rnn_backward(c["dy"], c["dh_T"], cache)
        elif cell == "gru_simplified":
            y, h_T, cache = reference.simplified_gru_forward(c["x"], c["h0"], *weights, lengths=lengths)
            g = reference.simplified_gru_backward(c["dy"], c["dh_T"], cache)
        elif cell == "mgu":
            y, h_T, cache = reference.mgu_forward(c["x"], c["h0"], *weights, lengths=lengths)
            g = reference.mgu_backward(c["dy"], c["dh_T"], cache)
        else:
            y, h_T, cache = reference.gru_forward(c["x"], c["h0"], *weights, reset_after=cell == "gru",
                                                  lengths=lengths)
            g = reference.gru_backward(c["dy"], c["dh_T"], cache)
        c_T = None
    return dict(y=y, h_T=h_T, c_T=c_T, **g)


def assert_match(c, got, want, tol, what=""):
    for key, v in got.items():
        if v is None or want.get(key) is None:
            assert v is None and want.get(key) is None, f"{key}: present in one result only"
            continue
        assert v.dtype == c["x"].dtype, key
        err = rel_err(v, want[key], FLOOR[v.dtype.type])
        assert err <= tol, (f"{what}{key}: relative error {err:.3g} > {tol:g} for {c['cell']} "
                            f"x{c['x'].shape} lengths={c['lengths']}")


SHAPES = [(1, 1, 1, 1), (1, 3, 4, 2), (5, 1, 3, 4), (6, 4, 5, 3), (9, 5, 2, 7)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_matches_reference(case, dtype):
    for i, (T, B, I, H) in enumerate(SHAPES):
        for bias, lengths, state in [(True, False, True), (False, True, False), (True, True, True)]:
            c = make_case(case, T, B, I, H, dtype, seed=100 * i + 10 * bias + 3 * lengths + state,
                          bias=bias, lengths=lengths, state=state)
            assert_match(c, run_kernel(c), run_reference(c), TOL[dtype])


def test_lengths_edges_all_zero_and_all_full():
    for case in CASES:
        for lens in ([0, 0, 0], [4, 4, 4], [0, 4, 2]):
            c = make_case(case, 4, 3, 3, 5, np.float64, seed=7, lengths=True)
            c["lengths"] = np.array(lens)
            assert_match(c, run_kernel(c), run_reference(c), TOL[np.float64])


def test_parameter_gradients_accumulate():
    c = make_case("lstm_peephole_proj", 4, 3, 3, 5, np.float64, seed=3, lengths=True)
    once = run_kernel(c)
    start = {k: np.full_like(v, 0.5) for k, v in c["params"].items() if v is not None}
    twice = run_kernel(c, grads={k: v.copy() for k, v in start.items()})
    for k in start:
        np.testing.assert_allclose(twice[k], start[k] + once[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_inference_forward_and_steps_match_training_forward(case):
    c = make_case(case, 6, 3, 4, 5, np.float64, seed=11, lengths=True)
    p = c["params"]
    kw = dict(w_peep=p["w_peep"], W_hr=p["W_hr"])
    args = (c["cell"], c["x"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], c["h0"], c["c0"])
    want = run_kernel(c)
    y, h_T, c_T = _kernels.forward(*args, lengths=c["lengths"], **kw)     # no tape
    assert_match(c, dict(y=y, h_T=h_T, c_T=c_T), want, 1e-14, "inference ")
    # step through time in place, without lengths
    full = _kernels.forward(*args, **kw)
    h, cs = c["h0"].copy(), None if c["c0"] is None else c["c0"].copy()
    work = np.empty(_kernels.work_size(c["cell"], 1, 3, 4, 5, p["W_hh"].shape[1]), np.float64)
    for t in range(c["x"].shape[0]):
        _kernels.step(c["cell"], c["x"][t], h, cs, p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"],
                      h_out=h, c_out=cs, work=work, **kw)
        np.testing.assert_allclose(h, full[0][t], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(h, full[1], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("case", ["gru", "lstm"])
def test_projected_input_is_x_times_W_ih(case):
    c = make_case(case, 5, 3, 4, 6, np.float64, seed=5, lengths=True)
    p = c["params"]
    want = run_kernel(c)
    c2 = dict(c, x=np.ascontiguousarray(c["x"] @ p["W_ih"].T), params=dict(p, W_ih=None))
    got = run_kernel(c2)
    assert "W_ih" not in got
    for key in ("y", "h_T", "h0", "b_ih", "W_hh"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got["x"] @ p["W_ih"], want["x"], rtol=1e-12, atol=1e-13)


def test_two_threads_give_the_same_results_as_one():
    cases = [make_case("lstm_proj", 30, 8, 16, 32, np.float64, seed=1, lengths=True),
             make_case("gru", 30, 8, 16, 32, np.float32, seed=2)]
    alone = [run_kernel(c) for c in cases]
    results = [[None] * 4 for _ in cases]

    def work(i):
        for k in range(4):
            results[i][k] = run_kernel(cases[i])
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, c in enumerate(cases):
        for r in results[i]:
            for key, v in alone[i].items():
                if v is not None:
                    np.testing.assert_array_equal(r[key], v, err_msg=key)


# ---- bad input: a clear exception, never a crash -------------------------------------------

def _good():
    rng = np.random.default_rng(0)
    return dict(x=rng.standard_normal((3, 2, 4)), W_ih=rng.standard_normal((20, 4)),
                W_hh=rng.standard_normal((20, 5)), b_ih=np.zeros(20), b_hh=np.zeros(20))


@pytest.mark.parametrize("change,exc,word", [
    (dict(x=np.ones((3, 2, 4), np.float32)), TypeError, "W_ih"),
    (dict(x=np.ones((3, 2, 4), np.int64)), TypeError, "x"),
    (dict(x=np.ones((3, 8))), ValueError, "x"),
    (dict(x=np.ones((3, 2, 8))[:, :, ::2]), ValueError, "x"),
    (dict(x=np.ones((0, 2, 4))), ValueError, "T"),
    (dict(W_ih=np.ones((20, 3))), ValueError, "W_ih"),
    (dict(W_hh=np.ones((19, 5))), ValueError, "W_hh"),
    (dict(W_hh=np.ones((20, 4))), ValueError, "W_hr"),
    (dict(b_ih=np.ones(19)), ValueError, "b_ih"),
    (dict(b_hh=np.ones(20, np.float32)), TypeError, "b_hh"),
    (dict(h0=np.ones((2, 4))), ValueError, "h0"),
    (dict(c0=np.ones((3, 5))), ValueError, "c0"),
    (dict(lengths=[1, 4]), ValueError, "lengths"),
    (dict(lengths=[-1, 2]), ValueError, "lengths"),
    (dict(lengths=[1, 2, 3]), ValueError, "lengths"),
    (dict(lengths=[1.5, 2]), TypeError, "lengths"),
    (dict(w_peep=np.ones(14)), ValueError, "w_peep"),
    (dict(y=np.ones((3, 2, 4))), ValueError, "y"),
    (dict(tape=np.ones(10)), ValueError, "tape"),
    (dict(work=np.ones(3)), ValueError, "work"),
])
def test_forward_rejects_bad_arguments(change, exc, word):
    a = dict(_good(), **change)
    kw = {k: a.pop(k) for k in list(a) if k not in ("x", "W_ih", "W_hh", "b_ih", "b_hh")}
    with pytest.raises(exc, match=word):
        _kernels.forward("lstm", a["x"], a["W_ih"], a["W_hh"], a["b_ih"], a["b_hh"], **kw)


def test_backward_and_cell_errors():
    a = _good()
    with pytest.raises(ValueError, match="cell"):
        _kernels.forward("lstmx", a["x"], a["W_ih"], a["W_hh"])
    with pytest.raises(ValueError, match="c0"):
        _kernels.forward("gru", a["x"], np.ones((15, 4)), np.ones((15, 5)), c0=np.ones((2, 5)))
    tape = np.empty(_kernels.tape_size("lstm", 3, 2, 4, 5))
    _kernels.forward("lstm", a["x"], a["W_ih"], a["W_hh"], tape=tape)
    with pytest.raises(ValueError, match="dy"):
        _kernels.backward("lstm", tape, a["x"], a["W_ih"], a["W_hh"], dy=np.ones((3, 2, 6)))
    with pytest.raises(ValueError, match="grads"):
        _kernels.backward("lstm", tape, a["x"], a["W_ih"], a["W_hh"], grads={"W_hh": np.ones((5, 20))})
    with pytest.raises(ValueError, match="b_ih"):
        _kernels.backward("lstm", tape, a["x"], a["W_ih"], a["W_hh"], grads={"b_ih": np.ones(20)})
    with pytest.raises(ValueError, match="tape"):
        _kernels.backward("lstm", tape[:-1], a["x"], a["W_ih"], a["W_hh"])
    ro = a["x"].copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="dx"):
        _kernels.backward("lstm", tape, a["x"], a["W_ih"], a["W_hh"], dx=ro)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", list(CASES))
def test_batches_on_both_sides_of_the_packed_product_threshold(case, dtype):
    """Batches below 32 run the per-step products on packed weights (csrc/recurrent.h, on CPUs
    with AVX-512), larger ones through BLAS: both must match the reference, with row tails
    (20 = 6+6+6+2 rows) and partial panels (G*H not a multiple of the panel width)."""
    for B in (20, 40):
        c = make_case(case, 6, B, 8, 45, dtype, seed=31 + B, lengths=True)
        assert_match(c, run_kernel(c), run_reference(c), TOL[dtype])
