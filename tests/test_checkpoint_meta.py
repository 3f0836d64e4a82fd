"""Hostile checkpoint metadata (issue 19, item 7): every field of a real checkpoint of every task
(classify, tag, seq2seq, forecast, and the language model), mutated one at a time -- wrong type,
huge, negative, NaN, missing, null, zero -- with valid CRCs. Each must be refused by
`fastrnn.load` with one CheckpointError line naming the file, or be harmless: then `predict` and
`evaluate` (or `sample`) print exactly what the clean checkpoint prints, and `--resume` runs or
stops with one line. A few cases run the real command in a subprocess with a timeout (a hang
fails the test)."""
import json
import math
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO

import numpy as np
import pytest

import fastrnn
from fastrnn import io
from fastrnn.cli import main
from fastrnn.io import CheckpointError

import fuzz_cases_ckpt_meta as F

# a normaliser's mean or std edited to another value within the bounds is a different (valid)
# normaliser: it changes the forecasts, which must stay finite
NORMALISER = {("task_state", "mean"), ("task_state", "std")}
# the Trainer's part is the same for every task: fuzzed on one task run and the language model
TRAINER_PART = ("training", "optimizer")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return F.tiny_runs(str(tmp_path_factory.mktemp("meta-runs")))


def cli(*args):
    """(exit code or message, stdout, stderr) of the command run in-process."""
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in args]) or 0
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def one_line_failure(code, err):
    """True when a failed command said why in one line (sys.exit(msg) or argparse's error)."""
    if isinstance(code, str):
        return "\n" not in code.strip() and "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("usage:")]
    return code not in (0, None) and len(lines) == 1 and "Traceback" not in err


def outputs(task, ck, data):
    """What the commands print for checkpoint `ck` (predict and evaluate, or sample)."""
    if task == "lm":
        return [cli("sample", ck, "--length", "20", "--seed", "1")]
    return [cli("predict", ck, data), cli("evaluate", ck, data)]


def _same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.parametrize("task", F.TASKS)
def test_every_metadata_field_is_refused_in_one_line_or_harmless(runs, task, tmp_path):
    run, data = runs[task]
    src = os.path.join(run, "last.npz")
    arrays, meta = io.load_arrays(src)
    clean = outputs(task, src, data)
    assert all(code == 0 for code, _, _ in clean), clean
    problems, accepted, cases = [], [], 0
    dst = str(tmp_path / "edited.npz")
    for path in F.fields(meta):
        if path[:2] == ("training", "rng") and len(path) > 3:
            continue            # inside a bit generator's state: numpy's own checks
        if path[0] in TRAINER_PART and task not in ("classify", "lm"):
            continue
        original = F.value_at(meta, path)
        for kind, value in F.hostile_values(original):
            edited = F.mutated(meta, path, value)
            if _same(edited, meta):
                continue
            cases += 1
            F.write_meta(dst, arrays, edited)
            what = f"{F.name(path)} = {kind}"
            try:
                fastrnn.load(dst)
            except CheckpointError as e:
                if "\n" in str(e) or dst not in str(e):
                    problems.append(f"{what}: not one line naming the file: {e}")
                elif cases % 7 == 0:        # a sample of them through the command in-process
                    code, out, err = outputs(task, dst, data)[0]
                    if not (isinstance(code, str) and str(e) in code and one_line_failure(code, err)
                            and out == ""):
                        problems.append(f"{what}: the command said {code!r} {err[-300:]}")
                continue
            except Exception as e:          # noqa: BLE001 (anything else is the defect)
                problems.append(f"{what}: {type(e).__name__}: {e}")
                continue
            accepted.append(what)
            problems.extend(f"{what}: {p}" for p in _harmless(task, path, kind, dst, data, clean, tmp_path))
    assert not problems, "\n".join(problems[:40])
    assert cases > 150 and len(accepted) < cases / 2, (cases, accepted)


