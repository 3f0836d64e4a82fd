"""Checkpoint files: round trip, atomic writes, and clear errors for anything that is not ours."""
import os
import zipfile

import numpy as np
import pytest

from fastrnn import io


def test_round_trip(tmp_path):
    path = tmp_path / "c.npz"
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b/c": np.array([1, 2], np.int32)}
    io.save_arrays(path, arrays, {"note": "hi", "n": 3})
    got, meta = io.load_arrays(path)
    assert meta["note"] == "hi" and meta["format"] == io.FORMAT
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    io.save_arrays(path, {"a": np.ones(3)}, {})
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        io.save_arrays(path, {"a": np.zeros(3)}, {})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"]


def test_rejects_what_cannot_be_saved_without_pickle(tmp_path):
    with pytest.raises(TypeError, match="object"):
        io.save_arrays(tmp_path / "x.npz", {"a": np.array([{}, 1], dtype=object)}, {})
    with pytest.raises(ValueError, match="__meta__"):
        io.save_arrays(tmp_path / "x.npz", {"__meta__": np.ones(1)}, {})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["truncated", "random", "foreign_zip", "npz_without_meta",
                                  "pickled_object", "newer_version"])
def test_malformed_files_give_clear_errors(tmp_path, kind):
    path = tmp_path / f"{kind}.npz"
    io.save_arrays(path, {"a": np.ones(100)}, {})
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:150])
    elif kind == "random":
        path.write_bytes(os.urandom(500))
    elif kind == "foreign_zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("hello.txt", "not numpy")
    elif kind == "npz_without_meta":
        np.savez(path, a=np.ones(2))
    elif kind == "pickled_object":
        np.savez(path, __meta__=np.frombuffer(b'{"format": "fastrnn-checkpoint"}', np.uint8),
                 evil=np.array([{"x": 1}], dtype=object))
    elif kind == "newer_version":
        np.savez(path, __meta__=np.frombuffer(b'{"format": "fastrnn-checkpoint", "format_version": 99}', np.uint8))
    with pytest.raises(ValueError, match=kind):
        io.load_arrays(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load_arrays(tmp_path / "nope.npz")
