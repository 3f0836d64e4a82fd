"""MPI runs that must never hang (issue 19): a rank whose setup fails, ranks whose data or options
differ, and a rank that fails mid-training each end the whole job with one line naming the rank
and a non-zero exit.

The launches are MPMD (`mpiexec -n 1 CMD_A : -n 1 CMD_B`), so that each rank gets its own file;
each has a timeout, so a hang fails the test instead of the CI job. Without MPI they skip, or fail
under FASTRNN_REQUIRE_MPI=1 (see test_distributed.py). The agreement's decisions (`agree`) and
the facts' digests are also tested without MPI, with a stand-in communicator.
"""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastrnn import distributed as mpi
from test_distributed import FakeComm, _env, _mpiexec, needs_mpi

TIMEOUT = 120
TASK = ["--task", "classify", "--hidden", "8", "--embed", "4", "--batch", "8", "--epochs", "3",
        "--quiet", "--threads", "1"]
LM = ["--hidden", "8", "--layers", "1", "--batch", "4", "--seq-len", "10", "--epochs", "1",
      "--quiet", "--threads", "1", "--distributed"]

# rank 1 fails at its fourth step (run with --threads 1 and the thread variables set, so that the
# CLI does not re-execute itself as `python -m fastrnn` and lose the patch)
INJECT = """import sys
from fastrnn import cli
from fastrnn.train import Trainer
step = Trainer.train_step
def train_step(self):
    if self.iteration == 3:
        raise RuntimeError("injected failure on this rank")
    return step(self)
Trainer.train_step = train_step
sys.exit(cli.main(sys.argv[1:]))
"""


def _mpmd(cwd, *commands):
    """Run one command per rank (`mpiexec -n 1 A : -n 1 B`) in directory `cwd`; a run longer
    than TIMEOUT seconds is killed (its whole process group) and fails the test. Returns (exit
    status, stdout, stderr)."""
    cmd = [_mpiexec()]
    for k, args in enumerate(commands):
        cmd += ([":"] if k else []) + ["-n", "1", *args]
    env = dict(_env(), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(cwd))
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the job hung (killed after {TIMEOUT} s)\n{out}\n{err}")
    return proc.returncode, out, err


def _fastrnn(*args):
    return [sys.executable, "-m", "fastrnn", *args]


def _labelled(path, n=60, seed=0, labels=("neg", "pos"), extra=""):
    """A classify file of `n` lines at `path`; returns its name (the launches run in its directory)."""
    r = random.Random(seed)
    words = "good bad film plot actor great awful boring fun dull".split()
    with open(path, "w") as f:
        for _ in range(n):
            k = r.randrange(2)
            text = " ".join(r.choice(words) for _ in range(r.randint(2, 6)))
            f.write(f"{text}{extra if k else ''}\t{labels[k]}\n")
    return path.name


@pytest.fixture
def good(tmp_path):
    return _labelled(tmp_path / "good.tsv")


def _one_line(err, expected):
    """`expected` appears exactly once in stderr; returns that line."""
    lines = [line for line in err.splitlines() if expected in line]
    assert len(lines) == 1, err
    return lines[0]


def _fails_on(tmp_path, rank, good, bad, expected):
    files = [good, bad] if rank == 1 else [bad, good]
    t0 = time.monotonic()
    code, _, err = _mpmd(tmp_path, *[_fastrnn("train", f, *TASK, "--out", "run") for f in files])
    assert code != 0 and time.monotonic() - t0 < TIMEOUT
    line = _one_line(err, expected)
    assert line.startswith(f"fastrnn: rank {rank} of 2: "), err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


@needs_mpi
@pytest.mark.parametrize("case, expected", [
    ("missing", "cannot read 'missing.tsv'"),
    ("empty", "empty.tsv: no examples found"),
    ("garbage", "garbage.tsv:1: not UTF-8 text")])