def _harmless(task, path, kind, ck, data, clean, tmp_path):
    """The problems of an accepted edit: a command that fails with more than one line, or prints
    something other than the clean checkpoint's outputs where it should not."""
    if path[0] in TRAINER_PART or path[0] in ("corpus", "val_frac", "test_frac", "split", "seed"):
        out = str(tmp_path / "resumed")
        shutil.rmtree(out, ignore_errors=True)
        code, _, err = cli("train", "--resume", ck, "--out", out, "--epochs", "2", "--quiet")
        if code not in (0, None) and not one_line_failure(code, err):
            return [f"--resume: {code!r} {err[-600:]}"]
        return []
    got = outputs(task, ck, data)
    for (code, out, err), (_, want, _) in zip(got, clean):
        if code not in (0, None):
            return [] if one_line_failure(code, err) else [f"{code!r} {err[-600:]}"]
        if path[:2] in NORMALISER and kind in ("huge", "negative", "zero"):
            assert all(math.isfinite(float(v)) for v in out.split() if _number(v))
        elif out != want:
            return [f"silently changed the output:\n{want[:200]}\n->\n{out[:200]}"]
    return []


def _number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---- the findings of issue 19, one by one (in-process: fast) ------------------------------------

def _edit(runs, task, tmp_path, path, value, name="best.npz"):
    src = os.path.join(runs[task][0], name)
    return F.write_mutated(src, str(tmp_path / f"edited-{task}.npz"), path, value)


def _labels_plus_one(meta):
    return meta["task_state"]["labels"] + ["extra"]


FINDINGS = [  # (task, field path, value or function of the metadata, the field the message names)
    ("seq2seq", ("task_state", "max_len"), 10 ** 12, "max_len"),            # hung
    ("seq2seq", ("task_state", "max_len"), 1e12, "max_len"),               # hung
    ("seq2seq", ("task_options", "beam"), 100000, "beam"),                  # hung
    ("seq2seq", ("task_options", "beam"), 10 ** 12, "beam"),                # 5 GiB
    ("seq2seq", ("task_options", "beam"), -1, "beam"),                      # decoded greedily
    ("seq2seq", ("task_state", "tgt_vocab", "tokens"),
     lambda m: m["task_state"]["tgt_vocab"]["tokens"] + ["z"], "tgt_vocab"),
    ("forecast", ("task_state", "std", 0), 0, "std"),                       # printed nan
    ("forecast", ("task_state", "mean", 1), 1e308, "mean"),                 # printed nan
    ("forecast", ("task_options", "window"), 0, "window"),                  # wrong rows
    ("forecast", ("task_options", "window"), -5, "window"),                 # wrong rows
    ("forecast", ("task_state", "target"), 99, "target"),                   # traceback
    ("forecast", ("task_options", "horizon"), 1, "horizon"),                # another head size
    ("classify", ("task_state", "labels"), _labels_plus_one, "labels"),     # predicted anyway
    ("classify", ("task_state", "labels"), lambda m: m["task_state"]["labels"][:1], "labels"),
    ("classify", ("task_state", "vocab", "tokens"),
     lambda m: m["task_state"]["vocab"]["tokens"][:-1], "vocab"),           # predicted anyway
    ("classify", ("model", "multi_label"), True, "multi_label"),            # predicted anyway
    ("classify", ("task_options", "batch"), 0, "batch"),                    # traceback
    ("classify", ("task_options", "batch"), "32", "batch"),                 # traceback
    ("classify", ("task_state",), None, "task_state"),                      # traceback
    ("tag", ("task_state", "labels"), _labels_plus_one, "labels"),
    ("tag", ("task_state", "vocab", "level"), "char", "vocab"),
    ("classify", ("training", "epoch"), "x", "epoch"),                      # traceback on resume
    ("lm", ("training", "epoch"), "x", "epoch"),
    ("lm", ("vocab", "tokens"), lambda m: m["vocab"]["tokens"] + ["q"], "vocab"),
]


