"""Fault injection with real processes: SIGKILL during saves, two Ctrl-C during training,
memory that must stay flat over repeated calls, and one model shared by two threads."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from fastrnn import io
from fuzz_helpers import package_root

ENV = dict(os.environ, PYTHONPATH=package_root(), OPENBLAS_NUM_THREADS="1")


def child(code, *args, **kw):
    """A Python subprocess running `code` with fastrnn importable."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


SAVER = """
    import sys
    import numpy as np
    from fastrnn import io
    path, i = sys.argv[1], 0
    while True:                  # 8 MB checkpoints, each holding its own number everywhere
        io.save_arrays(path, {"a": np.full(1_000_000, i, np.float64)}, {"i": i})
        print(i, flush=True)
        i += 1
"""


def assert_complete(path):
    arrays, meta = io.load_arrays(path)
    assert (arrays["a"] == meta["i"]).all() and arrays["a"].size == 1_000_000


def test_sigkill_during_saves_always_leaves_a_complete_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    rng = np.random.default_rng(0)
    for _ in range(6):
        p = child(SAVER, path)
        assert p.stdout.readline(), p.stderr.read()     # at least one save finished
        time.sleep(rng.uniform(0, 0.3))                   # then die at a random point
        p.kill()
        p.communicate()
        assert_complete(path)
    # whatever the kills left behind, the next save removes it
    io.save_arrays(tmp_path / "other.npz", {"a": np.ones(2)}, {})
    assert sorted(f.name for f in tmp_path.iterdir()) == ["ckpt.npz", "other.npz"]


def test_a_save_killed_mid_write_leaves_a_temp_file_the_next_save_removes(tmp_path):
    path = tmp_path / "ckpt.npz"
    io.save_arrays(path, {"a": np.full(1_000_000, 7.0)}, {"i": 7})
    p = child("""
        import sys, time
        import numpy as np
        from fastrnn import io
        def stuck_savez(f, **arrays):       # half a file, then hang until killed
            f.write(b"PK" + bytes(1_000_000))
            f.flush()
            print("writing", flush=True)
            time.sleep(600)
        np.savez = stuck_savez
        io.save_arrays(sys.argv[1], {"a": np.zeros(3)}, {"i": 0})
    """, path)
    assert p.stdout.readline() == "writing\n", p.stderr.read()
    temps = [f for f in tmp_path.iterdir() if f.name.startswith(".tmp-")]
    assert len(temps) == 1 and temps[0].name.startswith(f".tmp-{p.pid}-")
    # while its writer lives, another save leaves it alone
    io.save_arrays(tmp_path / "other.npz", {"a": np.ones(2)}, {})
    assert temps[0].exists()
    p.kill()
    p.communicate()
    assert_complete(path)
    io.save_arrays(tmp_path / "other.npz", {"a": np.ones(2)}, {})
    assert not temps[0].exists()


def test_two_ctrl_c_50ms_apart_exit_cleanly_with_a_loadable_checkpoint(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Now is the winter of our discontent made glorious summer.\n" * 300)
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "fastrnn", "train", str(corpus), "--hidden", "64",
                          "--layers", "2", "--batch", "8", "--seq-len", "32", "--epochs", "1000",
                          "--eval-every", "100000", "--out", str(out), "--quiet"], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "LanguageModel" in p.stdout.readline()
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr
    assert p.returncode in (0, 130), stderr      # 130: "interrupted twice", after the save
    model, _, extra = io.load(out / "last.npz")
    assert extra["meta"]["training"]["iteration"] > 0


# ---- memory: RSS flat over repeated calls (measured in a fresh process) ------------------------

MEMORY = """
    import os, sys
    import numpy as np
    import fastrnn
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    case = sys.argv[1]
    if case == "generate":
        vocab = fastrnn.Vocab.build("abcdefghijklmnopqrstuvwxyz ,.\\n")
        model = fastrnn.LanguageModel(len(vocab), hidden_size=64, num_layers=2, seed=0)
        run = lambda i: fastrnn.generate(model, vocab, length=200, seed=i)
        warm, calls = range(3), range(3, 40)
    elif case == "step_batch_sizes":
        model = fastrnn.LanguageModel(30, hidden_size=32, num_layers=2, seed=0)
        run = lambda B: model.step(np.zeros(B, np.int64))
        warm, calls = range(1, 9), range(9, 400)
    elif case == "forward_long_then_short":
        layer = fastrnn.LSTM(16, 64, seed=0)
        def run(T):
            y, _ = layer.forward(np.ones((T, 8, 16), np.float32), train=True)
            layer.backward(np.ones_like(y))
        warm, calls = [8, 8], [4000] + [8] * 5
    for i in warm:
        run(i)
    before = rss()
    for i in calls:
        run(i)
    print((rss() - before) / 2**20)
"""


@pytest.mark.parametrize("case", [
    "generate",
    "step_batch_sizes",
    "forward_long_then_short",
])
def test_memory_stays_flat_over_repeated_calls(case):
    p = child(MEMORY, case)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr
    growth_mb = float(stdout.split()[-1])
    assert growth_mb < 8, f"{case}: RSS grew by {growth_mb:.1f} MB"


def test_one_model_used_from_two_threads_gives_each_its_own_results():
    import fastrnn
    layer = fastrnn.LSTM(8, 32, num_layers=2, seed=0)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((50, 4, 8)).astype(np.float32) for _ in range(2)]
    want = [layer.forward(x, train=False)[0] for x in xs]
    wrong = []

    def worker(k):
        for _ in range(30):
            y, _ = layer.forward(xs[k], train=False)
            if not np.array_equal(y, want[k]):
                wrong.append(k)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong, f"{len(wrong)} of 60 calls returned another thread's (or mixed) output"
