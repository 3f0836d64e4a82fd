"""Checkpoints: one `.npz` of arrays plus JSON metadata; never pickle; always written atomically.

`save_arrays`/`load_arrays` are the file format; `save`/`load` put any registered model, its
vocabulary and optimiser state into that format. Loading uses `allow_pickle=False`, so opening
a checkpoint cannot execute code, and a truncated or foreign file gives a clear ValueError.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT, FORMAT_VERSION, META_KEY = "fastrnn-checkpoint", 1, "__meta__"


def save_arrays(path, arrays, meta):
    """Write `arrays` ({str: ndarray}) and JSON-serialisable `meta` to one .npz, atomically.

    The file is written next to its destination and renamed over it only when complete, so an
    existing checkpoint is never left half-written.
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
    text = json.dumps(dict(meta, format=FORMAT, format_version=FORMAT_VERSION), allow_nan=False)
    out[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **out)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_arrays(path):
    """(arrays, meta) of a file written by `save_arrays`; ValueError naming `path` if it is not one."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{path}: not a fastrnn checkpoint (unreadable or truncated: {e})") from None
    raw = arrays.pop(META_KEY, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path}: not a fastrnn checkpoint (no metadata)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a fastrnn checkpoint (bad metadata: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a fastrnn checkpoint (format marker missing)")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: written by a newer fastrnn (format version "
                         f"{meta['format_version']} > {FORMAT_VERSION}); upgrade fastrnn to read it")
    return arrays, meta


# ---- models: one checkpoint file = model type + config + parameters + optimiser state + metadata

RESERVED_META = ("format", "format_version", "fastrnn_version", "model", "model_type", "vocab",
                 "optimizer")


def save(path, model, vocab=None, optimizer=None, arrays=None, **meta):
    """Save `model` (its registered type, config and parameters), optionally `vocab` and
    `optimizer`, atomically.

    `arrays` adds named NumPy arrays (e.g. a carried hidden state); `meta` adds JSON-serialisable
    metadata (e.g. training progress). Load it back with `load`.
    """
    from . import __version__
    from .models.registry import MODELS
    clash = sorted(set(meta) & set(RESERVED_META))
    if clash:
        raise ValueError(f"meta: the keys {clash} are reserved")
    model_type = type(model).__name__
    if MODELS.get(model_type) is not type(model):
        raise TypeError(f"model: {model_type} is not a registered model (see fastrnn.models.register)")
    out = {f"param/{name}": value for name, value in model.named_parameters().items()}
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
    save_arrays(path, out, dict(meta, fastrnn_version=__version__, model=model.config,
                                model_type=model_type, optimizer=opt_meta,
                                vocab=None if vocab is None else vocab.to_dict()))


def load(path):
    """Load a checkpoint written by `save`: returns (model, vocab or None, extra).

    extra = {"meta": the metadata dict, "optimizer": the optimiser's state_dict or None,
    "arrays": the additional arrays}. The file is read with allow_pickle=False. The model is
    rebuilt through the registry only after its config has been checked against the parameter
    arrays actually present (a config claiming more parameters than the file holds fails before
    anything is allocated). Damaged or foreign files raise ValueError naming `path`.
    """
    from .data import Vocab
    from .models.registry import build
    arrays, meta = load_arrays(path)
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    try:
        present = sum(int(v.size) for v in params.values())
        # checkpoints written before the registry hold a language model and no model_type
        model = build(meta.get("model_type", "LanguageModel"), meta["model"], max_parameters=present)
        vocab = None if meta.get("vocab") is None else Vocab.from_dict(meta["vocab"])
        model.load_state_dict(params, strict=True)
    except (KeyError, TypeError, ValueError, OverflowError, MemoryError) as e:
        raise ValueError(f"{path}: not a loadable fastrnn checkpoint ({type(e).__name__}: {e})") from None
    optimizer = None
    if meta.get("optimizer"):
        try:
            optimizer = dict(meta["optimizer"]["scalars"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: bad optimizer metadata ({e})") from None
        optimizer.update({k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")})
    extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
    return model, vocab, dict(meta=meta, optimizer=optimizer, arrays=extra)
