"""Issue 13 leftovers: impossible sizes fail before allocating, and every damaged piece of a
checkpoint's metadata is a CheckpointError."""
import time

import pytest

import fastrnn
from fastrnn import io


@pytest.mark.parametrize("make", [lambda: fastrnn.LSTM(1, 1, num_layers=10**9),
                                  lambda: fastrnn.GRU(10**6, 10**6),
                                  lambda: fastrnn.RNN(3, 2**20, num_layers=4, bidirectional=True)])
def test_layers_too_big_for_this_machine_fail_fast(make):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="num_layers, hidden_size"):
        make()
    assert time.perf_counter() - t0 < 1.0


def test_parameter_count_matches_what_is_built():
    for layer in (fastrnn.LSTM(5, 7, num_layers=3, bidirectional=True, proj_size=3, peephole=True),
                  fastrnn.GRU(5, 7, num_layers=2, bias=False), fastrnn.RNN(4, 9, bidirectional=True)):
        assert layer._parameter_count() == layer.params.size


@pytest.mark.parametrize("bad", ["string", [1, 2], {"scalars": 3}, {"no scalars": {}}])
def test_bad_optimizer_metadata_is_a_checkpoint_error(tmp_path, bad):
    vocab = fastrnn.Vocab.build("abc")
    fastrnn.save(tmp_path / "good.npz", fastrnn.LanguageModel(len(vocab), hidden_size=4, num_layers=1), vocab)
    arrays, meta = io.load_arrays(tmp_path / "good.npz")
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    io.save_arrays(tmp_path / "bad.npz", arrays, dict(meta, optimizer=bad))
    with pytest.raises(io.CheckpointError, match="bad.npz"):
        io.load(tmp_path / "bad.npz")
