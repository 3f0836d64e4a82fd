"""Bounded, standard input reading (issue 19 item 6, issue 24 item 4): line endings, byte-order
marks, the line and file limits, CSV by the `csv` module with plain decimal numbers, forecast
statistics that do not overflow, and the language-model corpus and vocabulary."""
import io
import random
import sys
import tracemalloc
import warnings

import numpy as np
import pytest

from fastrnn import data as D
from fastrnn.tasks import Forecast, formats as F
from fastrnn.tasks.forecast import Series
from fastrnn.tasks.formats import (DataError, FormatError, Lines, read_classify, read_conll, read_csv,
                                   read_seq2seq)


def write(tmp_path, content, name="f.txt"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def universal_lines(data):
    """What Python's universal newlines make of `data` (the reference for Lines)."""
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = text.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


# ---- line endings, BOM, limits ------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 16])
def test_lines_split_at_every_kind_of_line_end_whatever_the_read_size(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(F, "_CHUNK", chunk)     # a \r\n split across two reads is one line end
    r = random.Random(chunk)
    for _ in range(60):
        data = bytes(r.choice(b"ab\r\n\t") for _ in range(r.randint(0, 25)))
        got = [text for _, text, _ in Lines(write(tmp_path, data))]
        assert got == [s.decode() for s in universal_lines(data)], data


def test_cr_only_lines_are_separate_examples(tmp_path):
    path = write(tmp_path, "good film\tpos\rbad film\tneg\r")
    assert [(r.line, r.x, r.y) for r in read_classify(path)] == [(1, "good film", "pos"),
                                                                (2, "bad film", "neg")]
    path = write(tmp_path, "John B-PER\rruns O\r\rParis B-LOC\r\n")
    assert [r.y for r in read_conll(path)] == [["B-PER", "O"], ["B-LOC"]]


def test_a_bom_is_dropped_from_the_first_line_only(tmp_path):
    bom = b"\xef\xbb\xbf"
    assert read_classify(write(tmp_path, bom + b"good\tpos\n"))[0].x == "good"
    assert read_seq2seq(write(tmp_path, bom + b"ab\tba\n"))[0].x == "ab"
    # a BOM'd document marker is still a marker, not a token
    assert [r.x for r in read_conll(write(tmp_path, bom + b"-DOCSTART- O\n\nJohn B-PER\n"))] == [["John"]]
    # a header-less CSV keeps its first row; a BOM'd header keeps its name
    names, values, _ = read_csv(write(tmp_path, bom + b"1,2\n3,4\n"))
    assert values.tolist() == [[1, 2], [3, 4]] and names == ["0", "1"]
    assert read_csv(write(tmp_path, bom + b"spots,x\n1,2\n"))[0] == ["spots", "x"]
    # only at the start of the file: a BOM later is text
    assert read_classify(write(tmp_path, b"a\tx\n" + bom + b"b\ty\n"))[1].x == "\ufeffb"


def test_a_line_past_the_limit_ends_the_read_even_when_collecting(tmp_path, monkeypatch):
    monkeypatch.setattr(F, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(F, "_CHUNK", 16)
    ok = write(tmp_path, "a\tx\n" + "b" * 98 + "\ty\n")            # exactly 100 bytes: fine
    assert len(read_classify(ok)) == 2
    for content, line in [("a\tx\n" + "b" * 99 + "\ty\n", 2), ("c" * 500, 1), ("a\tx\r" * 3 + "d" * 101, 4)]:
        with pytest.raises(FormatError, match="line longer than 100 bytes") as e:
            read_classify(write(tmp_path, content), errors=[])
        assert e.value.line == line
    with pytest.raises(FormatError, match="sentence longer than 100 characters"):
        read_conll(write(tmp_path, "tok O\n" * 30))


def test_the_line_limit_can_be_set_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTRNN_MAX_LINE_BYTES", "10")
    path = write(tmp_path, "abcdefgh\tx\nabcdefghi\tx\n")      # 10 bytes, then 11
    with pytest.raises(FormatError, match="line longer than 10 bytes") as e:
        read_classify(path, errors=[])
    assert e.value.line == 2
    monkeypatch.setenv("FASTRNN_MAX_LINE_BYTES", "ten")
    with pytest.raises(ValueError, match="FASTRNN_MAX_LINE_BYTES: expected a positive number of bytes"):
        read_classify(path)


def test_no_newline_at_all_is_bounded(tmp_path):
    # /dev/zero: an endless line; every reader stops at the limit instead of running out of memory
    tracemalloc.start()
    try:
        for read in (read_classify, read_seq2seq, read_conll, read_csv,
                     lambda p: read_csv(p, tail=3)):
            with pytest.raises(FormatError, match="line longer than"):
                read("/dev/zero")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * F.MAX_LINE_BYTES, peak


def test_a_file_read_as_a_whole_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "MAX_INPUT_BYTES", 1000)
    path = write(tmp_path, "a\tx\n" * 300)
    with pytest.raises(DataError, match="more than 1000 bytes") as e:
        read_classify(path, errors=[])
    assert str(e.value).startswith(f"{path}: ") and e.value.line is None
    monkeypatch.setenv("FASTRNN_MAX_INPUT_BYTES", "2000")
    assert len(read_classify(path)) == 300
    monkeypatch.setenv("FASTRNN_MAX_INPUT_BYTES", "-1")
    with pytest.raises(ValueError, match="FASTRNN_MAX_INPUT_BYTES: expected a positive"):
        read_classify(path)
    # streaming readers are not limited in total: they hold one line at a time
    monkeypatch.delenv("FASTRNN_MAX_INPUT_BYTES")
    assert sum(1 for _ in F.iter_classify(Lines(path))) == 300


def test_nul_bytes_and_bad_utf8_are_per_line(tmp_path):
    path = write(tmp_path, b"a\x00b\tx\n\xff\tx\nc\ty\n")
    errors = []
    assert [r.x for r in read_classify(path, errors=errors)] == ["a\x00b", "c"]
    assert [(e.line, e.message[:10]) for e in errors] == [(2, "not UTF-8 ")]


# ---- CSV ----------------------------------------------------------------------------------------

def test_csv_quoted_cells(tmp_path):
    names, values, lines = read_csv(write(tmp_path, 'date,"spots, yearly",x\n1,"2",3\n4,5,6\n'))
    assert names == ["date", "spots, yearly", "x"] and values.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(FormatError, match="not a valid CSV line") as e:
        read_csv(write(tmp_path, 'a,b\n1,"2\n'))
    assert e.value.line == 2


@pytest.mark.parametrize("cell", ["1_5", "\u0661\u0662", "\uff11", "0x10", "1e400", "nan", "-inf", " . "])
def test_csv_numbers_are_plain_decimal_only(tmp_path, cell):
    path = write(tmp_path, f"a,b\n1,2\n3,{cell}\n")
    with pytest.raises(FormatError, match=r"column 2: expected a finite number, found") as e:
        read_csv(path)
    assert e.value.line == 3 and str(e.value).startswith(f"{path}:3: column 2:")
    # the same cell in the first row is a bad data row, as before, not a header
    if cell not in ("0x10", " . "):
        with pytest.raises(FormatError, match="column 1:"):
            read_csv(write(tmp_path, f"{cell},1\n2,3\n"))


def test_csv_accepts_every_plain_decimal_form(tmp_path):
    cells = ["1", "-2", "+3", "4.", ".5", "-6.25", "7e2", "8E-1", "+9.5e+1"]
    _, values, _ = read_csv(write(tmp_path, ",".join(cells) + "\n"))
    assert values.tolist() == [[float(c) for c in cells]]


def test_csv_tail_keeps_only_the_last_rows(tmp_path):
    names, values, lines = read_csv(write(tmp_path, "a\n" + "".join(f"{k}\n" for k in range(50))), tail=3)
    assert names == ["a"] and values.ravel().tolist() == [47, 48, 49] and lines == [49, 50, 51]


# ---- forecast statistics --------------------------------------------------------------------------

def _forecast(values, window=3):
    task = Forecast(dict(window=window, horizon=1, dtype="float32", target=None, batch=4))
    series = Series(["a", "b"], np.asarray(values, np.float64), list(range(1, len(values) + 1)), "f.csv")
    return task, series


@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e200, 1e305])
def test_forecast_statistics_do_not_overflow(scale):
    rng = np.random.default_rng(0)
    values = np.stack([rng.standard_normal(40), rng.standard_normal(40) * 3 + 1], axis=1) * scale
    task, series = _forecast(values)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no NumPy warning either
        task.fit(series, series)
        inputs, targets, _ = task.encode(series, "f.csv")
    want_mean, want_std = (values / scale).mean(axis=0) * scale, (values / scale).std(axis=0) * scale
    np.testing.assert_allclose(task.state["mean"], want_mean, rtol=1e-12)
    np.testing.assert_allclose(task.state["std"], want_std, rtol=1e-12)
    assert np.isfinite(np.stack(inputs)).all() and np.abs(np.stack(inputs)).max() < 10
    import json
    json.dumps(task.state, allow_nan=False)     # what the checkpoint's metadata needs


