"""The native generation loop (csrc/generate.h via fastrnn.generate) against the stepwise Python
loop it replaces: the same greedy text for every cell and input mode, the same text for a seed on
every thread count, and draws that follow the model's distribution after temperature/top-k/top-p."""
import numpy as np
import pytest
from scipy import stats

import fastrnn
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel
from fastrnn.sample import generate, generate_stepwise, next_token_probs

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 4


def _model(cell, layers, embed, dtype, level="char", seed=0):
    vocab = Vocab.build(TEXT, level=level)
    model = LanguageModel(len(vocab), cell=cell, hidden_size=24, num_layers=layers, embed_size=embed,
                          dtype=dtype, seed=seed)
    # larger weights than the default init so that the greedy text is not one repeated token
    model.params[:] = np.random.default_rng(seed).uniform(-0.6, 0.6, model.params.size)
    model.head._views["bias"][vocab.eos_id] = -1e30     # no early <eos>: full-length texts
    model.invalidate()
    return model, vocab


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell, layers, embed", [("lstm", 2, None), ("gru", 1, 8), ("rnn", 2, 8),
                                                 ("lstm", 1, 6), ("gru", 3, None)])
def test_greedy_text_equals_the_stepwise_loop(cell, layers, embed, dtype):
    model, vocab = _model(cell, layers, embed, dtype)
    for prime in ("", "t", "the c"):
        want = generate_stepwise(model, vocab, prime=prime, length=60, argmax=True)
        assert generate(model, vocab, prime=prime, length=60, argmax=True) == want
    want = generate_stepwise(model, vocab, prime="the", length=200, argmax=True, stop="at")
    assert generate(model, vocab, prime="the", length=200, argmax=True, stop="at") == want


def test_word_level_greedy_text_and_stop():
    model, vocab = _model("lstm", 2, 8, "float32", level="word")
    for stop in (None, "sat", "on the", "the\nthe"):
        want = generate_stepwise(model, vocab, prime="the", length=40, argmax=True, stop=stop)
        assert generate(model, vocab, prime="the", length=40, argmax=True, stop=stop) == want


def test_same_seed_same_text_on_every_thread_count():
    model, vocab = _model("lstm", 2, None, "float32")
    texts = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        try:
            texts.append(generate(model, vocab, length=300, temperature=1.3, top_k=10, seed=11))
            texts.append(generate(model, vocab, length=300, temperature=0.8, top_p=0.9, seed=11))
        finally:
            fastrnn.set_num_threads(0)
    assert texts[0::2] == [texts[0]] * 3 and texts[1::2] == [texts[1]] * 3
    assert len(texts[0]) == 300 and texts[0] != texts[1]


def test_batches_of_sequences():
    model, vocab = _model("gru", 2, 8, "float32")
    greedy = generate(model, vocab, prime="the", length=50, argmax=True)
    assert generate(model, vocab, prime="the", length=50, argmax=True, num_samples=4) == [greedy] * 4
    many = generate(model, vocab, length=80, seed=5, num_samples=6)
    assert len(many) == 6 and len(set(many)) == 6          # independent draws per sequence
    assert many == generate(model, vocab, length=80, seed=5, num_samples=6)


def _constant_logits_model(logits):
    """A language model whose logits are `logits` whatever the input: zero head weights."""
    vocab = Vocab.build("abcdefghij")
    model = LanguageModel(len(vocab), cell="gru", hidden_size=4, num_layers=1, dtype="float64", seed=0)
    model.head._views["weight"][:] = 0
    model.head._views["bias"][:] = logits
    model.invalidate()
    return model, vocab


@pytest.mark.parametrize("settings", [dict(), dict(temperature=0.7), dict(top_k=4),
                                      dict(top_p=0.8, temperature=1.5), dict(top_k=6, top_p=0.9)])
def test_draws_follow_the_filtered_distribution(settings):
    rng = np.random.default_rng(1)
    V = 12
    logits = rng.normal(0, 1.2, V)
    logits[1] = -np.inf                             # <eos> never drawn: one long sequence
    model, vocab = _constant_logits_model(logits)
    n = 20000
    text = generate(model, vocab, length=n, seed=2, **settings)
    assert len(text) == n
    counts = np.bincount(vocab.encode(text), minlength=V)
    p = next_token_probs(logits, **settings)
    assert counts[p == 0].sum() == 0                # filtered tokens never appear
    keep = p > 0
    chi = stats.chisquare(counts[keep], n * p[keep])
    assert chi.pvalue > 1e-4, (counts, n * p)


def test_non_finite_model_raises():
    model, vocab = _model("lstm", 1, None, "float32")
    model.params[:] = np.nan
    model.invalidate()
    for argmax in (True, False):
        with pytest.raises(ValueError, match="NaN"):
            generate(model, vocab, length=5, argmax=argmax, seed=0)


@pytest.mark.parametrize("bad, err", [(0, ValueError), (-2, ValueError), (True, TypeError),
                                      (2.0, TypeError), (10**6, ValueError)])
def test_bad_num_samples(bad, err):
    model, vocab = _model("rnn", 1, None, "float32")
    with pytest.raises(err, match="num_samples"):
        generate(model, vocab, length=3, num_samples=bad)
