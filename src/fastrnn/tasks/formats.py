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

Lines end at \\n, \\r\\n or \\r (universal newlines); a UTF-8 byte-order mark before the first
line is dropped. Memory stays bounded: no line (and no CoNLL sentence) may be longer than
`max_line_bytes()`, and the `read_*` functions, which hold a whole file, stop at
`fastrnn.data.max_input_bytes()`; past either limit a FormatError ends the read even when errors
are being collected (an endless line cannot be skipped). The `iter_*` readers stream: they hold
one line (or sentence) at a time.
"""
import csv
import re
import sys
from array import array
from collections import deque, namedtuple

import numpy as np

from ..data import env_limit, max_input_bytes

Record = namedtuple("Record", "line x y")          # x: input (text / tokens), y: label or None

MAX_LINE_BYTES = 1 << 16
"""The longest line a reader takes (64 KiB; FASTRNN_MAX_LINE_BYTES overrides it), also the most
characters of one CoNLL sentence. It bounds more than the reader: an example is padded with its
batch, so one line of T characters costs a char-level model's training about 1 KB x T x --batch
(with the defaults, a 64 KiB line among short ones takes 1.8 GB; a 1 MiB one, over 20 GB)."""
_CHUNK = 1 << 16
_BREAK = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


class FormatError(ValueError):
    """A line that does not follow its format: `str(e)` is 'FILE:LINE: what was expected'."""

    def __init__(self, path, line, message):
        super().__init__(f"{_name(path)}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


class DataError(FormatError):
    """A file that cannot be used as a whole (too large, a single class, ...): `str(e)` is
    'FILE: what was expected', and `line` is None."""

    def __init__(self, path, message):
        ValueError.__init__(self, f"{_name(path)}: {message}")
        self.path, self.line, self.message = path, None, message


class Lines:
    """The lines of a UTF-8 file, or of stdin for path '-', as (number, text, error) triples.

    text is the line without its ending, or None when the line is not UTF-8: error is then its
    FormatError, yielded rather than raised so that a caller collecting errors can go on. The
    input is read in pieces: a line longer than max_line_bytes(), or more than `max_bytes` bytes
    in all (when given), raises FormatError. `waiting` is True when no complete line is left in
    what was read, so that the next one needs a read that may block: predict answers the lines
    it has before that read.
    """

    def __init__(self, path, max_bytes=None):
        self.path, self.max_bytes, self.waiting = path, max_bytes, True
        self.max_line = max_line_bytes()

    def __iter__(self):
        f = sys.stdin.buffer if self.path == "-" else open(self.path, "rb")
        try:
            for number, raw in enumerate(self._raw(f), 1):
                if number == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM):]
                try:
                    yield number, raw.decode("utf-8"), None
                except UnicodeDecodeError as e:
                    yield number, None, FormatError(self.path, number, f"not UTF-8 text ({e.reason} "
                                                                       f"at byte {e.start})")
        finally:
            if f is not sys.stdin.buffer:
                f.close()

    def _raw(self, f):
        """The lines of the binary stream `f` as bytes, split at \\r\\n, \\r and \\n."""
        read = getattr(f, "read1", f.read)          # read1: what is there, without waiting for more
        pending, done, total = b"", 0, 0
        while True:
            self.waiting = True
            chunk = read(_CHUNK)
            total += len(chunk)
            if self.max_bytes is not None and total > self.max_bytes:
                raise DataError(self.path, f"more than {self.max_bytes} bytes, the most fastrnn "
                                           f"reads as a whole (FASTRNN_MAX_INPUT_BYTES raises it)")
            if not chunk:
                break
            data, start, spans = pending + chunk, 0, []
            for m in _BREAK.finditer(data):
                if m.end() == len(data) and m.group() == b"\r":
                    break                           # perhaps the first half of a \r\n: read on
                spans.append((start, m.start()))
                start = m.end()
            pending = data[start:]
            for k, (a, b) in enumerate(spans):
                if b - a > self.max_line:
                    self._too_long(done + 1)
                self.waiting = k == len(spans) - 1
                done += 1
                yield data[a:b]
            if len(pending) > self.max_line:
                self._too_long(done + 1)
        if pending:
            yield pending[:-1] if pending.endswith(b"\r") else pending

    def _too_long(self, number):
        raise FormatError(self.path, number, f"line longer than {self.max_line} bytes, the longest "
                                             f"line fastrnn reads (FASTRNN_MAX_LINE_BYTES raises it)")


def max_line_bytes():
    """MAX_LINE_BYTES, or FASTRNN_MAX_LINE_BYTES when set (ValueError if not a positive integer)."""
    return env_limit("FASTRNN_MAX_LINE_BYTES", MAX_LINE_BYTES)


def read_lines(path):
    """(line number, text without its ending) of a UTF-8 file, or of stdin for path '-'.

    A line that is not UTF-8 (or too long, see Lines) raises FormatError; a missing file raises OSError.
    """
    for number, text, error in Lines(path):
        if error is not None:
            raise error
        yield number, text


def _name(path):
    return "<stdin>" if path == "-" else str(path)


def report(errors, error):
    """Raise `error`, or append it to `errors` (a list) to go on with the next record."""
    if errors is None:
        raise error
    errors.append(error)


def _whole(path):
    """The Lines of a file read as a whole (for training or evaluation): bounded in size."""
    return Lines(path, max_input_bytes())


def _records(lines, errors, parse_line):
    """Records from parse_line(number, text) -> Record or None (skip); errors as in the module doc."""
    for number, text, error in lines:
        if error is not None:
            report(errors, error)
            continue
        try:
            record = parse_line(number, text)
        except FormatError as e:
            report(errors, e)
            continue
        if record is not None:
            yield record


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
        # labels are interned: a large file holds one copy of each, not one per line
        return Record(number, x, sys.intern(y.strip()) if second == "label" else y)
    return parse


def iter_classify(lines, labelled=True, errors=None):
    """Records (line, text, label) of `text<TAB>label` Lines, one at a time (label: None if not labelled)."""
    return _records(lines, errors, _pair(lines.path, labelled, "text", "label", False))


def iter_seq2seq(lines, labelled=True, errors=None):
    """Records (line, source, target) of `source<TAB>target` Lines, one at a time."""
    return _records(lines, errors, _pair(lines.path, labelled, "source", "target", True))


def read_classify(path, labelled=True, errors=None):
    """Records (line, text, label) of a `text<TAB>label` file (label: None if not labelled)."""
    return list(iter_classify(_whole(path), labelled, errors))


def read_seq2seq(path, labelled=True, errors=None):
    """Records (line, source, target) of a `source<TAB>target` file (target: None if not labelled)."""
    return list(iter_seq2seq(_whole(path), labelled, errors))


def iter_conll(lines, labelled=True, errors=None):
    """Sentences of CoNLL Lines as records (first line, tokens, tags), one at a time (tags: None
    if not labelled). A sentence with a bad line is dropped as a whole (and reported once per
    bad line); a sentence longer than max_line_bytes() characters raises FormatError."""
    path, longest = lines.path, lines.max_line
    tokens, tags, start, bad, size = [], [], None, False, 0
    for number, text, error in lines:
        cols = [] if error is not None else text.split()
        if error is None and (not cols or cols[0] == "-DOCSTART-"):
            if tokens and not bad:
                yield Record(start, tokens, tags if labelled else None)
            tokens, tags, start, bad, size = [], [], None, False, 0
            continue
        if start is None:
            start = number
        size += len(text or "")
        if size > longest:
            raise FormatError(path, start, f"sentence longer than {longest} characters (a blank "
                                           f"line ends a sentence; FASTRNN_MAX_LINE_BYTES raises it)")
        if error is None and labelled and len(cols) < 2:
            error = FormatError(_name(path), number, f"expected token<whitespace>tag, found one "
                                                     f"column ({cols[0][:40]!r})")
        if error is not None:
            report(errors, error)
            bad = True
            continue
        tokens.append(cols[0])
        tags.append(sys.intern(cols[-1]))
    if tokens and not bad:
        yield Record(start, tokens, tags if labelled else None)


def read_conll(path, labelled=True, errors=None):
    """Sentences as records (first line, tokens, tags) of a CoNLL file (tags: None if not labelled).

    A sentence with a bad line is dropped as a whole (and reported once per bad line).
    """
    return list(iter_conll(_whole(path), labelled, errors))


# plain decimal notation in ASCII digits (float() also takes '1_5', Arabic-Indic digits, 'nan', ...)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def read_csv(path, errors=None, tail=None):
    """(column names, values (N, F) float64, line number of each row) of a CSV of numbers.

    Lines are parsed by the `csv` module (a quoted cell may hold commas; no cell spans lines).
    The first row is a header if any of its cells is not a number (names default to their
    index). Every row must have the header's number of cells, each a finite number in plain
    decimal notation (such as -1.5 or 2e3); blank lines are skipped. Rows with errors are
    dropped (and reported, see the module doc). With `tail`, only the last `tail` rows are kept
    and the input may be of any length (what predict needs); otherwise it is read as a whole.
    """
    lines = Lines(path) if tail else _whole(path)
    header, width = None, None
    values = deque(maxlen=tail) if tail else array("d")         # 8 bytes a value, not a float object
    numbers = deque(maxlen=tail) if tail else []
    for number, text, error in lines:
        if error is not None:
            report(errors, error)
            continue
        if not text.strip():
            continue
        try:
            cells = _cells(path, number, text)
            if width is None and any(_float(c) is None for c in cells):
                header, width = cells, len(cells)
                continue
            width = len(cells) if width is None else width
            if len(cells) != width:
                raise FormatError(_name(path), number, f"expected {width} comma-separated cells, "
                                                       f"found {len(cells)}")
            row = [_number(path, number, k, cell) for k, cell in enumerate(cells)]
        except FormatError as e:
            report(errors, e)
            continue
        if tail:
            values.append(row)
        else:
            values.extend(row)
        numbers.append(number)
    width = width or 0
    names = header or [str(k) for k in range(width)]
    rows = np.array(values, np.float64) if tail else np.frombuffer(values, np.float64)
    return names, rows.reshape(len(numbers), width), list(numbers)


def _cells(path, number, text):
    """The stripped cells of one CSV line (FormatError for a quote that does not close)."""
    try:
        return [c.strip() for c in next(csv.reader([text], strict=True))]
    except csv.Error as e:
        raise FormatError(_name(path), number, f"not a valid CSV line ({e})") from None


def _float(cell):
    """float(cell), or None: what decides whether the first row is a header (as before)."""
    try:
        return float(cell)
    except ValueError:
        return None


def _number(path, number, k, cell):
    """The value of a cell: a finite number in plain decimal notation, else FormatError naming
    the line and the column."""
    if _NUMBER.fullmatch(cell):
        value = float(cell)
        if np.isfinite(value):
            return value
    other = _float(cell)
    hint = " (plain decimal notation only)" if other is not None and np.isfinite(other) else ""
    raise FormatError(_name(path), number, f"column {k + 1}: expected a finite number, found "
                                           f"{cell[:40]!r}{hint}")


READERS = {"classify": read_classify, "tag": read_conll, "seq2seq": read_seq2seq}
STREAMS = {"classify": iter_classify, "tag": iter_conll, "seq2seq": iter_seq2seq}
