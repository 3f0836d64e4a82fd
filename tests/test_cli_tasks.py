"""`fastrnn train --task ...`, `predict`, `evaluate`, `--split interleaved` and `sample --condition`
end to end on small generated files, in-process (fast)."""
import json
import math
import os
import random

import numpy as np
import pytest

import fastrnn
from fastrnn import io
from fastrnn.cli import main
from fastrnn.tasks.interleaved import interleaved_split

SMALL = ["--hidden", "16", "--embed", "8", "--batch", "8", "--quiet"]


def classify_file(path, n=200, seed=0):
    """'contains a digit' strings: letters, with a digit inserted into about half of them."""
    r = random.Random(seed)
    lines = []
    for _ in range(n):
        s = "".join(r.choice("abcdefgh") for _ in range(r.randint(3, 10)))
        if r.random() < 0.5:
            k = r.randrange(len(s))
            lines.append(f"{s[:k]}{r.choice('0123456789')}{s[k:]}\tdigit")
        else:
            lines.append(f"{s}\tnone")
    path.write_text("\n".join(lines) + "\n")
    return path


def tag_file(path, n=150, seed=0):
    """Sentences whose names are B-PER and cities B-LOC (one word each), the rest O."""
    r = random.Random(seed)
    kinds = {"John": "B-PER", "Mary": "B-PER", "Paris": "B-LOC", "Rome": "B-LOC"}
    words = list(kinds) + ["the", "a", "runs", "in", "sees", "to"]
    out = []
    for _ in range(n):
        for w in (r.choice(words) for _ in range(r.randint(2, 7))):
            out.append(f"{w} {kinds.get(w, 'O')}")
        out.append("")
    path.write_text("\n".join(out) + "\n")
    return path


def seq2seq_file(path, n=200, seed=0):
    """Reverse a short string."""
    r = random.Random(seed)
    lines = ["".join(r.choice("abcd") for _ in range(r.randint(2, 4))) for _ in range(n)]
    path.write_text("".join(f"{s}\t{s[::-1]}\n" for s in lines))
    return path


def forecast_file(path, n=300, seed=0):
    """Two columns: a sine wave and a noisy companion."""
    r = random.Random(seed)
    rows = [f"{math.sin(t / 4):.5f},{math.cos(t / 9) + 0.1 * r.random():.5f}" for t in range(n)]
    path.write_text("wave,other\n" + "\n".join(rows) + "\n")
    return path


FILES = {"classify": classify_file, "tag": tag_file, "seq2seq": seq2seq_file, "forecast": forecast_file}
EXTRA = {"classify": ["--pool", "max"], "tag": [], "seq2seq": [],
         "forecast": ["--target", "wave", "--window", "8", "--horizon", "2"]}


