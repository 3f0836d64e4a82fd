"""Sampling: filtering of the next-token distribution, determinism, priming and stopping."""
import numpy as np
import pytest

from fastrnn.data import Vocab
from fastrnn.sample import generate, next_token_probs
from lm_helpers import memorise


def test_temperature_top_k_top_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    np.testing.assert_allclose(next_token_probs(logits), [0.5, 0.3, 0.15, 0.05])
    np.testing.assert_allclose(next_token_probs(logits, top_k=2), [0.625, 0.375, 0, 0])
    np.testing.assert_allclose(next_token_probs(logits, top_p=0.8), [0.625, 0.375, 0, 0])
    np.testing.assert_allclose(next_token_probs(logits, top_p=0.81), np.array([0.5, 0.3, 0.15, 0]) / 0.95)
    cold = next_token_probs(logits, temperature=0.1)
    assert cold[0] > 0.99
    hot = next_token_probs(logits, temperature=100)
    assert hot.max() - hot.min() < 0.02
    for bad in (dict(temperature=0), dict(top_k=0), dict(top_p=0), dict(top_p=1.5)):
        with pytest.raises(ValueError, match=list(bad)[0]):
            next_token_probs(logits, **bad)


@pytest.fixture(scope="module")
def trained():
    model, vocab, _ = memorise("hello world\n" * 20, 120, lr=2e-2, hidden_size=32, num_layers=1, seed=0)
    return model, vocab


def test_argmax_reproduces_the_training_text(trained):
    model, vocab = trained
    assert generate(model, vocab, prime="hello", length=24, argmax=True) == "hello world\nhello world\nhello"


def test_seed_makes_sampling_reproducible_and_stop_ends_it(trained):
    model, vocab = trained
    a = generate(model, vocab, length=50, temperature=1.5, seed=3)
    assert a == generate(model, vocab, length=50, temperature=1.5, seed=3)
    assert len(a) == 50
    s = generate(model, vocab, prime="h", length=100, argmax=True, stop="world")
    assert s == "hello world"


def test_bad_arguments(trained):
    model, vocab = trained
    with pytest.raises(ValueError, match="length"):
        generate(model, vocab, length=-1)
    with pytest.raises(ValueError, match="vocab"):
        generate(model, Vocab.build("xyz"), length=3)


def test_word_level_generation():
    model, vocab, _ = memorise("the cat sat on the mat\n" * 15, 80, lr=3e-2, level="word",
                               hidden_size=24, num_layers=1, embed_size=8, seed=1)
    assert generate(model, vocab, prime="the cat", length=4, argmax=True) == "the cat sat on the mat"
    # an empty prime starts a line; <eos> ends the sample
    assert generate(model, vocab, length=50, argmax=True) == "the cat sat on the mat"


def test_every_parameter_is_checked_before_anything_runs(trained):
    model, vocab = trained
    for bad, err in ((dict(temperature=-3), ValueError), (dict(top_p=3), ValueError),
                     (dict(top_k=0), ValueError), (dict(temperature=float("nan")), ValueError),
                     (dict(temperature=float("inf")), ValueError), (dict(top_k=2.5), TypeError),
                     (dict(temperature="1"), TypeError), (dict(length=True), TypeError),
                     (dict(stop=b"x"), TypeError)):
        with pytest.raises(err, match=list(bad)[0]):
            generate(model, vocab, length=0, **bad)       # length=0 samples nothing, still checked
    with pytest.raises(TypeError, match="prime: expected str"):
        generate(model, vocab, prime=b"hello", length=3)


def test_tiny_temperature_is_argmax_not_overflow(trained):
    model, vocab = trained
    greedy = generate(model, vocab, prime="hello", length=24, argmax=True)
    for t in (1e-320, 1e-40, 5e-324):
        assert generate(model, vocab, prime="hello", length=24, temperature=t, seed=0) == greedy
    logits = np.array([1e308, 1e308 * 0.5, -np.inf, 3.0])    # overflows when divided by 0.5
    np.testing.assert_array_equal(next_token_probs(logits, temperature=0.5), [1, 0, 0, 0])
    np.testing.assert_array_equal(next_token_probs([1.0, 2.0, 2.0], temperature=1e-320), [0, 0.5, 0.5])


def test_nan_parameters_raise_instead_of_sampling(trained):
    model, vocab = trained
    broken = type(model)(**model.config)
    broken.params[...] = model.params
    dict(broken.named_parameters())["head.bias"][0] = np.nan
    for kw in (dict(seed=0), dict(argmax=True), dict(top_k=3, seed=0)):
        with pytest.raises(ValueError, match="NaN"):
            generate(broken, vocab, prime="he", length=5, **kw)
    with pytest.raises(ValueError, match="NaN"):
        next_token_probs([0.0, np.nan])
    with pytest.raises(ValueError, match="-inf"):
        next_token_probs([-np.inf, -np.inf])
