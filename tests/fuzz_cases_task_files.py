"""Fuzz case of the command line on hostile data files (issue 19 item 6, issue 24 item 4).

For every task (classify, tag, seq2seq, forecast) and every command that reads a data file
(train, predict, evaluate), one of the hostile kinds below, mixed into a small valid file. The
outcome rule: no hang, no traceback, no warning; stderr holds only `fastrnn...` lines (train:
exactly one when it refuses); the bounded kinds (a huge line, /dev/zero) always end in their
one-line refusal. A clean exit returns (counted ok); a refusal raises ValueError (rejected).
"""
import contextlib
import io
import os
import tempfile
import warnings

import numpy as np
from hypothesis import strategies as st

from fastrnn.cli import main
from fastrnn.tasks.formats import MAX_LINE_BYTES

KINDS = ["clean", "cr_only", "crlf", "bom", "huge_line", "no_newline", "dev_zero", "nul",
         "bad_utf8", "quoted", "underscore", "arabic", "1e308", "1e200", "single_class",
         "single_example", "empty"]
TASK_NAMES = ["classify", "tag", "seq2seq", "forecast"]
TINY = ["--hidden", "4", "--embed", "2", "--batch", "4", "--epochs", "1", "--quiet"]
FORECAST = ["--window", "3", "--horizon", "1"]
# the text each kind puts into a text task's examples (for forecast: into a cell, see _forecast)
_WORDS = {"quoted": '"a, b"', "underscore": "1_5", "arabic": "\u0661\u0662", "1e308": "1e308",
          "1e200": "1e200"}


def _text_lines(task, kind, n, draw):
    """A clean file of `n` examples for a text task, with the kind's word in its texts."""
    word = _WORDS.get(kind, "ab")
    r = draw(st.randoms(use_true_random=False), "rng")
    one = kind == "single_class"
    lines = []
    for k in range(n):
        text = f"{r.choice(['cd', word, 'ef'])}{k % 3}"
        if task == "classify":
            lines.append(f"{text}\t{'x' if one else r.choice('xy')}")
        elif task == "seq2seq":
            lines.append(f"{text}\t{'z' if one else text[::-1]}")
        else:
            lines += [f"{w} {'O' if one else r.choice(['B-PER', 'O'])}" for w in (text, "runs")] + [""]
    return lines


def _forecast(kind, n):
    """A clean CSV of `n` rows, with the kind's number (or header) in it."""
    header = '"a, b",c' if kind == "quoted" else "a,b"
    scale = {"1e308": 1e308, "1e200": 1e200}.get(kind, 1.0)
    rows = [f"{(t % 7 - 3) / 3 * scale!r},{0.0 if kind == 'single_class' else np.sin(t / 3):.4f}"
            for t in range(n)]
    if kind in ("underscore", "arabic") and rows:
        rows[len(rows) // 2] = f"1,{_WORDS[kind]}"
    if kind == "quoted" and rows:
        rows[0] = '"1","2"'
    return [header] + rows


def hostile_file(task, kind, draw, directory):
    """The path of a data file of `kind` for `task` (or /dev/zero)."""
    if kind == "dev_zero":
        return "/dev/zero"
    n = 1 if kind == "single_example" else draw(st.integers(2, 40), "examples")
    lines = _forecast(kind, n) if task == "forecast" else _text_lines(task, kind, n, draw)
    data = ("\n".join(lines) + "\n").encode()
    if kind == "empty":
        data = draw(st.sampled_from([b"", b"\n\n  \n", b"\r\r"]), "empty content")
    elif kind == "cr_only":
        data = data.replace(b"\n", b"\r")
    elif kind == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif kind == "bom":
        data = b"\xef\xbb\xbf" + data
    elif kind == "no_newline":
        data = data.replace(b"\n", b" ")
    elif kind in ("huge_line", "nul", "bad_utf8"):
        at = draw(st.integers(0, len(data)), "at")
        insert = {"huge_line": b"\n" + b"a" * (MAX_LINE_BYTES + draw(st.integers(1, 70000), "over")) + b"\n",
                  "nul": b"\x00", "bad_utf8": draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"]), "bytes")}
        data = data[:at] + insert[kind] + data[at:]
    path = os.path.join(directory, "data.txt")
    with open(path, "wb") as f:
        f.write(data)
    return path


_RUNS = {}


def _trained(task):
    """A run directory trained on a clean file for `task` (once per process)."""
    if task not in _RUNS:
        keep = tempfile.TemporaryDirectory()        # removed when the process ends
        words = ["ab", "cd", "ef", "gh"] * 5
        lines = {"forecast": lambda: _forecast("clean", 40),
                 "classify": lambda: [f"{w}{k % 3}\t{'xy'[k % 2]}" for k, w in enumerate(words)],
                 "seq2seq": lambda: [f"{w}{k}\t{k}{w}" for k, w in enumerate(words)],
                 "tag": lambda: [f"{w} {'B-PER' if w in ('John', 'Mary') else 'O'}" if w else ""
                                 for w in ["John", "runs", "", "Mary", "sees", ""] * 5]}[task]()
        path = os.path.join(keep.name, "clean.txt")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        out = os.path.join(keep.name, "run")
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["train", "--task", task, path, *TINY, *(FORECAST if task == "forecast" else []),
                         "--out", out]) == 0
        _RUNS[task] = keep, out
    return _RUNS[task][1]


def _run(argv):
    """(status, stderr lines, warnings) of one in-process `fastrnn` call."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
        warnings.simplefilter("always")
        try:
            status = main(argv)
        except SystemExit as e:
            status = e.code
            if isinstance(status, str):         # sys.exit(message): Python prints it, exits 1
                err.write(status + "\n")
                status = 1
    return status, err.getvalue().splitlines(), [str(w.message) for w in caught]


def task_cli_files(draw):
    task = draw(st.sampled_from(TASK_NAMES), "task")
    kind = draw(st.sampled_from(KINDS), "kind")
    command = draw(st.sampled_from(["train", "predict", "evaluate"]), "command")
    with tempfile.TemporaryDirectory() as tmp:
        path = hostile_file(task, kind, draw, tmp)
        if command == "train":
            argv = ["train", "--task", task, path, *TINY, *(FORECAST if task == "forecast" else []),
                    "--out", os.path.join(tmp, "run")]
        else:
            argv = [command, _trained(task), path]
        status, err, caught = _run(argv)
    assert not caught, f"warnings: {caught}"
    assert not any("Traceback" in line for line in err), err
    if status == 2:                             # a usage error (argparse may print the usage first)
        assert err and err[-1].startswith("fastrnn"), err
        raise ValueError(err[-1])
    assert all(line.startswith("fastrnn") for line in err), err
    if kind == "dev_zero":                      # a device is refused before anything is read
        assert status == 1 and "is a device" in err[-1], (status, err)
    if kind == "huge_line" and command != "train":
        # train stops at a file's first problem, which may come before the huge line
        assert status == 1 and "longer than" in err[-1], (status, err)
    if command == "train" and kind == "single_class" and task in ("classify", "tag"):
        assert status == 1 and err[-1].endswith("nothing to learn (at least two are needed)") or \
            "too few" in err[-1], err
    if status == 0:
        assert not err, err
        return
    assert status == 1, status
    if command == "train":
        assert len(err) == 1, err
    raise ValueError(err[-1])
