"""Dtype adoption (fastrnn.nn.module): a model's children take its dtype without `dtype=`, and
add_module converts only what it can convert exactly and was not chosen by the caller."""
import numpy as np
import pytest

import fastrnn
from fastrnn import nn
from fastrnn.nn import Module


class TwoBlocks(Module):
    def __init__(self, dtype="float32", explicit=False):
        super().__init__(dtype)
        kw = dict(dtype=dtype) if explicit else {}
        self.rnn = nn.GRU(3, 4, seed=1, **kw)
        self.head = nn.Linear(4, 2, seed=np.random.default_rng(2), **kw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_children_built_in_a_model_take_its_dtype_with_the_same_numbers(dtype):
    adopted, forwarded = TwoBlocks(dtype), TwoBlocks(dtype, explicit=True)
    assert {m.dtype.name for _, m in adopted.modules()} == {dtype}
    np.testing.assert_array_equal(adopted.params, forwarded.params)        # bit-identical init
    assert adopted.params.dtype == dtype and adopted.rnn._buffers.dtype == dtype


def test_a_model_built_inside_another_keeps_the_context_for_its_later_children():
    m = fastrnn.AttentionSeq2Seq(5, 6, embed_size=3, hidden_size=4, dtype="float64", seed=0)
    assert {c.dtype.name for _, c in m.modules()} == {"float64"}
    assert nn.Linear(2, 2).dtype == np.float32          # alone, after the model: float32 again


def test_a_failed_construction_does_not_leak_its_dtype():
    with pytest.raises(ValueError):
        fastrnn.LanguageModel(5, hidden_size=0, dtype="float64")
    with pytest.raises(ValueError):
        nn.Linear(0, 2, dtype="float64")
    assert nn.Linear(2, 2).dtype == np.float32


def test_add_module_widens_an_unchosen_dtype_exactly_and_the_layer_still_runs():
    root = Module("float64")
    gru = nn.GRU(3, 4, seed=0)                          # dtype not chosen: float32 alone
    before = gru.params.copy()
    root.rnn = gru
    assert gru.dtype == np.float64 and root.params.dtype == np.float64
    np.testing.assert_array_equal(gru.params, before.astype(np.float64))     # exact widening
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    y, h = gru(x)
    assert y.dtype == np.float64 and h.dtype == np.float64
    gru.backward(np.ones_like(y))
    ref = nn.GRU(3, 4, dtype="float64")
    ref.load_state_dict(gru.state_dict())
    np.testing.assert_array_equal(ref(x)[0], y)


def test_add_module_refuses_a_chosen_dtype_and_any_narrowing():
    with pytest.raises(TypeError, match="'head' is float32, this model float64"):
        Module("float64").head = nn.Linear(2, 2, dtype="float32")        # chosen: not converted
    trained = nn.Linear(2, 2, dtype="float64")
    trained.params[...] = 1 / 3                         # float32 would round these
    with pytest.raises(TypeError, match="narrowing"):
        Module("float32").head = trained
    inner = Module("float64")
    inner.head = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="float64, this model float32"):
        Module("float32").sub = inner                   # chosen by its own model
    assert inner.head.params.dtype == np.float64 and trained._parent is None
