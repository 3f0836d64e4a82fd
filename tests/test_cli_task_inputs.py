"""The command line on hostile input files (issue 19 item 6, issue 24 item 4): bounded memory,
streaming predict, universal newlines, BOM, degenerate training files, CSV quoting and numbers,
and evaluate's reasons. Each refusal is one line naming the file."""
import io
import os
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import fastrnn
from fastrnn.cli import main
from fastrnn.tasks import formats as F
from test_cli_tasks import SMALL, classify_file, failure

QUICK = [*SMALL, "--epochs", "1"]


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cls")
    data = classify_file(tmp / "c.tsv", n=40)
    out = tmp / "run"
    assert main(["train", "--task", "classify", str(data), *QUICK, "--out", str(out)]) == 0
    return out


def one_line_failure(e, capsys, *expected):
    status, err = failure(e, capsys)
    assert status in (1, 2) and "Traceback" not in err and "Warning" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("fastrnn"), err
    for text in expected:
        assert text in err, err
    return err


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_an_endless_line_is_one_line_in_bounded_memory(command, classify_run, tmp_path, capsys, monkeypatch):
    """/dev/zero's bytes on stdin (a path to a device is refused before reading: cli_paths)."""
    zeros = open("/dev/zero", "rb")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(zeros))
    argv = {"train": ["train", "--task", "classify", "-", "--out", str(tmp_path / "r")],
            "predict": ["predict", str(classify_run), "-"],
            "evaluate": ["evaluate", str(classify_run), "-"]}[command]
    capsys.readouterr()
    tracemalloc.start()
    try:
        with pytest.raises(SystemExit) as e:
            main(argv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        zeros.close()
    one_line_failure(e, capsys, f"<stdin>:1: line longer than {F.MAX_LINE_BYTES} bytes")
    assert peak < 16 * F.MAX_LINE_BYTES, peak     # a few lines' worth (stdin's text buffers too), not the stream


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_a_device_as_the_data_file_is_one_line(command, classify_run, tmp_path, capsys):
    argv = {"train": ["train", "--task", "classify", "/dev/zero", "--out", str(tmp_path / "r")],
            "predict": ["predict", str(classify_run), "/dev/zero"],
            "evaluate": ["evaluate", str(classify_run), "/dev/zero"]}[command]
    with pytest.raises(SystemExit) as e:
        main(argv)
    one_line_failure(e, capsys, "/dev/zero: is a device")


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_a_bad_limit_in_the_environment_is_one_line(command, classify_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTRNN_MAX_LINE_BYTES", "0")
    data = str(classify_file(tmp_path / "c.tsv", n=10))
    argv = {"train": ["train", "--task", "classify", data, "--out", str(tmp_path / "r")],
            "predict": ["predict", str(classify_run), data],
            "evaluate": ["evaluate", str(classify_run), data]}[command]
    with pytest.raises(SystemExit) as e:
        main(argv)
    one_line_failure(e, capsys, "FASTRNN_MAX_LINE_BYTES: expected a positive number of bytes, got '0'")


def test_lm_corpus_from_dev_zero_stops_at_the_limit(tmp_path, capsys, monkeypatch):
    """/dev/zero's bytes as the corpus on stdin (the path of a device is refused: cli_paths)."""
    monkeypatch.setenv("FASTRNN_MAX_INPUT_BYTES", str(1 << 20))
    with open("/dev/zero", "rb") as zeros:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(zeros))
        with pytest.raises(SystemExit) as e:
            main(["train", "-", "--out", str(tmp_path / "r")])
    one_line_failure(e, capsys, f"<stdin>: more than {1 << 20} bytes")


def test_an_endless_training_pipe_stops_at_the_limit(tmp_path, capsys, monkeypatch):
    import io
    monkeypatch.setenv("FASTRNN_MAX_INPUT_BYTES", "5000")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"good\tx\nbad\ty\n" * 1000)))
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "classify", "-", "--out", str(tmp_path / "r")])
    one_line_failure(e, capsys, "<stdin>: more than 5000 bytes")


