"""Fuzz case of fastrnn.atomic (the one atomic-write helper): hostile paths, contents and writers.
Whatever the call, the target ends up with the new content or, after an error, with its old
content byte for byte, and no temp file is left in the directory."""
import os
import pathlib
import shutil
import tempfile

from hypothesis import strategies as st

from fastrnn import atomic

OLD = b"old content\n"


def atomic_write(draw):
    """write_bytes / write_text / write_atomic on a file holding OLD."""
    d = tempfile.mkdtemp()
    try:
        target = os.path.join(d, "file.bin")
        with open(target, "wb") as f:
            f.write(OLD)
        path = draw(st.sampled_from([target, target.encode(), pathlib.Path(target), d, d + os.sep,
                                     os.path.join(d, "missing", "x"), "", 3, None]), "path")
        kind = draw(st.sampled_from(["bytes", "text", "writer"]), "kind")
        content = draw(st.one_of(st.binary(max_size=64), st.text(max_size=64), st.integers(), st.none()),
                       "content")
        fail = draw(st.booleans(), "the writer raises after writing")

        def writer(f):
            f.write(content)
            if fail:
                raise ValueError("writer failed")
        try:
            if kind == "bytes":
                atomic.write_bytes(path, content)
            elif kind == "text":
                atomic.write_text(path, content)
            else:
                atomic.write_atomic(path, writer, text=isinstance(content, str))
        except (TypeError, ValueError, OSError):
            with open(target, "rb") as f:
                assert f.read() == OLD
        else:
            assert path in (target, target.encode(), pathlib.Path(target)) and not (kind == "writer" and fail)
            with open(target, "rb") as f:
                assert f.read() == (content.encode() if isinstance(content, str) else content)
        assert os.listdir(d) == ["file.bin"], os.listdir(d)
    finally:
        shutil.rmtree(d)
