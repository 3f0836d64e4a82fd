"""Fuzz case of LanguageModel.step's one-call fast path (NativeStep -> Generator.step_state):
hostile ids and states, float32/float64/bf16; an accepted call equals the layer path's (taken
while a public view of the weights is alive) bit for bit when the values are kept, and every
accepted result is new memory."""
import numpy as np
from hypothesis import strategies as st

import fastrnn
from fuzz_mutations import SAME_VALUES, SIZES, mutate


def _layer_path(model, ids, state):
    view = model.params          # a live public view: the fast path declines
    try:
        return model.step(ids, state)
    finally:
        del view


def _arrays(logits, state):
    return [logits] + list(state if isinstance(state, tuple) else (state,))


def model_step_state(draw):
    V = draw(st.integers(3, 9), "V")
    cell = draw(st.sampled_from(["lstm", "gru", "rnn"]), "cell")
    model = fastrnn.LanguageModel(V, cell=cell, hidden_size=draw(SIZES, "H"), num_layers=draw(st.integers(1, 2), "L"),
                                  embed_size=draw(st.sampled_from([None, 3]), "embed"),
                                  dtype=draw(st.sampled_from(["float32", "float64"]), "dtype"), seed=0)
    if model.config["dtype"] == "float32" and draw(st.booleans(), "bf16"):
        model.precision = "bf16"
    B = draw(st.integers(1, 5), "B")
    ids = np.random.default_rng(5).integers(0, V, B)
    _, state = model.step(ids)                       # a clean state of the right shapes
    ids2, ids_kind = mutate(draw, ids, "ids")
    parts = list(state) if cell == "lstm" else [state]
    which = draw(st.integers(0, len(parts) - 1), "state part")
    parts[which], kind = mutate(draw, parts[which], "state")
    if draw(st.booleans(), "drop the whole state"):
        new_state, kind = None, "none"
    else:
        new_state = tuple(parts) if cell == "lstm" else parts[0]
    logits, out = model.step(ids2, new_state)        # ValueError/TypeError may escape: rejected
    assert logits.shape == (np.shape(ids2)[0], V)
    if ids_kind in SAME_VALUES + ("none",) and kind in SAME_VALUES + ("none",):
        want = _layer_path(model, ids2, new_state)
        for g, w in zip(_arrays(logits, out), _arrays(*want)):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)
    for a in _arrays(logits, out):
        for s in _arrays(ids, state):
            assert not np.shares_memory(a, s)