def test_forecast_statistics_that_cannot_normalise_are_refused_in_one_line(tmp_path, capsys):
    """A column near the float64 limit whose normalised values would still overflow."""
    rows = [[-1.7e308, 0.0]] + [[1.7e308, k] for k in range(1, 100)]
    task, series = _forecast(rows)
    with pytest.raises(DataError, match=r"^f.csv: column 1: values too large to normalise"):
        task.fit(series, series)
    from fastrnn.cli import main
    path = tmp_path / "s.csv"
    path.write_text("a,b\n" + "".join(f"{a!r},{b!r}\n" for a, b in rows))
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "forecast", str(path), "--window", "3", "--out", str(tmp_path / "r")])
    assert e.value.code == f"fastrnn: {path}: column 1: values too large to normalise (largest " \
                           f"magnitude 1.7e+308); rescale the data"
    assert capsys.readouterr().err == "" and not (tmp_path / "r").exists()


def test_forecast_constant_column_is_centred_and_far_values_are_refused():
    values = np.array([[5.0, k] for k in range(20)])
    task, series = _forecast(values)
    task.fit(series, series)
    assert task.state["mean"][0] == 5.0 and task.state["std"][0] == 1.0
    far = np.array([[5.0, 1e300]])
    with pytest.raises(FormatError, match=r"f.csv:7: column 2: 1e\+300 is too far from the training"):
        task._normalised(far, [7], "f.csv")


