"""LanguageModel.step's native fast path (fastrnn.nn.generate.NativeStep: one call for the stack
and the head on a cached generator) against the layer path it replaces (taken while a public view
of the weights is alive): the same bits of logits and state, never stale weights, the same
errors for bad input."""
import numpy as np
import pytest

import fastrnn
from fastrnn.models import LanguageModel


def _model(cell="lstm", layers=2, embed=None, dtype="float32", hidden=24, seed=0):
    model = LanguageModel(11, cell=cell, hidden_size=hidden, num_layers=layers, embed_size=embed, dtype=dtype,
                          seed=seed)
    model.params[:] = np.random.default_rng(seed).uniform(-0.6, 0.6, model.params.size)
    return model


def _walk(model, B, steps, seed=1):
    """logits and states of `steps` chained model.step calls from random ids."""
    rng = np.random.default_rng(seed)
    state, out = None, []
    for _ in range(steps):
        logits, state = model.step(rng.integers(0, 11, B), state)
        out.append((logits, state))
    return out


def _layer_path(model, fn):
    view = model.params          # a live public view: the fast path declines
    try:
        return fn()
    finally:
        del view


def _flat(out):
    arrs = []
    for logits, state in out:
        arrs.append(logits)
        arrs.extend(state if isinstance(state, tuple) else (state,))
    return arrs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell, layers, embed", [("lstm", 2, None), ("gru", 2, 5), ("rnn", 1, None),
                                                 ("lstm", 1, 6), ("gru", 3, None)])
@pytest.mark.parametrize("B", [1, 4, 9])
def test_fast_step_gives_the_layer_paths_bits(cell, layers, embed, dtype, B):
    model = _model(cell, layers, embed, dtype)
    for threads in (1, 2):
        fastrnn.set_num_threads(threads)
        try:
            got = _walk(model, B, 6)
            assert model.__dict__["_native_step"].gen is not None      # the fast path ran
            want = _layer_path(model, lambda: _walk(model, B, 6))
        finally:
            fastrnn.set_num_threads(0)
        for g, w in zip(_flat(got), _flat(want)):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)


def test_returned_state_is_new_and_the_given_one_is_kept():
    model = _model("lstm", 2, None)
    logits, state = model.step(np.array([1, 2]))
    h, c = state[0].copy(), state[1].copy()
    logits2, state2 = model.step(np.array([3, 4]), state)
    np.testing.assert_array_equal(state[0], h)
    np.testing.assert_array_equal(state[1], c)
    assert not np.shares_memory(state2[0], state[0]) and not np.shares_memory(logits2, logits)
    again, _ = model.step(np.array([3, 4]), state)
    np.testing.assert_array_equal(again, logits2)


def test_weight_edits_are_seen():
    model = _model("lstm", 2, None)
    ids = np.array([3])
    before = model.step(ids)[0]
    model.params[:] *= 0.5                       # an in-place edit through a public view
    edited = model.step(ids)[0]
    assert not np.array_equal(before, edited)
    np.testing.assert_array_equal(edited, _layer_path(model, lambda: model.step(ids)[0]))
    dict(model.named_parameters())["rnn.weight_ih_l0"][...] = 0    # the one-hot columns (copied)
    np.testing.assert_array_equal(model.step(ids)[0], _layer_path(model, lambda: model.step(ids)[0]))
    model._params[:] += 0.01                     # fastrnn's own write, declared
    model.invalidate()
    np.testing.assert_array_equal(model.step(ids)[0], _layer_path(model, lambda: model.step(ids)[0]))


@pytest.mark.parametrize("bad, err", [(np.array([11]), ValueError), (np.array([-1]), ValueError),
                                      (np.array([1.0]), TypeError), (np.array([[1]]), ValueError)])
def test_bad_ids_raise_as_before(bad, err):
    model = _model("lstm", 2, None)
    with pytest.raises(err, match="ids"):
        model.step(bad)


def test_bad_state_raises_as_before():
    model = _model("lstm", 2, None)
    with pytest.raises(TypeError, match="state"):
        model.step(np.array([1]), np.zeros((2, 1, 24), np.float32))
    with pytest.raises(ValueError, match="state h"):
        model.step(np.array([1]), (np.zeros((2, 3, 24), np.float32), np.zeros((2, 1, 24), np.float32)))

