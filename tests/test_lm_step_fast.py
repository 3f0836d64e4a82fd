"""LanguageModel.step's one-call fast path (NativeStep -> Generator.step_state: the ids' range,
the state in and out, the step and the head in one native call): the same bits as the layer path
(float32, float64 and bf16), its cached generator never stale (in-place edits, an optimizer step,
load_state_dict, a precision switch), states it cannot take as they are converted or refused as
the layers do, and Generator.step_state's own argument checks."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels, optim
from fastrnn.nn.generate import native_generator
from test_lm_step_native import _model


def _walk(model, B, steps, seed=1):
    rng = np.random.default_rng(seed)
    state, out = None, []
    for _ in range(steps):
        logits, state = model.step(rng.integers(0, 11, B), state)
        out.append(logits)
        out.extend(state if isinstance(state, tuple) else (state,))
    return out


def _layer_walk(model, B, steps, seed=1):
    view = model.params          # a live public view: the fast path declines
    try:
        return _walk(model, B, steps, seed)
    finally:
        del view


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def _fast_ran(model):
    return model.__dict__["_native_step"].gen is not None


@pytest.mark.parametrize("cell, layers, embed", [("lstm", 2, None), ("gru", 2, 5), ("lstm", 1, 6)])
@pytest.mark.parametrize("B", [1, 3])
def test_bf16_fast_step_gives_the_layer_paths_bits(cell, layers, embed, B):
    model = _model(cell, layers, embed)
    model.precision = "bf16"
    for threads in (1, 2):
        fastrnn.set_num_threads(threads)
        try:
            got = _walk(model, B, 5)
            assert _fast_ran(model) and model.__dict__["_native_step"].key[-1] == "bf16"
            want = _layer_walk(model, B, 5)
        finally:
            fastrnn.set_num_threads(0)
        _same(got, want)


def test_a_precision_switch_rebuilds_the_cached_step():
    model = _model()
    f32 = _walk(model, 2, 3)
    model.precision = "bf16"
    b16 = _walk(model, 2, 3)
    assert not all(np.array_equal(a, b) for a, b in zip(f32, b16))        # bf16 products differ
    _same(b16, _layer_walk(model, 2, 3))
    model.precision = "float32"
    _same(_walk(model, 2, 3), f32)


def test_an_optimizer_step_and_load_state_dict_are_seen():
    model = _model()
    ids = np.array([[1, 2, 3]])
    before = _walk(model, 1, 2)
    saved = {k: v.copy() for k, v in model.state_dict().items()}
    opt = optim.SGD(model, lr=0.5)
    model.zero_grad()
    model.forward(ids, ids)
    model.backward()
    opt.step()
    after = _walk(model, 1, 2)
    assert not np.array_equal(before[0], after[0])
    _same(after, _layer_walk(model, 1, 2))
    model.load_state_dict(saved)
    _same(_walk(model, 1, 2), before)


def test_in_place_edits_of_each_weight_are_seen():
    model = _model("lstm", 2, None)
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l1", "rnn.bias_ih_l1", "head.weight", "head.bias"):
        before = _walk(model, 1, 2)          # two steps: the second reads W_hh (h != 0)
        dict(model.named_parameters())[name][...] *= 1.5
        edited = _walk(model, 1, 2)
        assert not np.array_equal(before[-3], edited[-3]), name
        _same(edited, _layer_walk(model, 1, 2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_states_to_convert_give_the_same_result(dtype):
    model = _model("lstm", 2, None, dtype=dtype)
    ids = np.array([1, 7])
    _, (h, c) = model.step(ids)
    want = model.step(ids, (h, c))
    other = np.float64 if dtype == "float32" else np.float32
    for state in [(h.astype(other), c.astype(other)),                       # another float dtype
                  (np.asfortranarray(h), np.asfortranarray(c)),            # not C-contiguous
                  [h.tolist(), c.tolist()]]:                               # nested lists
        got = model.step(ids, state)
        if state[0].__class__ is np.ndarray and state[0].dtype != h.dtype:
            ref = _layer_walk_state(model, ids, state)                     # rounded as the layers round
            np.testing.assert_array_equal(got[0], ref[0])
        else:
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1][0], want[1][0])
    np.testing.assert_array_equal(h, model.step(ids)[1][0])            # the given state kept


def _layer_walk_state(model, ids, state):
    view = model.params
    try:
        return model.step(ids, state)
    finally:
        del view


@pytest.mark.parametrize("ids_dtype", [np.int64, np.int32, np.uint8, np.uint64])
def test_ids_of_any_integer_dtype_and_lists(ids_dtype):
    model = _model()
    want = model.step(np.array([3, 9]))[0]
    np.testing.assert_array_equal(model.step(np.array([3, 9], ids_dtype))[0], want)
    np.testing.assert_array_equal(model.step([3, 9])[0], want)
    np.testing.assert_array_equal(model.step(np.array([0, 3, 0, 9])[1::2])[0], want)     # strided


def test_bad_ids_and_states_raise_the_layer_paths_errors():
    model = _model()
    for bad in (np.array([11]), np.array([-1]), np.array([2**63], np.uint64), np.array([1, 12])):
        with pytest.raises(ValueError, match=r"ids: ids must be in \[0, 11\)"):
            model.step(bad)
    with pytest.raises(TypeError, match="ids: expected integer ids"):
        model.step(np.array([1.0]))
    with pytest.raises(ValueError, match="ids: expected 1-D ids"):
        model.step(np.array([[1]]))
    good = model.step(np.array([1]))[1]
    with pytest.raises(ValueError, match=r"state h: expected shape \(2, 1, 24\), got \(2, 3, 24\)"):
        model.step(np.array([1]), (np.zeros((2, 3, 24), np.float32), good[1]))
    with pytest.raises(ValueError, match=r"state c: expected shape \(2, 1, 24\)"):
        model.step(np.array([1]), (good[0], np.zeros((2, 24), np.float32)))
    with pytest.raises(TypeError, match="state c: expected a float array"):
        model.step(np.array([1]), (good[0], np.zeros((2, 1, 24), np.int32)))
    with pytest.raises(TypeError, match="state: expected a tuple"):
        model.step(np.array([1]), good[0])
    with pytest.raises(ValueError, match="ids: ids must be in"):        # the ids first, as before
        model.step(np.array([11]), (np.zeros((2, 3, 24), np.float32), good[1]))


def test_step_state_checks_its_arguments():
    model = _model()
    gen = native_generator(model.rnn, model.head, batch=2, max_len=1, argmax=True)
    h = np.zeros((2, 2, 24), np.float32)
    logits, h1, c1 = gen.step_state(np.array([1, 2]), h, h)
    assert logits.shape == (2, 11) and h1.shape == c1.shape == (2, 2, 24)
    np.testing.assert_array_equal(h, 0)                                    # inputs not modified
    for bad_h in (np.zeros((2, 1, 24), np.float32), np.zeros((2, 2, 24)), np.zeros((2, 24, 2), np.float32).T,
                  [[0.0]]):
        with pytest.raises(ValueError, match="state h: expected a C-contiguous float32 array"):
            gen.step_state(np.array([1, 2]), bad_h, None)
    with pytest.raises(ValueError, match="ids: expected an integer numpy.ndarray of shape"):
        gen.step_state([1, 2], None, None)
    with pytest.raises(ValueError, match=r"ids: ids must be in \[0, 11\), got 1..11"):
        gen.step_state(np.array([1, 11]), None, None)
    sampler = native_generator(model.rnn, model.head, batch=2, max_len=5, argmax=True)
    with pytest.raises(ValueError, match="step_state: needs a generator made with argmax=True"):
        sampler.step_state(np.array([1, 2]), None, None)


def test_step_state_equals_step():
    model = _model("gru", 2, 5)
    gen = native_generator(model.rnn, model.head, model.embed, batch=3, max_len=1, argmax=True)
    h0 = np.random.default_rng(3).standard_normal((2, 3, 24)).astype(np.float32)
    logits, h1, c1 = gen.step_state(np.array([0, 5, 10]), h0, None)
    assert c1 is None
    gen.h_state[:] = h0.ravel()
    gen.step(np.array([0, 5, 10]))
    np.testing.assert_array_equal(logits, gen.logits)
    np.testing.assert_array_equal(h1.ravel(), gen.h_state)
    assert _kernels.Generator.step_state.__doc__
