"""Paths on the `fastrnn` command line: what kind of thing a path is, checkpoints in run
directories, and the training corpus as a file, a directory of text files, a glob or `-`.

Every problem ends the command with one line naming the path (exit status 1), never an
`[Errno 21]` or a hang on a FIFO.
"""
import glob
import os
import stat
import sys

GLOB_CHARS = "*?["


def kind(path):
    """'a directory', 'a FIFO', ... for a path that exists but is no regular file; None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")


def check_file(path, what="file"):
    """Exit with one line when `path` exists but is a directory, FIFO, device... (reading a
    FIFO would wait for a writer forever; `-` is standard input and passes)."""
    if path == "-":
        return path
    k = kind(path)
    if k is not None:
        hint = " (give - to read standard input)" if k == "a FIFO" and " or -" in what else ""
        sys.exit(f"fastrnn: {path}: is {k}, expected a {what}{hint}")
    return path


def checkpoint_path(path, default_name):
    """The checkpoint file for a path given on the command line: the file itself, or
    `default_name` (best.npz / last.npz) inside a run directory."""
    if os.path.isdir(path):
        inside = os.path.join(path, default_name)
        if not os.path.exists(inside):
            sys.exit(f"fastrnn: {path}: not a run directory (no {default_name} in it; expected a "
                     f".npz checkpoint or a directory written by fastrnn train)")
        return check_file(inside, "checkpoint file")
    return check_file(path, "checkpoint file (.npz) or a run directory")


def corpus_files(path):
    """The files a corpus argument names: [path], a directory's files (recursively, sorted,
    hidden ones skipped) or a glob's matches (sorted); `-` stays as it is."""
    if path == "-":
        return ["-"]
    if os.path.isdir(path):
        files = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
        files = [f for f in files if kind(f) is None]
        if not files:
            sys.exit(f"fastrnn: corpus {path}: the directory holds no files")
        return files
    if not os.path.exists(path) and any(c in path for c in GLOB_CHARS):
        files = sorted(f for f in glob.glob(path, recursive=True) if kind(f) is None)
        if not files:
            sys.exit(f"fastrnn: corpus {path!r}: no files match")
        return files
    return [check_file(path, "text file, a directory of text files, a glob or -")]


def read_corpus(path):
    """The UTF-8 text of a corpus argument (see `corpus_files`), each file read as
    `fastrnn.data.read_corpus` reads one (bounded in all by FASTRNN_MAX_INPUT_BYTES, BOM dropped,
    universal newlines): files are joined with a newline between them where one does not already
    end with it; in a directory or glob, files that are not UTF-8 text (binary, NUL bytes) are
    skipped and counted."""
    from ..data import CorpusTooLarge, max_input_bytes
    from ..data import read_corpus as read_text
    files = corpus_files(path)
    if files == ["-"]:
        try:
            return read_text("-")
        except ValueError as e:
            sys.exit(f"fastrnn: cannot read corpus from standard input: {e}")
    parts, skipped, budget = [], 0, max_input_bytes()
    for name in files:
        try:
            text = read_text(name, budget)
            if len(files) > 1 and "\0" in text:
                raise ValueError(f"{name}: NUL byte: a binary file")
        except CorpusTooLarge as e:
            sys.exit(f"fastrnn: {e}")
        except ValueError as e:        # not UTF-8 text
            if len(files) == 1:
                sys.exit(f"fastrnn: cannot read corpus {name!r}: {e}")
            skipped += 1
            continue
        except OSError as e:
            sys.exit(f"fastrnn: cannot read corpus {name!r}: {e.strerror or e}")
        budget -= len(text)            # characters: a lower bound of the bytes read
        if parts and not parts[-1].endswith("\n"):
            parts[-1] += "\n"          # a file's last line does not run into the next file's first
        parts.append(text)
    if not parts:
        sys.exit(f"fastrnn: corpus {path}: no UTF-8 text files among {len(files)}")
    if len(files) > 1:
        note = f", {skipped} skipped (not UTF-8 text)" if skipped else ""
        print(f"fastrnn: corpus {path}: {len(parts)} text files{note}")
    return "".join(parts)
