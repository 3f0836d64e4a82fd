"""A checkpoint's metadata checked against types, sane bounds and the model's arrays, before
anything runs: `fastrnn.checkpoint_meta.check_checkpoint` is what `fastrnn.load` calls (so
`predict`, `evaluate`, `sample`, `export` and `--resume` all go through it).

The metadata is JSON inside the checkpoint; its CRC only says the bytes are those written, not
that whoever wrote them was fastrnn. Every field a command will use is checked here for its type,
its range (with upper bounds, so that an edited `max_len` or `beam` cannot hang a command or
allocate gigabytes), finiteness, and agreement with the model rebuilt from the arrays (a
vocabulary as long as the embedding, labels as many as the head's outputs, ...). A field that
fails raises `CheckpointError` naming it: `task_state.max_len: expected an integer in [1,
100000], got 1000000000000`. Fields this version does not know are left alone.

The checks themselves are split by owner: the model-level fields (vocabulary, optimiser,
conditioned-generator labels) here, the Trainer's training state in
`fastrnn.train.checkpoint_checks`, a task's options and fitted state in `fastrnn.tasks.validate`.
"""
import math

import numpy as np

from .io import CheckpointError
from .params import is_real

# sane upper bounds on sizes read from metadata (far above any real run; see docs/reliability.md)
MAX_BATCH = 1_000_000           # examples or streams per batch
MAX_SEQ_LEN = 1_000_000         # a language model's BPTT window
MAX_COUNT = 2 ** 53             # iterations, epochs, steps, min_count: exact in a float64
MAX_SCALE = 1e306               # |mean| and std of a forecast normaliser: y * std + mean stays finite

_MISSING = object()


def bad(where, expected, value=_MISSING):
    """CheckpointError 'where: expected ..., got ...' (value omitted: 'missing')."""
    got = "nothing (missing)" if value is _MISSING else _short(value)
    return CheckpointError(f"{where}: expected {expected}, got {got}")


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def get(d, key, where, required=True):
    """d[key], or _MISSING when it is absent and not `required` (CheckpointError when it is)."""
    if key in obj(where or "metadata", d):
        return d[key]
    if required:
        raise bad(f"{where}.{key}" if where else key, "a value")
    return _MISSING


def obj(where, value):
    """`value` if it is a JSON object (dict), else CheckpointError."""
    if not isinstance(value, dict):
        raise bad(where, "a JSON object", value)
    return value


def integer(where, value, lo=0, hi=MAX_COUNT, none_ok=False):
    """`value` if it is an int in [lo, hi] (or None with none_ok), else CheckpointError."""
    if none_ok and value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise bad(where, f"{'null or ' if none_ok else ''}an integer in [{lo}, {hi}]", value)
    return value


def real(where, value, lo=-math.inf, hi=math.inf, low_open=False, high_open=False, none_ok=False):
    """`value` if it is a finite number in [lo, hi] (open ends with low_open/high_open), else
    CheckpointError."""
    if none_ok and value is None:
        return None
    ok = is_real(value) and math.isfinite(value) and (value < hi if high_open else value <= hi) \
        and (value > lo if low_open else value >= lo)
    if not ok:
        interval = f"{'(' if low_open else '['}{lo:g}, {hi:g}{')' if high_open else ']'}"
        raise bad(where, f"{'null or ' if none_ok else ''}a finite number in {interval}", value)
    return value


def choice(where, value, choices):
    """`value` if it is one of `choices`, else CheckpointError."""
    if isinstance(value, bool) or value not in choices:
        raise bad(where, f"one of {list(choices)}", value)
    return value


def boolean(where, value, none_ok=False):
    if not (isinstance(value, bool) or none_ok and value is None):
        raise bad(where, f"{'null or ' if none_ok else ''}true or false", value)
    return value


def string(where, value, none_ok=False):
    if not (isinstance(value, str) or none_ok and value is None):
        raise bad(where, f"{'null or ' if none_ok else ''}a string", value)
    return value


