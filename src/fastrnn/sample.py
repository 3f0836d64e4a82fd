"""Text generation from a language model, one token at a time through the single-step kernels.

Each token costs one `model.step` (the layers' `step`: no tape, no full forward) plus drawing
from the next-token distribution, shaped by temperature, top-k and top-p (nucleus) filtering.
"""
from __future__ import annotations

import numpy as np

from . import checks

# below this, logits / temperature can overflow float64: such a temperature means "argmax"
MIN_TEMPERATURE = 1e-30


def check_sampling(temperature=1.0, top_k=None, top_p=None):
    """Raise TypeError/ValueError naming the argument unless the sampling parameters are valid."""
    checks.real("temperature", temperature, 0, low_open=True, expected="a finite positive number")
    checks.integer("top_k", top_k, 1, none_ok=True)
    checks.real("top_p", top_p, 0, 1, low_open=True, none_ok=True)


def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    """Probabilities (V,) from logits (V,) after temperature, top-k and top-p filtering.

    top_k keeps the k most likely tokens; top_p keeps the smallest set of most likely tokens
    whose total probability reaches top_p. What is dropped gets probability exactly 0.
    A temperature below MIN_TEMPERATURE (or one that overflows the logits) gives the argmax.
    Logits with NaN (e.g. from a model with non-finite parameters) raise ValueError.
    """
    check_sampling(temperature, top_k, top_p)
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 1 or logits.size == 0:
        raise ValueError(f"logits: expected a non-empty 1-D array, got shape {logits.shape}")
    if np.isnan(logits).any() or not (logits > -np.inf).any():
        raise ValueError("logits: NaN or all -inf (does the model have non-finite parameters?)")
    with np.errstate(over="ignore"):        # an overflow to inf is handled just below
        z = logits / max(temperature, MIN_TEMPERATURE)
    if temperature < MIN_TEMPERATURE or np.isposinf(z).any():
        top = logits if temperature < MIN_TEMPERATURE else z
        z = np.where(top == top.max(), 0.0, -np.inf)     # the limit T -> 0: mass on the maxima
    p = np.exp(z - z.max())
    if top_k is not None and top_k < p.size:
        p[p < np.partition(p, -top_k)[-top_k]] = 0
    if top_p is not None:
        order = np.argsort(-p, kind="stable")
        mass = np.cumsum(p[order]) / p.sum()
        keep = np.searchsorted(mass, top_p - 1e-12) + 1   # smallest prefix reaching top_p (with rounding slack)
        p[order[keep:]] = 0
    return p / p.sum()


def generate(model, vocab, prime: str = "", length: int = 500, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, argmax: bool = False,
             stop: str | None = None, seed: int | None = None,
             num_samples: int | None = None, condition=None) -> str | list[str]:
    """Continue `prime` by up to `length` tokens sampled from `model`; returns prime + generated text.

    argmax=True always takes the most likely token (greedy). Generation ends early at `<eos>`
    or when the generated text contains the string `stop`. Reproducible from `seed`: the same
    seed gives the same text on every run and thread count. num_samples=n generates n sequences
    side by side (one batch through the model) and returns a list of n texts.
    Every argument is checked before anything runs (TypeError/ValueError naming it); a model
    whose logits become NaN raises ValueError instead of sampling garbage. `stream` yields the
    same text piece by piece; `beam_search` looks for the most likely continuation instead.

    A language model with a native loop (`model.generator`) runs the whole loop in C -- prime,
    steps, head, temperature/top-k/top-p, the draw and the stop test -- in one call per
    CHUNK tokens; other models step through `model.step` in Python (`generate_stepwise`).

    A `ConditionedGenerator` generates from the state its `condition` gives (then `prime`), in
    the same loop; its text is `ConditionedGenerator.generate`'s, decoded up to `<eos>`.

    Parameters
    ----------
    model : LanguageModel or ConditionedGenerator
        A trained language model (anything with ``step``), or a conditioned one with `condition`.
    vocab : Vocab
        The model's vocabulary.
    prime : str, default ""
        Text to start from (its tokens must be in `vocab`).
    length : int, default 500
        Most tokens to generate.
    temperature : float, default 1.0
        Softmax temperature (> 0); lower is more conservative.
    top_k : int, optional
        Sample among the `top_k` most likely tokens only.
    top_p : float, optional
        Nucleus sampling: the smallest set of tokens whose probability reaches `top_p`.
    argmax : bool, default False
        Always take the most likely token (greedy decoding).
    stop : str, optional
        End when the generated text contains this string.
    seed : int, optional
        Seed of the draws (None: fresh entropy).
    num_samples : int, optional
        Generate that many texts in one batch and return a list.
    condition : int or array-like, optional
        A ConditionedGenerator's condition (required for one, refused for other models): one
        class id, or one vector of its condition_size numbers.

    Returns
    -------
    str or list of str
        `prime` followed by the generated text; a list of `num_samples` texts when it is given.

    Raises
    ------
    TypeError, ValueError
        A bad argument (named in the message), or logits that became NaN.
    """
    _check_generate(model, vocab, length, temperature, top_k, top_p, prime, stop, num_samples)
    model, start = _begin(model, vocab, prime, condition)
    if not hasattr(model, "generator"):
        texts = [prime + "".join(_sampled_pieces(model, vocab, prime, length, temperature, top_k, top_p,
                                                 argmax, stop, rng, start))
                 for rng in _rngs(seed, num_samples)]
        return texts[0] if num_samples is None else texts
    B = 1 if num_samples is None else num_samples
    gen = _native(model, vocab, start, B, length, temperature, top_k, top_p, argmax, stop)
    sample_native(gen, length, argmax, np.random.default_rng(seed))
    texts = [prime + _join(vocab, prime, gen.out[:gen.n_out[b], b]) for b in range(B)]
    return texts[0] if num_samples is None else texts


