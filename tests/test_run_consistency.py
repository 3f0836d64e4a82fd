"""Crash-consistent run directories (docs/reliability.md): after a crash at any step of a
checkpoint's save sequence, a resume ends with the same best.npz and log.jsonl as a run that
was never interrupted; a stop right after a checkpoint writes no second line for it; a failed
first save leaves no directory behind."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fastrnn import io
from fastrnn.data import Vocab, split
from fastrnn.models import LanguageModel
from fastrnn.train import Trainer, run_files

TEXT = "".join(f"line {i}: the cat sat on the mat, {i * i % 97}\n" for i in range(16))
EVAL_EVERY = 3


def data():
    vocab = Vocab.build(TEXT)
    train_ids, val_ids, _ = split(vocab.encode(TEXT), 0.15, 0.0)
    return vocab, train_ids, val_ids


def new_trainer(out, **kw):
    """A tiny language model with dropout (so the RNG state matters) and several checkpoints."""
    vocab, train_ids, val_ids = data()
    model = LanguageModel(len(vocab), hidden_size=12, num_layers=2, dropout=0.2, seed=0)
    settings = dict(batch_size=3, seq_len=8, eval_every=EVAL_EVERY, epochs=2, out=str(out),
                    progress=False, lr=1e-2)
    settings.update(kw)
    return Trainer(model, vocab, train_ids, val_ids, **settings)


def resume(out):
    _, train_ids, val_ids = data()
    return Trainer.resume(os.path.join(out, "last.npz"), train_ids, val_ids, progress=False, out=str(out))


def log_lines(out):
    """The log's records without their wall-clock field."""
    lines = [json.loads(line) for line in open(os.path.join(out, "log.jsonl"))]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in lines]


def assert_same_checkpoint(a, b):
    """Arrays bit for bit, metadata equal but for the wall-clock time."""
    arrays_a, meta_a = io.load_arrays(a)
    arrays_b, meta_b = io.load_arrays(b)
    assert sorted(arrays_a) == sorted(arrays_b)
    for k in arrays_a:
        assert arrays_a[k].dtype == arrays_b[k].dtype and np.array_equal(arrays_a[k], arrays_b[k]), k
    for meta in (meta_a, meta_b):
        del meta["training"]["elapsed"]
    assert meta_a == meta_b


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    trainer = new_trainer(out)
    trainer.fit()
    lines = log_lines(out)
    vals = [r["val_loss"] for r in lines]
    improved = [i + 1 for i, v in enumerate(vals) if v < min(vals[:i], default=np.inf)]
    # what the crash cases below rely on: several checkpoints, and later ones that improve
    assert len(lines) >= 4 and {2, 3} <= set(improved), vals
    return out


class Crash(BaseException):
    """What a SIGKILL does to the Python code after it: nothing more runs (raised from a hook;
    a subprocess test below uses the real signal)."""


