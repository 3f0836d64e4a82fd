"""What a layer call keeps and skips between calls (csrc/kept.h, csrc/lstm.c's one-pass gate row,
csrc/microkernel.h's 4+4 remainder tiles, team.c's wake only for sleepers):

- The LSTM's one-pass gate row: an inference forward (c updated in place) gives the bits of the
  training forward (c_t in its own tape slot), with and without peepholes, at 1-3 threads, and
  both equal the float64 reference within float32 rounding.
- Batches whose last tile was 1-3 rows (B = 7, 9, 13, 32) give the same bits at 1, 2 and 3 threads.
- The engine block a calling thread keeps between calls holds nothing a later call reads before
  writing it: calls alternating shapes, and weights edited in place between calls (an optimizer
  step), give exactly the bits of a fresh call on those weights.
- Two Python threads calling at once with threads=1 (each with its own kept block) stay correct.
"""
import threading

import numpy as np
import pytest

from fastrnn import _kernels, reference


def _lstm(T, B, I, H, seed, peep=False, dtype=np.float32):
    rng = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)
    f = lambda *shape: rng.uniform(-s, s, shape).astype(dtype)
    a = dict(x=rng.standard_normal((T, B, I)).astype(dtype), W_ih=f(4 * H, I), W_hh=f(4 * H, H),
             b_ih=f(4 * H), b_hh=f(4 * H), h0=f(B, H), c0=f(B, H), dy=f(T, B, H))
    a["w_peep"] = f(3 * H) if peep else None
    return a


def _forward(a, train, threads=0):
    args = (a["x"], a["W_ih"], a["W_hh"], a["b_ih"], a["b_hh"], a["h0"], a["c0"])
    if not train:
        y, h, c = _kernels.forward("lstm", *args, w_peep=a["w_peep"], threads=threads)
        return dict(y=y, h=h, c=c)
    T, B, I = a["x"].shape
    H = a["h0"].shape[1]
    tape = np.empty(_kernels.tape_size("lstm", T, B, I, H), np.float32)
    y, h, c = _kernels.forward("lstm", *args, w_peep=a["w_peep"], tape=tape, threads=threads)
    dx, dh0, dc0, g = _kernels.backward("lstm", tape, *args, w_peep=a["w_peep"], dy=a["dy"], threads=threads)
    return dict(y=y, h=h, c=c, dx=dx, dh0=dh0, dc0=dc0, **{"d" + k: v for k, v in g.items()})


def _at(threads, fn, *args):
    _kernels.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        _kernels.set_num_threads(None)


def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a if a[k] is not None)


@pytest.mark.parametrize("peep", [False, True])
@pytest.mark.parametrize("B", [1, 7, 9, 13, 32])
def test_inference_and_training_forward_agree_bit_for_bit(B, peep):
    a = _lstm(9, B, 11, 40, seed=B, peep=peep)
    first = None
    for threads in (1, 2, 3):
        infer = _at(threads, _forward, a, False)
        train = _at(threads, _forward, a, True)
        for k in ("y", "h", "c"):
            assert np.array_equal(infer[k], train[k]), (k, threads)
        if first is None:
            first = train
        assert _same(first, train), threads
    a64 = {k: (v.astype(np.float64) if v is not None else None) for k, v in a.items()}
    y, (h, c), _ = reference.lstm_forward(a64["x"], a64["h0"], a64["c0"], a64["W_ih"], a64["W_hh"], a64["b_ih"],
                                          a64["b_hh"], w_peep=None if not peep else a64["w_peep"].reshape(3, -1))
    for got, want in ((first["y"], y), (first["h"], h), (first["c"], c)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_kept_block_holds_nothing_a_later_call_reads():
    small, big = _lstm(6, 7, 13, 40, seed=1), _lstm(8, 32, 20, 72, seed=2)
    edited = {k: (v.copy() if v is not None else None) for k, v in small.items()}
    edited["W_hh"] *= -0.5
    edited["W_ih"][:, 0] += 0.25
    want = {name: {train: _forward(a, train) for train in (False, True)}
            for name, a in (("small", small), ("big", big), ("edited", edited))}
    live = {k: (v.copy() if v is not None else None) for k, v in small.items()}   # edited in place below
    for threads in (1, 2, 3):
        for train in (True, False):
            live["W_hh"][...] = small["W_hh"]
            live["W_ih"][...] = small["W_ih"]
            assert _same(want["small"][train], _at(threads, _forward, live, train))
            assert _same(want["big"][train], _at(threads, _forward, big, train))
            live["W_hh"][...] = edited["W_hh"]          # an optimizer step between two calls
            live["W_ih"][...] = edited["W_ih"]
            assert _same(want["edited"][train], _at(threads, _forward, live, train))
            assert not _same(want["small"][train], want["edited"][train])


def test_two_python_threads_with_one_member_each_keep_their_own_blocks():
    cases = [_lstm(10, 9, 12, 48, seed=3), _lstm(7, 33, 16, 80, seed=4)]
    want = [_forward(c, train) for c in cases for train in (False, True)]
    errors = []

    def work(i):
        for _ in range(10):
            for j, train in enumerate((False, True)):
                if not _same(want[2 * i + j], _forward(cases[i], train, threads=1)):
                    errors.append(i)
    workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
