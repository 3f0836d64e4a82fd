"""Hostile metadata in real task and language-model checkpoints (valid CRCs: rewritten through
io.save_arrays), for the metadata fuzz tests (test_checkpoint_meta.py) and the fuzz entry point
`checkpoint_metadata`.

`tiny_runs(dir)` trains one tiny run per task (classify, tag, seq2seq, forecast, lm) in-process;
`fields(meta)` lists every field of a checkpoint's metadata as a path of keys (into nested objects
and short lists); `hostile_values` are the values a field gets (wrong type, huge, negative, zero,
NaN, missing, null); `write_mutated` writes a copy of a checkpoint with one field changed.
"""
import io as _io
import json
import math
import os
import random
import zipfile

import numpy as np

from fastrnn import io

TASKS = ("classify", "tag", "seq2seq", "forecast", "lm")
MISSING = object()
# the hostile values of the metadata tests, besides wrong types: (name, value); value None is JSON
# null and MISSING removes the key
MUTATIONS = (("huge", None), ("negative", -1), ("zero", 0), ("nan", math.nan), ("missing", MISSING),
             ("null", None))


def hostile_values(original):
    """(kind, value) pairs for one field: a wrong type (a string, or a number for a string),
    huge (1e308 for a float, 10**12 otherwise), negative, zero, NaN, missing and null."""
    yield ("wrong type", 7) if isinstance(original, str) else ("wrong type", "x")
    for kind, value in MUTATIONS:
        if kind == "huge":
            value = 1e308 if isinstance(original, float) else 10 ** 12
        yield kind, value


SMALL = ["--hidden", "4", "--embed", "3", "--batch", "8", "--epochs", "1", "--quiet"]
EXTRA = {"classify": ["--pool", "max"], "tag": [], "seq2seq": [],
         "forecast": ["--target", "wave", "--window", "4", "--horizon", "2"]}


def _files(d):
    """One small training file per task (the same as test_cli_tasks' generators, smaller)."""
    r = random.Random(0)
    words = {"John": "B-PER", "Mary": "B-PER", "Paris": "B-LOC", "the": "O", "runs": "O"}
    texts = {
        "classify": "".join(f"{''.join(r.choice('abcd') for _ in range(r.randint(2, 5)))}"
                            f"{'7' if k % 2 else ''}\t{'digit' if k % 2 else 'none'}\n" for k in range(24)),
        "tag": "".join("".join(f"{w} {words[w]}\n" for w in r.sample(sorted(words), 3)) + "\n"
                       for _ in range(16)),
        "seq2seq": "".join(f"{s}\t{s[::-1]}\n" for s in
                           ("".join(r.choice("abc") for _ in range(r.randint(2, 4))) for _ in range(24))),
        "forecast": "wave,other\n" + "".join(f"{math.sin(t / 3):.4f},{math.cos(t / 5):.4f}\n"
                                             for t in range(40)),
        "lm": "the cat sat on the mat; " * 30,
    }
    paths = {}
    for task, text in texts.items():
        paths[task] = os.path.join(d, f"{task}.txt")
        with open(paths[task], "w") as f:
            f.write(text)
    return paths


def tiny_runs(d):
    """{task: (run directory, data file)}: one tiny trained run per task, in-process."""
    from contextlib import redirect_stdout
    from fastrnn.cli import main
    files, runs = _files(d), {}
    for task in TASKS:
        out = os.path.join(d, f"run-{task}")
        args = (["train", files[task], "--layers", "1", "--seq-len", "8", "--batch", "4",
                 "--hidden", "4", "--epochs", "1", "--eval-every", "10", "--quiet"] if task == "lm"
                else ["train", "--task", task, files[task], *SMALL, *EXTRA[task]])
        with redirect_stdout(_io.StringIO()):
            main([*args, "--out", out])
        runs[task] = out, files[task]
    return runs


