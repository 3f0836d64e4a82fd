"""Parameter dtypes and number arguments: fastrnn computes in float32 or float64 (the flat
parameter storage itself lives in `fastrnn.nn.module.Module`)."""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def is_real(x):
    """A real number -- int or float, NumPy's included -- and not a bool (True is no number)."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def as_float_dtype(dtype):
    """Return `dtype` as a NumPy float32/float64 dtype, or raise TypeError naming it."""
    if dtype is None:      # np.dtype(None) is float64: make the caller say so
        raise TypeError("dtype: expected 'float32' or 'float64', got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dt.name}")
    return dt
