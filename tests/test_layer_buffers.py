"""Layers' caches: bounded per-thread buffers, packed weights that follow every parameter write,
and one layer shared by two inference threads (issue 13, defects 4 and 5)."""
import threading

import numpy as np
import pytest

import fastrnn
from fastrnn import _buffers, _kernels, optim


def test_step_keeps_work_buffers_for_a_few_batch_sizes_only():
    lstm = fastrnn.LSTM(3, 8, num_layers=2, seed=0)
    for B in range(1, 60):
        lstm.step(np.ones((B, 3), np.float32))
    assert len(lstm._buffers._store()) <= lstm._buffers.max_keys
    kept = [key[2] for key in lstm._buffers._store()]        # ("step", layer, batch size)
    assert min(kept) > 59 - lstm._buffers.max_keys             # the most recent sizes only


def test_a_huge_forward_leaves_no_huge_buffer(monkeypatch):
    monkeypatch.setattr(_buffers, "KEEP_BYTES", 1 << 16)
    gru = fastrnn.GRU(4, 16, seed=0)
    x = np.ones((400, 8, 4), np.float32)
    gru.forward(x, train=False)
    assert gru._buffers.nbytes() <= 1 << 16
    y, _ = gru.forward(x)                        # the tape stays until backward ...
    assert gru._buffers.tape is not None
    gru.backward(np.ones_like(y))                # ... and then goes
    assert gru._buffers.tape is None and gru._buffers.nbytes() <= 1 << 16
    gru.forward(x[:2])
    gru.release_buffers()
    assert gru._buffers.tape is None and gru._buffers.nbytes() == 0


@pytest.mark.parametrize("write", ["optimizer", "load_state_dict", "invalidate"])
def test_packed_inference_weights_follow_every_parameter_write(write):
    lstm = fastrnn.LSTM(5, 20, num_layers=2, seed=1)
    x = np.random.default_rng(0).standard_normal((6, 3, 5)).astype(np.float32)
    before, _ = lstm.forward(x, train=False)
    if write == "optimizer":
        lstm.grads[...] = 1
        optim.SGD(lstm, lr=0.1).step()
    elif write == "load_state_dict":
        lstm.load_state_dict({k: v * 0.5 for k, v in lstm.state_dict().items()})
    else:
        lstm.params[...] *= 0.5                  # in place: the user tells the layer
        lstm.invalidate()
    after, _ = lstm.forward(x, train=False)
    fresh = fastrnn.LSTM(5, 20, num_layers=2, seed=1)
    fresh.load_state_dict(lstm.state_dict())
    want, _ = fresh.forward(x, train=False)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, want)
    y, _ = lstm.step(x[0])
    np.testing.assert_allclose(y, want[0], rtol=1e-5, atol=1e-6)


def test_one_layer_shared_by_two_inference_threads():
    lstm = fastrnn.LSTM(6, 32, num_layers=2, seed=2)
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((12, B, 6)).astype(np.float32) for B in (5, 9)]
    want = [lstm.forward(x, train=False)[0] for x in xs]
    errors = []

    def work(i):
        for _ in range(30):
            y, _ = lstm.forward(xs[i], train=False)
            s = None
            for t in range(3):
                _, s = lstm.step(xs[i][t], s)
            if not np.array_equal(y, want[i]):
                errors.append(i)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_threads_setting_is_public():
    fastrnn.set_num_threads(1)
    assert fastrnn.get_num_threads() == 1
    fastrnn.set_num_threads(None)
    assert fastrnn.get_num_threads() >= 1
    assert _kernels.engine_info()["threads"] == fastrnn.get_num_threads()
