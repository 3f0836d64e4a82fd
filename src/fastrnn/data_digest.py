"""A digest of a run's training data, recorded in its checkpoints so that `--resume` notices a
data file that changed since the run started (and refuses it unless `--data-changed-ok`).

The digest is the SHA-256 and size of the file's bytes (read again in chunks, independently of
how the task's reader decodes them), or of the text of the embedded corpus. Data read from stdin
cannot be read again: it has no digest.
"""
import hashlib
import os
import stat
import sys

_CHUNK = 1 << 20


def file_digest(path):
    """{"sha256": hex, "bytes": size} of the regular file `path`; None for stdin ('-'), None,
    or anything that cannot be read twice (a pipe, a FIFO, a character device)."""
    if path in (None, "-"):
        return None
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            h, size = hashlib.sha256(), 0
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
                size += len(chunk)
    except OSError:
        return None         # the reader reports a file it cannot open
    return dict(sha256=h.hexdigest(), bytes=size)


def text_digest(text):
    """The digest of a corpus given as text (its UTF-8 bytes)."""
    data = text.encode("utf-8", "surrogatepass")
    return dict(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))


def check_resume_data(checkpoint, meta, name, digest, changed_ok, iteration):
    """Compare the data a run resumes on (`digest` of `name`) with the digest recorded in the
    checkpoint's `meta`; returns the metadata to record from now on:
    {"data_digest": ..., and "data_changed_ok": [...] when a change was accepted}.

    Raises ValueError (one line naming the file and --data-changed-ok) when the data changed, or
    cannot be compared, and `changed_ok` is false. A checkpoint with no digest (written before
    digests, or trained from stdin) resumes on any data, as before.
    """
    recorded = meta.get("data_digest")
    update = dict(data_digest=digest)
    if not isinstance(recorded, dict) or (digest is not None and all(
            recorded.get(k) == digest[k] for k in ("sha256", "bytes"))):
        return update
    if not changed_ok:
        if digest is None:
            problem = f"cannot be checked against the data file of the run in {checkpoint} (not a file)"
        else:
            problem = (f"changed since the run in {checkpoint} started ({recorded.get('bytes')} "
                       f"bytes then, {digest['bytes']} now, another SHA-256)")
        raise ValueError(f"{name}: {problem}; pass --data-changed-ok to resume on it anyway")
    history = meta.get("data_changed_ok")
    history = list(history) if isinstance(history, list) else []
    update["data_changed_ok"] = history + [dict(iteration=iteration, sha256=recorded.get("sha256"))]
    return update


# ---- the command line's side ------------------------------------------------------------------

def stdin_resume(resume):
    """The one line for resuming, with no data given, a run that was trained from stdin."""
    return (f"--resume {resume}: the run was trained on data read from stdin, which cannot be read "
            f"again; give its data: fastrnn train --resume {resume} FILE (or - with the data piped in)")


def resume_data(path, meta, name, digest, args, training):
    """`check_resume_data` for `fastrnn train --resume`: the metadata to record, or the command
    ends with one line (exit 1) when the data changed and --data-changed-ok was not given."""
    iteration = training.get("iteration") if isinstance(training, dict) else None
    try:
        return check_resume_data(path, meta, name, digest, args.data_changed_ok, iteration)
    except ValueError as e:
        sys.exit(f"fastrnn: {e}")
