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
    whose logits become NaN raises ValueError instead of sampling garbage. `stream` yields the
    same text piece by piece; `beam_search` looks for the most likely continuation instead.
    """
    return prime + "".join(stream(model, vocab, prime, length, temperature, top_k, top_p, argmax,
                                  stop, seed))


def stream(model, vocab, prime="", length=500, temperature=1.0, top_k=None, top_p=None,
           argmax=False, stop=None, seed=None):
    """`generate` as it goes: an iterator over the generated text (prime not included), one piece
    per token, each yielded as soon as its token is drawn. With the same arguments,
    `prime + "".join(stream(...)) == generate(...)`. Arguments are checked at the call, not at
    the first `next`."""
    _check_request(model, vocab, prime, length, stop)
    check_sampling(temperature, top_k, top_p)
    return _sampled_pieces(model, vocab, prime, length, temperature, top_k, top_p, argmax, stop,
                           np.random.default_rng(seed))


def _check_request(model, vocab, prime, length, stop):
    if isinstance(length, bool) or not isinstance(length, numbers.Integral):
        raise TypeError(f"length: expected a non-negative integer, got {length!r}")
    if length < 0:
        raise ValueError(f"length: expected a non-negative integer, got {length!r}")
    for name, value in (("prime", prime), ("stop", stop)):
        if not isinstance(value, str) and not (name == "stop" and value is None):
            raise TypeError(f"{name}: expected str, got {type(value).__name__}")
    if len(vocab) != model.config["vocab_size"]:
        raise ValueError(f"vocab: has {len(vocab)} tokens but the model was built for "
                         f"{model.config['vocab_size']}")


def _primed(model, vocab, prime):
    """(state after all but the prime's last token, that token): where generation starts."""
    prime_ids = list(vocab.encode(prime)) if prime else []
    if vocab.level == "word" and prime_ids and prime_ids[-1] == vocab.eos_id and not prime.endswith("\n"):
        prime_ids.pop()             # the word tokenizer ends text with <eos>; continue the line instead
    start = prime_ids or [_start_token(vocab)]
    state, ids = None, np.empty(1, np.int64)
    for token in start[:-1]:        # warm the state up on the prime
        ids[0] = token
        _, state = model.step(ids, state)
    return state, start[-1]


def _sampled_pieces(model, vocab, prime, length, temperature, top_k, top_p, argmax, stop, rng):
    state, token = _primed(model, vocab, prime)
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


MAX_BEAM = 256      # the beams are one batch of `step`s: a wider beam is refused, not allocated


def beam_search(model, vocab, prime="", length=100, beam=5, alpha=1.0, stop=None):
    """Continue `prime` with the most likely text that beam search finds; returns prime + text.

    Keeps the `beam` partial continuations with the highest total log-probability at each step
    (run as one batch of `model.step`). A hypothesis ends at `<eos>` (not part of its text, but
    its log-probability and length count), when its text contains `stop`, or after `length`
    generated tokens; an ended hypothesis frees its place, so the search stops once `beam` have
    ended. The answer is the ended hypothesis with the best length-normalised score
    sum(log p) / n**alpha over its n tokens: alpha=1 (default) compares mean log-probabilities
    per token, alpha=0 total ones (which favours ending early). beam=1 is greedy decoding, the
    text of `generate(..., argmax=True)`. Deterministic (no seed). Arguments are checked before
    anything runs (beam: an integer in [1, MAX_BEAM]; alpha: a finite number >= 0), with
    TypeError/ValueError naming the bad one; logits that become NaN raise ValueError.
    """
    _check_request(model, vocab, prime, length, stop)
    if isinstance(beam, bool) or not isinstance(beam, numbers.Integral):
        raise TypeError(f"beam: expected an integer in [1, {MAX_BEAM}], got {beam!r}")
    if not 1 <= beam <= MAX_BEAM:
        raise ValueError(f"beam: expected an integer in [1, {MAX_BEAM}], got {beam!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha: expected a finite number >= 0, got {alpha!r}")
    if not 0 <= alpha < float("inf"):
        raise ValueError(f"alpha: expected a finite number >= 0, got {alpha!r}")
    state, token = _primed(model, vocab, prime)
    V, eos = len(vocab), vocab.eos_id
    tokens, sums = np.array([token], np.int64), np.zeros(1)    # live hypotheses: last token, sum log p
    back = np.zeros(1, np.int64)           # live hypothesis -> its candidate index in steps[-1]
    steps, ended = [], []   # steps[t]: (parent candidate in steps[t - 1], token); ended: (sum, t, candidate)
    for t in range(length):
        logits, state = model.step(tokens, state)
        logits = np.asarray(logits, np.float64)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            z = logits - logits.max(axis=1, keepdims=True)
            cand = (sums[:, None] + z - np.log(np.exp(z).sum(axis=1, keepdims=True))).ravel()
        if np.isnan(cand).any():
            raise ValueError("logits: NaN (does the model have non-finite parameters?)")
        width = beam - len(ended)          # >= the live hypotheses; 1 means exactly one is live
        if width == 1:
            top = np.array([int(np.argmax(logits[0]))])        # exactly generate's argmax
        else:
            top = np.argpartition(-cand, width - 1)[:width] if width < cand.size else np.arange(cand.size)
            top = top[np.lexsort((top, -cand[top]))]           # best first, ties by index
        parents, tokens, sums = top // V, top % V, cand[top]
        steps.append((back[parents], tokens))
        done = tokens == eos
        if stop:
            for row in np.flatnonzero(~done):
                done[row] = stop in vocab.decode(_trace(steps, t, row, len(stop)))
        ended += [(sums[row], t, row) for row in np.flatnonzero(done)]
        live = np.flatnonzero(~done)
        if live.size == 0:
            break
        state = _take_rows(state, parents[live])
        tokens, sums, back = tokens[live], sums[live], live
    else:                                  # `length` tokens (or length 0): the live ones end here
        ended += [(sums[row], length - 1, back[row]) for row in range(len(tokens) if length else 0)]
    if not ended:
        return prime
    best = max(range(len(ended)), key=lambda i: ended[i][0] / (ended[i][1] + 1) ** alpha)
    _, t, c = ended[best]
    ids = _trace(steps, t, c, t + 1)
    return prime + _join(vocab, prime, ids[:-1] if ids[-1] == eos else ids)


def _trace(steps, t, c, k):
    """The last k tokens (at most) of the hypothesis that is candidate c of step t."""
    out = []
    while t >= 0 and len(out) < k:
        parent, tokens = steps[t]
        out.append(int(tokens[c]))
        c, t = parent[c], t - 1
    return out[::-1]


def _take_rows(state, rows):
    """A model state (arrays (layers, batch, width), in tuples for an LSTM) for the given rows."""
    if isinstance(state, (tuple, list)):
        return type(state)(_take_rows(s, rows) for s in state)
    return None if state is None else state[:, rows]


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
