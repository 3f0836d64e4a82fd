"""Task metrics: accuracy, token accuracy, BIO/IOBES entity precision/recall/F1, exact match, edit
distance and error rates (character / token, e.g. phoneme), MAE and RMSE.

Entity spans and scores follow conlleval (CoNLL-2000's evaluation script), with its IOBES
extension as in seqeval's conlleval mode: tags are `O` or `P-TYPE` with P in B, I, E, S. A chunk
starts at `B-`/`S-`, at an `I-`/`E-` after `O`, `E-` or `S-`, or at any tag whose type differs
from the previous one's; it ends after `E-`/`S-`, before `B-`/`S-`/`O`, or before a change of
type. So an `I-X` without its `B-X` starts an entity, as in conlleval. Tags without such a prefix
count as `O`. Precision with nothing predicted, recall with nothing to find, and F1 when
precision + recall is 0 are all 0, as conlleval prints them (so two empty sets give 0, 0, 0).

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


def is_iobes(tags):
    """True when every tag is O or B-X / I-X / E-X / S-X (IOBES, also called BIOES)."""
    return all(t == "O" or (t[:2] in ("B-", "I-", "E-", "S-") and len(t) > 2) for t in tags)


def is_entity_tags(tags):
    """True when the tags are BIO or IOBES, so that entity F1 is meaningful."""
    return is_bio(tags) or is_iobes(tags)


def _split_tag(tag):
    """(prefix, type) of a tag; anything but B-/I-/E-/S-TYPE is ("O", "")."""
    if isinstance(tag, str) and tag[:2] in ("B-", "I-", "E-", "S-") and len(tag) > 2:
        return tag[0], tag[2:]
    return "O", ""


def _chunk_end(prev, tag, prev_type, kind):
    """conlleval's endOfChunk (with S): the chunk open at the previous tag ends before this one."""
    return (prev in ("E", "S") or (prev in ("B", "I") and tag in ("B", "S", "O"))
            or (prev != "O" and prev_type != kind))


def _chunk_start(prev, tag, prev_type, kind):
    """conlleval's startOfChunk (with S): a chunk starts at this tag."""
    return (tag in ("B", "S") or (prev in ("E", "S", "O") and tag in ("I", "E"))
            or (tag != "O" and prev_type != kind))


def bio_spans(tags):
    """The entities of one BIO or IOBES tag sequence (conlleval's chunks): a list of
    (type, start, end) with end exclusive."""
    spans, start, prev, prev_type = [], None, "O", ""
    for i, raw in enumerate(list(tags) + ["O"]):
        tag, kind = _split_tag(raw)
        if start is not None and _chunk_end(prev, tag, prev_type, kind):
            spans.append((prev_type, start, i))
            start = None
        if _chunk_start(prev, tag, prev_type, kind):
            start = i
        prev, prev_type = tag, kind
    return spans


iobes_spans = bio_spans      # one rule set reads both schemes


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
    """(precision, recall, F1) from entity_counts, as conlleval: 0 for an empty denominator."""
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
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