@pytest.mark.parametrize("task, path, value, field", FINDINGS,
                         ids=[f"{t}-{F.name(p)}={v if not callable(v) else 'edited'}"
                              for t, p, v, _ in FINDINGS])
def test_each_finding_is_one_checkpoint_error_line(runs, tmp_path, task, path, value, field):
    _, meta = io.load_arrays(os.path.join(runs[task][0], "best.npz"))
    ck = _edit(runs, task, tmp_path, path, value(meta) if callable(value) else value)
    with pytest.raises(CheckpointError, match=field) as e:
        fastrnn.load(ck)
    assert "\n" not in str(e.value) and ck in str(e.value)
    commands = [("sample", ck)] if task == "lm" else [("predict", ck, runs[task][1]),
                                                     ("evaluate", ck, runs[task][1])]
    for args in commands + [("train", "--resume", ck, "--out", tmp_path / "r", "--quiet")]:
        code, out, err = cli(*args)
        assert isinstance(code, str) and field in code and "\n" not in code, (args, code, err)
        assert out == "", out           # nothing predicted, evaluated or trained


def _run(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(
        os.path.abspath(fastrnn.__file__))), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "fastrnn", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("command", ["predict", "evaluate", "resume"])
def test_edited_decoding_bounds_fail_in_one_line_through_the_real_command(runs, tmp_path, command):
    """The hangs: a seq2seq max_len of 1e12 in a checkpoint with valid CRCs (a timeout fails)."""
    ck = _edit(runs, "seq2seq", tmp_path, ("task_state", "max_len"), 10 ** 12, name="last.npz")
    data = runs["seq2seq"][1]
    args = (["train", "--resume", ck, "--out", tmp_path / "r", "--quiet"] if command == "resume"
            else [command, ck, data])
    r = _run(*args)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "max_len" in r.stderr, r.stderr


def test_an_edited_normaliser_fails_in_one_line_through_the_real_command(runs, tmp_path):
    ck = _edit(runs, "forecast", tmp_path, ("task_state", "std", 0), 0)
    r = _run("predict", ck, runs["forecast"][1])
    assert r.returncode != 0 and "Traceback" not in r.stderr and "nan" not in r.stdout
    assert len(r.stderr.strip().splitlines()) == 1 and "std" in r.stderr, r.stderr


# ---- run directories (fastrnn.load("run_dir")) ---------------------------------------------------

def test_load_takes_a_run_directory(runs, tmp_path):
    run = runs["classify"][0]
    model, _, extra = fastrnn.load(run)
    want, _, _ = fastrnn.load(os.path.join(run, "best.npz"))
    np.testing.assert_array_equal(model.params, want.params)
    only_last = tmp_path / "only-last"
    only_last.mkdir()
    shutil.copy(os.path.join(run, "last.npz"), only_last / "last.npz")
    model, _, _ = fastrnn.load(only_last)
    np.testing.assert_array_equal(model.params, fastrnn.load(os.path.join(run, "last.npz"))[0].params)
    code, out, _ = cli("predict", only_last, runs["classify"][1])
    assert code in (0, 1) and out.strip()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=f"not a run directory: no best.npz or last.npz in {empty}"):
        fastrnn.load(empty)
    code, _, _ = cli("predict", empty, runs["classify"][1])
    assert isinstance(code, str) and "not a run directory" in code and "\n" not in code


# ---- bounds of the flags and of the decoder -------------------------------------------------------