def inject(monkeypatch, checkpoint, step):
    """Crash at `step` of the `checkpoint`-th checkpoint's save sequence: best_tmp (best.npz's
    temp file half written), best (best.npz renamed), log (the line appended), last_tmp, last."""
    count = [0]
    make_out, append_log, replace = run_files.make_out, run_files.append_log, os.replace

    def at(name, temp=None):
        if count[0] == checkpoint and name == step:
            if temp:                # as if killed while writing the temp file
                with open(temp, "r+b") as f:
                    f.truncate(os.path.getsize(temp) // 2)
            raise Crash(name)

    def counting_make_out(out):
        count[0] += 1
        return make_out(out)

    def hooked_append_log(*args, **kw):
        append_log(*args, **kw)
        at("log")

    def hooked_replace(src, dst, **kw):
        name = os.path.basename(os.fspath(dst))[:-len(".npz")]
        if name in ("best", "last"):
            at(f"{name}_tmp", src)
        replace(src, dst, **kw)
        if name in ("best", "last"):
            at(name)
    monkeypatch.setattr(run_files, "make_out", counting_make_out)
    monkeypatch.setattr(run_files, "append_log", hooked_append_log)
    monkeypatch.setattr(os, "replace", hooked_replace)


STEPS = ["best_tmp", "best", "log", "last_tmp", "last"]


@pytest.mark.parametrize("checkpoint", [1, 3])
@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_step_of_a_checkpoint_then_resume_gives_the_uninterrupted_run(
        tmp_path, monkeypatch, reference, checkpoint, step):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        inject(m, checkpoint, step)
        with pytest.raises(Crash):
            new_trainer(out).fit()
    if (out / "last.npz").exists():
        trainer = resume(out)
        assert trainer.iteration == EVAL_EVERY * (checkpoint - (step != "last"))
    else:       # the first checkpoint did not complete: nothing to resume, run again
        assert checkpoint == 1
        trainer = new_trainer(out)
    trainer.fit()
    assert_same_checkpoint(out / "best.npz", reference / "best.npz")
    assert_same_checkpoint(out / "last.npz", reference / "last.npz")
    assert log_lines(out) == log_lines(reference)
    assert sorted(p.name for p in out.iterdir()) == ["best.npz", "last.npz", "log.jsonl"]


def test_resume_after_a_crash_of_an_older_fastrnn_between_last_and_best(tmp_path, reference):
    # the order this fixes: last.npz written at an improvement, best.npz not yet, and the log line
    # missing; best.npz's own validation loss decides what an improvement is from now on
    out = tmp_path / "run"
    trainer = new_trainer(out)
    trainer.fit(max_iters=2 * EVAL_EVERY)
    best_before = (out / "best.npz").read_bytes()
    trainer.fit(max_iters=EVAL_EVERY)
    (out / "best.npz").write_bytes(best_before)
    lines = (out / "log.jsonl").read_text().splitlines(keepends=True)
    (out / "log.jsonl").write_text("".join(lines[:-1]) + lines[-1][:10])    # and a torn line
    trainer = resume(out)
    assert trainer.best_val == io.load_arrays(out / "best.npz")[1]["training"]["best_val"]
    trainer.fit()
    assert_same_checkpoint(out / "best.npz", reference / "best.npz")
    got, want = log_lines(out), log_lines(reference)
    assert got == want[:2] + want[3:]        # the lost line stays lost; nothing else differs


def test_a_missing_or_damaged_best_is_rewritten_at_the_next_checkpoint(tmp_path, reference):
    out = tmp_path / "run"
    new_trainer(out).fit(max_iters=2 * EVAL_EVERY)
    (out / "best.npz").write_bytes(b"garbage")
    trainer = resume(out)
    assert trainer.best_val == np.inf
    trainer.fit(max_iters=EVAL_EVERY)
    assert io.load_arrays(out / "best.npz")[1]["training"]["iteration"] == 3 * EVAL_EVERY


# ---- real SIGKILLs at random instants ----------------------------------------------------------

CHILD = """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from test_run_consistency import new_trainer, resume
    out = sys.argv[2]
    trainer = resume(out) if os.path.exists(os.path.join(out, "last.npz")) else new_trainer(out, epochs=6)
    print("started", flush=True)
    trainer.fit()
"""


def run_child(out, kill_after=None, fit_seconds=None):
    """The child's return code (0, or -SIGKILL when killed `kill_after` seconds into its fit);
    `fit_seconds`, a list, receives how long its fit ran."""
    from fuzz_helpers import package_root
    env = dict(os.environ, PYTHONPATH=package_root(), OPENBLAS_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD),
                          os.path.dirname(os.path.abspath(__file__)), str(out)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "started\n", p.stderr.read()
    start = time.monotonic()
    if kill_after is not None:
        try:
            p.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
    _, stderr = p.communicate(timeout=300)
    if fit_seconds is not None:
        fit_seconds.append(time.monotonic() - start)
    assert p.returncode in (0, -signal.SIGKILL), stderr
    return p.returncode


def test_sigkill_at_random_instants_then_resume_gives_the_uninterrupted_run(tmp_path):
    fit_seconds = []
    assert run_child(tmp_path / "reference", fit_seconds=fit_seconds) == 0
    # kill instants within the first 0.4 s, and within 90 % of the whole fit's time: on a fast
    # machine the whole fit can end before 0.4 s, and a first run never killed tests nothing
    latest = min(0.4, 0.9 * fit_seconds[0])
    out = tmp_path / "run"
    rng = np.random.default_rng(0)
    kills = 0
    while kills < 6 and run_child(out, kill_after=rng.uniform(0.0, latest)) != 0:
        kills += 1
    assert kills >= 1           # the run was killed (and resumed) at least once
    if kills == 6:
        assert run_child(out) == 0
    assert_same_checkpoint(out / "best.npz", tmp_path / "reference" / "best.npz")
    assert log_lines(out) == log_lines(tmp_path / "reference")


# ---- stopping, and a first save that fails ---------------------------------------------------

def test_stopping_right_after_a_checkpoint_writes_no_second_line(tmp_path, capsys):
    trainer = new_trainer(tmp_path, progress=True)
    step = trainer.train_step

    def stop_at_a_checkpoint():
        loss = step()
        if trainer.iteration == EVAL_EVERY:
            trainer._interrupted = True       # what the SIGINT handler does
        return loss
    trainer.train_step = stop_at_a_checkpoint
    summary = trainer.fit()
    assert summary["stopped"] == "interrupted" and summary["iterations"] == EVAL_EVERY
    assert [r["iteration"] for r in log_lines(tmp_path)] == [EVAL_EVERY]
    assert "nan" not in "".join(capsys.readouterr())


def test_a_resumed_run_stopped_before_its_first_step_says_no_train_loss(tmp_path, capsys):
    new_trainer(tmp_path / "a").fit(max_iters=EVAL_EVERY + 1)
    _, train_ids, val_ids = data()
    trainer = Trainer.resume(tmp_path / "a" / "last.npz", train_ids, val_ids, out=str(tmp_path / "b"))
    trainer._interrupted = True
    trainer.fit()
    assert [r["iteration"] for r in log_lines(tmp_path / "b")] == [EVAL_EVERY + 1]
    assert f"iter {EVAL_EVERY + 1}: train -  val" in "".join(capsys.readouterr())


def test_metadata_that_is_not_json_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "a" / "b"
    with pytest.raises(ValueError, match=r"meta\['task_state'\]\['std'\]: expected a finite number"):
        new_trainer(out, meta=dict(task_state=dict(std=float("inf"))))
    with pytest.raises(ValueError, match=r"meta\['x'\]\[1\]: expected a finite number, got nan"):
        io.save_arrays(tmp_path / "c.npz", {}, dict(x=[1, float("nan")]))
    assert not os.listdir(tmp_path)


def test_a_first_save_that_fails_removes_the_directories_it_created(tmp_path):
    out = tmp_path / "a" / "b"
    trainer = new_trainer(out)
    trainer.meta["bad"] = float("nan")          # as a normaliser that overflowed after __init__
    with pytest.raises(ValueError, match=r"meta\['bad'\]"):
        trainer.fit()
    assert not os.listdir(tmp_path)
    (tmp_path / "keep").mkdir()                 # a directory that existed before stays
    trainer = new_trainer(tmp_path / "keep")
    trainer.meta["bad"] = float("nan")
    with pytest.raises(ValueError):
        trainer.fit()
    assert os.listdir(tmp_path) == ["keep"]


def test_out_naming_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        new_trainer(tmp_path / "f")
    assert (tmp_path / "f").read_text() == "mine"
