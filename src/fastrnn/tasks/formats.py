"""Readers for the four labelled-file formats, with errors that name the file and the line.

    classify   text<TAB>label            one example per line (the label follows the LAST tab)
    tag        token<whitespace>tag      CoNLL: one token per line, a blank line between sentences;
                                         extra columns are ignored, the tag is the last column
    seq2seq    source<TAB>target         one pair per line (exactly one tab)
    forecast   CSV of numbers            one column per series, optional header row

Blank lines (whitespace without a tab) are skipped (classify, seq2seq) or separate sentences
(tag); a line holding a tab is never blank (a lone tab is an empty text). Lines starting with
`-DOCSTART-` (CoNLL-2003 document markers) are skipped. A problem raises `FormatError` ("FILE:LINE:
what was expected", stdin named `<stdin>`); with `errors=[]` a reader instead appends the error to
that list and goes on with the next record, which is how `fastrnn predict` reports bad lines and
predicts the rest. Unlabelled input (`labelled=False`, for predict) takes the text before the
LAST tab, as training does (classify, seq2seq; the whole line without a tab), or the first column
(tag); its blank lines become records with x None, so that predict can answer line for line.
"""
import sys
from collections import namedtuple

import numpy as np

Record = namedtuple("Record", "line x y")          # x: input (text / tokens), y: label or None


class FormatError(ValueError):
    """A line that does not follow its format: `str(e)` is 'FILE:LINE: what was expected'."""

    def __init__(self, path, line, message):
        super().__init__(f"{_name(path)}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


def read_lines(path):
    """(line number, text without its newline) of a UTF-8 file, or of stdin for path '-'.

    A line that is not UTF-8 raises FormatError; a missing file raises OSError.
    """
    for number, text, error in _lines(path):
        if error is not None:
            raise error
        yield number, text


def _lines(path):
    """(line number, text or None, FormatError or None) of every line: decoding errors are
    yielded, not raised, so a caller collecting errors can go on reading."""
    f = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        for number, raw in enumerate(f, 1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n"), None
            except UnicodeDecodeError as e:
                yield number, None, FormatError(_name(path), number, f"not UTF-8 text ({e.reason} "
                                                                     f"at byte {e.start})")
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def _name(path):
    return "<stdin>" if path == "-" else str(path)


def report(errors, error):
    """Raise `error`, or append it to `errors` (a list) to go on with the next record."""
    if errors is None:
        raise error
    errors.append(error)


def _checked_lines(path, errors):
    """(number, text) of the lines that decode; the others are reported (see _report)."""
    for number, text, error in _lines(path):
        if error is None:
            yield number, text
        else:
            report(errors, error)


def _collect(path, errors, parse_line):
    """Records from parse_line(number, text) -> Record or None (skip); errors as in the module doc."""
    records = []
    for number, text in _checked_lines(path, errors):
        try:
            record = parse_line(number, text)
        except FormatError as e:
            report(errors, e)
            continue
        if record is not None:
            records.append(record)
    return records


def _pair(path, labelled, first, second, exactly_one_tab):
    """A parser of 'first<TAB>second' lines (the two names say what each side is)."""
    def parse(number, text):
        if "\t" not in text and not text.strip():
            # predict keeps a placeholder so that its output lines stay aligned with its input's
            return None if labelled else Record(number, None, None)
        if not labelled:
            # the same text as training would take from this line: before the last tab
            x = text.rsplit("\t", 1)[0]
            if not x.strip():
                raise FormatError(_name(path), number, f"empty {first}")
            return Record(number, x, None)
        if "\t" not in text:
            raise FormatError(_name(path), number, f"expected {first}<TAB>{second}, found no tab")
        if exactly_one_tab and text.count("\t") > 1:
            raise FormatError(_name(path), number, f"expected {first}<TAB>{second} with one tab, "
                                                   f"found {text.count(chr(9))}")
        x, y = text.rsplit("\t", 1)
        if not x.strip():
            raise FormatError(_name(path), number, f"empty {first} (expected {first}<TAB>{second})")
        if not y.strip():
            raise FormatError(_name(path), number, f"empty {second} (expected {first}<TAB>{second})")
        return Record(number, x, y.strip() if second == "label" else y)
    return parse


def read_classify(path, labelled=True, errors=None):
    """Records (line, text, label) of a `text<TAB>label` file (label: None if not labelled)."""
    return _collect(path, errors, _pair(path, labelled, "text", "label", False))


def read_seq2seq(path, labelled=True, errors=None):
    """Records (line, source, target) of a `source<TAB>target` file (target: None if not labelled)."""
    return _collect(path, errors, _pair(path, labelled, "source", "target", True))


def read_conll(path, labelled=True, errors=None):
    """Sentences as records (first line, tokens, tags) of a CoNLL file (tags: None if not labelled).

    A sentence with a bad line is dropped as a whole (and reported once per bad line).
    """
    records, tokens, tags, start, bad = [], [], [], None, False

    def flush():
        if tokens and not bad:
            records.append(Record(start, list(tokens), list(tags) if labelled else None))

    for number, text, error in _lines(path):
        cols = [] if error is not None else text.split()
        if error is None and (not cols or cols[0] == "-DOCSTART-"):
            flush()
            tokens, tags, start, bad = [], [], None, False
            continue
        if start is None:
            start = number
        if error is None and labelled and len(cols) < 2:
            error = FormatError(_name(path), number, f"expected token<whitespace>tag, found one "
                                                     f"column ({cols[0][:40]!r})")
        if error is not None:
            report(errors, error)
            bad = True
            continue
        tokens.append(cols[0])
        tags.append(cols[-1])
    flush()
    return records


def read_csv(path, errors=None):
    """(column names, values (N, F) float64, line number of each row) of a CSV of numbers.

    The first row is a header if any of its cells is not a number (names default to their index).
    Every row must have the header's number of cells, each a finite number; blank lines are
    skipped. Rows with errors are dropped (and reported, see the module doc).
    """
    header, rows, numbers = None, [], []
    for number, text in _checked_lines(path, errors):
        if not text.strip():
            continue
        cells = [c.strip() for c in text.split(",")]
        values = [_float(c) for c in cells]
        if header is None and not rows and any(v is None for v in values):
            header = cells
            continue
        width = len(header) if header is not None else len(rows[0]) if rows else len(cells)
        try:
            if len(cells) != width:
                raise FormatError(_name(path), number, f"expected {width} comma-separated cells, "
                                                       f"found {len(cells)}")
            for k, (cell, v) in enumerate(zip(cells, values)):
                if v is None or not np.isfinite(v):
                    raise FormatError(_name(path), number, f"column {k + 1}: expected a finite "
                                                           f"number, found {cell[:40]!r}")
        except FormatError as e:
            report(errors, e)
            continue
        rows.append(values)
        numbers.append(number)
    width = len(header) if header is not None else len(rows[0]) if rows else 0
    names = header or [str(k) for k in range(width)]
    values = np.array(rows, np.float64).reshape(len(rows), width)
    return names, values, numbers


def _float(cell):
    try:
        return float(cell)
    except ValueError:
        return None


READERS = {"classify": read_classify, "tag": read_conll, "seq2seq": read_seq2seq}
