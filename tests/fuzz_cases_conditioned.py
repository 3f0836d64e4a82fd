"""Fuzz cases of ConditionedGenerator.generate (the native generation loop started from a condition's
state): hostile conditions and sampling arguments, float32/float64/bf16, class-id and vector
conditions; an accepted call gives int64 ids (B, length) in range, equal to the stepwise Python
loop's, and to the clean call's when the condition's values were kept. And of the same loop as text
(`fastrnn.generate` / `stream` with condition=, as `fastrnn sample --condition` runs it)."""
import numpy as np
from hypothesis import strategies as st

import fastrnn
from fastrnn.sample import stream
from fuzz_mutations import SAME_VALUES, SIZES, mutate, pick

_JUNK_REAL = st.sampled_from([0, -1.0, float("nan"), float("inf"), True, "1"])


def conditioned_generate(draw):
    V = draw(st.integers(2, 9), "V")
    kind = draw(st.sampled_from(["class", "vector"]), "condition kind")
    cell = draw(st.sampled_from(["lstm", "gru", "rnn", "mgu"]), "cell")
    dtype = draw(st.sampled_from(["float32", "float64"]), "dtype")
    model = fastrnn.ConditionedGenerator(
        V, cell=cell, hidden_size=draw(SIZES, "H"), num_layers=draw(st.integers(1, 2), "L"),
        embed_size=draw(st.sampled_from([None, 3]), "embed"), dtype=dtype, seed=0,
        **(dict(num_classes=3) if kind == "class" else dict(condition_size=2)))
    if dtype == "float32" and draw(st.booleans(), "bf16"):
        model.precision = "bf16"
    broken = draw(st.sampled_from(["condition", "length", "temperature", "top_k", "top_p", "seed", "nan",
                                   "none"]), "broken argument")
    if broken == "nan":         # a model with non-finite parameters
        model.params[draw(st.integers(0, model.params.size - 1), "nan at")] = np.nan
        model.invalidate()
    B = draw(st.integers(1, 4), "B")
    rng = np.random.default_rng(3)
    cond = rng.integers(0, 3, B) if kind == "class" else rng.standard_normal((B, 2)).astype(dtype)
    given, how = mutate(draw, cond, "condition") if broken == "condition" else (cond, "clean")
    kw = dict(length=pick(draw, st.integers(1, 8), st.sampled_from([0, -1, 1.5, True, None, "3"]), broken,
                          "length"),
              temperature=pick(draw, st.one_of(st.floats(0.05, 5), st.sampled_from([1e-320, 1e-31])),
                               st.one_of(_JUNK_REAL, st.none()), broken, "temperature"),
              top_k=pick(draw, st.one_of(st.none(), st.integers(1, 12)), st.sampled_from([0, -2, 2.5, "2"]),
                         broken, "top_k"),
              top_p=pick(draw, st.one_of(st.none(), st.floats(0.01, 1)), st.one_of(_JUNK_REAL, st.just(1.5)),
                         broken, "top_p"),
              seed=pick(draw, st.one_of(st.none(), st.integers(0, 2**70)), st.sampled_from([-1, 1.5, "s"]),
                        broken, "seed"),
              argmax=draw(st.booleans(), "argmax"))
    if kw["seed"] is None:
        kw["seed"] = 7           # (fresh entropy could not be compared with the stepwise loop)
    try:
        out = model.generate(given, **kw)        # ValueError/TypeError may escape: rejected
    except ValueError:
        want_error = True
    else:
        want_error = False
    try:
        want = model._generate_stepwise(given, **kw)
    except ValueError:
        assert want_error, "the stepwise loop rejected a call the native loop accepted"
        raise
    assert not want_error, "the native loop rejected a call the stepwise loop accepted"
    # (a NaN in an unused row -- a class or token never met -- leaves the tokens finite)
    assert broken in ("condition", "nan", "none"), f"accepted a bad {broken}"
    assert out.dtype == np.int64 and out.shape == (want.shape[0], kw["length"])
    assert out.min() >= 0 and out.max() < V
    np.testing.assert_array_equal(out, want)
    if how in SAME_VALUES + ("clean",):
        np.testing.assert_array_equal(out, model.generate(cond, **kw))


_VOCAB = fastrnn.Vocab.build("abcdef gh\n")
_JUNK_ID = st.sampled_from([-1, 3, 1.5, True, "1", None, [0, 1], [[1]], np.array([2]), float("nan")])


def conditioned_text(draw):
    """`fastrnn.generate` / `fastrnn.sample.stream` with condition= (from
    ConditionedGenerator.condition_start): one hostile condition, prime, stop, length; an accepted
    call streams generate's text, which without a prime or stop is `generate`'s ids to <eos>."""
    kind = draw(st.sampled_from(["class", "vector"]), "condition kind")
    dtype = draw(st.sampled_from(["float32", "float64"]), "dtype")
    model = fastrnn.ConditionedGenerator(
        len(_VOCAB), cell=draw(st.sampled_from(["lstm", "gru", "rnn", "mgu"]), "cell"),
        hidden_size=draw(SIZES, "H"), num_layers=draw(st.integers(1, 2), "L"), dtype=dtype, seed=0,
        **(dict(num_classes=3) if kind == "class" else dict(condition_size=2)))
    broken = draw(st.sampled_from(["condition", "prime", "stop", "length", "nan", "none"]), "broken argument")
    if broken == "nan":
        model.params[draw(st.integers(0, model.params.size - 1), "nan at")] = np.nan
        model.invalidate()
    if kind == "class":
        cond = draw(st.integers(0, 2), "class id")
        given, how = (draw(_JUNK_ID, "junk id"), "junk") if broken == "condition" else (cond, "clean")
    else:
        cond = np.random.default_rng(3).standard_normal(2).astype(dtype)
        given, how = mutate(draw, cond, "condition") if broken == "condition" else (cond, "clean")
    kw = dict(length=pick(draw, st.integers(0, 12), st.sampled_from([-1, 1.5, None]), broken, "length"),
              prime=pick(draw, st.text("abc h\n", max_size=3), st.sampled_from([b"a", None, 3]), broken, "prime"),
              stop=pick(draw, st.one_of(st.none(), st.text("abc", max_size=2)), st.sampled_from([b"a", 3]),
                        broken, "stop"),
              top_k=draw(st.one_of(st.none(), st.integers(1, 12)), "top_k"),
              seed=draw(st.integers(0, 2**70), "seed"), argmax=draw(st.booleans(), "argmax"))
    pieces = stream(model, _VOCAB, condition=given, **kw)      # checked at the call
    text = kw["prime"] + "".join(pieces)      # a NaN model may raise ValueError while it runs
    assert broken in ("condition", "nan", "none"), f"accepted a bad {broken}"
    assert text == fastrnn.generate(model, _VOCAB, condition=given, **kw)
    if how in SAME_VALUES + ("clean",):
        assert text == fastrnn.generate(model, _VOCAB, condition=cond, **kw)
    if how == "clean" and not kw["prime"] and not kw["stop"] and kw["length"]:
        ids = model.generate(np.asarray(cond)[None], kw["length"], top_k=kw["top_k"], argmax=kw["argmax"],
                             seed=kw["seed"])[0].tolist()
        assert text == _VOCAB.decode(ids[:ids.index(_VOCAB.eos_id)] if _VOCAB.eos_id in ids else ids)