def test_predict_answers_each_line_while_stdin_is_still_open(classify_run):
    """A pipe that stays open: the answer to the first line arrives before the second is sent."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "fastrnn", "predict", str(classify_run), "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    got = []
    reader = threading.Thread(target=lambda: got.append(p.stdout.readline()))
    try:
        p.stdin.write(b"abc1\n")
        p.stdin.flush()
        reader.start()
        reader.join(120)
        assert got and got[0].split(b"\t")[0] in (b"digit", b"none"), (got, p.poll())
        rest, err = p.communicate(b"\tbad\nxyz\n", timeout=120)
    finally:
        p.kill()
    assert rest.split(b"\n")[0] == b"" and rest.split(b"\n")[1]      # line 2 bad, line 3 answered
    assert p.returncode == 1 and err.decode().strip() == "fastrnn: <stdin>:2: empty text"


def test_predict_answers_the_lines_before_one_past_the_limit(classify_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTRNN_MAX_LINE_BYTES", "100")
    path = tmp_path / "in.tsv"
    path.write_text("abc\n\tx\nab1\n" + "z" * 101 + "\nabc\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["predict", str(classify_run), str(path)])
    captured = capsys.readouterr()
    out = captured.out.split("\n")[:-1]
    assert len(out) == 3 and out[0] and out[1] == "" and out[2], out
    assert captured.err == f"fastrnn: {path}:2: empty text\n"
    assert e.value.code == f"fastrnn: {path}:4: line longer than 100 bytes, the longest line fastrnn " \
                           f"reads (FASTRNN_MAX_LINE_BYTES raises it)"


def test_predict_of_a_long_input_matches_reading_it_whole(classify_run, tmp_path, capsys):
    """Pieces of PREDICT_PIECE lines: the same answers, line for line, as one batch would give."""
    lines = [f"{'ab' * (k % 5)}{k % 10 if k % 3 else ''}" for k in range(700)]
    lines[300], lines[301], lines[555] = "", "\tx", ""
    path = tmp_path / "in.tsv"
    path.write_text("\n".join(lines) + "\n\n")
    assert main(["predict", str(classify_run), str(path)]) == 1
    out = capsys.readouterr().out.split("\n")[:-1]
    assert len(out) == 701 and out[300] == out[301] == out[555] == out[700] == ""
    from fastrnn.cli import _load_checkpoint
    from fastrnn.tasks import TASKS
    _, model, _, extra = _load_checkpoint(str(classify_run))
    meta = extra["meta"]
    task = TASKS["classify"](meta["task_options"], meta["task_state"])
    data = task.read(str(path), labelled=False, errors=[])
    whole = task.predict_file(model, data, str(path), [])
    assert out == whole


def test_cr_only_file_trains_two_classes(tmp_path, capsys):
    path = tmp_path / "cr.tsv"
    path.write_bytes(b"".join(b"good film %d\tpos\rbad film %d\tneg\r" % (k, k) for k in range(10)))
    out = tmp_path / "r"
    assert main(["train", "--task", "classify", str(path), *QUICK, "--out", str(out)]) == 0
    _, _, extra = fastrnn.load(out / "best.npz")
    assert extra["meta"]["task_state"]["labels"] == ["neg", "pos"]


def test_bom_header_and_quoted_header_name_the_target(tmp_path, capsys):
    rows = "".join(f"{t},{np.sin(t / 3):.4f},{t % 4}\n" for t in range(60))
    for header in ["\ufeffdate,spots,x\n", 'date,"spots, yearly",x\n']:
        path = tmp_path / "s.csv"
        path.write_text(header + rows, encoding="utf-8")
        target = "spots" if "yearly" not in header else "spots, yearly"
        out = tmp_path / ("r" + str(len(header)))
        assert main(["train", "--task", "forecast", str(path), *QUICK, "--window", "4",
                     "--target", target, "--out", str(out)]) == 0
        _, _, extra = fastrnn.load(out / "best.npz")
        assert extra["meta"]["task_state"]["columns"][1] == target


@pytest.mark.parametrize("task, text, message", [
    ("classify", "a\tpos\nb\tpos\nc\tpos\n", "every example has the label 'pos': nothing to learn"),
    ("tag", "John O\nruns O\n\nMary O\n", "every token has the tag 'O': nothing to learn"),
    ("seq2seq", "ab\tba\n", "1 example is too few for --val-frac 0.1: none is left for validation"),
    ("classify", "a\tx\nb\ty\nc\tx\n", "3 examples are too few for --val-frac 0.1"),
])
def test_files_with_nothing_to_learn_are_refused(task, text, message, tmp_path, capsys):
    path = tmp_path / "d.tsv"
    path.write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", task, str(path), *QUICK, "--out", str(tmp_path / "r")])
    one_line_failure(e, capsys, f"d.tsv: {message}")
    assert not (tmp_path / "r").exists()


def test_a_single_example_trains_when_asked_for_no_validation(tmp_path, capsys):
    path = tmp_path / "d.tsv"
    path.write_text("ab\tba\n")
    assert main(["train", "--task", "seq2seq", str(path), *QUICK, "--val-frac", "0",
                 "--out", str(tmp_path / "r")]) == 0


def test_evaluate_shows_why_no_line_was_usable(classify_run, tmp_path, capsys):
    path = tmp_path / "e.tsv"
    path.write_text("abc\n\tx\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(classify_run), str(path)])
    err = capsys.readouterr().err + e.value.code + "\n"       # sys.exit's line comes last
    assert err.splitlines() == [
        f"fastrnn: {path}:1: expected text<TAB>label, found no tab",
        f"fastrnn: {path}:2: empty text (expected text<TAB>label)",
        f"fastrnn: {path}: no examples to evaluate"]
    # many bad lines: the first 20, then how many in all
    path.write_text("".join(f"bad{k}\n" for k in range(25)) + "abc\tnone\n")
    assert main(["evaluate", str(classify_run), str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 21 and err[19].startswith(f"fastrnn: {path}:20: ")
    assert err[20] == f"fastrnn: {path}: 25 bad lines in all (the first 20 shown)"


@pytest.mark.parametrize("cell", ["1_5", "\u0661\u0662"])
def test_forecast_refuses_numbers_that_are_not_plain_decimals(cell, tmp_path, capsys):
    path = tmp_path / "s.csv"
    path.write_text("a,b\n" + "".join(f"{t},{t % 3}\n" for t in range(40)) + f"7,{cell}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "forecast", str(path), *QUICK, "--window", "4", "--out", str(tmp_path / "r")])
    one_line_failure(e, capsys, f"s.csv:42: column 2: expected a finite number, found {cell!r}")


@pytest.mark.parametrize("scale", [1e200, 1e305])
def test_forecast_near_the_float64_limit_trains_saves_and_predicts(scale, tmp_path, capfd):
    path = tmp_path / "s.csv"
    path.write_text("a,b\n" + "".join(f"{(t % 7 - 3) / 3 * scale!r},{t % 5}\n" for t in range(60)))
    out = tmp_path / "r"
    assert main(["train", "--task", "forecast", str(path), *QUICK, "--window", "4", "--target", "a",
                 "--out", str(out)]) == 0
    _, _, extra = fastrnn.load(out / "best.npz")
    std = extra["meta"]["task_state"]["std"][0]
    assert np.isfinite(std) and std > 0.1 * scale
    assert main(["predict", str(out), str(path)]) == 0
    assert main(["evaluate", str(out), str(path)]) == 0
    captured = capfd.readouterr()
    assert "Warning" not in captured.err and captured.err == "", captured.err
    forecast = float(captured.out.splitlines()[-5])     # the predict line, before evaluate's 4
    assert np.isfinite(forecast) and abs(forecast) <= 2 * scale


def test_forecast_beyond_the_normaliser_bound_is_refused_in_one_line(tmp_path, capsys):
    """Near 1e308 a forecast y * std + mean could overflow: refused before training (MAX_SCALE)."""
    path = tmp_path / "s.csv"
    path.write_text("a,b\n" + "".join(f"{(t % 7 - 3) / 3 * 1e308!r},{t % 5}\n" for t in range(60)))
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "forecast", str(path), *QUICK, "--window", "4", "--target", "a",
              "--out", str(tmp_path / "r")])
    one_line_failure(e, capsys, "cannot be normalised")
    assert not (tmp_path / "r").exists()
