"""The `fastrnn` command's option checks and `--resume` semantics, run in-process (fast)."""
import json

import numpy as np
import pytest

import fastrnn
from fastrnn import io
from fastrnn.cli import main

BAD_OPTIONS = [
    ("train", "--hidden", "0"), ("train", "--layers", "0"), ("train", "--embed", "0"),
    ("train", "--batch", "0"), ("train", "--seq-len", "-1"), ("train", "--epochs", "0"),
    ("train", "--eval-every", "0"), ("train", "--min-count", "0"), ("train", "--threads", "0"),
    ("train", "--lr-decay-every", "0"), ("train", "--dropout", "1.5"), ("train", "--dropout", "1"),
    ("train", "--dropout", "-0.1"), ("train", "--val-frac", "1.5"), ("train", "--test-frac", "-0.2"),
    ("train", "--max-time", "0"), ("train", "--max-time", "0s"), ("train", "--clip", "-5"),
    ("train", "--lr", "0"), ("train", "--lr", "nan"), ("train", "--lr", "inf"),
    ("train", "--lr-decay", "-1"), ("train", "--lr-decay", "0"), ("train", "--lr-decay", "1.5"),
    ("train", "--hidden", "2.5"), ("train", "--seed", "-1"), ("train", "--dropout", "x"),
    ("train", "--clip-value", "-1"), ("train", "--clip-value", "nan"), ("train", "--init-range", "0"),
    ("train", "--init-range", "-0.08"), ("train", "--lr-decay-after", "-1"),
    ("train", "--lr-decay-after", "1.5"),
    ("sample", "x.npz", "--length", "-1"), ("sample", "x.npz", "--temperature", "0"),
    ("sample", "x.npz", "--temperature", "-3"), ("sample", "x.npz", "--top-k", "0"),
    ("sample", "x.npz", "--top-p", "0"), ("sample", "x.npz", "--top-p", "1.5"),
    ("sample", "x.npz", "--threads", "0"), ("info", "--threads", "-2"),
]


@pytest.mark.parametrize("argv", BAD_OPTIONS, ids=" ".join)
def test_bad_options_are_one_line_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    err = capsys.readouterr().err
    assert e.value.code == 2
    flag = next(a for a in argv if a.startswith("--"))
    assert "Traceback" not in err and flag in err.splitlines()[-1], err


def test_fractions_must_leave_training_data(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path / "c.txt"), "--val-frac", "0.6", "--test-frac", "0.5"])
    assert e.value.code == 2 and "--val-frac + --test-frac" in capsys.readouterr().err


SMALL = ["--hidden", "16", "--layers", "1", "--batch", "2", "--seq-len", "8", "--quiet"]


