"""Building blocks of the fuzz cases: break one argument in a random way, compare with the clean call."""
import numpy as np
from hypothesis import strategies as st

# mostly tiny; sometimes around the kernels' small-batch / packed-weight thresholds (32)
SIZES = st.one_of(st.integers(1, 4), st.integers(1, 4), st.sampled_from([7, 16, 31, 32, 33]))
FLOATS = [np.float32, np.float64]
OTHER_DTYPES = [np.float16, np.int32, np.int64, np.bool_, np.complex64, np.float32, np.float64]
# mutations that keep every value, so an accepted call must equal the clean call
SAME_VALUES = ("strided", "fortran", "readonly", "list")
KINDS = SAME_VALUES + ("dtype", "shape", "none", "scalar", "nonfinite", "empty")


def mutate(draw, a, label):
    """(a broken in one random way, the kind of breakage)."""
    kind = draw(st.sampled_from(KINDS), f"{label} mutation")
    if a is None or kind == "none":
        return None, "none"
    if kind == "strided":
        b = np.zeros(a.shape + (2,), a.dtype)
        b[..., 0] = a
        return b[..., 0], kind
    if kind == "fortran":
        return np.asfortranarray(a) if a.ndim > 1 else a[::-1].copy()[::-1], kind
    if kind == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b, kind
    if kind == "list":
        return a.tolist(), kind
    if kind == "dtype":
        return a.astype(draw(st.sampled_from(OTHER_DTYPES), f"{label} dtype")), kind
    if kind == "shape":
        shape = list(a.shape)
        op = draw(st.sampled_from(["grow", "shrink", "drop", "add"]), f"{label} shape op")
        if op == "drop" and shape:
            shape.pop()
        elif op == "add":
            shape.append(draw(st.integers(1, 3), f"{label} new dim"))
        elif shape:
            i = draw(st.integers(0, len(shape) - 1), f"{label} dim")
            shape[i] = max(0, shape[i] + (1 if op == "grow" else -1))
        return np.resize(a, shape), kind
    if kind == "scalar":
        return 1.0, kind
    if kind == "empty":
        return np.zeros((0,) * max(a.ndim, 1), a.dtype), kind
    b = a.astype(np.float64).copy() if a.dtype.kind not in "fc" else a.copy()   # nonfinite
    if b.size:
        b.flat[draw(st.integers(0, b.size - 1), f"{label} index")] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf]), f"{label} value")
    return b.astype(a.dtype) if a.dtype.kind in "fc" else b, kind


def same(got, want, dtype):
    """Results equal up to summation-order rounding (NaN where the clean call has NaN)."""
    tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True)


def clean(fn, *args, **kw):
    """A call with clean arguments: it must succeed (a rejection here is a harness bug)."""
    try:
        return fn(*args, **kw)
    except (ValueError, TypeError) as e:
        raise AssertionError(f"the clean call was rejected: {e!r}") from e


def copies(out):
    return [None if o is None else np.array(o) for o in out]


def pick(draw, valid, junk, broken, name):
    """A value for argument `name`: from `junk` if it is the `broken` one, else from `valid`."""
    return draw(junk if name == broken else valid, name)
