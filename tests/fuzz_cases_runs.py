"""Fuzz cases of a run's files: checkpoint metadata that strict JSON may not hold, and the
log.jsonl tail a resume reconciles (fastrnn.train.run_files)."""
import json
import os
import re
import tempfile

import numpy as np
from hypothesis import strategies as st

from fastrnn import io
from fastrnn.train import run_files

_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=5),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([np.float32(1.5), np.int64(3), b"x", {1, 2}, 1j, ()]))
_META = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=3), st.integers(0, 3)), inner, max_size=3)),
    max_leaves=8)


def checkpoint_meta(draw):
    """io.save_arrays with arbitrary metadata: saved and loaded back as its JSON, or a
    ValueError naming the field, with nothing written."""
    meta = draw(st.dictionaries(st.text(max_size=4).filter(lambda k: k not in ("format", "format_version")),
                                _META, max_size=3), "meta")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.npz")
        try:
            io.save_arrays(path, {"a": np.arange(3.0)}, meta)
        except ValueError as e:
            assert str(e).startswith("meta") and os.listdir(tmp) == [], (str(e), os.listdir(tmp))
            raise
        arrays, loaded = io.load_arrays(path)
        want = json.loads(json.dumps(meta))
        assert {k: v for k, v in loaded.items() if k not in ("format", "format_version")} == want
        assert arrays["a"].tolist() == [0.0, 1.0, 2.0]


_LINE = st.one_of(
    st.builds(lambda i, x: json.dumps(dict(iteration=i, val_loss=x)) + "\n",
              st.integers(-3, 40), st.floats(0, 5)),
    st.sampled_from(['{"iteration": true}\n', '{"iteration": 2.0}\n', "[1, 2]\n", "\n", "not json\n",
                     '{"iteration": 5}\r\n', '{"iteration": 7']),
    st.binary(max_size=12).map(lambda b: b.decode("latin-1")))


def run_log(draw):
    """run_files.truncate_log: keeps a prefix of whole lines that ends with a line of iteration
    <= N, and drops no such line."""
    text = "".join(draw(st.lists(_LINE, max_size=8), "lines"))
    n = draw(st.integers(-1, 45), "iteration")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, run_files.LOG)
        with open(path, "w", encoding="latin-1", newline="") as f:
            f.write(text)
        data = text.encode("latin-1")
        dropped = run_files.truncate_log(tmp, n)
        with open(path, "rb") as f:
            kept = f.read()
    assert data.startswith(kept) and dropped == len(data) - len(kept)
    assert not kept or kept.endswith(b"\n")
    for line in _lines(data[len(kept):]):      # whole lines only: a torn last one goes
        assert _iteration(line) is None or _iteration(line) > n, (line, n)
    if kept:
        assert _iteration(_lines(kept)[-1]) <= n


def _lines(data):
    """The complete lines of `data`: log lines end with \\n only (\\r is a character in them)."""
    return re.findall(rb"[^\n]*\n", data)


def _iteration(line):
    try:
        it = json.loads(line).get("iteration")
    except (ValueError, AttributeError):
        return None
    return it if isinstance(it, int) and not isinstance(it, bool) else None
