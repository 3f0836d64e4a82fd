"""Checkpoint files: round trip, atomic writes, and clear errors for anything that is not ours."""
import io as _io
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


# ---- integrity: every damaged file is CheckpointError, never different arrays -----------------

def _small_checkpoint(tmp_path):
    path = tmp_path / "orig.npz"
    rng = np.random.default_rng(0)
    arrays = {"param/w": rng.standard_normal((4, 5)).astype(np.float32),
              "param/b": rng.standard_normal(5), "extra/ids": np.arange(7, dtype=np.int64)}
    io.save_arrays(path, arrays, {"note": "x" * 20, "n": [1, 2]})
    return path, arrays


def _outcome(path, arrays, meta):
    """'ok' if `path` loads as exactly (arrays, meta), 'error' on CheckpointError; else fail."""
    try:
        got, got_meta = io.load_arrays(path)
    except io.CheckpointError as e:
        assert str(path) in str(e)
        return "error"
    assert got_meta == meta and set(got) == set(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        assert got[k].tobytes() == v.tobytes(), f"{path}: {k} loaded with different values"
    return "ok"


def test_every_single_bit_flip_is_detected_or_harmless(tmp_path):
    path, arrays = _small_checkpoint(tmp_path)
    data = path.read_bytes()
    _, meta = io.load_arrays(path)
    bad = tmp_path / "flipped.npz"
    counts = {"ok": 0, "error": 0}
    for bit in range(len(data) * 8):           # every bit of the file: zip and .npy headers too
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad.write_bytes(flipped)
        counts[_outcome(bad, arrays, meta)] += 1
    # bits of the data, the .npy headers and CRCs must all be caught; harmless ones are fields
    # such as timestamps that zipfile does not use
    assert counts["error"] > 0.8 * len(data) * 8, counts


def test_truncation_at_every_offset_is_an_error(tmp_path):
    path, arrays = _small_checkpoint(tmp_path)
    data = path.read_bytes()
    _, meta = io.load_arrays(path)
    bad = tmp_path / "short.npz"
    for n in range(len(data)):
        bad.write_bytes(data[:n])
        assert _outcome(bad, arrays, meta) == "error", n


@pytest.mark.parametrize("bit", [1, 2, 4, 5])
def test_npy_header_length_flip_cannot_shift_an_array(tmp_path, bit):
    # the defect: flipping a bit of a .npy header-length byte loaded a weight vector shifted by
    # whole elements, because numpy stops reading at the array's byte count and the CRC of the
    # unread tail went unchecked (these bits did exactly that to this 10,000-element array)
    path = tmp_path / "orig.npz"
    io.save_arrays(path, {"w": np.random.default_rng(0).standard_normal(10_000).astype(np.float32)}, {})
    data = bytearray(path.read_bytes())
    at = data.index(b"\x93NUMPY") + 8          # the 2-byte little-endian header length
    data[at] ^= 1 << bit
    path.write_bytes(data)
    with pytest.raises(io.CheckpointError, match="orig.npz"):
        io.load_arrays(path)


@pytest.mark.parametrize("declared", [10**12, 2**40])
def test_absurd_declared_sizes_are_refused_before_reading(tmp_path, declared):
    # a decompression bomb: a deflated entry whose header claims far more than deflate can expand
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.npy", b"\0" * 100_000)
    data = bytearray(path.read_bytes())
    cd = data.rindex(b"PK\x01\x02")             # central directory: uncompressed size at +24
    data[cd + 24:cd + 28] = (declared % 2**32).to_bytes(4, "little")
    path.write_bytes(data)
    with pytest.raises(io.CheckpointError, match="bomb.npz"):
        io.load_arrays(path)


def test_every_exception_type_becomes_checkpoint_error(tmp_path):
    path = tmp_path / "deep.npz"
    deep = b'{"format": "fastrnn-checkpoint", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    np.savez(path, __meta__=np.frombuffer(deep, np.uint8))
    with pytest.raises(io.CheckpointError, match="deep.npz"):       # RecursionError inside json
        io.load_arrays(path)
    np.savez(path, __meta__=np.frombuffer(b'{"format": "fastrnn-checkpoint", "format_version": "9"}', np.uint8))
    with pytest.raises(io.CheckpointError, match="format version"):  # TypeError comparing versions
        io.load_arrays(path)
    # a .npy header that numpy's fallback parser (tokenize) chokes on: used to escape as TokenError
    npy = _io.BytesIO()
    np.save(npy, np.ones(3))
    header = npy.getvalue().replace(b"'descr'", b'"""ss', 1)
    meta = _io.BytesIO()
    np.save(meta, np.frombuffer(b'{"format": "fastrnn-checkpoint"}', np.uint8))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.npy", header)
        z.writestr("__meta__.npy", meta.getvalue())
    with pytest.raises(io.CheckpointError, match="deep.npz"):
        io.load_arrays(path)
    assert issubclass(io.CheckpointError, ValueError)
    import fastrnn
    assert fastrnn.CheckpointError is io.CheckpointError


# ---- saving: permissions and stale temp files ----------------------------------------------

def test_checkpoint_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        io.save_arrays(tmp_path / "a.npz", {"a": np.ones(2)}, {})
        os.umask(0o027)
        io.save_arrays(tmp_path / "b.npz", {"a": np.ones(2)}, {})
    finally:
        os.umask(old)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.npz").stat().st_mode & 0o777 == 0o640


def _dead_pid():
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_next_save_removes_stale_temps_but_not_live_ones(tmp_path):
    import fcntl
    dead = _dead_pid()
    stale = tmp_path / f".tmp-{dead}-abc123.npz"
    stale.write_bytes(b"half a checkpoint")
    alive_unlocked = tmp_path / f".tmp-{os.getppid()}-def456.npz"    # its process still runs
    alive_unlocked.write_bytes(b"just created")
    locked = tmp_path / f".tmp-{dead}-ghi789.npz"                    # pid reused/other namespace
    locked.write_bytes(b"being written")
    foreign = tmp_path / ".tmp-notours.npz"
    foreign.write_bytes(b"someone else's")
    with open(locked, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        io.save_arrays(tmp_path / "c.npz", {"a": np.ones(2)}, {})
        left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([alive_unlocked.name, locked.name, foreign.name, "c.npz"])


def test_concurrent_saves_into_one_directory_do_not_delete_each_other(tmp_path):
    import threading
    errors = []

    def saver(k):
        try:
            for i in range(15):
                io.save_arrays(tmp_path / f"{k}.npz", {"a": np.full(50_000, i)}, {"i": i})
        except BaseException as e:          # noqa: BLE001  (reported below)
            errors.append(e)
    threads = [threading.Thread(target=saver, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(4):
        arrays, meta = io.load_arrays(tmp_path / f"{k}.npz")
        assert meta["i"] == 14 and (arrays["a"] == 14).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{k}.npz" for k in range(4)]
