"""Fuzz cases of beam search and streamed sampling (`fastrnn.beam_search`, `fastrnn.sample.stream`)."""
import numpy as np
from hypothesis import strategies as st

import fastrnn
from fastrnn.data import Vocab
from fastrnn.beam import MAX_BEAM, beam_search
from fastrnn.sample import generate, stream
from fuzz_mutations import pick

_VOCAB = Vocab.build("abcdef ghij\n")


def _model(draw, broken):
    model = fastrnn.LanguageModel(len(_VOCAB), hidden_size=4, num_layers=1,
                                  seed=draw(st.integers(0, 3), "model seed"))
    if broken == "nan":         # a model with non-finite parameters
        model.params[draw(st.integers(0, model.params.size - 1), "nan at")] = np.nan
    return model


def beam_search_case(draw):
    broken = draw(st.sampled_from(["beam", "alpha", "length", "prime", "stop", "nan", "none"]),
                  "broken argument")
    model = _model(draw, broken)
    kw = dict(beam=pick(draw, st.integers(1, 6), st.one_of(
                  st.integers(-3, 0), st.integers(MAX_BEAM + 1, 2**70),
                  st.sampled_from([1.5, True, False, None, "2", float("nan"), np.float64(2)])), broken, "beam"),
              alpha=pick(draw, st.one_of(st.floats(0, 3), st.sampled_from([0, 1, np.float32(0.5)])),
                         st.one_of(st.floats(max_value=-1e-9), st.sampled_from(
                             [float("nan"), float("inf"), True, None, "1"])), broken, "alpha"),
              length=pick(draw, st.integers(0, 10), st.one_of(st.integers(-3, -1), st.sampled_from(
                  [1.5, True, None, "3"])), broken, "length"),
              prime=pick(draw, st.text("abcxyz \n", max_size=4), st.sampled_from([b"ab", None, 3]),
                         broken, "prime"),
              stop=pick(draw, st.one_of(st.none(), st.text("abc", max_size=2)),
                        st.sampled_from([b"a", 3]), broken, "stop"))
    text = beam_search(model, _VOCAB, **kw)
    assert broken in ("none", "nan"), f"accepted a bad {broken}"
    assert isinstance(text, str) and text.startswith(kw["prime"])
    assert len(text) - len(kw["prime"]) <= kw["length"]
    if kw["beam"] == 1:
        assert text == generate(model, _VOCAB, prime=kw["prime"], length=kw["length"], argmax=True,
                                stop=kw["stop"])


def stream_case(draw):
    broken = draw(st.sampled_from(["length", "temperature", "top_k", "seed", "nan", "none"]),
                  "broken argument")
    model = _model(draw, broken)
    kw = dict(length=pick(draw, st.integers(0, 12), st.sampled_from([-1, 1.5, None]), broken, "length"),
              temperature=pick(draw, st.floats(0.05, 5), st.sampled_from([0, -1.0, float("nan"), "1"]),
                               broken, "temperature"),
              top_k=pick(draw, st.one_of(st.none(), st.integers(1, 20)), st.sampled_from([0, 2.5, "2"]),
                         broken, "top_k"),
              seed=pick(draw, st.integers(0, 2**70), st.sampled_from([-1, 1.5, "s"]), broken, "seed"),
              prime=draw(st.text("abcxyz \n", max_size=4), "prime"),
              stop=draw(st.one_of(st.none(), st.text("abc", max_size=2)), "stop"),
              argmax=draw(st.booleans(), "argmax"))
    pieces = stream(model, _VOCAB, **kw)     # checked at the call: a bad value raises here
    assert broken in ("none", "nan"), f"accepted a bad {broken}"
    text = kw["prime"] + "".join(pieces)     # a NaN model may raise ValueError while it runs
    assert text == generate(model, _VOCAB, **kw)
