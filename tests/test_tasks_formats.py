"""The file readers: what they return, and errors that name the file, the line and what was expected."""
import numpy as np
import pytest

from fastrnn.tasks.formats import (FormatError, read_classify, read_conll, read_csv, read_seq2seq)


def write(tmp_path, name, text, binary=False):
    path = tmp_path / name
    path.write_bytes(text) if binary else path.write_text(text)
    return str(path)


def test_classify_lines(tmp_path):
    path = write(tmp_path, "c.tsv", "good film\tpos\n\nbad\tfilm\tneg \n")
    records = read_classify(path)
    assert [(r.line, r.x, r.y) for r in records] == [(1, "good film", "pos"), (3, "bad\tfilm", "neg")]
    # unlabelled: the text before the LAST tab, as training takes it; a blank line is a placeholder
    assert [r.x for r in read_classify(path, labelled=False)] == ["good film", None, "bad\tfilm"]


def test_a_lone_tab_is_an_empty_text_not_a_blank_line(tmp_path):
    path = write(tmp_path, "c.tsv", "a\tx\n\t\n  \n")
    for labelled in (True, False):
        errors = []
        records = read_classify(path, labelled, errors)
        assert [(e.line, e.message[:10]) for e in errors] == [(2, "empty text")]
        assert [r.line for r in records] == ([1] if labelled else [1, 3])   # line 3 is blank


def test_unlabelled_input_takes_what_training_takes(tmp_path):
    path = write(tmp_path, "s.tsv", "ab\tba\ncd\nx\ty\tz\n")
    assert [r.x for r in read_seq2seq(path, labelled=False)] == ["ab", "cd", "x\ty"]
    path = write(tmp_path, "c.tsv", "no label\nwith\ttabs\tpos\n")
    labelled_text = read_classify(write(tmp_path, "l.tsv", "with\ttabs\tpos\n"))[0].x
    assert [r.x for r in read_classify(path, labelled=False)] == ["no label", labelled_text]


def test_stdin_is_named_stdin_in_every_error(monkeypatch):
    import io
    import sys

    from fastrnn.tasks import Forecast
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a,b\n1,2\n3\n")))
    errors = []
    read_csv("-", errors)
    assert str(errors[0]).startswith("<stdin>:3: ")
    task = Forecast(dict(window=4, horizon=1, dtype="float32", target=None, batch=2),
                    dict(columns=["a", "b"], target=1, mean=[0, 0], std=[1, 1]))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a,b\n1,2\n3,4\n")))
    with pytest.raises(FormatError) as e:
        task.predict_last(None, task.read("-"))
    assert str(e.value).startswith("<stdin>:3: expected at least 4 rows")


@pytest.mark.parametrize("text, line, expected", [
    ("a\tx\nno tab here\n", 2, "expected text<TAB>label, found no tab"),
    ("a\tx\n\tx\n", 2, "empty text"),
    ("a\t \n", 1, "empty label"),
])
def test_classify_errors(tmp_path, text, line, expected):
    path = write(tmp_path, "c.tsv", text)
    with pytest.raises(FormatError, match=expected) as e:
        read_classify(path)
    assert str(e.value).startswith(f"{path}:{line}: ") and e.value.line == line


def test_errors_list_collects_bad_lines_and_keeps_the_rest(tmp_path):
    path = write(tmp_path, "c.tsv", b"a\tx\nbad\n\xff\xfe\tx\nb\ty\n", binary=True)
    errors = []
    records = read_classify(path, errors=errors)
    assert [r.x for r in records] == ["a", "b"]
    assert [(e.line, e.message[:10]) for e in errors] == [(2, "expected t"), (3, "not UTF-8 ")]


def test_seq2seq_lines_and_errors(tmp_path):
    path = write(tmp_path, "s.tsv", "abc\tcba\n")
    assert [(r.x, r.y) for r in read_seq2seq(path)] == [("abc", "cba")]
    for text, expected in [("a\tb\tc\n", "one tab, found 2"), ("abc\n", "found no tab"),
                           ("abc\t\n", "empty target"), ("  \tx\n", "empty source")]:
        with pytest.raises(FormatError, match=expected):
            read_seq2seq(write(tmp_path, "s.tsv", text))


def test_conll_sentences(tmp_path):
    path = write(tmp_path, "t.conll", "-DOCSTART- O\n\nJohn NNP B-PER\nruns VBZ O\n\n\nParis\tB-LOC\n")
    records = read_conll(path)
    assert [(r.line, r.x, r.y) for r in records] == [(3, ["John", "runs"], ["B-PER", "O"]),
                                                    (7, ["Paris"], ["B-LOC"])]
    assert read_conll(write(tmp_path, "u.conll", "John\nruns\n"), labelled=False)[0].x == ["John", "runs"]


def test_conll_line_without_tag(tmp_path):
    path = write(tmp_path, "t.conll", "John B-PER\nruns\n\nParis B-LOC\n")
    with pytest.raises(FormatError, match="expected token<whitespace>tag, found one column") as e:
        read_conll(path)
    assert e.value.line == 2
    errors = []
    assert [r.x for r in read_conll(path, errors=errors)] == [["Paris"]]    # the bad sentence is dropped
    assert [e.line for e in errors] == [2]


def test_csv_with_and_without_header(tmp_path):
    names, values, lines = read_csv(write(tmp_path, "a.csv", "x, y\n1,2\n\n3.5,-4e1\n"))
    assert names == ["x", "y"] and lines == [2, 4]
    np.testing.assert_array_equal(values, [[1, 2], [3.5, -40]])
    names, values, _ = read_csv(write(tmp_path, "b.csv", "1\n2\n"))
    assert names == ["0"] and values.shape == (2, 1)


@pytest.mark.parametrize("text, line, expected", [
    ("x,y\n1,2\n3\n", 3, "expected 2 comma-separated cells, found 1"),
    ("1,2\n3,4,5\n", 2, "expected 2 comma-separated cells, found 3"),
    ("x,y\n1,2\n3,abc\n", 3, "column 2: expected a finite number, found 'abc'"),
    ("1,2\n3,\n", 2, "column 2: expected a finite number, found ''"),
    ("1,2\nnan,1\n", 2, "column 1: expected a finite number"),
])
def test_csv_errors(tmp_path, text, line, expected):
    path = write(tmp_path, "c.csv", text)
    with pytest.raises(FormatError, match=expected) as e:
        read_csv(path)
    assert e.value.line == line and str(e.value).startswith(f"{path}:{line}:")


def test_missing_file_is_an_oserror(tmp_path):
    with pytest.raises(OSError):
        read_classify(str(tmp_path / "missing.tsv"))