def test_beam_and_max_len_are_bounded(runs, tmp_path):
    from fastrnn.models.seq2seq import MAX_BEAM, MAX_DECODE_LEN
    model, _, _ = fastrnn.load(runs["seq2seq"][0])
    src = np.array([[2, 3]])
    with pytest.raises(ValueError, match="max_len"):
        model.greedy(src, max_len=MAX_DECODE_LEN + 1)
    with pytest.raises(ValueError, match="beam_width"):
        model.beam_search(src, beam_width=MAX_BEAM + 1)
    assert len(model.beam_search(src, beam_width=3, max_len=4)) == 1
    code, _, err = cli("predict", runs["seq2seq"][0], runs["seq2seq"][1], "--beam", MAX_BEAM + 1)
    assert code == 2 and f"--beam: expected an integer in [1, {MAX_BEAM}]" in err
    data = F._files(str(tmp_path))["seq2seq"]
    code, _, err = cli("train", "--task", "seq2seq", data, "--beam", MAX_BEAM + 1, "--out",
                       tmp_path / "o", *F.SMALL)
    assert isinstance(code, str) and "beam" in code and not (tmp_path / "o").exists()


def test_forecast_values_beyond_the_normaliser_are_one_line_not_nan(runs, tmp_path):
    far = tmp_path / "far.csv"
    far.write_text("wave,other\n" + "1,2\n" * 8 + "1e300,2\n" + "1,2\n" * 2)   # in the last window
    code, out, _ = cli("predict", runs["forecast"][0], far)
    assert isinstance(code, str) and "far.csv:10: " in code and "1e+300" in code and "normalise" in code
    assert "nan" not in out


def test_forecast_training_values_too_large_to_normalise_are_one_line(tmp_path):
    data = tmp_path / "big.csv"
    data.write_text("a,b\n" + "".join(f"{k}e306,{k}\n" for k in range(1, 40)))   # past MAX_SCALE
    code, _, err = cli("train", "--task", "forecast", data, "--window", "4", "--out",
                       tmp_path / "o", *F.SMALL)
    assert isinstance(code, str) and "big.csv:" in code and "normalise" in code, (code, err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("labels", ["python", ["python"], ["python", "c", "go"], [1, 2], ["c", "c"]])
def test_a_conditioned_generators_labels_must_name_its_classes(tmp_path, labels):
    vocab = fastrnn.Vocab.build("abcdef")
    model = fastrnn.ConditionedGenerator(len(vocab), num_classes=2, hidden_size=8, seed=0)
    fastrnn.save(tmp_path / "cond.npz", model, vocab, labels=labels)
    with pytest.raises(CheckpointError, match="labels"):
        fastrnn.load(tmp_path / "cond.npz")
    code, out, _ = cli("sample", tmp_path / "cond.npz", "--condition", "c")
    assert isinstance(code, str) and "labels" in code and "\n" not in code and out == ""


@pytest.mark.parametrize("task, field, says", [("classify", "corpus", "names no data file"),
                                               ("lm", "corpus", "records no corpus"),
                                               ("lm", "vocab", "holds no vocabulary")])
def test_resuming_without_what_the_run_recorded_says_what_is_missing(runs, tmp_path, task, field, says):
    """Such a checkpoint loads (the Python API may write one), but --resume cannot go on: one
    line saying what is missing, never a traceback or training on the Python stdlib instead."""
    ck = _edit(runs, task, tmp_path, (field,), F.MISSING, name="last.npz")
    fastrnn.load(ck)
    code, out, err = cli("train", "--resume", ck, "--out", tmp_path / "r", "--quiet")
    message = code if isinstance(code, str) else err.strip()      # sys.exit(text), or a usage error (2)
    assert code in (2,) or isinstance(code, str), (code, err)
    assert says in message and "\n" not in message, (code, err)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("task", ["forecast", "lm"])
def test_non_finite_parameters_in_a_run_checkpoint_are_refused(runs, tmp_path, task):
    """The Trainer never saves them: an edited array (valid CRCs) would predict nan silently."""
    arrays, meta = io.load_arrays(os.path.join(runs[task][0], "best.npz"))
    name = next(k for k in arrays if k.startswith("param/"))
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = np.nan
    F.write_meta(str(tmp_path / "nan.npz"), arrays, meta)
    with pytest.raises(CheckpointError, match="parameters: hold NaN"):
        fastrnn.load(tmp_path / "nan.npz")