def failure(e, capsys):
    """(exit status, stderr) of a SystemExit as the shell sees them: sys.exit(message) exits 1."""
    code = e.value.code
    return (1, code + "\n") if isinstance(code, str) else (code, capsys.readouterr().err)


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("task", sorted(FILES))
def test_train_predict_evaluate(task, tmp_path, capsys):
    data = FILES[task](tmp_path / f"data.{task}")
    out = tmp_path / "run"
    assert main(["train", "--task", task, str(data), *SMALL, *EXTRA[task], "--epochs", "1",
                 "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"best.npz", "last.npz", "log.jsonl"}
    record = _log(out)[-1]
    metric = {"classify": "val_accuracy", "tag": "val_token_acc", "seq2seq": "val_exact_match",
              "forecast": "val_mae"}[task]
    assert record[metric] is not None and record["val_loss"] is not None
    meta = io.load(out / "best.npz")[2]["meta"]
    assert meta["task"] == task and meta["task_state"]

    capsys.readouterr()
    code = main(["predict", str(out), str(data)])
    printed = capsys.readouterr().out.splitlines()
    assert code == 0
    if task == "classify":
        label, p = printed[0].split("\t")
        assert label in ("digit", "none") and 0.5 <= float(p) <= 1 and len(printed) == 200
    elif task == "tag":
        assert printed[0].split("\t")[0] == data.read_text().split()[0] and printed.count("") == 150
        assert all(line == "" or line.split("\t")[1] in ("B-PER", "B-LOC", "O") for line in printed)
    elif task == "seq2seq":
        assert len(printed) == 200
    else:
        assert len(printed) == 2 and all(np.isfinite(float(v)) for v in printed)

    assert main(["evaluate", str(out / "best.npz"), str(data)]) == 0
    values = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert int(values["examples"]) > 0 and metric[4:] in values


def test_resume_is_bit_exact(tmp_path):
    """Train 1 epoch and resume to 2 == train 2 epochs straight (parameters and optimiser)."""
    data = tag_file(tmp_path / "t.conll")
    common = ["train", "--task", "tag", str(data), *SMALL, "--dropout", "0.2"]
    assert main([*common, "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main([*common, "--epochs", "1", "--out", str(tmp_path / "resumed")]) == 0
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--epochs", "2", "--quiet"]) == 0
    a = io.load_arrays(tmp_path / "straight" / "last.npz")[0]
    b = io.load_arrays(tmp_path / "resumed" / "last.npz")[0]
    for key in a:
        if key.startswith(("param/", "optim/")):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert [r["val_token_acc"] for r in _log(tmp_path / "straight")] == \
           [r["val_token_acc"] for r in _log(tmp_path / "resumed")]


def test_seq2seq_resume_and_beam(tmp_path, capsys):
    data = seq2seq_file(tmp_path / "s.tsv", n=60)
    out = tmp_path / "run"
    assert main(["train", "--task", "seq2seq", str(data), *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "2", "--beam", "2", "--quiet"]) == 0
    assert _log(out)[-1]["epoch"] == pytest.approx(2)
    capsys.readouterr()
    assert main(["predict", str(out), str(data), "--beam", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 60


@pytest.mark.parametrize("argv", [
    ("train", "--horizon", "0"), ("train", "--window", "-1"), ("train", "--beam", "0"),
    ("train", "--pool", "sum"), ("train", "--task", "regress"), ("train", "--split", "random"),
    ("train", "--level", "byte"), ("predict", "x.npz", "--beam", "0"),
    ("evaluate", "x.npz", "y.tsv", "--batch", "0"), ("sample", "x.npz", "--condition"),
], ids=" ".join)
def test_bad_task_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert next(a for a in argv if a.startswith("--")) in err.splitlines()[-1], err


@pytest.mark.parametrize("flags, message", [
    (["--hidden", "32"], "--hidden: cannot be changed"),
    (["--task", "tag"], "--task tag: cannot be changed"),
    (["--seq-len", "5"], "--seq-len: only for language models"),
])
def test_resume_refuses_fixed_options(tmp_path, capsys, flags, message):
    data = classify_file(tmp_path / "c.tsv", n=40)
    out = tmp_path / "run"
    assert main(["train", "--task", "classify", str(data), *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", str(out), *flags])
    assert e.value.code == 2 and message in capsys.readouterr().err


BAD_FILES = [
    ("classify", "good\tx\nno tab\n", "c.tsv:2: expected text<TAB>label, found no tab"),
    ("classify", "good\tx\n\tx\n", "c.tsv:2: empty text"),
    ("seq2seq", "ab\tba\nab\t\n", "c.tsv:2: empty target"),
    ("tag", "John B-PER\nruns\n", "c.tsv:2: expected token<whitespace>tag, found one column"),
    ("forecast", "a,b\n1,2\n3\n", "c.tsv:3: expected 2 comma-separated cells, found 1"),
    ("forecast", "a,b\n1,2\n3,x\n", "c.tsv:3: column 2: expected a finite number, found 'x'"),
    ("forecast", "a\n1\n2\n3\n", "expected at least"),
]


@pytest.mark.parametrize("task, text, message", BAD_FILES)
def test_bad_files_are_one_line_errors_and_leave_nothing(task, text, message, tmp_path, capsys):
    path = tmp_path / "c.tsv"
    path.write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", task, str(path), *SMALL, "--out", str(tmp_path / "run")])
    status, err = failure(e, capsys)
    assert status in (1, 2) and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "fastrnn: " in err
    assert not (tmp_path / "run").exists()


def test_a_split_that_leaves_no_training_examples_is_an_error(tmp_path, capsys):
    path = tmp_path / "two.tsv"
    path.write_text("a\tx\nb\ty\n")
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "classify", str(path), "--val-frac", "0.9", "--out", str(tmp_path / "run")])
    assert "no training examples left" in failure(e, capsys)[1] and not (tmp_path / "run").exists()


def test_predict_reports_bad_lines_and_predicts_the_rest(tmp_path, capsys):
    data = classify_file(tmp_path / "c.tsv", n=40)
    out = tmp_path / "run"
    assert main(["train", "--task", "classify", str(data), *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    bad = tmp_path / "in.tsv"
    bad.write_bytes(b"abc\n\tx\n\xff\nab1c\n")
    capsys.readouterr()
    assert main(["predict", str(out), str(bad)]) == 1
    captured = capsys.readouterr()
    # one output line per input line: the bad ones (2: empty text, 3: not UTF-8) are blank
    out_lines = captured.out.split("\n")[:-1]
    assert len(out_lines) == 4 and out_lines[1] == out_lines[2] == "" and "\t" in out_lines[3]
    assert "in.tsv:2: empty text" in captured.err and "in.tsv:3: not UTF-8" in captured.err
    # an unseen label at evaluate time: reported per line, the rest evaluated
    labelled = tmp_path / "l.tsv"
    labelled.write_text("abc\tnone\nab1\tnovel\n")
    assert main(["evaluate", str(out), str(labelled)]) == 1
    captured = capsys.readouterr()
    assert "examples\t1" in captured.out and "l.tsv:2: label 'novel' was not seen in training" in captured.err


def test_task_options_need_a_task_and_predict_needs_a_task_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "x.txt", "--horizon", "3"])
    assert e.value.code == 2 and "--horizon: only for --task" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "classify", "x.txt", "--split", "interleaved"])
    assert e.value.code == 2 and "--split: only for language models" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "tag", "x.txt", "--level", "char:word"])
    assert e.value.code == 2 and "only for --task seq2seq" in capsys.readouterr().err
    lm = tmp_path / "lm.npz"
    fastrnn.save(lm, fastrnn.LanguageModel(5, hidden_size=4, num_layers=1), fastrnn.Vocab.build("abc"))
    with pytest.raises(SystemExit) as e:
        main(["predict", str(lm), "x"])
    assert "needs a checkpoint of `fastrnn train --task" in str(e.value.code)


# ---- learning: each task's metric beats the trivial baseline ------------------------------------

def test_classify_learns_contains_a_digit(tmp_path, capsys):
    data = classify_file(tmp_path / "c.tsv", n=300)
    out = tmp_path / "run"
    assert main(["train", "--task", "classify", str(data), "--hidden", "32", "--pool", "max",
                 "--epochs", "12", "--seed", "1", "--quiet", "--out", str(out)]) == 0
    majority = max(sum(line.endswith("digit") for line in data.read_text().splitlines()), 150) / 300
    assert max(r["val_accuracy"] for r in _log(out)) >= max(0.9, majority + 0.2)


def test_tag_learns_entities(tmp_path):
    data = tag_file(tmp_path / "t.conll", n=200)
    out = tmp_path / "run"
    assert main(["train", "--task", "tag", str(data), "--hidden", "16", "--epochs", "8", "--quiet",
                 "--out", str(out)]) == 0
    best = _log(out)[-1]
    assert best["val_entity_f1"] > 0.9 and best["val_token_acc"] > 0.9    # all-O scores F1 0


def test_seq2seq_learns_to_reverse(tmp_path):
    data = seq2seq_file(tmp_path / "s.tsv", n=300)
    out = tmp_path / "run"
    assert main(["train", "--task", "seq2seq", str(data), "--hidden", "48", "--epochs", "15",
                 "--quiet", "--out", str(out)]) == 0
    # predicting nothing has CER 1; the model gets well below and reverses many strings exactly
    best = min(_log(out), key=lambda r: r["val_cer"])
    assert best["val_cer"] < 0.4 and best["val_exact_match"] > 0.3


def test_forecast_beats_persistence(tmp_path):
    data = forecast_file(tmp_path / "f.csv", n=400)
    out = tmp_path / "run"
    assert main(["train", "--task", "forecast", str(data), "--target", "wave", "--window", "12",
                 "--horizon", "3", "--epochs", "6", "--quiet", "--out", str(out)]) == 0
    last = _log(out)[-1]
    assert last["val_mae"] < 0.7 * last["val_persistence_mae"]


# ---- --split interleaved ----------------------------------------------------------------------

def test_interleaved_validation_is_the_tail_of_every_stream():
    ids = np.arange(2001)
    B, T = 4, 10
    train, val = interleaved_split(ids, B, T, val_frac=0.1)
    per_stream = 2000 // B          # 500 tokens, 50 windows per stream: 45 train, 5 val
    assert (len(train), len(val)) == (45, 5)
    for b in range(B):
        stream = ids[b * per_stream:(b + 1) * per_stream + 1]
        got_val = np.concatenate([val[k][0][b] for k in range(len(val))])
        np.testing.assert_array_equal(got_val, stream[450:500])
        np.testing.assert_array_equal(val[len(val) - 1][1][b][-1], stream[500])
        got_train = np.concatenate([train[k][0][b] for k in range(len(train))])
        np.testing.assert_array_equal(got_train, stream[:450])
    # char-rnn's counts with a test part: floor(50 * 0.1) = 5 validation windows, 40 training
    train, val = interleaved_split(ids, B, T, val_frac=0.1, test_frac=0.1)
    assert (len(train), len(val)) == (40, 5)


def test_interleaved_split_trains_samples_and_resumes(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("It was the best of times, it was the worst of times.\n" * 20)
    out = tmp_path / "run"
    lm = ["--hidden", "16", "--layers", "1", "--batch", "4", "--seq-len", "8", "--quiet"]
    assert main(["train", str(corpus), *lm, "--split", "interleaved", "--val-frac", "0.2",
                 "--epochs", "1", "--out", str(out)]) == 0
    meta = io.load(out / "last.npz")[2]["meta"]
    assert meta["split"] == "interleaved" and _log(out)[-1]["val_loss"] is not None
    assert main(["sample", str(out), "--length", "5", "--seed", "0"]) == 0
    with pytest.raises(SystemExit) as e:
        main(["train", str(corpus), "--resume", str(out), "--split", "tail"])
    assert e.value.code == 2 and "--split: cannot be changed" in capsys.readouterr().err
    # resume keeps the interleaved split: 1 + 1 epochs == 2 epochs straight
    assert main(["train", str(corpus), "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert main(["train", str(corpus), *lm, "--split", "interleaved", "--val-frac", "0.2",
                 "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    a = io.load_arrays(out / "last.npz")[0]
    b = io.load_arrays(tmp_path / "straight" / "last.npz")[0]
    assert all(np.array_equal(a[k], b[k]) for k in a if k.startswith("param/"))
    assert _log(out)[-1]["val_loss"] == _log(tmp_path / "straight")[-1]["val_loss"]


# ---- sample --condition -------------------------------------------------------------------------

def test_sample_a_conditioned_generator(tmp_path, capsys):
    vocab = fastrnn.Vocab.build("abcdef")
    model = fastrnn.ConditionedGenerator(len(vocab), num_classes=2, hidden_size=8, seed=0)
    path = tmp_path / "cond.npz"
    fastrnn.save(path, model, vocab, labels=["python", "c"])
    capsys.readouterr()
    assert main(["sample", str(path), "--condition", "c", "--length", "12", "--seed", "3"]) == 0
    by_name = capsys.readouterr().out
    assert main(["sample", str(path), "--condition", "1", "--length", "12", "--seed", "3"]) == 0
    assert capsys.readouterr().out == by_name and 0 < len(by_name.strip()) <= 12
    with pytest.raises(SystemExit) as e:
        main(["sample", str(path), "--condition", "rust"])
    assert e.value.code == 2 and "one of python, c or a class id in [0, 2)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["sample", str(path)])
    assert "--condition: required" in str(e.value.code)


def test_ctrl_c_saves_a_task_run_and_it_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    data = seq2seq_file(tmp_path / "s.tsv", n=400)
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "fastrnn", "train", "--task", "seq2seq", str(data),
                          *SMALL, "--epochs", "1000", "--eval-every", "5", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fastrnn.__file__))))
    deadline = time.time() + 120
    while not (out / "log.jsonl").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0 and "interrupted after" in stdout and "Traceback" not in stderr, stderr
    stopped_at = _log(out)[-1]["iteration"]
    assert main(["train", "--resume", str(out), "--max-time", "1s", "--quiet"]) == 0
    assert _log(out)[-1]["iteration"] > stopped_at


def test_forecast_normalises_with_the_training_rows_and_splits_chronologically(tmp_path):
    rows = [(t, 100 + t if t < 80 else 1000.0) for t in range(100)]    # the last rows jump
    path = tmp_path / "f.csv"
    path.write_text("".join(f"{a},{b}\n" for a, b in rows))
    out = tmp_path / "run"
    assert main(["train", "--task", "forecast", str(path), *SMALL, "--window", "4", "--target", "1",
                 "--val-frac", "0.2", "--epochs", "1", "--out", str(out)]) == 0
    state = io.load(out / "last.npz")[2]["meta"]["task_state"]
    train = np.array(rows[:80], np.float64)
    np.testing.assert_allclose(state["mean"], train.mean(axis=0))
    np.testing.assert_allclose(state["std"], train.std(axis=0))
    assert state["columns"] == ["0", "1"] and state["target"] == 1
    # validation: the 20 windows whose targets are the last 20 rows (all 1000): the persistence
    # forecast is wrong only on the first of them, by 1000 - 179
    assert _log(out)[-1]["val_persistence_mae"] == pytest.approx((1000 - 179) / 20)


def test_seq2seq_char_to_word_levels(tmp_path, capsys, monkeypatch):
    import io as stdio
    import sys
    path = tmp_path / "g2p.tsv"
    words = {"cat": "K AE1 T", "dog": "D AO1 G", "cot": "K AA1 T", "dot": "D AA1 T"}
    path.write_text("".join(f"{w}\t{p}\n" for w, p in words.items()) * 10)
    out = tmp_path / "run"
    assert main(["train", "--task", "seq2seq", str(path), *SMALL, "--level", "char:word",
                 "--epochs", "1", "--out", str(out)]) == 0
    state = io.load(out / "last.npz")[2]["meta"]["task_state"]
    assert {"K", "AE1", "T", "<bos>"} <= set(state["tgt_vocab"]["tokens"])
    assert set("catdog") <= set(state["src_vocab"]["tokens"]) and "ter" in str(_log(out)[-1])
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", stdio.TextIOWrapper(stdio.BytesIO(b"cat\ndot\n")))
    assert main(["predict", str(out), "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["predict", str(out), str(path)]) == 0
    predicted = capsys.readouterr().out.splitlines()
    tokens = {t for line in predicted for t in line.split()}
    assert len(predicted) == 40 and tokens <= set(state["tgt_vocab"]["tokens"])


@pytest.mark.parametrize("task", ["classify", "seq2seq"])
def test_predict_answers_line_for_line(task, tmp_path, capsys, monkeypatch):
    import io as _io
    import sys
    data = FILES[task](tmp_path / "d.tsv", n=40)
    out = tmp_path / "run"
    assert main(["train", "--task", task, str(data), *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    # blank and bad lines (a lone tab is an empty text) answer with an empty line, trailing ones too
    stdin = b"good\n\tx\n\nnice\n\n"
    monkeypatch.setattr(sys, "stdin", _io.TextIOWrapper(_io.BytesIO(stdin)))
    assert main(["predict", str(out), "-"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.split("\n")[:-1]
    assert len(lines) == 5 and lines[1] == lines[2] == lines[4] == "", lines
    if task == "classify":
        assert lines[0] and lines[3]
    assert captured.err.strip() == "fastrnn: <stdin>:2: empty source" if task == "seq2seq" else \
        captured.err.strip() == "fastrnn: <stdin>:2: empty text"


def test_resume_from_another_directory_finds_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    classify_file(tmp_path / "cls.tsv", n=40)
    (tmp_path / "lm.txt").write_text("the cat sat on the mat. " * 40)
    assert main(["train", "--task", "classify", "cls.tsv", *SMALL, "--epochs", "1", "--out", "c"]) == 0
    assert main(["train", "lm.txt", "--hidden", "8", "--layers", "1", "--batch", "2", "--seq-len",
                 "8", "--epochs", "1", "--quiet", "--out", "l"]) == 0
    assert io.load_arrays("c/last.npz")[1]["corpus"] == str(tmp_path / "cls.tsv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(tmp_path / "c"), "--epochs", "2", "--quiet"]) == 0
    assert main(["train", "--resume", str(tmp_path / "l"), "--epochs", "2", "--quiet"]) == 0
    assert [r["epoch"] for r in _log(tmp_path / "c")] == [1.0, 2.0]


def test_validation_line_has_no_perplexity_and_the_bar_shows_the_metric(tmp_path, capsys):
    data = classify_file(tmp_path / "c.tsv", n=40)
    assert main(["train", "--task", "classify", str(data), "--hidden", "16", "--embed", "8",
                 "--batch", "8", "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    line = next(x for x in captured.out.splitlines() if "train " in x and " val " in x)
    assert "ppl" not in line, line
    assert " val_accuracy " in line, line                  # the task's metric, in the same line
    assert sum(x.startswith("iter ") for x in captured.out.splitlines()) == 1   # one per validation
    assert "val_accuracy=" in captured.err            # tqdm's postfix, after the first validation
    assert _log(tmp_path / "run")[0]["val_ppl"] is None
