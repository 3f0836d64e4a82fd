"""Fuzz cases of the recurrent layers' one-hot input mode (input="ids"): hostile ids are refused
with ValueError/TypeError; accepted ids give what the same layer gives for their one-hot rows."""
import numpy as np
from hypothesis import strategies as st

import fastrnn
from fuzz_cases_nn import _ids
from fuzz_mutations import SIZES, same


def layer_ids_input(draw):
    cls = draw(st.sampled_from([fastrnn.RNN, fastrnn.GRU, fastrnn.LSTM, fastrnn.MGU]), "layer")
    V, H = draw(st.integers(2, 6), "V"), draw(SIZES, "H")
    kw = dict(num_layers=draw(st.integers(1, 2), "num_layers"), batch_first=draw(st.booleans(), "batch_first"),
              bidirectional=draw(st.sampled_from([False, False, True]), "bidirectional"),   # refused
              dtype=draw(st.sampled_from(["float32", "float64"]), "dtype"), seed=0)
    layer, onehot_layer = cls(V, H, **kw), cls(V, H, **kw)          # one seed: the same weights
    eye = np.eye(V, dtype=layer.dtype)
    T, B = draw(SIZES, "T"), draw(SIZES, "B")
    if draw(st.booleans(), "step"):
        ids = _ids(draw, V, (B,), "step ids")
        y, _ = layer.step(ids, input="ids")
        same([y], [onehot_layer.step(eye[np.asarray(ids)])[0]], layer.dtype)
        return
    ids = _ids(draw, V, (B, T) if layer.batch_first else (T, B), "ids")
    y, _ = layer.forward(ids, input="ids")
    want, _ = onehot_layer.forward(eye[np.asarray(ids)])
    same([y], [want], layer.dtype)
    dout = np.random.default_rng(5).standard_normal(y.shape)
    dx, _ = layer.backward(dout)
    onehot_layer.backward(dout)
    assert dx is None
    same([layer.grads], [onehot_layer.grads], layer.dtype)      # W_ih's columns of the ids, too