@pytest.fixture()
def run(tmp_path, monkeypatch):
    """A finished one-epoch run in runA, with the working directory at tmp_path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("It was the best of times, it was the worst of times.\n" * 12)
    assert main(["train", "corpus.txt", *SMALL, "--epochs", "1", "--eval-every", "5",
                 "--val-frac", "0.1", "--out", "runA"]) == 0
    return tmp_path / "runA"


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_resume_continues_in_the_resumed_directory_with_the_given_flags(run, capsys):
    capsys.readouterr()
    before = _log(run)
    # no --out and no corpus: into runA, on the run's own corpus and split; new lr, epochs, eval
    assert main(["train", "--resume", "runA", "--epochs", "2", "--eval-every", "3", "--lr", "0.5",
                 "--clip", "1", "--quiet"]) == 0
    assert "into runA" in capsys.readouterr().out
    assert not (run.parent / "fastrnn-run").exists()
    after = _log(run)[len(before):]
    assert after and after[-1]["epoch"] == pytest.approx(2)
    assert all(r["lr"] == 0.5 for r in after)
    steps = [r["iteration"] for r in after]
    assert steps[0] == before[-1]["iteration"] + 3 - before[-1]["iteration"] % 3   # --eval-every 3
    training = io.load_arrays(run / "last.npz")[1]["training"]["settings"]
    assert training["epochs"] == 2 and training["clip"] == 1 and training["eval_every"] == 3


@pytest.mark.parametrize("flag", [["--hidden", "32"], ["--cell", "gru"], ["--batch", "3"],
                                  ["--optimizer", "sgd"], ["--seed", "3"], ["--val-frac", "0.3"]])
def test_resume_rejects_flags_it_cannot_apply(run, capsys, flag):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", "runA", *flag, "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and flag[0] in err.splitlines()[-1] and "Traceback" not in err


def test_resume_accepts_the_same_split(run):
    assert main(["train", "--resume", "runA", "--val-frac", "0.1", "--epochs", "2", "--quiet"]) == 0


def test_resume_failures_are_one_line(run, capsys, tmp_path):
    from fastrnn.data import Vocab
    from fastrnn.models import LanguageModel
    vocab = Vocab.build("abc")
    io.save(tmp_path / "model_only.npz", LanguageModel(len(vocab), hidden_size=4, num_layers=1), vocab)
    damaged = bytearray((run / "last.npz").read_bytes())
    damaged[len(damaged) // 2] ^= 4
    (tmp_path / "damaged.npz").write_bytes(damaged)
    for target in ("nowhere", "model_only.npz", "damaged.npz"):
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(["train", "corpus.txt", "--resume", target, "--quiet"])
        err = capsys.readouterr().err
        assert e.value.code not in (0, None) and target in str(e.value.code), (target, e.value.code)
        assert "Traceback" not in err


def test_sample_on_a_damaged_checkpoint_is_one_line(run):
    data = bytearray((run / "best.npz").read_bytes())
    for k, at in enumerate(np.linspace(0, len(data) - 1, 7).astype(int)):
        bad = run.parent / f"bad{k}.npz"
        flipped = bytearray(data)
        flipped[at] ^= 0x10
        bad.write_bytes(flipped)
        try:
            main(["sample", str(bad), "--length", "5", "--seed", "0"])
        except SystemExit as e:     # sys.exit("fastrnn: ...") carries the one-line message
            assert isinstance(e.code, str) and "\n" not in e.code and f"bad{k}.npz" in e.code


@pytest.mark.parametrize("field", ["optimizer", "model"])
def test_sample_on_hostile_metadata_is_one_line(run, field):
    """A checkpoint with intact CRCs whose metadata the model cannot take: one line, no traceback."""
    arrays, meta = io.load_arrays(run / "best.npz")
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    if field == "model":
        meta["model"] = dict(meta["model"], hidden_size=10**5)     # 149 GiB: MemoryError at once
    else:
        meta["optimizer"] = "x"                                     # TypeError inside load
    io.save_arrays(run / "hostile.npz", arrays, meta)
    with pytest.raises(SystemExit) as e:
        main(["sample", str(run / "hostile.npz"), "--length", "3"])
    assert isinstance(e.value.code, str) and "\n" not in e.value.code and "hostile.npz" in e.value.code


CHARRNN = ["--clip", "0", "--clip-value", "5", "--init-range", "0.08", "--lr-decay", "0.5",
           "--lr-decay-after", "2"]


def test_charrnn_options_are_recorded_and_resume_keeps_or_changes_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("It was the best of times, it was the worst of times.\n" * 12)
    assert main(["train", "corpus.txt", *SMALL, "--epochs", "2", "--lr", "0.01", "--split",
                 "interleaved", *CHARRNN, "--out", "run"]) == 0
    _, meta = io.load_arrays("run/last.npz")
    s = meta["training"]["settings"]
    assert (s["clip"], s["clip_value"], s["lr_decay_after"], meta["init_range"]) == (0, 5, 2, 0.08)
    # decay after epoch e only when e >= 2 (char-rnn): two epochs halve the rate once
    assert [r["lr"] for r in _log(tmp_path / "run")][-1] == pytest.approx(0.005)
    # the initialisation is fixed by the checkpoint; the clamp and the decay's start may change
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", "run", "--init-range", "0.1"])
    assert e.value.code == 2 and "--init-range: cannot be changed" in capsys.readouterr().err
    assert main(["train", "--resume", "run", "--epochs", "3", "--clip-value", "1",
                 "--lr-decay-after", "5", "--quiet"]) == 0
    s = io.load_arrays("run/last.npz")[1]["training"]["settings"]
    assert (s["clip_value"], s["lr_decay_after"], s["epochs"]) == (1, 5, 3)
    assert _log(tmp_path / "run")[-1]["lr"] == pytest.approx(0.005)      # epoch 3 < 5: no decay


def test_init_range_is_charrnns_initialisation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("abcdefgh " * 40)
    assert main(["train", "corpus.txt", *SMALL, "--epochs", "1", "--lr", "1e-9", "--init-range",
                 "0.08", "--out", "run"]) == 0
    model, _, _ = fastrnn.load("run/last.npz")
    p, H = dict(model.named_parameters()), 16
    # lr 1e-9: still the initial draw
    np.testing.assert_allclose(p["rnn.bias_ih_l0"][H:2 * H], 1.0, atol=1e-6)      # forget gate
    rest = [a for name, a in p.items() if name != "rnn.bias_ih_l0"] + [p["rnn.bias_ih_l0"][:H]]
    assert max(np.abs(a).max() for a in rest) <= 0.08 + 1e-6


def test_threads_option_reexecutes_when_any_thread_variable_differs(monkeypatch):
    """--threads N re-runs fastrnn with OpenBLAS, OpenMP and fastrnn's team all at N: one variable
    already at N (here OpenBLAS's) must not hide another (fastrnn's) that is not."""
    from fastrnn import cli
    calls = []
    monkeypatch.setattr(cli.os, "execve", lambda exe, args, env: calls.append(env))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "2")
    cli._set_threads(1, ["train", "--threads", "1"])
    assert len(calls) == 1
    assert {calls[0][k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "FASTRNN_NUM_THREADS")} == {"1"}
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "1")
    cli._set_threads(1, ["train", "--threads", "1"])          # all at 1 already: no re-run
    assert len(calls) == 1