def strings(where, value, distinct=True, min_len=1):
    """`value` if it is a list of (distinct) strings, at least `min_len` of them."""
    if not isinstance(value, list) or len(value) < min_len or \
            not all(isinstance(s, str) for s in value):
        raise bad(where, f"a list of at least {min_len} strings", value)
    if distinct and len(set(value)) != len(value):
        raise bad(where, "distinct strings", value)
    return value


def equal(where, value, want, what):
    """CheckpointError unless value == want (`what` says where `want` comes from)."""
    if value != want or type(value) is bool and type(want) is not bool:
        raise CheckpointError(f"{where}: expected {_short(want)} ({what}), got {_short(value)}")
    return value


def vocab(where, d, size=None, level=None):
    """The Vocab of a stored `to_dict()`, checked (its length `size` when given)."""
    from .data import Vocab
    get(d, "tokens", where)
    get(d, "level", where)
    strings(f"{where}.tokens", d["tokens"], min_len=2)
    choice(f"{where}.level", d["level"], ("char", "word") if level is None else (level,))
    try:
        v = Vocab.from_dict(d)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: {e}") from None
    if size is not None and len(v) != size:
        raise CheckpointError(f"{where}: holds {len(v)} tokens but the model's embedding has "
                              f"{size} rows")
    return v


def finite_params(model):
    """CheckpointError if a parameter is NaN or infinite (the Trainer never saves those)."""
    p = model.params
    if not math.isfinite(float(np.dot(p, p))):      # the Trainer's own test before it saves
        raise CheckpointError("parameters: hold NaN or infinite values (this checkpoint was "
                              "not written by a healthy run)")


def _betas(where, value):
    if not isinstance(value, list) or len(value) != 2:
        raise bad(where, "a list of two numbers in [0, 1)", value)
    return [real(f"{where}[{i}]", b, 0, 1, high_open=True) for i, b in enumerate(value)]


# the optimisers' hyper-parameters: name -> check(where, value)
_HYPER = {
    "betas": _betas,
    "eps": lambda w, v: real(w, v, 0),
    "weight_decay": lambda w, v: real(w, v, 0),
    "momentum": lambda w, v: real(w, v, 0),
    "dampening": lambda w, v: real(w, v, 0, 1),
    "nesterov": boolean,
    "alpha": lambda w, v: real(w, v, 0, 1),
}
_NON_NEGATIVE_STATE = ("exp_avg_sq", "sum", "square_avg")


def check_optimizer(stored, state, model):
    """The optimiser metadata (type, scalars) and state arrays: a known type's hyper-parameters
    in range, `lr` and `steps` sane, every state array the model's shape and finite."""
    from . import optim
    where = "optimizer"
    kind = get(stored, "type", where)
    string(f"{where}.type", kind)
    scalars = get(stored, "scalars", where)
    real(f"{where}.scalars.lr", get(scalars, "lr", f"{where}.scalars"), 0)
    integer(f"{where}.scalars.steps", get(scalars, "steps", f"{where}.scalars"))
    cls = getattr(optim, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, optim.Optimizer)):
        return          # a user's own optimiser: its state is its business
    for key, value in state.items():
        if key in _HYPER:
            _HYPER[key](f"{where}.scalars.{key}", value)
    shape = model.params.shape
    for name in cls.state_names:
        a = state.get(name)
        where_a = f"optimizer state {name!r}"
        if not isinstance(a, np.ndarray):
            raise bad(where_a, f"an array of shape {shape}", a)
        if a.shape != shape or a.dtype.kind != "f":
            raise CheckpointError(f"{where_a}: expected a float array of shape {shape} (the "
                                  f"model's parameters), got {a.dtype} {a.shape}")
        if not np.isfinite(a).all() or name in _NON_NEGATIVE_STATE and (a < 0).any():
            raise CheckpointError(f"{where_a}: holds {'negative, ' if name in _NON_NEGATIVE_STATE else ''}"
                                  f"NaN or infinite values")
