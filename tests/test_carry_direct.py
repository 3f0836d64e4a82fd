"""The backward step's carry product written straight into the carry (csrc/recurrent.h's
carry_back when no row has finished and nothing direct is added: LSTM, RNN).

Full-length `lengths` (every sequence runs all T steps) take the old route -- the product into a
scratch buffer, the finished-row bookkeeping, a copy into the carry -- while `lengths=None` takes
the direct one: both must give the same bits, at 1, 2 and 3 threads (the direct route writes each
member's own columns only), with and without an LSTM projection, and in float64 (one member, BLAS
or engine-free path) too.
"""
import numpy as np
import pytest

from fastrnn import _kernels


def _args(cell, T, B, I, H, P, dtype, seed):
    rng = np.random.default_rng(seed)
    G = {"lstm": 4, "rnn_tanh": 1, "rnn_relu": 1}[cell]
    s = 1 / np.sqrt(H)
    f = lambda *shape: rng.uniform(-s, s, shape).astype(dtype)
    a = dict(x=rng.standard_normal((T, B, I)).astype(dtype), W_ih=f(G * H, I), W_hh=f(G * H, P),
             b_ih=f(G * H), b_hh=f(G * H), h0=f(B, P), c0=f(B, H) if cell == "lstm" else None,
             dy=f(T, B, P), W_hr=f(P, H) if P != H else None)
    return a


def _grads(cell, a, lengths, threads):
    T, B, I = a["x"].shape
    H = a["W_hh"].shape[0] // {"lstm": 4}.get(cell, 1)
    P = a["h0"].shape[1]
    args = (a["x"], a["W_ih"], a["W_hh"], a["b_ih"], a["b_hh"], a["h0"], a["c0"])
    kw = dict(W_hr=a["W_hr"]) if a["W_hr"] is not None else {}
    tape = np.empty(_kernels.tape_size(cell, T, B, I, H, **({"P": P} if P != H else {})), a["x"].dtype)
    y, h, c = _kernels.forward(cell, *args, lengths=lengths, tape=tape, threads=threads, **kw)
    dx, dh0, dc0, g = _kernels.backward(cell, tape, *args, lengths=lengths, dy=a["dy"], threads=threads, **kw)
    out = dict(y=y, h=h, dx=dx, dh0=dh0, **{"d" + k: v for k, v in g.items()})
    if dc0 is not None:
        out["dc0"] = dc0
    return out


def _equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if a[k] is None:
            assert b[k] is None, k
        else:
            assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell,H,P", [("lstm", 40, 40), ("lstm", 48, 24), ("rnn_tanh", 40, 40),
                                      ("rnn_relu", 72, 72)])
def test_direct_carry_gives_the_bits_of_the_copied_carry_at_1_2_3_threads(cell, H, P, dtype):
    T, B, I = 6, 13, 9
    a = _args(cell, T, B, I, H, P, dtype, seed=H + P)
    full = np.full(B, T, np.int32)
    first = _grads(cell, a, None, 1)
    for threads in (1, 2, 3):
        _equal(_grads(cell, a, None, threads), first)
        _equal(_grads(cell, a, full, threads), first)
