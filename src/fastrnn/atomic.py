"""Atomic replacement of a user's file: the one way fastrnn writes checkpoints, ONNX models,
benchmark reports and plots.

`write_atomic(path, write)` gives every caller the same guarantee: after a crash at any instant
(an exception, SIGKILL, power loss) `path` is either its old content, byte for byte, or the new
content complete — never half-written — and a failed write leaves no temp file behind. The steps:

1. remove stale temps in the target's directory (a killed write may have filled the disk);
2. create `.tmp-<pid>-<random>.<target name>` in the target's directory (same filesystem, so the
   rename below is atomic), hold an exclusive `flock` on it, give it a new file's permissions
   (0666 minus the umask; mkstemp's 0600 is for secrets);
3. `write(f)`, flush, fsync the file;
4. `os.replace` it over the target, then fsync the directory so that the rename itself is durable.

Stale temps — the rule: a temp file is removed by any later write into the same directory when
its name matches (`.tmp-<pid>-<random>...`, which includes the `.tmp-<pid>-<random>.npz` of older
checkpoints), its pid is not a live process, and it is not locked. A write in progress holds its
lock, and a temp whose process still runs may be about to be locked: both are left alone. Without
`fcntl` (not POSIX) nothing is removed, since that check needs a lock to be safe.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile

try:
    import fcntl
except ImportError:         # not POSIX: no stale-temp cleanup (it needs a lock to be safe)
    fcntl = None

TMP_PREFIX = ".tmp-"
# mkstemp's random part is letters, digits and "_"; then the target's name (absent in older temps)
TEMP_NAME = re.compile(r"\.tmp-(\d+)-[A-Za-z0-9_]+(\..*)?", re.DOTALL)
_NAME_KEEP = 100            # characters of the target's name kept in the temp's (NAME_MAX is 255)
# what fsync on a directory raises on systems that cannot do it (the rename stands regardless)
_NO_DIR_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EBADF,
                 errno.EISDIR, errno.EACCES, errno.EPERM}


def write_atomic(path, write, *, text=False, encoding="utf-8"):
    """Replace the file `path` by what `write(f)` writes to `f`, atomically and durably.

    `f` is a binary file object (a text one with `text=True`); `write` may raise, and then
    `path` keeps its old content and no temp file stays. See the module docstring for the steps
    and the stale-temp rule. Returns `path` (as a str).
    """
    path = os.fsdecode(os.fspath(path))
    if not os.path.basename(path):
        raise ValueError(f"path: expected a file name, got {path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temps(directory)
    suffix = "." + os.path.basename(path)[-_NAME_KEEP:]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=suffix)
    try:
        try:
            _best_effort(fcntl and fcntl.flock, fd, fcntl and fcntl.LOCK_EX)  # held until renamed
            _best_effort(os.fchmod, fd, 0o666 & ~_umask())
            mode = "w" if text else "wb"
            with open(fd, mode, closefd=False, **({"encoding": encoding} if text else {})) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    finally:
        os.close(fd)
    fsync_dir(directory)
    return path


def write_bytes(path, data):
    """`data` (bytes) as the whole content of `path`, written atomically (`write_atomic`)."""
    return write_atomic(path, lambda f: f.write(data))


def write_text(path, text, encoding="utf-8"):
    """`text` as the whole content of `path`, written atomically (`write_atomic`)."""
    return write_atomic(path, lambda f: f.write(text), text=True, encoding=encoding)


def remove_stale_temps(directory):
    """Remove the temp files of killed writes in `directory` (see the module docstring for the
    rule: our name, pid not alive, not locked); returns how many were removed."""
    if fcntl is None:
        return 0
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        m = TEMP_NAME.fullmatch(name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        full = os.path.join(directory, name)
        try:
            fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.lstat(full)):   # still the file we locked
                os.unlink(full)
                removed += 1
        except OSError:
            pass                # locked (being written) or already gone
        finally:
            os.close(fd)
    return removed


def fsync_dir(directory):
    """Make a rename in `directory` durable. Systems that cannot fsync a directory (or open it)
    are skipped; a real I/O error is raised (the new file is in place but may not survive a
    power loss)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in _NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


def _best_effort(fn, *args):
    """fn(*args), ignoring filesystems that cannot do it (no locks on some NFS, no modes on FAT)."""
    if fn:
        try:
            fn(*args)
        except OSError:
            pass


def _pid_alive(pid):
    if pid == os.getpid():
        return True             # another thread of ours may be writing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0          # exists but not ours (or a number no pid can be)
    return True


def _umask():
    """The process umask, read without changing it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
