"""Checkpoints named on the command line: a file or a run directory, loaded or refused in one
line (`fastrnn: cannot load PATH: what is wrong`), never a traceback."""
import sys

from .options import UsageError

# what loading a hostile checkpoint may raise besides CheckpointError: metadata that a model or
# optimiser cannot take (TypeError, LookupError...) or sizes it cannot allocate (MemoryError)
LOAD_ERRORS = (OSError, ValueError, LookupError, TypeError, AttributeError, MemoryError)


def load_error(what, path, e):
    """One line for a checkpoint that failed to load (CheckpointError already names the file)."""
    text = " ".join(str(e).split())
    return f"fastrnn: {text}" if path in text else f"fastrnn: {what} {path}: {text}"


def checkpoint_path(path, default_name):
    """The checkpoint file of `path` (a run directory: its `default_name`); one line otherwise."""
    from .paths import checkpoint_path as resolve
    return resolve(path, default_name)     # "not a run directory", FIFOs: one line


def load_checkpoint(checkpoint):
    """(path, model, vocab, extra) of a checkpoint file or run directory (its best.npz, else its
    last.npz); one that cannot be loaded ends the command with one line, no traceback."""
    from ..io import load, run_checkpoint
    from .paths import check_file
    path = checkpoint
    try:
        path = run_checkpoint(checkpoint)
        check_file(path, "checkpoint file (.npz) or a run directory")    # a FIFO would block: one line
        return (path,) + tuple(load(path))
    except LOAD_ERRORS as e:
        sys.exit(load_error("cannot load", path, e))


def saved_meta(path):
    """The metadata of the checkpoint `path` (None when it cannot be read: the caller's own
    load reports that)."""
    from ..io import load_arrays
    try:
        return load_arrays(path)[1]
    except LOAD_ERRORS:
        return None


def set_precision(model, meta, args):
    """--precision (or the run's recorded precision) on a loaded model; a usage error for bf16
    on a float64 model."""
    from ..precision import for_command
    try:
        for_command(model, meta, getattr(args, "precision", None))
    except ValueError as e:
        raise UsageError(f"--precision {args.precision}: {e}") from None
