"""Checkpoints: one `.npz` of arrays plus JSON metadata; never pickle; always written atomically.

`save_arrays`/`load_arrays` are the file format; `save`/`load` put any registered model, its
vocabulary and optimiser state into that format.

Loading never unpickles, so opening a checkpoint cannot execute code. Every zip entry is read to
its end (so its CRC-32 is verified) and every `.npy` header must describe exactly the bytes that
follow it, so a flipped bit anywhere gives `CheckpointError`, never different arrays. Declared
sizes are checked against the file's size before anything is read (no decompression bombs).

Saving goes through `fastrnn.atomic.write_atomic`: a temp file `.tmp-<pid>-<random>.<name>` next to
the destination, locked while written, fsynced, renamed over the destination only when complete,
then the directory fsynced. Temp files left by a killed save (unlocked, their process gone) are
removed by the next write into the same directory.
"""
from __future__ import annotations

import io as _io
import json
import os
import struct
import tokenize
import zipfile
import zlib

import numpy as np

from . import quant
from .atomic import TMP_PREFIX, remove_stale_temps, write_atomic  # noqa: F401 (io's names before)

FORMAT, FORMAT_VERSION, META_KEY = "fastrnn-checkpoint", 1, "__meta__"
# deflate cannot expand more than 1032:1; a deflated entry declaring more is a bomb or garbage
MAX_DEFLATE_RATIO = 1032
_READ_CHUNK = 1 << 22


class CheckpointError(ValueError):
    """A file that is not a readable fastrnn checkpoint: damaged, truncated, foreign or too new.

    The message names the file and the problem. Missing or unreadable paths raise OSError instead.
    """


# what numpy (whose .npy header parser falls back to tokenize), zipfile, zlib, struct and json
# raise on malformed input
_DAMAGED = (ValueError, TypeError, LookupError, AttributeError, RuntimeError, MemoryError,
            ArithmeticError, OSError, EOFError, SyntaxError, tokenize.TokenError,
            zipfile.BadZipFile, struct.error, zlib.error)


