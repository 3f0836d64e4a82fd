"""Text generation from a language model, one token at a time through the single-step kernels.

Each token costs one `model.step` (the layers' `step`: no tape, no full forward) plus drawing
from the next-token distribution, shaped by temperature, top-k and top-p (nucleus) filtering.
"""
import numbers

import numpy as np

# below this, logits / temperature can overflow float64: such a temperature means "argmax"
MIN_TEMPERATURE = 1e-30


def check_sampling(temperature=1.0, top_k=None, top_p=None):
    """Raise TypeError/ValueError naming the argument unless the sampling parameters are valid."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature: expected a positive number, got {temperature!r}")
    if not 0 < temperature < float("inf"):
        raise ValueError(f"temperature: expected a finite positive number, got {temperature!r}")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral):
            raise TypeError(f"top_k: expected None or a positive integer, got {top_k!r}")
        if top_k < 1:
            raise ValueError(f"top_k: expected a positive integer, got {top_k!r}")
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, numbers.Real):
            raise TypeError(f"top_p: expected None or a number in (0, 1], got {top_p!r}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p: expected a number in (0, 1], got {top_p!r}")


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


def generate(model, vocab, prime="", length=500, temperature=1.0, top_k=None, top_p=None,
             argmax=False, stop=None, seed=None):
    """Continue `prime` by up to `length` tokens sampled from `model`; returns prime + generated text.

    argmax=True always takes the most likely token (greedy). Generation ends early at `<eos>`
    or when the generated text contains the string `stop`. Reproducible from `seed`.
    Every argument is checked before anything runs (TypeError/ValueError naming it); a model
    whose logits become NaN raises ValueError instead of sampling garbage.
    """
    if isinstance(length, bool) or not isinstance(length, numbers.Integral):
        raise TypeError(f"length: expected a non-negative integer, got {length!r}")
    if length < 0:
        raise ValueError(f"length: expected a non-negative integer, got {length!r}")
    check_sampling(temperature, top_k, top_p)
    for name, value in (("prime", prime), ("stop", stop)):
        if not isinstance(value, str) and not (name == "stop" and value is None):
            raise TypeError(f"{name}: expected str, got {type(value).__name__}")
    if len(vocab) != model.config["vocab_size"]:
        raise ValueError(f"vocab: has {len(vocab)} tokens but the model was built for "
                         f"{model.config['vocab_size']}")
    rng = np.random.default_rng(seed)
    prime_ids = list(vocab.encode(prime)) if prime else []
    if vocab.level == "word" and prime_ids and prime_ids[-1] == vocab.eos_id and not prime.endswith("\n"):
        prime_ids.pop()             # the word tokenizer ends text with <eos>; continue the line instead
    start = prime_ids or [_start_token(vocab)]
    state, ids = None, np.empty(1, np.int64)     # one reused id buffer: nothing allocated per token
    for token in start[:-1]:        # warm the state up on the prime
        ids[0] = token
        _, state = model.step(ids, state)
    token, out = start[-1], []
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
            break
        out.append(token)
        if stop and stop in vocab.decode(out[-len(stop):]):
            break
    return prime + _join(vocab, prime, out)


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
