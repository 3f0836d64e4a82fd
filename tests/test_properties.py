"""Property tests: random shapes, lengths and dtypes -- the kernels agree with the reference, and
random bad arguments give a Python exception, never a crash."""
import numpy as np
from hypothesis import given, settings, strategies as st

from fastrnn import _kernels
from test_kernels import CASES, TOL, assert_match, make_case, run_kernel, run_reference


@settings(max_examples=40, deadline=None, derandomize=True)   # CI must not be a lottery
@given(case=st.sampled_from(sorted(CASES)), T=st.integers(1, 6), B=st.integers(1, 4),
       I=st.integers(1, 5), H=st.integers(1, 5), dtype=st.sampled_from([np.float32, np.float64]),
       bias=st.booleans(), lengths=st.booleans(), state=st.booleans(), seed=st.integers(0, 2**16))
def test_fast_equals_slow_on_random_shapes(case, T, B, I, H, dtype, bias, lengths, state, seed):
    c = make_case(case, T, B, I, H, dtype, seed, bias=bias, lengths=lengths, state=state)
    assert_match(c, run_kernel(c), run_reference(c), TOL[dtype])


shapes = st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)).map(lambda s: s[:1 + s[0] % 3])
arrays = st.one_of(st.none(), st.integers(), st.text(max_size=2),
                   st.builds(lambda s, d: np.ones(s, d), shapes,
                             st.sampled_from([np.float32, np.float64, np.int32, np.bool_])))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(cell=st.sampled_from(sorted(_kernels.CELLS) + ["bogus"]), x=arrays, W_ih=arrays, W_hh=arrays,
       b=arrays, h0=arrays, lengths=st.one_of(st.none(), st.lists(st.integers(-2, 6), max_size=4)))
def test_random_arguments_raise_instead_of_crashing(cell, x, W_ih, W_hh, b, h0, lengths):
    try:
        _kernels.forward(cell, x, W_ih, W_hh, b, b, h0, lengths=lengths)
    except (TypeError, ValueError):
        pass