def test_a_bad_file_on_rank_1_ends_the_job_with_its_message(tmp_path, good, case, expected):
    bad = tmp_path / f"{case}.tsv"
    if case == "empty":
        bad.write_bytes(b"")
    elif case == "garbage":
        bad.write_bytes(bytes(np.random.default_rng(0).integers(128, 256, 3000, dtype=np.uint8)))
    _fails_on(tmp_path, 1, good, bad.name, expected)


@needs_mpi
def test_a_missing_file_on_rank_0_ends_the_job_with_its_message(tmp_path, good):
    _fails_on(tmp_path, 0, good, "missing.tsv", "cannot read 'missing.tsv'")


def _refused(tmp_path, rank0, rank1, *names):
    code, _, err = _mpmd(tmp_path, _fastrnn("train", *rank0, "--out", "run"),
                         _fastrnn("train", *rank1, "--out", "run"))
    assert code == 2, err
    line = _one_line(err, "the ranks disagree, refusing to train: rank 1 of 2 differs from rank 0 in ")
    assert "Traceback" not in err and not (tmp_path / "run").exists()
    return line


@needs_mpi
def test_ranks_with_another_vocabulary_refuse_to_train(tmp_path, good):
    other = _labelled(tmp_path / "other.tsv", extra=" zzz")      # 'z' is a new character
    line = _refused(tmp_path, [good, *TASK], [other, *TASK])
    assert " in vocab, training data, validation data" in line, line


@needs_mpi
def test_ranks_with_another_label_order_refuse_to_train(tmp_path, good):
    # the same texts and shapes, the class ids mean other labels: trained silently before
    renamed = _labelled(tmp_path / "renamed.tsv", labels=("good", "bad"))
    line = _refused(tmp_path, [good, *TASK], [renamed, *TASK])
    assert "labels: ['bad', 'good'] (rank 0: ['neg', 'pos'])" in line, line
    swapped = _labelled(tmp_path / "swapped.tsv", labels=("pos", "neg"))    # same label list
    line = _refused(tmp_path, [good, *TASK], [swapped, *TASK])
    assert " in training data, validation data --" in line, line


@needs_mpi
def test_ranks_with_other_options_refuse_to_train(tmp_path, good):
    line = _refused(tmp_path, [good, *TASK], [good, *TASK, "--lr", "0.1"])
    assert " in --lr -- --lr: 0.1 (rank 0: 0.002);" in line, line


@needs_mpi
def test_language_model_ranks_compare_vocabulary_and_corpus(tmp_path):
    r = random.Random(1)
    text = "".join(r.choice("abcdefgh \n") for _ in range(2000))
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "b.txt").write_text(text + "z")
    line = _refused(tmp_path, ["a.txt", *LM], ["b.txt", *LM])
    assert " in vocabulary, corpus, model -- vocabulary: 13 tokens" in line, line
    code, _, err = _mpmd(tmp_path, _fastrnn("train", "a.txt", *LM, "--out", "run"),
                         _fastrnn("train", "c.txt", *LM, "--out", "run"))
    assert code == 1 and "Traceback" not in err
    assert _one_line(err, "cannot read corpus").startswith("fastrnn: rank 1 of 2: cannot read corpus"), err


@needs_mpi
def test_a_command_line_error_on_one_rank_ends_the_job(tmp_path, good):
    code, _, err = _mpmd(tmp_path, _fastrnn("train", good, *TASK, "--out", "run"),
                         _fastrnn("train", good, *TASK, "--hidden", "x", "--out", "run"))
    assert code == 2
    _one_line(err, "fastrnn: rank 1 of 2: fastrnn train: --hidden: expected an integer")


@needs_mpi
def test_an_exception_mid_training_ends_the_job(tmp_path, good):
    script = tmp_path / "inject.py"
    script.write_text(INJECT)
    t0 = time.monotonic()
    code, _, err = _mpmd(tmp_path, _fastrnn("train", good, *TASK, "--out", "run"),
                         [sys.executable, str(script), "train", good, *TASK, "--out", "run"])
    assert code != 0 and time.monotonic() - t0 < TIMEOUT
    _one_line(err, "fastrnn: rank 1 of 2: RuntimeError: injected failure on this rank; aborting the job")
    assert "TypeError" not in err, err         # the aborting rank does not run on after MPI_Abort


