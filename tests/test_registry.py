"""fastrnn.save/load through the model registry: any registered model round-trips, configs are
checked against the arrays present before anything is built, no pickle."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastrnn
from fastrnn import io, nn
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel, MODELS, build, register


@register
class TinyRegressor(nn.Module):
    """A model that is not a language model: LSTM -> Linear over the last step, MSE."""

    def __init__(self, features=2, hidden=3, dtype="float64", seed=0):
        super().__init__(dtype)
        self.config = dict(features=features, hidden=hidden, dtype=dtype, seed=seed)
        self.rnn = nn.LSTM(features, hidden, dtype=dtype, seed=seed)
        self.head = nn.Linear(hidden, 1, dtype=dtype, seed=seed)


def test_any_registered_model_round_trips(tmp_path):
    m = TinyRegressor(hidden=4, seed=5)
    m.params[...] = np.arange(m.params.size) / 7
    fastrnn.save(tmp_path / "r.npz", m, arrays={"x": np.ones(2)}, note="hi")
    back, vocab, extra = fastrnn.load(tmp_path / "r.npz")
    assert type(back) is TinyRegressor and vocab is None and back.config == m.config
    np.testing.assert_array_equal(back.params, m.params)
    assert extra["meta"]["note"] == "hi" and extra["meta"]["model_type"] == "TinyRegressor"
    np.testing.assert_array_equal(extra["arrays"]["x"], np.ones(2))


def test_unregistered_models_are_refused_on_save(tmp_path):
    class Unregistered(TinyRegressor):
        pass
    with pytest.raises(TypeError, match="registered"):
        fastrnn.save(tmp_path / "u.npz", Unregistered())
    assert "LanguageModel" in MODELS and "TinyRegressor" in MODELS


def test_a_config_claiming_huge_sizes_fails_fast(tmp_path):
    vocab = Vocab.build("abcdef")
    m = LanguageModel(len(vocab), hidden_size=4, num_layers=1, seed=0)
    fastrnn.save(tmp_path / "m.npz", m, vocab)
    arrays, meta = io.load_arrays(tmp_path / "m.npz")
    for change in (dict(vocab_size=10**7), dict(hidden_size=2000), dict(embed_size=100000),
                   dict(num_layers=10**9), dict(hidden_size=40)):
        io.save_arrays(tmp_path / "bad.npz", arrays, dict(meta, model=dict(meta["model"], **change)))
        with pytest.raises(ValueError, match="bad.npz"):
            fastrnn.load(tmp_path / "bad.npz")
    # the budget is the arrays present: build refuses before allocating anything that large
    with pytest.raises(ValueError, match="parameters"):
        build("LanguageModel", dict(vocab_size=1000, hidden_size=1000), max_parameters=5000)


@pytest.mark.parametrize("meta_change", [dict(model_type="Nope"), dict(model="x"), dict(model=dict(cell=3)),
                                         dict(model_type=None), dict(vocab=5), dict(model=dict(vocab_size=True))])
def test_damaged_metadata_gives_value_errors(tmp_path, meta_change):
    m = LanguageModel(5, hidden_size=3, num_layers=1, seed=0)
    fastrnn.save(tmp_path / "m.npz", m, Vocab.build("abc"))
    arrays, meta = io.load_arrays(tmp_path / "m.npz")
    io.save_arrays(tmp_path / "bad.npz", arrays, dict(meta, **meta_change))
    with pytest.raises(ValueError, match="bad.npz"):
        fastrnn.load(tmp_path / "bad.npz")


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(key=st.sampled_from(["vocab_size", "cell", "hidden_size", "num_layers", "dropout", "embed_size",
                            "dtype", "seed", "extra"]), value=json_values,
       model_type=st.sampled_from(["LanguageModel", "TinyRegressor", "Nope"]))
def test_fuzz_load_with_any_config_value(tmp_path_factory, key, value, model_type):
    """Whatever the metadata claims, load gives the model or a ValueError naming the file, fast."""
    d = tmp_path_factory.mktemp("fuzz")
    m = LanguageModel(5, hidden_size=3, num_layers=1, seed=0)
    fastrnn.save(d / "m.npz", m, Vocab.build("abc"))
    arrays, meta = io.load_arrays(d / "m.npz")
    try:
        io.save_arrays(d / "bad.npz", arrays, dict(meta, model_type=model_type, model=dict(meta["model"], **{key: value})))
    except ValueError:          # not JSON-serialisable (NaN): nothing to load
        return
    try:
        back, _, _ = fastrnn.load(d / "bad.npz")
    except ValueError as e:
        assert "bad.npz" in str(e)
    else:
        assert back.params.size == m.params.size