def fields(meta, prefix=()):
    """Every field of `meta` as a tuple of keys (list items of lists up to 4 long included;
    the format marker and version are the file format's, fuzzed elsewhere)."""
    out = []
    for key, value in (meta.items() if isinstance(meta, dict) else enumerate(meta)):
        if not prefix and key in ("format", "format_version"):
            continue
        path = prefix + (key,)
        out.append(path)
        if isinstance(value, dict) or isinstance(value, list) and len(value) <= 4:
            out.extend(fields(value, path))
    return out


def value_at(meta, path):
    """The value of the field at `path`."""
    for key in path:
        meta = meta[key]
    return meta


def mutated(meta, path, value):
    """A deep copy of `meta` with the field at `path` set to `value` (MISSING: removed)."""
    meta = json.loads(json.dumps(meta))
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    if value is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return meta


def write_mutated(src, dst, path, value):
    """Copy checkpoint `src` to `dst` with the metadata field at `path` set to `value`: through
    io.save_arrays, or for NaN (which save_arrays refuses) the same .npz with that metadata."""
    arrays, meta = io.load_arrays(src)
    return write_meta(dst, arrays, mutated(meta, path, value))


def write_meta(dst, arrays, meta):
    """Write `arrays` and `meta` as a checkpoint (valid CRCs); NaN/inf metadata is written too."""
    try:
        io.save_arrays(dst, arrays, meta)
    except ValueError:          # NaN: json.dumps(allow_nan=False) refuses it; write it ourselves
        text = json.dumps(dict(meta, format=io.FORMAT, format_version=io.FORMAT_VERSION))
        with zipfile.ZipFile(dst, "w") as z:
            for key, a in [*arrays.items(), (io.META_KEY, np.frombuffer(text.encode(), np.uint8))]:
                buf = _io.BytesIO()
                np.save(buf, a)
                z.writestr(f"{key}.npy", buf.getvalue())
    return dst


def name(path):
    """'task_state.mean[0]' for ('task_state', 'mean', 0)."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else f".{key}" if text else key
    return text


# ---- the fuzz entry point: random JSON values at random fields ------------------------------------

_PREPARED = {}


def _prepared():
    """{task: (checkpoint, data file, arrays, meta)} of tiny runs trained once per process."""
    if not _PREPARED:
        import atexit
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="fastrnn-meta-fuzz-")
        atexit.register(shutil.rmtree, d, True)
        for task, (run, data) in tiny_runs(d).items():
            ck = os.path.join(run, "last.npz")
            _PREPARED[task] = (ck, data, *io.load_arrays(ck))
    return _PREPARED


def predictions(task, model, vocab, meta, data):
    """What `predict` (or `sample`) computes for a loaded checkpoint, in-process."""
    if task == "lm":
        from fastrnn.sample import generate
        return [generate(model, vocab, prime="", length=12, seed=1)]
    from fastrnn.tasks import TASKS
    t = TASKS[meta["task"]](meta["task_options"], meta["task_state"])
    errors = []
    return t.predict_file(model, t.read(data, labelled=False, errors=errors), data, errors)


def checkpoint_metadata(draw):
    """fastrnn.load on a real checkpoint of any task with one metadata field set to a random JSON
    value (or removed): a CheckpointError, or a checkpoint whose predictions can be computed
    (forecasts finite) -- never another exception, a hang or a crash."""
    from hypothesis import strategies as st

    import fastrnn
    task = draw(st.sampled_from(TASKS), "task")
    ck, data, arrays, meta = _prepared()[task]
    path = draw(st.sampled_from(fields(meta)), "field")
    scalars = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats()
               | st.text(max_size=4) | st.sampled_from([0, -1, 10 ** 12, 1e308, 0.5, 2]))
    value = draw(st.just(MISSING) | st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=2), max_leaves=4), "value")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        edited = write_mutated(ck, os.path.join(tmp, "edited.npz"), path, value)
        try:
            model, vocab, extra = fastrnn.load(edited)
        except io.CheckpointError as e:
            assert "\n" not in str(e) and edited in str(e), str(e)
            raise
    out = predictions(task, model, vocab, extra["meta"], data)
    assert all(isinstance(o, str) for o in out)
    if task == "forecast":
        assert all(np.isfinite(float(v)) for v in out), out