@needs_mpi
def test_python_api_ranks_with_other_models_refuse_to_train(tmp_path):
    # no Setup block: the Trainer agrees at the start of fit, before the broadcast of rank 0's
    # weights (which failed with "Message truncated", then hung)
    from test_distributed import _run
    proc = _run(2, str(tmp_path), "mismatch", "classifier", timeout=TIMEOUT)
    assert proc.returncode == 4, proc.stderr
    for rank in (0, 1):
        assert (f"rank {rank}: the ranks disagree, refusing to train: rank 1 of 2 differs from "
                f"rank 0 in model -- model: SequenceClassifier of " in proc.stdout), proc.stdout
    assert not (tmp_path / "classifier").exists()


# ---- without MPI: the agreement's decisions ------------------------------------------------------

def _decision(reports, rank=0):
    with pytest.raises(mpi.SetupFailed) as e:
        mpi.agree(FakeComm(rank, reports), reports[rank][1], reports[rank][0])
    return e.value


def test_agree_names_the_failed_rank_and_keeps_its_status():
    ok = (None, {"x": mpi.fact(1)})
    e = _decision([ok, (("cannot read 'a'", 1), {}), (("bad option", 2), {})], rank=2)
    assert str(e) == "rank 1 of 3: cannot read 'a' (rank 2 failed too)"
    assert (e.code, e.rank, e.unanimous) == (1, 2, False)
    same = (("a.tsv:1: no tab", 1), {})
    e = _decision([same, same])
    assert (str(e), e.code, e.unanimous) == ("a.tsv:1: no tab", 1, True)
    mpi.agree(FakeComm(1, [ok, ok]), ok[1])         # ready and agreeing: returns


def test_agree_says_what_differs_and_where():
    base = {"labels": mpi.fact(["neg", "pos"]), "training data": mpi.fact(np.arange(5), "5 examples")}
    other = dict(base, labels=mpi.fact(["bad", "good"]))
    e = _decision([(None, base), (None, base), (None, other), (None, dict(base, extra=mpi.fact(1)))])
    assert str(e).startswith("the ranks disagree, refusing to train: rank 2 of 4 differs from rank 0 "
                             "in labels (rank 3 differ too) -- labels: ['bad', 'good'] (rank 0: "
                             "['neg', 'pos']); every rank"), str(e)
    assert e.code == 2


def test_facts_digest_content_not_identity():
    a = np.arange(6, dtype=np.int64)
    assert mpi.fact(a) == mpi.fact(a.copy()) != mpi.fact(a.astype(np.int32))
    assert mpi.fact(a.reshape(2, 3)) != mpi.fact(a)
    assert mpi.fact([a, a[::-1]]) == mpi.fact([a.copy(), a[::-1].copy()])       # strided too
    assert mpi.fact({"b": 1, "a": [1, 2]})[0] == mpi.fact({"a": [1, 2], "b": 1})[0]     # compared
    assert mpi.fact(["ab", "c"]) != mpi.fact(["a", "bc"])
    digest, text = mpi.fact("x" * 100, "100 characters")
    assert text == f"100 characters, sha256 {digest[:12]}"
    assert mpi.fact([1, 2])[1] == "[1, 2]"
    assert mpi.fact([object()])[0] == mpi.fact([object()])[0]     # not by address


def test_setup_without_mpi_changes_nothing():
    assert not mpi.expecting()
    with pytest.raises(ValueError, match="boom"):
        with mpi.Setup(None):
            assert not mpi.expecting()
            mpi.expect("anything", object())        # nothing computed outside a distributed run
            raise ValueError("boom")
