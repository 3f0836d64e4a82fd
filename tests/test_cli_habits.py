"""The command line as users of other tools expect it: --version, one-line usage errors (exit 2),
one-line messages for paths of the wrong kind (exit 1), the corpus as a file, directory, glob or
stdin, `--early-stop`, and `fastrnn plot`."""
import io
import json
import os
import sys

import pytest

import fastrnn
from fastrnn.cli import main
from fastrnn.cli_paths import read_corpus

TINY = ["--hidden", "8", "--layers", "1", "--seq-len", "4", "--batch", "2", "--quiet", "--epochs", "1"]


def run(argv, capsys):
    """(exit status, stdout, stderr) of `fastrnn ARGV` as the shell sees them (sys.exit(message)
    prints the message to stderr and exits 1)."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    if isinstance(code, str):
        code, err = 1, err + code + "\n"
    return code or 0, out, err


def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_version(capsys):
    code, out, err = run(["--version"], capsys)
    assert code == 0 and out == f"fastrnn {fastrnn.__version__}\n" and err == ""


@pytest.mark.parametrize("argv, line", [
    (["train", "--hidden", "-3"],
     "fastrnn train: --hidden: expected an integer >= 1, got -3 (see fastrnn train --help)"),
    (["train", "--lr", "x"], "fastrnn train: --lr: expected a number, got 'x' (see fastrnn train --help)"),
    (["train", "--early-stop", "0"],
     "fastrnn train: --early-stop: expected an integer >= 1, got 0 (see fastrnn train --help)"),
    (["sample"], "fastrnn sample: the following arguments are required: checkpoint (see fastrnn sample --help)"),
    (["frobnicate"], None),
    (["train", "--val-frac", "0.6", "--test-frac", "0.5"],
     "fastrnn train: --val-frac + --test-frac: expected < 1, got 1.1 (see fastrnn train --help)"),
    (["plot", "run", "-o", "curves.txt"],
     "fastrnn plot: --output: expected a .png, .pdf or .svg file name, got 'curves.txt' (see fastrnn plot --help)"),
])
def test_usage_errors_are_one_line_exit_2(argv, line, capsys):
    code, out, err = run(argv, capsys)
    got = one_line(err)
    assert code == 2 and out == ""
    assert got == line if line else got.startswith("fastrnn: command: invalid choice: 'frobnicate'")


def test_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, _, err = run(["train", str(tmp_path / "f"), "--out", str(tmp_path / "f")], capsys)
    assert code == 2 and one_line(err) == (f"fastrnn train: --out {tmp_path / 'f'}: exists and is not a "
                                           f"directory (see fastrnn train --help)")


def test_wrong_kinds_of_paths_are_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = [
        (["sample", str(empty)], f"fastrnn: not a run directory: no best.npz or last.npz in {empty}"),
        (["train", "--resume", str(empty)], f"fastrnn: {empty}: not a run directory (no last.npz in it; "
                                            f"expected a .npz checkpoint or a directory written by fastrnn train)"),
        (["export", str(fifo), str(tmp_path / "m.onnx")],
         f"fastrnn: {fifo}: is a FIFO, expected a checkpoint file (.npz) or a run directory"),
        (["export", str(empty), str(empty)], f"fastrnn: {empty}: is a directory, expected the .onnx file to write"),
        (["train", str(fifo)], f"fastrnn: {fifo}: is a FIFO, expected a text file, a directory of text "
                               f"files, a glob or - (give - to read standard input)"),
        (["train", "--task", "classify", str(empty)], f"fastrnn: {empty}: is a directory, expected a file or - for stdin"),
        (["train", "--task", "classify", str(fifo)],
         f"fastrnn: {fifo}: is a FIFO, expected a file or - for stdin (give - to read standard input)"),
        (["train", str(empty)], f"fastrnn: corpus {empty}: the directory holds no files"),
        (["train", str(tmp_path / "*.txt")], f"fastrnn: corpus {str(tmp_path / '*.txt')!r}: no files match"),
        (["plot", str(empty), "-o", str(tmp_path / "c.png")], f"fastrnn: {empty}: not a run directory (no log.jsonl in it)"),
    ]
    for argv, line in cases:
        code, out, err = run(argv, capsys)
        assert (code, one_line(err)) == (1, line), argv


def test_corpus_as_directory_glob_and_stdin(tmp_path, capsys, monkeypatch):
    d = tmp_path / "texts"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_text("second\n")
    (d / "a.txt").write_text("first")            # no final newline: one is put between files
    (d / "sub" / "c.md").write_text("third\n")
    (d / ".hidden").write_text("never")
    (d / "blob.bin").write_bytes(b"\x00\xff\xfe")
    assert read_corpus(str(d)) == "first\nsecond\nthird\n"
    assert "3 text files, 1 skipped (not UTF-8 text)" in capsys.readouterr().out
    assert read_corpus(str(d / "*.txt")) == "first\nsecond\n"
    assert read_corpus(str(d / "**" / "*.md")) == "third\n"
    assert read_corpus(str(d / "a.txt")) == "first"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("from stdin é\n".encode())))
    assert read_corpus("-") == "from stdin é\n"
    # end to end: a model trained on the directory has the directory's characters
    (d / "a.txt").write_text("abcabcabcabcabcabcabcabcabcabc\n" * 4)
    code, out, err = run(["train", str(d), *TINY, "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    _, vocab, extra = fastrnn.load(tmp_path / "run" / "best.npz")
    assert set("abc" "second" "third") <= set(vocab.tokens) and extra["meta"]["corpus"] == str(d)


def _constant_run(tmp_path, capsys, extra):
    from test_cli_tasks import classify_file
    data = classify_file(tmp_path / "c.txt", n=64)
    out = tmp_path / "run"
    # a learning rate too small to move float32 weights: the validation loss never improves
    code, _, err = run(["train", "--task", "classify", str(data), "--hidden", "8", "--embed", "4",
                        "--batch", "16", "--quiet", "--lr", "1e-30", "--out", str(out), *extra], capsys)
    assert code == 0, err
    return out, [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_early_stop_flag_stops_records_and_resumes(tmp_path, capsys):
    out, log = _constant_run(tmp_path, capsys, ["--epochs", "10", "--early-stop", "2"])
    assert len(log) == 3 and len({r["val_loss"] for r in log}) == 1    # best, then 2 without improvement
    settings = fastrnn.load(out / "last.npz")[2]["meta"]["training"]["settings"]
    assert settings["early_stop"] == 2
    # resumed with the same patience it stops at once; with more it goes on
    code, stdout, err = run(["train", "--resume", str(out), "--quiet"], capsys)
    assert code == 0 and "early stop after 12 iterations" in stdout, err
    code, stdout, err = run(["train", "--resume", str(out), "--quiet", "--early-stop", "3"], capsys)
    assert code == 0 and "early stop after 16 iterations" in stdout, err
    assert fastrnn.load(out / "last.npz")[2]["meta"]["training"]["settings"]["early_stop"] == 3


def test_plot_draws_runs(tmp_path, capsys, monkeypatch):
    runs = []
    for k in range(2):
        run_dir = tmp_path / f"run{k}"
        run_dir.mkdir()
        lines = [dict(iteration=i, epoch=i / 4, train_loss=2.0 - 0.1 * i - k, val_loss=2.1 - 0.1 * i,
                      val_acc=0.1 * i) for i in range(1, 6)]
        lines[2]["val_loss"] = None
        (run_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        runs.append(str(run_dir))
    png = tmp_path / "curves.png"
    code, out, err = run(["plot", *runs, "-o", str(png), "--metric", "val_acc"], capsys)
    assert code == 0 and out == f"fastrnn: wrote {png} (2 runs)\n", err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run(["plot", runs[0] + "/log.jsonl", "-o", str(tmp_path / "c.svg"), "--x", "epoch"], capsys)
    assert code == 0 and (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    code, _, err = run(["plot", runs[0], "-o", str(png), "--metric", "val_f1"], capsys)
    assert (code, one_line(err)) == (1, "fastrnn: --metric val_f1: not in any run's log")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "log.jsonl").write_text('{"iteration": 1}\nnot json\n')
    code, _, err = run(["plot", str(tmp_path / "bad"), "-o", str(png)], capsys)
    assert (code, one_line(err)) == (1, f"fastrnn: {tmp_path / 'bad' / 'log.jsonl'}:2: expected a JSON "
                                        f"record with an iteration (a log.jsonl line)")
    monkeypatch.setitem(sys.modules, "matplotlib", None)        # as if not installed
    code, _, err = run(["plot", runs[0], "-o", str(png)], capsys)
    assert (code, one_line(err)) == (1, 'fastrnn plot: needs matplotlib: pip install "fastrnn[plot]"')


def test_early_stop_under_mpiexec_stops_every_rank(tmp_path):
    """Two ranks agree on the early stop (each sees the same all-reduced validation loss): the
    job ends cleanly, after the same 3 validations as one process."""
    import subprocess

    from test_cli_tasks import classify_file
    from test_distributed import _env, _mpiexec, needs_mpi
    if needs_mpi.args[0]:
        pytest.skip("needs mpi4py and mpiexec")
    data = classify_file(tmp_path / "c.txt", n=64)
    out = tmp_path / "run"
    cmd = [_mpiexec(), "-n", "2", sys.executable, "-m", "fastrnn", "train", "--task", "classify", str(data),
           "--hidden", "8", "--embed", "4", "--batch", "16", "--quiet", "--lr", "1e-30", "--epochs", "10",
           "--early-stop", "2", "--out", str(out)]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "early stop after" in r.stdout
    assert len((out / "log.jsonl").read_text().splitlines()) == 3
