"""The argument checks every public entry point shares: integers, numbers, choices, token ids,
sequence lengths and float dtypes, each raising an exception that names the argument.

One rule for types: a bool is not a number (True == 1, but `hidden_size=True` is a mistake), and
NumPy's integer and float scalars are numbers. A value of the wrong type raises `ArgumentTypeError`,
which is both a TypeError and a ValueError: the hand-written checks this module replaced raised one
or the other for the same mistake, and code (and tests) catching either keeps working. A value of
the right type outside its range raises ValueError.

This module is a leaf (NumPy only), so `fastrnn.nn`, the models, the data and training code can
all import it without an import cycle.
"""
import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a bool or a float where an integer is expected, a str for a
    number): both a TypeError and a ValueError (as numpy's AxisError is a ValueError and an
    IndexError)."""


def to_numpy(value):
    """NumPy view of an array-like or a torch tensor (without importing torch)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def is_integer(value):
    """An integer -- Python's or NumPy's -- and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value):
    """A real number -- int or float, NumPy's included -- and not a bool (True is no number)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _interval(low, high, low_open=False, high_open=False):
    return (f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}"
            f"{')' if high_open or high is None else ']'}")


def _integer_words(low, high):
    if high is not None:
        return "an integer" if low is None else f"an integer in [{low}, {high}]"
    return {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
        low, f"an integer >= {low}")


def integer(name, value, low=None, high=None, *, none_ok=False, expected=None):
    """`value` as an int if it is an integer (not a bool) in [low, high] (None: unbounded), or None
    when `none_ok`; else ArgumentTypeError (wrong type) or ValueError (out of range), "name:
    expected <expected>, got <value>"."""
    if none_ok and value is None:
        return None
    if expected is None:
        expected = ("None or " if none_ok else "") + _integer_words(low, high)
    if not is_integer(value):
        raise ArgumentTypeError(f"{name}: expected {expected}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return int(value)


def positive_int(name, value, none_ok=False):
    """`value` as an int >= 1 (or None when `none_ok`); see `integer`."""
    return integer(name, value, 1, none_ok=none_ok)


def real(name, value, low=None, high=None, *, low_open=False, high_open=False, none_ok=False,
         expected=None):
    """`value` as a float if it is a finite real number (not a bool) in the interval [low, high]
    (open ends with low_open/high_open, None: unbounded), or None when `none_ok`; else
    ArgumentTypeError (wrong type) or ValueError (out of range or not finite)."""
    if none_ok and value is None:
        return None
    if expected is None:
        expected = "a finite number" if low is None and high is None else \
            f"a number in {_interval(low, high, low_open, high_open)}"
        expected = ("None or " if none_ok else "") + expected
    if not is_real(value):
        raise ArgumentTypeError(f"{name}: expected {expected}, got {value!r}")
    try:
        ok = math.isfinite(value)
    except OverflowError:       # an int beyond float range: not a finite float
        ok = False
    ok = ok and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return float(value)


def probability(name, value):
    """A dropout-style probability in [0, 1)."""
    return real(name, value, 0, 1, high_open=True, expected="a probability in [0, 1)")


def choice(name, value, choices):
    """`value` if it is one of `choices` (a bool matches only a bool: True is not 1), else
    ValueError "name: expected one of [...]"."""
    ok = any(value is c for c in choices) if isinstance(value, bool) else \
        not isinstance(value, (list, dict, set, np.ndarray)) and value in choices
    if not ok:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def ids(name, value, V, ndim=None):
    """`value` as an integer array with values in [0, V) (and `ndim` axes when given): TypeError
    for non-integer ids (floats would be truncated silently), ValueError for the shape or range."""
    value = to_numpy(value)
    if value.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer ids, got {value.dtype.name}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim}-D ids, got shape {value.shape}")
    if value.size and (value.min() < 0 or value.max() >= V):
        raise ValueError(f"{name}: ids must be in [0, {V}), got {value.min()}..{value.max()}")
    return value


def lengths(value, B, T, name="lengths", allow_empty=False):
    """Sequence lengths as int64 (B,) in [1, T] ([0, T] with allow_empty); None: every sequence is
    T long. TypeError for non-integers, ValueError for the shape or range, naming `name`."""
    if value is None:
        if T == 0 and not allow_empty:
            raise ValueError(f"{name}: the sequences have no steps (empty sequences are not allowed)")
        return np.full(B, T, np.int64)
    value = to_numpy(value)
    if value.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got {value.dtype.name}")
    if value.shape != (B,):
        raise ValueError(f"{name}: expected shape ({B},) (one per sequence), got {value.shape}")
    low = 0 if allow_empty else 1
    if B and (value.min() < low or value.max() > T):
        what = "" if allow_empty else " (no empty sequences, none longer than the padded inputs)"
        raise ValueError(f"{name}: expected values in [{low}, {T}]{what}, got {value.min()}..{value.max()}")
    return value.astype(np.int64)


def float_dtype(dtype):
    """`dtype` as NumPy's float32 or float64 dtype, or TypeError naming the argument `dtype`."""
    if dtype is None:      # np.dtype(None) is float64: make the caller say so
        raise TypeError("dtype: expected 'float32' or 'float64', got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dt.name}")
    return dt


def float_array(name, value):
    """`value` as a NumPy array of a float dtype (any width), or TypeError naming `name`."""
    value = to_numpy(value)
    if value.dtype.kind != "f":
        raise TypeError(f"{name}: expected a float array, got {value.dtype.name}")
    return value