#: tokens generated per native call between two looks at the loop from Python
CHUNK = 1024


def sample_native(gen, length, argmax, rng):
    """Run a started native loop (`fastrnn._kernels.Generator`) for up to `length` rounds, CHUNK
    at a time, until every sequence is done; the draws from `rng` in the order the stepwise loop
    makes them, one per token and sequence (none with argmax)."""
    done, B = 0, gen.done.shape[0]
    while done < length and not gen.done.all():
        steps = min(CHUNK, length - done)
        done += gen.sample(steps, None if argmax else rng.random((steps, B)))


def stream(model, vocab, prime="", length=500, temperature=1.0, top_k=None, top_p=None,
           argmax=False, stop=None, seed=None, condition=None):
    """`generate` as it goes: an iterator over the generated text (prime not included), one piece
    per token, each yielded as soon as its token is drawn. With the same arguments (a
    ConditionedGenerator's `condition` included), `prime + "".join(stream(...)) == generate(...)`.
    Arguments are checked at the call, not at the first `next`."""
    _check_generate(model, vocab, length, temperature, top_k, top_p, prime, stop, None)
    model, start = _begin(model, vocab, prime, condition)
    if not hasattr(model, "generator"):
        return _sampled_pieces(model, vocab, prime, length, temperature, top_k, top_p, argmax, stop,
                               np.random.default_rng(seed), start)
    gen = _native(model, vocab, start, 1, length, temperature, top_k, top_p, argmax, stop)
    return _native_pieces(gen, vocab, prime, length, argmax, np.random.default_rng(seed))


def _begin(model, vocab, prime, condition):
    """(the model that generates, (its initial state for one sequence or None, the ids to step
    through: all but the last warm the state up, the last is the first input of the draws))."""
    conditioned = hasattr(model, "condition_start")
    if conditioned != (condition is not None):
        raise (ValueError if conditioned else TypeError)(
            f"condition: {'required' if conditioned else 'not taken'} by a {type(model).__name__}")
    prime_ids = _prime_ids(vocab, prime)
    if not conditioned:
        return model, (None, prime_ids or [_start_token(vocab)])
    model, state, first = model.condition_start(condition)
    return model, (state, [first] + prime_ids)


def _load_state(gen, state):
    """Start every sequence of a native loop (`fastrnn._kernels.Generator`) from `state`: h, or
    (h, c) for an LSTM, each (L, B, H) or (L, 1, H) (one state for all B sequences)."""
    for buf, part in zip((gen.h_state, gen.c_state), state if isinstance(state, tuple) else (state,)):
        buf.reshape(part.shape[0], -1, part.shape[2])[:] = part   # (L, B, H) layer-major, as the loop keeps it


def _native(model, vocab, start, B, length, temperature, top_k, top_p, argmax, stop):
    """The model's native generation loop for B sequences, started as `_begin` says (its initial
    state loaded, the ids fed), ready to sample."""
    gen = model.generator(B, length, temperature=temperature, top_k=top_k or 0,
                          top_p=0.0 if top_p is None else top_p, argmax=argmax,
                          eos=vocab.eos_id, token_text=_token_texts(vocab),
                          word=vocab.level == "word", stop=stop or None)
    state, ids = start
    if state is not None:
        _load_state(gen, state)
    if len(ids) > 1:
        gen.feed(np.repeat(np.asarray(ids[:-1], np.int32)[:, None], B, axis=1))
    gen.start(np.full(B, ids[-1], np.int32))
    return gen


