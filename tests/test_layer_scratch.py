"""A layer keeps its stack's scratch arrays between calls (layers.py `_scratch`): bidirectional
reversed inputs and per-direction outputs/gradients, and the arrays between stacked layers.

Nothing stale may leak: every call must give the bits a fresh layer gives, whatever the earlier
calls' shapes were, with the kept arrays poisoned (NaN) between calls; outputs handed to the
caller are never kept (a later call does not change them); an inference forward between a training
forward and its backward leaves the backward alone; and repeated calls of one shape reuse the
kept arrays instead of allocating new ones (the point: no fresh pages to zero per call).
"""
import numpy as np
import pytest

import fastrnn

LAYERS = [(fastrnn.LSTM, {}), (fastrnn.GRU, {}), (fastrnn.LSTM, dict(proj_size=5))]
# (T, B, lengths or None): growing, shrinking, and with packed-sequence lengths
SHAPES = [(7, 4, None), (3, 2, None), (9, 5, [9, 3, 1, 6, 9]), (7, 4, None), (4, 3, [2, 4, 1])]


def _make(cls, kw, D, L=2, dtype="float32"):
    return cls(6, 11, num_layers=L, bidirectional=D == 2, dtype=dtype, seed=3, **kw)


def _poison(layer):
    """NaN into every kept buffer of this thread (none may be read before it is written)."""
    for buf in layer._buffers._store().values():
        buf[...] = np.nan


def _fwd_bwd(layer, x, dy, lengths):
    y, state = layer.forward(x, lengths=lengths)
    h = state[0] if isinstance(state, tuple) else state
    layer.zero_grad()
    dx, _ = layer.backward(dy)
    return [y.copy(), h.copy(), dx.copy(), layer.grads.copy()]


def _inputs(T, B, D, P, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((T, B, 6)).astype(np.float32),
            rng.standard_normal((T, B, D * P)).astype(np.float32))


@pytest.mark.parametrize("D", [1, 2])
@pytest.mark.parametrize("cls,kw", LAYERS)
def test_shape_changes_between_calls_give_a_fresh_layers_bits(cls, kw, D):
    layer = _make(cls, kw, D)
    P = layer.P
    for j, (T, B, lengths) in enumerate(SHAPES):
        x, dy = _inputs(T, B, D, P, j)
        got = _fwd_bwd(layer, x, dy, lengths)
        want = _fwd_bwd(_make(cls, kw, D), x, dy, lengths)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        got_inf = layer.forward(x, lengths=lengths, train=False)[0].copy()
        np.testing.assert_array_equal(got_inf, _make(cls, kw, D).forward(x, lengths=lengths, train=False)[0])
        _poison(layer)


@pytest.mark.parametrize("D", [1, 2])
def test_outputs_are_not_kept_and_inference_leaves_a_pending_tape_alone(D):
    layer = _make(fastrnn.LSTM, {}, D, L=3)
    x, dy = _inputs(6, 4, D, layer.P, 0)
    x2, dy2 = _inputs(6, 4, D, layer.P, 1)
    y1, _ = layer.forward(x)
    y1_copy = y1.copy()
    layer.forward(x2, train=False)            # between the training forward and its backward
    layer.forward(x2[:3, :2], train=False)
    dx1, _ = layer.backward(dy)
    dx1_copy, g1 = dx1.copy(), layer.grads.copy()
    y2, _ = layer.forward(x2)                 # the same shapes again: kept arrays reused
    layer.backward(dy2)
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(dx1, dx1_copy)
    fresh = _make(fastrnn.LSTM, {}, D, L=3)
    np.testing.assert_array_equal(fresh.forward(x)[0], y1_copy)
    np.testing.assert_array_equal(fresh.backward(dy)[0], dx1_copy)
    np.testing.assert_array_equal(fresh.grads, g1)


def test_repeated_calls_reuse_the_kept_arrays():
    layer = _make(fastrnn.LSTM, {}, 2)
    x, dy = _inputs(8, 5, 2, layer.P, 0)
    layer.forward(x)
    layer.backward(dy)
    kept = {key: id(buf) for key, buf in layer._buffers._store().items()}
    assert {key[0] for key in kept} >= {"act", "grad", "xs", "dxs", "dir", "tape"}
    for _ in range(2):
        layer.forward(x)
        layer.backward(dy)
    assert {key: id(buf) for key, buf in layer._buffers._store().items()} == kept


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_kept_arrays_give_the_same_bits_at_every_thread_count(threads):
    before = fastrnn.get_num_threads()
    try:
        fastrnn.set_num_threads(1)
        x, dy = _inputs(9, 6, 2, 11, 4)
        want = _fwd_bwd(_make(fastrnn.LSTM, {}, 2), x, dy, None)
        fastrnn.set_num_threads(threads)
        layer = _make(fastrnn.LSTM, {}, 2)
        for j, (T, B, lengths) in enumerate(SHAPES[:3]):
            _fwd_bwd(layer, *_inputs(T, B, 2, 11, j), lengths)
            _poison(layer)
        for g, w in zip(_fwd_bwd(layer, x, dy, None), want):
            np.testing.assert_array_equal(g, w)
    finally:
        fastrnn.set_num_threads(before)
