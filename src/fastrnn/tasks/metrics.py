"""Task metrics: accuracy, token accuracy, BIO entity precision/recall/F1, exact match, edit
distance and error rates (character / token, e.g. phoneme), MAE and RMSE.

Entity spans follow conlleval: an entity starts at `B-X`, or at `I-X` when the previous tag is
not part of an X entity (an I- without its B-); it ends before any tag that does not continue it
(`O`, any `B-`, an `I-` of another type). Tags without a `B-`/`I-` prefix count as `O`.
Precision with nothing predicted, and recall with nothing to find, are 1 (nothing was wrong), so
two empty sets give F1 = 1.

Each ratio is built on a `*_counts`/`*_sums` function returning the sums behind it: sums over
disjoint parts add up (data-parallel validation adds the ranks' sums), ratios do not.
"""
import numpy as np


def ratio(part, whole):
    """part / whole, NaN when there is nothing to count."""
    return part / whole if whole else float("nan")


def accuracy_counts(predicted, gold):
    """(equal items, items)."""
    predicted, gold = list(predicted), list(gold)
    _same_length(predicted, gold)
    return sum(p == g for p, g in zip(predicted, gold)), len(gold)


def accuracy(predicted, gold):
    """Share of equal items (NaN for no items)."""
    return ratio(*accuracy_counts(predicted, gold))


def token_counts(predicted, gold):
    """(equal tags, tags) over all tokens of all sentences (lists of tag lists)."""
    predicted, gold = list(predicted), list(gold)
    _same_length(predicted, gold)
    right = total = 0
    for k, (p, g) in enumerate(zip(predicted, gold)):
        if len(p) != len(g):
            raise ValueError(f"predicted[{k}]: expected {len(g)} tags (as gold), got {len(p)}")
        right += sum(a == b for a, b in zip(p, g))
        total += len(g)
    return right, total


def token_accuracy(predicted, gold):
    """Share of equal tags over all tokens of all sentences (lists of tag lists)."""
    return ratio(*token_counts(predicted, gold))


def is_bio(tags):
    """True when every tag is O or B-X / I-X (entity F1 is meaningful)."""
    return all(t == "O" or (t[:2] in ("B-", "I-") and len(t) > 2) for t in tags)


def bio_spans(tags):
    """The entities of one tag sequence: a list of (type, start, end) with end exclusive."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, kind_here = (tag[0], tag[2:]) if tag[:2] in ("B-", "I-") else ("O", None)
        if start is not None and (prefix != "I" or kind_here != kind):
            spans.append((kind, start, i))
            start = None
        if prefix == "B" or (prefix == "I" and start is None):
            start, kind = i, kind_here
    return spans


def entity_prf(predicted, gold):
    """(precision, recall, F1) of exact entity spans over all sentences (see the module doc)."""
    return prf(*entity_counts(predicted, gold))


def entity_counts(predicted, gold):
    """(spans found, spans predicted, gold spans) over all sentences: the sums that entity_prf
    turns into ratios (sums of parts add up, ratios do not)."""
    predicted, gold = list(predicted), list(gold)
    _same_length(predicted, gold)
    tp = n_pred = n_gold = 0
    for p, g in zip(predicted, gold):
        ps, gs = set(bio_spans(p)), set(bio_spans(g))
        tp += len(ps & gs)
        n_pred += len(ps)
        n_gold += len(gs)
    return tp, n_pred, n_gold


def prf(tp, n_pred, n_gold):
    """(precision, recall, F1) from entity_counts (see the module doc for the empty cases)."""
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_gold if n_gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def edit_distance(a, b):
    """Levenshtein distance between two sequences (strings or lists): insertions, deletions
    and substitutions each cost 1."""
    a, b = list(a), list(b)
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def edit_counts(predicted, gold):
    """(total edit distance, total gold length)."""
    predicted, gold = list(predicted), list(gold)
    _same_length(predicted, gold)
    return sum(edit_distance(p, g) for p, g in zip(predicted, gold)), sum(len(g) for g in gold)


def error_rate(predicted, gold):
    """Total edit distance over total gold length (CER on strings, PER/WER on token lists)."""
    return ratio(*edit_counts(predicted, gold))


def exact_counts(predicted, gold):
    """(sequences predicted exactly, sequences)."""
    return accuracy_counts([tuple(p) for p in predicted], [tuple(g) for g in gold])


def exact_match(predicted, gold):
    """Share of sequences predicted exactly."""
    return ratio(*exact_counts(predicted, gold))


def error_sums(predicted, gold):
    """(sum of |error|, sum of error^2, values)."""
    p, g = _arrays(predicted, gold)
    return float(np.abs(p - g).sum()), float(((p - g) ** 2).sum()), g.size


def mae(predicted, gold):
    """Mean absolute error."""
    abs_sum, _, n = error_sums(predicted, gold)
    return ratio(abs_sum, n)


def rmse(predicted, gold):
    """Root mean squared error."""
    _, sq_sum, n = error_sums(predicted, gold)
    return float(np.sqrt(ratio(sq_sum, n)))


def _arrays(predicted, gold):
    p, g = np.asarray(predicted, np.float64), np.asarray(gold, np.float64)
    if p.shape != g.shape:
        raise ValueError(f"predicted: expected shape {g.shape} (as gold), got {p.shape}")
    return p, g


def _same_length(predicted, gold):
    if len(predicted) != len(gold):
        raise ValueError(f"predicted: expected {len(gold)} items (as gold), got {len(predicted)}")