def _native_pieces(gen, vocab, prime, length, argmax, rng):
    """The native loop one token at a time (the same draws as `generate`'s chunks)."""
    for _ in range(length):
        if gen.done[0]:
            return
        n = int(gen.n_out[0])
        gen.sample(1, None if argmax else rng.random((1, 1)))
        if gen.n_out[0] > n:
            yield _piece(vocab, prime, gen.out[:n + 1, 0])


def _check_request(model, vocab, prime, length, stop):
    checks.integer("length", length, 0)
    for name, value in (("prime", prime), ("stop", stop)):
        if not isinstance(value, str) and not (name == "stop" and value is None):
            raise TypeError(f"{name}: expected str, got {type(value).__name__}")
    if len(vocab) != model.config["vocab_size"]:
        raise ValueError(f"vocab: has {len(vocab)} tokens but the model was built for "
                         f"{model.config['vocab_size']}")


def _check_generate(model, vocab, length, temperature, top_k, top_p, prime, stop, num_samples):
    _check_request(model, vocab, prime, length, stop)
    check_sampling(temperature, top_k, top_p)
    checks.integer("num_samples", num_samples, 1, 4096, none_ok=True)


def _rngs(seed, num_samples):
    """One generator per sequence of the stepwise path: the seed's, then its spawned children."""
    rng = np.random.default_rng(seed)
    return [rng] if num_samples is None else rng.spawn(num_samples)


def _prime_ids(vocab, prime):
    """The prime's ids (the last one is the first input of the sampling loop)."""
    prime_ids = list(vocab.encode(prime)) if prime else []
    if vocab.level == "word" and prime_ids and prime_ids[-1] == vocab.eos_id and not prime.endswith("\n"):
        prime_ids.pop()             # the word tokenizer ends text with <eos>; continue the line instead
    return prime_ids


def _token_texts(vocab):
    """Every token's text as Vocab.decode writes it (for the native loop's stop test)."""
    if vocab.level == "char":
        return ["\ufffd" if i == 0 else "" if i == 1 else t for i, t in enumerate(vocab.tokens)]
    return ["\n" if i == vocab.eos_id else t for i, t in enumerate(vocab.tokens)]


def _primed(model, start):
    """(state after all but the last of `_begin`'s ids, that id): where stepwise generation starts."""
    state, start = start
    ids = np.empty(1, np.int64)
    for token in start[:-1]:        # warm the state up on the prime
        ids[0] = token
        _, state = model.step(ids, state)
    return state, start[-1]


def generate_stepwise(model, vocab, prime="", length=500, temperature=1.0, top_k=None, top_p=None,
                      argmax=False, stop=None, rng=None):
    """`generate` as a Python loop over `model.step`: for models without a native loop, and the
    reference the native loop is tested against. rng: a numpy Generator (or a seed)."""
    _check_generate(model, vocab, length, temperature, top_k, top_p, prime, stop, None)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return prime + "".join(_sampled_pieces(model, vocab, prime, length, temperature, top_k, top_p,
                                           argmax, stop, rng, _begin(model, vocab, prime, None)[1]))


def _sampled_pieces(model, vocab, prime, length, temperature, top_k, top_p, argmax, stop, rng, start):
    state, token = _primed(model, start)
    ids, out = np.empty(1, np.int64), []     # one reused id buffer: nothing allocated per token
    for _ in range(length):
        ids[0] = token
        logits, state = model.step(ids, state)
        if argmax:
            if np.isnan(logits[0]).any():
                raise ValueError("logits: NaN (does the model have non-finite parameters?)")
            token = int(np.argmax(logits[0]))
        else:
            p = next_token_probs(logits[0], temperature, top_k, top_p)
            token = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
            token = min(token, len(p) - 1)
        if token == vocab.eos_id:
            return
        out.append(token)
        yield _piece(vocab, prime, out)
        if stop and stop in vocab.decode(out[-len(stop):]):
            return


def _piece(vocab, prime, ids):
    """The text that ids[-1] adds to _join(vocab, prime, ids[:-1]) (decoding depends only on
    the previous token: a space between words, none after a newline)."""
    if len(ids) == 1:
        return _join(vocab, prime, ids)
    return vocab.decode(ids[-2:])[len(vocab.decode(ids[-2:-1])):]


def _start_token(vocab):
    """What an empty prime starts from: the start of a line."""
    if vocab.level == "char" and "\n" in vocab.tokens:
        return vocab.tokens.index("\n")
    return vocab.eos_id


def _join(vocab, prime, ids):
    text = vocab.decode(ids)
    if vocab.level == "word" and prime and text and not prime.endswith(("\n", " ")):
        return " " + text
    return text