# ---- the language model's corpus and vocabulary ----------------------------------------------------

def test_corpus_bom_newlines_limit_and_bad_utf8(tmp_path, monkeypatch):
    assert D.read_corpus(write(tmp_path, b"\xef\xbb\xbfab\r\ncd\ref\n")) == "ab\ncd\nef\n"
    with pytest.raises(ValueError, match="more than 100 bytes"):
        D.read_corpus("/dev/zero", max_bytes=100)
    monkeypatch.setattr(D, "MAX_INPUT_BYTES", 1 << 16)
    with pytest.raises(ValueError, match=f"/dev/zero: more than {1 << 16} bytes"):
        D.read_corpus("/dev/zero")
    with pytest.raises(ValueError, match=r"c.txt:2: not UTF-8 text \(invalid start byte at byte 3\)"):
        D.read_corpus(write(tmp_path, b"ab\n\xffc", "c.txt"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbfhi\r")))
    assert D.read_corpus("-") == "hi\n"


def test_iter_tokens_is_tokenize():
    pieces = ["a", "bc", " ", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", ".", "!",
              "\u00e9", "\t", "1", "_", "\x00", "\ufeff"]
    r = random.Random(0)
    for _ in range(3000):
        text = "".join(r.choice(pieces) for _ in range(r.randint(0, 12)))
        for level in ("char", "word"):
            assert list(D.iter_tokens(text, level)) == D.tokenize(text, level), (text, level)
            v = D.Vocab.build(text, level)
            assert v.encode(text).tolist() == [v.stoi.get(t, 0) for t in D.tokenize(text, level)]


@pytest.mark.parametrize("level, bound", [("char", 1.2), ("word", 2.0)])
def test_vocabulary_and_encoding_hold_little_beyond_the_ids(level, bound):
    """A word-level list of token strings is ~60 bytes a token; the ids are 8."""
    text = "the quick brown fox, jumps over the lazy dog.\n" * 5000
    tracemalloc.start()
    try:
        v = D.Vocab.build(text, level)
        build = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        ids = v.encode(text)
        encode = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert build < 1e5 and encode < bound * ids.nbytes + 1e5, (build, encode, ids.nbytes)