def save_arrays(path, arrays, meta):
    """Write `arrays` ({str: ndarray}) and JSON-serialisable `meta` to one .npz, atomically.

    The file is written next to its destination and renamed over it only when complete, so an
    existing checkpoint is never left half-written. It gets the permissions of a normal new file
    (0666 minus the umask). Stale temp files of killed saves in that directory are removed.
    """
    path = os.fspath(path)
    out = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or key == META_KEY:
            raise ValueError(f"arrays: keys must be strings other than {META_KEY!r}, got {key!r}")
        value = np.asarray(value)
        if value.dtype.hasobject:
            raise TypeError(f"arrays[{key!r}]: object arrays cannot be saved without pickle")
        out[key] = value
    check_meta(meta)
    text = json.dumps(dict(meta, format=FORMAT, format_version=FORMAT_VERSION), allow_nan=False)
    out[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    write_atomic(path, lambda f: np.savez(f, **out))


def check_meta(meta):
    """Raise ValueError naming the first value of `meta` that strict JSON cannot hold (NaN or
    infinity, an object of another type), so that a save refuses it before writing anything."""
    try:
        json.dumps(meta, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as e:
        raise ValueError(f"{_json_problem(meta, 'meta') or f'meta: {e}'} (checkpoint metadata "
                         f"is JSON: finite numbers, strings, lists, dicts, None)") from None


def _json_problem(value, where):
    """'where[key]...: what is wrong' for the first value json.dumps(allow_nan=False) refuses."""
    if isinstance(value, float):
        return None if value - value == 0 else f"{where}: expected a finite number, got {value}"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    elif value is None or isinstance(value, (str, int)):
        return None
    else:
        return f"{where}: a {type(value).__name__} is not JSON"
    for key, item in items:
        problem = _json_problem(item, f"{where}[{key!r}]")
        if problem:
            return problem
    return None


def load_arrays(path):
    """(arrays, meta) of a file written by `save_arrays`.

    Raises CheckpointError (a ValueError) naming `path` for anything that is not an intact
    checkpoint, and OSError (e.g. FileNotFoundError) if the path cannot be opened.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            arrays = _read_entries(f, os.fstat(f.fileno()).st_size)
            meta = _read_meta(arrays.pop(META_KEY, None))
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        except _DAMAGED as e:
            raise CheckpointError(f"{path}: not a fastrnn checkpoint (damaged or truncated: "
                                  f"{type(e).__name__}: {e})") from None
    return arrays, meta


def _read_entries(f, file_size):
    """{name: array} of every `.npy` entry of the zip `f`, each read to its end and checked."""
    with zipfile.ZipFile(f) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise CheckpointError("damaged: duplicate zip entries")
        stored = 0
        for i in infos:     # every declared size is checked before anything is read
            if not i.filename.endswith(".npy"):
                raise CheckpointError(f"not a fastrnn checkpoint (foreign entry {i.filename!r})")
            if i.compress_type == zipfile.ZIP_STORED:
                bound = i.compress_size
            elif i.compress_type == zipfile.ZIP_DEFLATED:
                bound = MAX_DEFLATE_RATIO * i.compress_size + 1024
            else:
                raise CheckpointError(f"entry {i.filename!r}: unsupported compression {i.compress_type}")
            if i.file_size > bound:
                raise CheckpointError(f"damaged: entry {i.filename!r} declares {i.file_size} bytes "
                                      f"from {i.compress_size} stored bytes")
            stored += i.compress_size
        if stored > file_size:
            raise CheckpointError(f"damaged: entries declare {stored} bytes in a {file_size}-byte file")
        return {i.filename[:-4]: _parse_npy(i.filename, _read_entry(z, i)) for i in infos}


def _read_entry(z, info):
    """The entry's bytes, read to the end so that zipfile verifies its CRC-32."""
    buf = bytearray(info.file_size)
    view, pos = memoryview(buf), 0
    with z.open(info) as m:
        while pos < len(buf):
            n = m.readinto(view[pos:pos + _READ_CHUNK])
            if not n:
                raise CheckpointError(f"truncated: entry {info.filename!r} ends after {pos} of "
                                      f"{len(buf)} bytes")
            pos += n
        if m.read(1):       # also makes zipfile reach the end of the entry and check the CRC
            raise CheckpointError(f"damaged: entry {info.filename!r} is longer than declared")
    return buf


def _parse_npy(name, buf):
    """The array in the `.npy` bytes `buf`; its header must describe exactly the bytes that follow."""
    f = _io.BytesIO(buf)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise CheckpointError(f"entry {name!r}: unsupported .npy version {version}")
    if dtype.hasobject:
        raise CheckpointError(f"entry {name!r}: holds Python objects (refused: loading them "
                              f"would need pickle)")
    count = 1
    for s in shape:
        count *= s
    offset = f.tell()
    if count * dtype.itemsize != len(buf) - offset:
        raise CheckpointError(f"damaged: entry {name!r} declares {shape} {dtype} "
                              f"({count * dtype.itemsize} bytes) but holds {len(buf) - offset}")
    a = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
    if offset % max(dtype.alignment, 1):
        a = a.copy()
    return a.reshape(shape, order="F" if fortran else "C")


def _read_meta(raw):
    """The metadata dict stored in the `__meta__` entry, checked for our format marker."""
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError("not a fastrnn checkpoint (no metadata)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"not a fastrnn checkpoint (bad metadata: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError("not a fastrnn checkpoint (format marker missing)")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CheckpointError(f"not a fastrnn checkpoint (format version {version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"written by a newer fastrnn (format version {version} > "
                              f"{FORMAT_VERSION}); upgrade fastrnn to read it")
    return meta


# ---- models: one checkpoint file = model type + config + parameters + optimiser state + metadata

RESERVED_META = ("format", "format_version", "fastrnn_version", "model", "model_type", "vocab",
                 "optimizer", "int8")


def save(path, model, vocab=None, optimizer=None, arrays: dict | None = None, **meta) -> None:
    """Save `model` (its registered type, config and parameters), optionally `vocab` and
    `optimizer`, atomically.

    `arrays` adds named NumPy arrays (e.g. a carried hidden state); `meta` adds JSON-serialisable
    metadata (e.g. training progress). Load it back with `load`.

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file to write (replaced atomically: a crash leaves the old file or the new one).
    model : fastrnn model
        A registered model (a layer, LanguageModel, SequenceClassifier, ...).
    vocab : Vocab, optional
        Saved with the model.
    optimizer : fastrnn.optim.Optimizer, optional
        Its state, for an exact resume.
    arrays : dict of str to array_like, optional
        Additional named arrays.
    **meta
        JSON-serialisable metadata (not the reserved keys of ``RESERVED_META``).

    Raises
    ------
    TypeError
        `model` is not a registered model.
    ValueError
        A reserved `meta` key.
    """
    from ._version import __version__
    from .models.registry import MODELS
    clash = sorted(set(meta) & set(RESERVED_META))
    if clash:
        raise ValueError(f"meta: the keys {clash} are reserved")
    model_type = type(model).__name__
    if MODELS.get(model_type) is not type(model):
        raise TypeError(f"model: {model_type} is not a registered model (see fastrnn.models.register)")
    out = {f"param/{name}": value for name, value in model.named_parameters()}
    opt_meta = None
    if optimizer is not None:
        scalars = {}
        for key, value in optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                out[f"optim/{key}"] = value
            else:
                scalars[key] = value
        opt_meta = dict(type=type(optimizer).__name__, scalars=scalars)
    for key, value in (arrays or {}).items():
        out[f"extra/{key}"] = np.asarray(value)
    out, int8 = quant.checkpoint_arrays(model, out)       # int8 weights replace their floats
    if int8:
        meta = dict(meta, int8=int8)
    save_arrays(path, out, dict(meta, fastrnn_version=__version__, model=model.config,
                                model_type=model_type, optimizer=opt_meta,
                                vocab=None if vocab is None else vocab.to_dict()))


def load(path) -> tuple:
    """Load a checkpoint written by `save`, or a run directory's (its best.npz, else its
    last.npz): returns (model, vocab or None, extra).

    extra = {"meta": the metadata dict, "optimizer": the optimiser's state_dict or None,
    "arrays": the additional arrays}. The file is read with allow_pickle=False. The model is
    rebuilt through the registry only after its config has been checked against the parameter
    arrays actually present (a config claiming more parameters than the file holds fails before
    anything is allocated). Damaged or foreign files raise CheckpointError (a ValueError) naming
    `path`, and so does metadata that fails `fastrnn.meta_checks` (types, bounds, agreement with
    the arrays: a task's labels, vocabularies, normaliser, decoding bounds, training state).

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint file, or a run directory.

    Returns
    -------
    model : fastrnn model
        Rebuilt with its saved parameters.
    vocab : Vocab or None
    extra : dict
        ``{"meta": ..., "optimizer": ..., "arrays": ...}``.

    Raises
    ------
    CheckpointError
        A damaged, truncated, foreign or too new file, or a run directory without checkpoints.
    OSError
        A missing or unreadable path.
    """
    from .data import Vocab
    from .checkpoint_meta import check_checkpoint
    from .models.registry import build
    path = run_checkpoint(path)
    arrays, meta = load_arrays(path)
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    try:
        params, int8 = quant.checkpoint_params(meta, arrays, params)
        present = sum(int(v.size) for v in params.values())
        # checkpoints written before the registry hold a language model and no model_type
        model = build(meta.get("model_type", "LanguageModel"), meta["model"], max_parameters=present)
        vocab = None if meta.get("vocab") is None else Vocab.from_dict(meta["vocab"])
        model.load_state_dict(params, strict=True)
        if int8:
            quant.quantize(model, _arrays=int8)
    except (KeyError, TypeError, ValueError, OverflowError, MemoryError) as e:
        raise CheckpointError(f"{path}: not a loadable fastrnn checkpoint ({type(e).__name__}: {e})") from None
    optimizer = None
    if meta.get("optimizer"):
        try:
            optimizer = dict(meta["optimizer"]["scalars"])
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CheckpointError(f"{path}: bad optimizer metadata ({type(e).__name__}: {e})") from None
        optimizer.update({k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")})
    extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
    try:
        check_checkpoint(meta, model, vocab, optimizer)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: bad metadata: {e}") from None
    return model, vocab, dict(meta=meta, optimizer=optimizer, arrays=extra)


def run_checkpoint(path):
    """`path` itself, or for a run directory its best.npz (else its last.npz); a directory
    holding neither is a CheckpointError."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return path
    for name in ("best.npz", "last.npz"):
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, name)
    raise CheckpointError(f"not a run directory: no best.npz or last.npz in {path}")
