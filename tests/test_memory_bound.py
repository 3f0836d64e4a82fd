"""Bounded memory (issue 19, item 2): a layer's buffer store keeps no large buffer that the current
call does not need, tapes included, and `fastrnn.release_buffers()` frees the rest on demand."""
import gc
import subprocess
import sys
import textwrap
import threading
import weakref

import numpy as np
import pytest

import fastrnn
from fastrnn import _buffers
from fastrnn._buffers import LayerBuffers, oversized

# The RSS check in a fresh process (a clean measure). The case is T = 20,000 (a 3.4 GB
# tape, ~15 s on a loaded 2-core machine); T = 5,000 keeps the same shape at a quarter of the
# cost: its tape is 860 MB, of which the forward touches ~630 MB, still far above the 300 MB
# bound (the script asserts that the peak really exceeds it, so the check cannot pass vacuously).
_RSS_SCRIPT = textwrap.dedent("""
    import numpy as np, fastrnn
    def rss():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) >> 10 for l in f if l.startswith("VmRSS"))
    T, B, LIMIT = {T}, 16, 300
    lstm = fastrnn.LSTM(16, 256, seed=0)
    small = np.ones((10, B, 16), np.float32)
    lstm.forward(small)                                 # warm up: libraries, thread team, caches
    lstm.forward(small, train=False)
    start = rss()
    lstm.forward(np.ones((T, B, 16), np.float32))       # training forward: keeps its tape
    peak = rss()
    assert peak - start > LIMIT, ("the tape was not large", start, peak)
    lstm.forward(small)                                 # a T = 10 training forward
    after_small = rss()
    lstm.forward(np.ones((T, B, 16), np.float32))
    fastrnn.release_buffers()                           # the pending tape, on demand
    after_release = rss()
    print(start, peak, after_small, after_release)
""")


def test_rss_returns_after_a_long_training_forward_then_a_short_one():
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT.format(T=5000)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    start, peak, after_small, after_release = map(int, out.stdout.split())
    assert after_small - start < 300, (start, peak, after_small)
    assert after_release - start < 300, (start, peak, after_release)


@pytest.mark.parametrize("held, need, want", [
    (100 << 20, 10 << 20, True),          # uses a tenth, 90 MB idle
    (100 << 20, 40 << 20, False),         # 60 MB idle: under KEEP_BYTES
    (300 << 20, 160 << 20, False),        # more than half used
    (300 << 20, 140 << 20, True),
    (1 << 20, 1, False),                  # small buffers are always reused
    (10 << 20, 10 << 20, False),
])
def test_oversized_policy(held, need, want):
    assert oversized(held, need) is want


def test_store_replaces_a_much_larger_buffer_and_reuses_a_fitting_one(monkeypatch):
    monkeypatch.setattr(_buffers, "KEEP_BYTES", 1000)
    store = LayerBuffers(np.float32, max_keys=4)
    big = store.get("k", 10_000)                        # 40,000 bytes
    assert store.get("k", 6_000) is big                 # more than half used: reused
    assert store.get("k", 5_100) is big                 # 19,600 idle bytes, but more than half used
    small = store.get("k", 4_000)                       # under half: replaced, at the asked size
    assert small is not big and small.size == 4_000
    assert store.get("k", 3_900) is small               # 400 idle bytes: under KEEP_BYTES
    assert store.get("k", 9_000).size == 9_000          # too small: grows
    assert store.nbytes() == 36_000


def test_a_layer_holds_no_more_than_twice_a_short_calls_need(monkeypatch):
    monkeypatch.setattr(_buffers, "KEEP_BYTES", 1 << 12)
    gru = fastrnn.GRU(4, 16, num_layers=2, seed=0)
    x = np.ones((400, 8, 4), np.float32)
    gru.forward(x)                                       # a long training forward, no backward
    long_bytes = gru._buffers.nbytes()
    gru.forward(x[:10])                                  # a short one replaces its tape
    short_bytes = gru._buffers.nbytes()
    fresh = fastrnn.GRU(4, 16, num_layers=2, seed=0)
    fresh.forward(x[:10])
    assert short_bytes == fresh._buffers.nbytes() < long_bytes / 10


def test_release_buffers_frees_every_layer_and_the_next_calls_still_work():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 3, 5)).astype(np.float32)
    layers = [fastrnn.LSTM(5, 8, num_layers=2, seed=1), fastrnn.GRU(5, 6, bidirectional=True, seed=2)]
    want = [layer.forward(x, train=False)[0] for layer in layers]
    for layer in layers:
        layer.forward(x)                                  # a pending tape each
        assert layer._buffers.nbytes() > 0 and layer._packs.entries
    fastrnn.release_buffers()
    for layer, y in zip(layers, want):
        assert layer._buffers.nbytes() == 0 and layer._buffers.tape is None and not layer._packs.entries
        with pytest.raises(RuntimeError, match="no tape"):
            layer.backward(np.ones_like(y))
        np.testing.assert_array_equal(layer.forward(x, train=False)[0], y)
        out, _ = layer.forward(x)
        layer.backward(np.ones_like(out))                 # training works again


def test_release_buffers_leaves_other_threads_and_dead_layers_alone():
    lstm = fastrnn.LSTM(3, 4, seed=0)
    x = np.ones((5, 2, 3), np.float32)
    forwarded, released, errors = threading.Event(), threading.Event(), []

    def other():
        try:
            y, _ = lstm.forward(x)                       # this thread's tape ...
            forwarded.set()
            released.wait(60)
            lstm.backward(np.ones_like(y))               # ... survives the main thread's release
        except Exception as e:                           # noqa: BLE001  (reported below)
            errors.append(e)
    t = threading.Thread(target=other)
    t.start()
    forwarded.wait(60)
    fastrnn.release_buffers()
    released.set()
    t.join(60)
    assert errors == []
    gone = fastrnn.GRU(3, 4, seed=0)
    assert gone in _buffers._OWNERS
    ref = weakref.ref(gone)
    del gone
    gc.collect()
    assert ref() is None                                 # the registry does not keep layers alive


def test_release_buffers_takes_no_arguments():
    with pytest.raises(TypeError):
        fastrnn.release_buffers(True)
    assert fastrnn.release_buffers() is None and "release_buffers" in fastrnn.__all__
