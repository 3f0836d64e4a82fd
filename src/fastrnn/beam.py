"""Beam search over a language model: the most likely continuation of a prime, as
`fastrnn sample --beam N` runs it (one batch of `model.step` per step for all hypotheses)."""
from __future__ import annotations

import numpy as np

from . import checks
from .sample import _begin, _check_request, _join, _primed

MAX_BEAM = 256      # the beams are one batch of `step`s: a wider beam is refused, not allocated


def beam_search(model, vocab, prime: str = "", length: int = 100, beam: int = 5, alpha: float = 1.0,
                stop: str | None = None) -> str:
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

    Parameters
    ----------
    model : LanguageModel
        A trained language model (anything with ``step``).
    vocab : Vocab
        The model's vocabulary.
    prime : str, default ""
        Text to start from.
    length : int, default 100
        Most tokens generated per hypothesis.
    beam : int, default 5
        Hypotheses kept at each step, in [1, MAX_BEAM]; 1 is greedy decoding.
    alpha : float, default 1.0
        Length normalisation exponent (>= 0): 1 compares mean log-probabilities, 0 totals.
    stop : str, optional
        A hypothesis ends when its text contains this string.

    Returns
    -------
    str
        `prime` followed by the best hypothesis' text.

    Raises
    ------
    TypeError, ValueError
        A bad argument (named in the message), or logits that became NaN.
    """
    if hasattr(model, "condition_start"):       # its text starts from a condition: generate(condition=)
        raise TypeError(f"model: beam search takes a language model, not a {type(model).__name__} "
                        "(fastrnn.generate(..., condition=) samples from one)")
    _check_request(model, vocab, prime, length, stop)
    checks.integer("beam", beam, 1, MAX_BEAM)
    checks.real("alpha", alpha, 0, expected="a finite number >= 0")
    state, token = _primed(model, _begin(model, vocab, prime, None)[1])
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
