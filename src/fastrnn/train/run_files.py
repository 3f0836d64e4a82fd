"""The files of a run directory (`best.npz`, `last.npz`, `log.jsonl`) and the rule that keeps
them consistent after a crash at any instant (docs/reliability.md, "Crash-consistent runs").

At each checkpoint the Trainer writes, in this order: `best.npz` (on an improvement), the log
line (flushed and fsynced), then `last.npz`. Each `.npz` is replaced atomically, so a SIGKILL
leaves every file either as it was or complete, and `last.npz` is the last thing to change: a
resume from it reconciles the rest with what is on disk —

- the log keeps the lines up to the checkpoint's iteration; later lines (written by a
  checkpoint that did not complete) and a torn last line are dropped;
- the best validation loss is the one `best.npz` itself records (it may be ahead of `last.npz`,
  written by the checkpoint that did not complete; or behind it, in a run written by an older
  fastrnn that wrote `last.npz` first); a missing or unreadable `best.npz` is rewritten at the
  next checkpoint.
"""
import json
import math
import os

LOG, BEST, LAST = "log.jsonl", "best.npz", "last.npz"


def check_out(out):
    """Refuse (ValueError) an output path that exists and is not a directory."""
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out: {os.fspath(out)!r} exists and is not a directory")


def make_out(out):
    """Create the directory `out` (and missing parents); the directories created, deepest last."""
    created, d = [], os.path.abspath(out)
    while not os.path.isdir(d):
        created.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    os.makedirs(out, exist_ok=True)
    return created[::-1]


def remove_created(created):
    """Remove the directories `make_out` created, deepest first, if they are (still) empty."""
    for d in reversed(created):
        try:
            os.rmdir(d)
        except OSError:
            return          # not empty (or gone): leave it and its parents


def append_log(out, record, fresh=False):
    """Append `record` as one JSON line to out/log.jsonl (`fresh`: start the file anew), durably:
    the line is on disk before `last.npz`, which vouches for it, is written."""
    with open(os.path.join(out, LOG), "w" if fresh else "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def truncate_log(out, iteration):
    """Drop the tail of out/log.jsonl after the last line of `iteration` or earlier (a torn line,
    unreadable lines and lines of later iterations); returns the number of bytes dropped."""
    path = os.path.join(out, LOG)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    keep = data.rfind(b"\n") + 1        # a last line without its newline is torn
    while keep:
        start = data.rfind(b"\n", 0, keep - 1) + 1
        try:
            it = json.loads(data[start:keep]).get("iteration")
        except (ValueError, AttributeError):
            it = None
        if isinstance(it, int) and not isinstance(it, bool) and it <= iteration:
            break
        keep = start
    if keep < len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    return len(data) - keep


def recorded_best_val(out):
    """The validation loss `out/best.npz` records for itself: a finite float, or inf when the
    file is missing, unreadable or holds none (so the next checkpoint rewrites it)."""
    from .. import io
    try:
        _, meta = io.load_arrays(os.path.join(out, BEST))
        value = meta["training"]["best_val"]
    except (OSError, ValueError, LookupError, TypeError, MemoryError):
        return math.inf
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.inf


def same_directory(path, out):
    """True when the checkpoint `path` lies in the directory `out`."""
    try:
        return os.path.samefile(os.path.dirname(os.path.abspath(path)), out)
    except OSError:
        return False


def reconcile(trainer, path):
    """Make a Trainer resumed from `path` agree with its run directory (see the module docstring).

    Only when the trainer writes into the checkpoint's own directory, and only on rank 0 for
    the files (every rank takes the same best validation loss)."""
    if trainer.out is None or not same_directory(path, trainer.out):
        return
    trainer.best_val = recorded_best_val(trainer.out)
    if trainer.is_root:
        truncate_log(trainer.out, trainer.iteration)
    trainer._saved_at, trainer._fresh_log = trainer.iteration, False
