"""Data-parallel training over MPI (issue 14).

The MPI runs go through `mpiexec -n 2` in subprocesses (tests/distributed_worker.py), never in
pytest's own process; they skip without mpi4py/mpiexec, and fail instead when
FASTRNN_REQUIRE_MPI=1 (CI). The sharding helpers and the messages without mpi4py run everywhere.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastrnn
from fastrnn import distributed as mpi
from fastrnn import io
from fastrnn.train.distributed import bounds, shard_batch

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "distributed_worker.py")
MODELS = ("lm", "classifier", "tagger")


def _mpiexec():
    """mpiexec beside this interpreter (the mpich wheel's, in a venv) or on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.access(local, os.X_OK) else shutil.which("mpiexec")


def _mpi_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return _mpiexec() is not None


needs_mpi = pytest.mark.skipif(not _mpi_available() and os.environ.get("FASTRNN_REQUIRE_MPI") != "1",
                               reason="needs mpi4py and mpiexec (pip install 'fastrnn[mpi]')")


def _env():
    """The environment of a worker: the fastrnn this test imported first on the path."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastrnn.__file__)))
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root + (os.pathsep + path if path else ""),
                FASTRNN_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def _run(ranks, *args, timeout=120):
    """Run the worker as one process (ranks=1) or under mpiexec; returns the CompletedProcess."""
    cmd = [sys.executable, WORKER, *args]
    if ranks > 1:
        cmd = [_mpiexec(), "-n", str(ranks)] + cmd
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class FakeComm:
    """A stand-in communicator without MPI: allgather returns what the ranks would bring (this
    process is `rank`, and must bring its own report)."""

    def __init__(self, rank, reports):
        self.rank, self.reports = rank, reports

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return len(self.reports)

    def allgather(self, mine):
        assert mine == self.reports[self.rank]
        return self.reports


def _checked(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _assert_same_checkpoint(a, b, tol=1e-10):
    """Every array of two checkpoints within tol (ints equal), the metadata equal but for time."""
    xa, ma = io.load_arrays(a)
    xb, mb = io.load_arrays(b)
    assert sorted(xa) == sorted(xb)
    for k in xa:
        if xa[k].dtype.kind == "f":
            np.testing.assert_allclose(xa[k], xb[k], rtol=0, atol=tol, err_msg=k)
        else:
            np.testing.assert_array_equal(xa[k], xb[k], err_msg=k)
    for m in (ma, mb):
        m["training"].pop("elapsed")
    _assert_close_json(ma, mb, tol)


def _assert_close_json(a, b, tol, where="meta"):
    """Equal JSON trees, floats within tol (the losses in the metadata are sums in another order)."""
    if isinstance(a, float) or isinstance(b, float):
        assert abs(a - b) <= tol * max(1, abs(a)), (where, a, b)
    elif isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for k in a:
            _assert_close_json(a[k], b[k], tol, f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            _assert_close_json(x, y, tol, f"{where}[{k}]")
    else:
        assert a == b, (where, a, b)


def _log(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """20 steps of each model: one process with the global batch, 2 ranks sharing it, and 2 ranks
    with the bucketed non-blocking reduction."""
    if not _mpi_available():
        pytest.fail("FASTRNN_REQUIRE_MPI=1 but mpi4py or mpiexec is missing") if \
            os.environ.get("FASTRNN_REQUIRE_MPI") == "1" else pytest.skip("needs mpi4py and mpiexec")
    root = tmp_path_factory.mktemp("dist")
    one, two, overlap = str(root / "one"), str(root / "two"), str(root / "overlap")
    _checked(_run(1, one, "train"))
    proc = _checked(_run(2, two, "train"))
    _checked(_run(2, overlap, "overlap"))
    return one, two, proc, overlap


@needs_mpi
@pytest.mark.parametrize("overlap", [False, True], ids=["allreduce", "overlap"])
@pytest.mark.parametrize("name", MODELS)
def test_two_ranks_train_as_one_process_with_the_global_batch(runs, name, overlap):
    # K=2 ranks x 3 examples/streams == 1 process x 6, to 1e-10 in float64, after 20 steps with
    # clipping, Adam, validation and checkpoints; the padded batches are ragged (the last one of
    # each epoch has 5 examples: 2 + 3 on the ranks, different token counts too)
    one, two, _, with_overlap = runs
    two = with_overlap if overlap else two
    for file in ("last.npz", "best.npz"):
        _assert_same_checkpoint(os.path.join(one, name, file), os.path.join(two, name, file))
    la, lb = _log(os.path.join(one, name, "log.jsonl")), _log(os.path.join(two, name, "log.jsonl"))
    assert [r["iteration"] for r in la] == [r["iteration"] for r in lb] == [10, 20]
    for ra, rb in zip(la, lb):
        for key in ("train_loss", "val_loss"):
            assert abs(ra[key] - rb[key]) < 1e-10, (key, ra, rb)


@needs_mpi
def test_only_rank_zero_prints_and_writes(runs):
    one, two, proc, _ = runs
    # 3 models x 2 validations: printed once (rank 0), as by the single process
    assert proc.stdout.count("iter 10:") == 3 and proc.stdout.count("iter 20:") == 3
    assert sorted(os.listdir(os.path.join(two, "lm"))) == ["best.npz", "last.npz", "log.jsonl"]
    assert len(_log(os.path.join(two, "lm", "log.jsonl"))) == 2


@needs_mpi
def test_resume_restores_every_rank(runs, tmp_path):
    # a checkpoint resumed by 2 ranks (each reads it and takes its share of the carried LM
    # state) continues as the same checkpoint resumed by one process
    one = runs[0]
    for d in ("a", "b"):
        shutil.copytree(one, tmp_path / d)
    _checked(_run(1, str(tmp_path / "a"), "resume"))
    _checked(_run(2, str(tmp_path / "b"), "resume"))
    for name in MODELS:
        a = tmp_path / "a" / f"{name}-resumed" / "last.npz"
        _assert_same_checkpoint(str(a), str(tmp_path / "b" / f"{name}-resumed" / "last.npz"))
        assert io.load_arrays(str(a))[1]["training"]["iteration"] == 30


def _intact_checkpoint(out, name="classifier", iteration=10):
    _, _, extra = io.load(os.path.join(out, name, "last.npz"))
    assert extra["meta"]["training"]["iteration"] == iteration


@needs_mpi
def test_a_killed_rank_ends_the_job(tmp_path):
    out = str(tmp_path)
    cmd = [_mpiexec(), "-n", "2", sys.executable, WORKER, out, "hang", "classifier"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()
        while line and "hanging pid" not in line:
            line = proc.stdout.readline()
        assert line, "the worker ended before rank 1 stopped"
        os.kill(int(line.split()[-1]), signal.SIGKILL)      # rank 0 now waits in the all-reduce
        t0 = time.monotonic()
        rest, _ = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and elapsed < 30
    assert "BAD TERMINATION" in rest and "Killed" in rest, rest
    _intact_checkpoint(out)


@needs_mpi
def test_an_exception_on_one_rank_ends_the_job(tmp_path):
    t0 = time.monotonic()
    proc = _run(2, str(tmp_path), "raise", "classifier", timeout=60)
    assert time.monotonic() - t0 < 30
    assert proc.returncode != 0
    assert "rank 1 of 2: RuntimeError: injected failure on rank 1; aborting the job" in proc.stderr
    _intact_checkpoint(str(tmp_path))


@needs_mpi
def test_a_nan_on_one_rank_stops_every_rank(tmp_path):
    # the non-finite flag travels with the gradients: both ranks stop at the same step and say
    # which rank went bad; the checkpoint of step 10 stays
    proc = _run(2, str(tmp_path), "nan", "classifier", timeout=60)
    assert proc.returncode == 3, proc.stderr
    for rank in (0, 1):
        assert (f"rank {rank}: stopped: the training loss or gradients became non-finite on rank(s) 1"
                in proc.stdout), proc.stdout
    _intact_checkpoint(str(tmp_path))


@needs_mpi
def test_info_under_mpiexec():
    cmd = [_mpiexec(), "-n", "2", sys.executable, "-m", "fastrnn", "info"]
    proc = _checked(subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=60,
                                   stdin=subprocess.DEVNULL))
    assert proc.stdout.count("fastrnn 0.") == 1            # rank 0 prints
    assert "MPI: 2 ranks (MPICH" in proc.stdout or "MPI: 2 ranks (" in proc.stdout, proc.stdout
    assert "kernel thread(s) per rank" in proc.stdout


def _cli(ranks, *args, cwd=None):
    """`fastrnn ARGS` as one process or under mpiexec -n ranks."""
    cmd = [sys.executable, "-m", "fastrnn", *args]
    if ranks > 1:
        cmd = [_mpiexec(), "-n", str(ranks)] + cmd
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, cwd=cwd)


@needs_mpi
def test_cli_task_metrics_are_those_of_the_whole_validation_part(tmp_path):
    # each rank computes the metric statistics of its half of the validation examples and one
    # all-reduce sums them: the logged metrics equal the single process's (seq2seq: exact match
    # and cer from summed edit distances; classify: accuracy from summed counts)
    sys.path.insert(0, HERE)
    from test_cli_tasks import classify_file, seq2seq_file
    for task, make in (("classify", classify_file), ("seq2seq", seq2seq_file)):
        data = str(make(tmp_path / f"{task}.tsv", n=61))      # 6 validation examples: 3 + 3
        logs = []
        for ranks in (1, 2):
            out = str(tmp_path / f"{task}{ranks}")
            _checked(_cli(ranks, "train", "--task", task, data, "--hidden", "8", "--embed", "4",
                          "--batch", "8", "--epochs", "2", "--dtype", "float64", "--quiet",
                          "--out", out))
            logs.append(_log(os.path.join(out, "log.jsonl")))
        for ra, rb in zip(*logs):
            metrics = [k for k in ra if k.startswith("val_") and k not in ("val_loss", "val_ppl")]
            assert metrics and all(ra[k] == pytest.approx(rb[k], abs=1e-12) for k in metrics), (ra, rb)


@needs_mpi
def test_a_bad_file_is_reported_once(tmp_path):
    (tmp_path / "bad.tsv").write_text("no tab here\n")
    proc = _cli(2, "train", "--task", "classify", "bad.tsv", "--quiet", cwd=str(tmp_path))
    assert proc.returncode != 0
    assert proc.stderr.count("bad.tsv:1: expected text<TAB>label, found no tab") == 1, proc.stderr


# ---- without MPI --------------------------------------------------------------------------------

def test_bounds_partition_every_size():
    for n in range(0, 12):
        for size in range(1, 5):
            parts = [bounds(n, r, size) for r in range(size)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            assert max(h - l for l, h in parts) - min(h - l for l, h in parts) <= 1


def test_shard_batch_splits_batch_arrays_and_keeps_the_rest():
    x, y, lengths = np.arange(10).reshape(5, 2), np.arange(5), np.array([2, 1, 2, 2, 1])
    parts = [shard_batch((x, y, lengths, 7), r, 2) for r in range(2)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)
    np.testing.assert_array_equal(parts[1][1], y[2:])
    assert isinstance(parts[0], tuple) and parts[0][3] == 7
    d = shard_batch({"a": x, "b": y}, 1, 2)
    np.testing.assert_array_equal(d["b"], y[2:])
    assert shard_batch((x[:1], y[:1]), 0, 2) is None          # an empty share
    np.testing.assert_array_equal(shard_batch(x, 1, 2), x[2:])


@pytest.mark.parametrize("batch, rank, size, error", [
    ("text", 0, 2, TypeError), (None, 0, 2, TypeError), ((np.float64(1.0), 3), 0, 2, ValueError),
    ((np.zeros(3),), 2, 2, ValueError), ((np.zeros(3),), 0, 0, ValueError),
    ((np.zeros(3),), 1.5, 2, TypeError)])
def test_shard_batch_rejects_bad_input(batch, rank, size, error):
    with pytest.raises(error):
        shard_batch(batch, rank, size)


def test_launch_detection_reads_the_launchers_variables():
    assert mpi.launch_size({}) == 1 and not mpi.launched({})
    assert mpi.launch_size({"PMI_SIZE": "4"}) == 4 and mpi.launched({"PMI_SIZE": "4"})
    assert mpi.launch_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3
    assert not mpi.launched({"PMI_SIZE": "1"})
    assert mpi.local_ranks(environ={"MPI_LOCALNRANKS": "2"}) == 2
    assert mpi.default_threads(environ={"MPI_LOCALNRANKS": "64"}) == 1
    assert mpi.local_ranks(environ={}) is None and mpi.default_threads(environ={}) is None


def test_without_mpi4py_distributed_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)        # import mpi4py -> ImportError
    model = fastrnn.SequenceClassifier(2, vocab_size=3, hidden_size=4, dtype="float64", seed=0)
    batches = [(np.zeros((2, 3), np.int64), np.zeros(2, np.int64), np.array([3, 2]))]
    with pytest.raises(ImportError, match=r'pip install "fastrnn\[mpi\]"'):
        fastrnn.train.Trainer(model, batches, distributed=True, progress=False)
    # not launched: auto-detection trains as before
    assert fastrnn.train.Trainer(model, batches, progress=False).dist is None
    assert "not available" in mpi.describe() or "not launched" in mpi.describe()


def test_cli_distributed_without_mpi4py_says_how_to_install(monkeypatch, tmp_path, capsys):
    from fastrnn import cli
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world, hello fastrnn\n" * 40)
    with pytest.raises(SystemExit) as e:
        cli.main(["train", str(corpus), "--distributed", "--quiet", "--batch", "2", "--seq-len", "5",
                  "--out", str(tmp_path / "run")])
    assert 'pip install "fastrnn[mpi]"' in str(e.value.code)
    assert not (tmp_path / "run").exists()


def test_trainer_rejects_a_bad_communicator():
    model = fastrnn.SequenceClassifier(2, vocab_size=3, hidden_size=4, dtype="float64", seed=0)
    batches = [(np.zeros((2, 3), np.int64), np.zeros(2, np.int64), np.array([3, 2]))]
    with pytest.raises(TypeError, match="distributed: expected"):
        fastrnn.train.Trainer(model, batches, distributed="yes please", progress=False)


def test_losses_record_the_weight_of_their_mean():
    rng = np.random.default_rng(0)
    ce = fastrnn.nn.SoftmaxCrossEntropy()
    ce(rng.standard_normal((5, 3)), np.array([0, 1, 2, 0, 1]))
    assert ce.total == 5
    ce(rng.standard_normal((5, 3)), np.array([0, 1, 2, 0, 1]), mask=np.array([1, 1, 0, 0, 1]))
    assert ce.total == 3
    mse = fastrnn.nn.MSE()
    mse(rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 3)), mask=np.ones((4, 2)))
    assert mse.total == 24
    bce = fastrnn.nn.BCEWithLogits()
    bce(rng.standard_normal((4, 2)), rng.random((4, 2)))
    assert bce.total == 8
