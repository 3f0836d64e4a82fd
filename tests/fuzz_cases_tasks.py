"""Fuzz cases of the task side: the file readers, the metrics, and prediction from hostile files."""
import os
import tempfile

import numpy as np
from hypothesis import strategies as st

from fastrnn.tasks import TASKS, metrics as M
from fastrnn.tasks.formats import (MAX_LINE_BYTES, FormatError, read_classify, read_conll, read_csv,
                                   read_seq2seq)

# pieces that make lines interesting to each format: separators, line ends (CR-only too), numbers
# (1_5, Arabic-Indic digits, 1e308 and 1e200 too), quotes, a BOM, specials, NUL, bad UTF-8
_PIECES = st.sampled_from(["a", "bc", " ", "\t", "\n", "\n\n", ",", "1", "-2.5", "nan", "inf", "1e400",
                           "B-PER", "I-LOC", "O", "-DOCSTART-", "\r\n", "\u00e9", "\x00", "\r",
                           "\ufeff", '"', '"a, b"', "1_5", "\u0661\u0662", "1e308", "-1e308", "1e200"])
# a line just past the limit (with or without a newline after it): the read must stop there
_HUGE = st.tuples(st.binary(max_size=8), st.integers(1, 70000), st.sampled_from([b"", b"\n", b"\r"]),
                  st.binary(max_size=8)).map(lambda t: t[0] + b"z" * (MAX_LINE_BYTES + t[1]) + t[2] + t[3])
_CONTENT = st.one_of(st.lists(_PIECES, max_size=30).map(lambda p: "".join(p).encode()),
                     st.lists(_PIECES, max_size=30).map(lambda p: b"\xef\xbb\xbf" + "".join(p).encode()),
                     st.binary(max_size=40), _HUGE)


def _is_limit(e):
    return "longer than" in str(e)
_READERS = {"classify": read_classify, "seq2seq": read_seq2seq, "tag": read_conll}


def _write(content):
    fd, path = tempfile.mkstemp(suffix=".txt")
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    return path


def task_readers(draw):
    fmt = draw(st.sampled_from(sorted(_READERS) + ["csv"]), "format")
    labelled = draw(st.booleans(), "labelled")
    path = _write(draw(_CONTENT, "content"))
    try:
        read = (lambda errors: read_csv(path, errors)) if fmt == "csv" else \
            (lambda errors: _READERS[fmt](path, labelled, errors))
        errors = []
        try:
            collected = read(errors)        # raises only past a limit: other problems are in `errors`
        except FormatError as e:
            assert _is_limit(e), e
            try:
                read(None)
            except FormatError:             # the strict read stops there too, or at an earlier problem
                raise e from None
            raise AssertionError("the strict read went past the limit") from None
        assert all(isinstance(e, FormatError) and e.line >= 1 for e in errors)
        if fmt == "csv":
            names, values, lines = collected
            assert values.shape == (len(lines), len(names)) and np.isfinite(values).all()
        else:
            for r in collected:
                assert r.line >= 1 and len(r.x) and (r.y is None) != labelled
                assert not labelled or (fmt == "tag" and len(r.y) == len(r.x)) or r.y.strip()
        strict = read(None)                 # the first problem raises FormatError (a ValueError)
        assert not errors, f"raised nothing but collected {errors}"
        if fmt == "csv":
            np.testing.assert_array_equal(strict[1], collected[1])
        else:
            assert strict == collected
    finally:
        os.unlink(path)


_TAGS = st.lists(st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "X"]), max_size=8)


def task_metrics(draw):
    gold = draw(st.lists(_TAGS, max_size=4), "gold")
    pred = [draw(st.lists(st.sampled_from(["O", "B-PER", "I-PER", "I-LOC"]), min_size=len(g),
                          max_size=len(g)), "pred") for g in gold]
    if draw(st.booleans(), "break lengths") and gold:
        pred = pred[:-1]
    p, r, f1 = M.entity_prf(pred, gold)
    assert len(pred) == len(gold), "accepted sentence lists of different lengths"
    assert 0 <= min(p, r, f1) and max(p, r, f1) <= 1
    has_spans = any(M.bio_spans(g) for g in gold)
    assert M.entity_prf(gold, gold) == ((1.0, 1.0, 1.0) if has_spans else (0.0, 0.0, 0.0))
    for tags in gold:
        spans = M.bio_spans(tags)
        assert all(0 <= s < e <= len(tags) for _, s, e in spans)
        assert all(a[2] <= b[1] for a, b in zip(spans, spans[1:]))     # ordered, disjoint
    a, b, c = (draw(st.text("abc", max_size=6), name) for name in "abc")
    d = M.edit_distance(a, b)
    assert d == M.edit_distance(b, a) and abs(len(a) - len(b)) <= d <= max(len(a), len(b))
    assert d <= M.edit_distance(a, c) + M.edit_distance(c, b) and (d == 0) == (a == b)


_FITTED = {}


def _fitted(name):
    """A task fitted on a tiny file and its (untrained) model, built once per process."""
    if name not in _FITTED:
        content = {"classify": "ab\tx\ncd\ty\n", "seq2seq": "ab\tba\ncd\tdc\n",
                   "tag": "John B-PER\nruns O\n\nParis B-LOC\n", "forecast": "a,b\n" + "".join(
                       f"{k},{k % 3}\n" for k in range(12))}[name]
        path = _write(content.encode())
        o = dict(level="char", min_count=1, cell="gru", hidden=4, layers=1, dropout=0.0, embed=3,
                 batch=4, seed=0, dtype="float64", bidirectional=None, pool="mean", target=None,
                 horizon=2, window=3, beam=None)
        task = TASKS[name](o)
        data = task.read(path)
        task.fit(data, data)
        os.unlink(path)
        _FITTED[name] = task, task.build_model()
    return _FITTED[name]


def task_predict(draw):
    name = draw(st.sampled_from(sorted(TASKS)), "task")
    task, model = _fitted(name)
    task.o["beam"] = draw(st.sampled_from([None, 1, 2]), "beam")
    path = _write(draw(_CONTENT, "content"))
    try:
        errors = []
        data = task.read(path, labelled=False, errors=errors)
        outputs = task.predict_file(model, data, path, errors)  # forecast: FormatError if too short
        assert all(isinstance(o, str) for o in outputs)
        if name == "forecast":
            assert len(outputs) == 2 and all(np.isfinite(float(v)) for v in outputs)
        else:
            assert len(outputs) + sum(e.line >= 1 for e in errors) >= len(data)
    finally:
        os.unlink(path)
