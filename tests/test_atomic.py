"""fastrnn.atomic: the one atomic-write helper (checkpoints, ONNX export, bench reports, plots).

Fault injection: whatever fails (the writer, the fsync, the rename, a SIGKILL), the old file stays
byte-identical and no temp file stays behind; stale temps of dead writers are removed by the next
write into the directory, live or locked ones are not."""
import fcntl
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastrnn import atomic, io
from fuzz_helpers import package_root

OLD = b"the old content, which must survive\n"


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(OLD)
    return path


def assert_untouched(path):
    assert path.read_bytes() == OLD
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_writes_bytes_text_and_callbacks(tmp_path):
    atomic.write_bytes(tmp_path / "a", b"\x00\x01")
    atomic.write_text(tmp_path / "b", "caf\u00e9\n")
    atomic.write_atomic(str(tmp_path / "c"), lambda f: (f.write(b"x"), f.write(b"y")))
    assert (tmp_path / "a").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b").read_bytes() == "caf\u00e9\n".encode("utf-8")
    assert (tmp_path / "c").read_bytes() == b"xy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_replaces_an_existing_file_with_a_new_files_permissions(target):
    target.chmod(0o600)
    old = os.umask(0o027)
    try:
        atomic.write_bytes(target, b"new")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640


def test_an_exception_mid_write_keeps_the_old_file(target):
    def writer(f):
        f.write(b"half of the new")
        f.flush()
        raise RuntimeError("writer died")
    with pytest.raises(RuntimeError, match="writer died"):
        atomic.write_atomic(target, writer)
    assert_untouched(target)


def test_keyboard_interrupt_mid_write_keeps_the_old_file(target):
    def writer(f):
        f.write(b"partial")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomic(target, writer)
    assert_untouched(target)


@pytest.mark.parametrize("call,errno,message", [("replace", 28, "No space left on device"),
                                                ("fsync", 5, "Input/output error")])
def test_a_failing_rename_or_fsync_keeps_the_old_file(target, monkeypatch, call, errno, message):
    def broken(*args):
        raise OSError(errno, message)
    monkeypatch.setattr(atomic.os, call, broken)
    with pytest.raises(OSError, match=message):
        atomic.write_bytes(target, b"new content")
    assert_untouched(target)


def test_the_file_is_fsynced_before_the_rename_and_the_directory_after(target, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    atomic.write_bytes(target, b"new")
    assert events == ["fsync file", "rename", "fsync dir"]


def test_a_directory_fsync_error_is_raised_but_one_the_system_cannot_do_is_not(target, monkeypatch):
    real_fsync = os.fsync

    def fsync_dir_fails(code):
        def fsync(fd):
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise OSError(code, os.strerror(code))
            real_fsync(fd)
        return fsync
    monkeypatch.setattr(atomic.os, "fsync", fsync_dir_fails(22))        # EINVAL: cannot
    atomic.write_bytes(target, b"one")
    monkeypatch.setattr(atomic.os, "fsync", fsync_dir_fails(5))         # EIO: a real error
    with pytest.raises(OSError):
        atomic.write_bytes(target, b"two")
    assert target.read_bytes() == b"two"        # renamed already; the error says it may not last
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_a_missing_directory_is_an_error_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic.write_bytes(tmp_path / "nope" / "file", b"x")
    assert not list(tmp_path.iterdir())


def test_paths_str_bytes_pathlike_and_no_file_name(tmp_path):
    atomic.write_bytes(os.fsencode(tmp_path / "b"), b"1")
    atomic.write_bytes(str(tmp_path / "s"), b"2")
    assert (tmp_path / "b").read_bytes() == b"1" and (tmp_path / "s").read_bytes() == b"2"
    for bad in ("", str(tmp_path) + os.sep):
        with pytest.raises(ValueError, match="path: expected a file name"):
            atomic.write_bytes(bad, b"x")
    with pytest.raises(TypeError):
        atomic.write_bytes(None, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "s"]


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temps_of_dead_writers_are_removed_live_and_locked_ones_are_not(target):
    d, dead = target.parent, _dead_pid()
    stale = d / f".tmp-{dead}-abcd1234.{target.name}"
    legacy = d / f".tmp-{dead}-efgh5678.npz"                 # an older fastrnn's checkpoint temp
    live = d / f".tmp-{os.getppid()}-ijkl9012.{target.name}"  # its writer still runs
    locked = d / f".tmp-{dead}-mnop3456.{target.name}"        # pid reused in another namespace
    foreign = [d / ".tmp-notours.bin", d / "tmp-123-abcd1234.bin", d / f".tmp-{dead}"]
    for p in [stale, legacy, live, locked, *foreign]:
        p.write_bytes(b"junk")
    with open(locked, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        atomic.write_bytes(target, b"new")
        left = sorted(p.name for p in d.iterdir())
    assert left == sorted([target.name, live.name, locked.name] + [p.name for p in foreign])
    assert atomic.remove_stale_temps(d) == 1                  # the lock is gone now
    assert not locked.exists()


def test_temp_files_are_named_after_their_target(target):
    seen = []
    atomic.write_atomic(target, lambda f: seen.extend(os.listdir(target.parent)))
    temp, = set(seen) - {target.name}
    m = atomic.TEMP_NAME.fullmatch(temp)
    assert m and int(m.group(1)) == os.getpid() and temp.endswith("." + target.name)


SLOW_WRITER = """
    import sys, time
    import numpy as np
    from fastrnn import atomic
    data = np.arange(4_000_000, dtype=np.float64).tobytes()

    def slow(f):                        # a large array in small pieces, slowly
        for k in range(0, len(data), 1 << 16):
            f.write(data[k:k + (1 << 16)])
            if k == 1 << 20:
                f.flush()
                print("writing", flush=True)
            time.sleep(0.002)
    atomic.write_atomic(sys.argv[1], slow)
"""


def test_sigkill_mid_write_leaves_the_old_file_loadable(tmp_path):
    path = tmp_path / "ckpt.npz"
    io.save_arrays(path, {"a": np.arange(1000.0)}, {"n": 1000})
    before = path.read_bytes()
    env = dict(os.environ, PYTHONPATH=package_root(), OPENBLAS_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SLOW_WRITER), str(path)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "writing\n", p.stderr.read()
        temps = [f for f in tmp_path.iterdir() if f.name != path.name]
        assert len(temps) == 1 and temps[0].name.startswith(f".tmp-{p.pid}-")
        assert temps[0].stat().st_size >= 1 << 20
    finally:
        p.kill()
        p.communicate()
    assert path.read_bytes() == before
    arrays, meta = io.load_arrays(path)
    assert meta["n"] == 1000 and (arrays["a"] == np.arange(1000.0)).all()
    # the killed writer's temp is removed by the next write into the directory
    atomic.write_text(tmp_path / "other.txt", "x")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["ckpt.npz", "other.txt"]
