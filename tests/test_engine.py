"""The float32 engine: its own thread team, packed panels and micro-kernels (csrc/engine.h).

- Thread counts 1, 2 and 3 give bit-identical outputs and gradients (every element is reduced in
  a fixed order by one thread), over a hypothesis sweep of shapes (odd sizes, H not a multiple of
  the vector width, B = 1..70, lengths).
- The engine equals the BLAS path (`FASTRNN_KERNELS=blas`) within float32 rounding.
- Pre-packed forward weights (`pack_forward`) give the same bits as packing per call.
- Whole stacks (layers x directions in one call: the wavefront, directions side by side) give
  the same bits at 1, 2 and 3 threads and with the wavefront forced off, with dropout and lengths.
- Two Python threads calling kernels at once stay correct (calls are serialised on the team).
- The kernel and layer test files pass on every engine path this CPU supports and on BLAS.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastrnn import _kernels
from test_kernels import CASES, make_case, run_kernel, rel_err

ENGINE = _kernels.engine_info()["path"] == "engine"
needs_engine = pytest.mark.skipif(not ENGINE, reason="float32 engine not active on this CPU / setting")


def _run_at(threads, case):
    _kernels.set_num_threads(threads)
    try:
        return run_kernel(case)
    finally:
        _kernels.set_num_threads(None)


@needs_engine
@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=st.sampled_from(sorted(CASES)), T=st.integers(1, 6), B=st.integers(1, 70),
       I=st.integers(1, 40), H=st.integers(1, 90), lengths=st.booleans(), seed=st.integers(0, 99))
def test_threads_give_identical_bits_and_match_blas(case, T, B, I, H, lengths, seed):
    c = make_case(case, T, B, I, H, np.float32, seed, lengths=lengths)
    one = _run_at(1, c)
    for threads in (2, 3):
        other = _run_at(threads, c)
        for key, value in one.items():
            if value is not None:
                assert np.array_equal(value, other[key]), (key, threads)
    _kernels.set_engine(False)
    try:
        blas = run_kernel(c)
    finally:
        _kernels.set_engine(True)
    exact = run_kernel(make_case(case, T, B, I, H, np.float64, seed, lengths=lengths))
    for key, value in one.items():
        if value is None:
            continue
        # the engine is as close to the float64 answer as BLAS is (float32 rounding of the same
        # sums in another order), and both are close
        err_engine = rel_err(value, exact[key], 1e-2)
        err_blas = rel_err(blas[key], exact[key], 1e-2)
        assert err_engine <= 3 * err_blas + 1e-5, (key, err_engine, err_blas)


@needs_engine
@pytest.mark.parametrize("case", sorted(CASES))
def test_prepacked_weights_give_the_same_bits(case):
    c = make_case(case, 5, 9, 6, 40, np.float32, 3, lengths=True)
    p = c["params"]
    T, B, _ = c["x"].shape
    peep = p["w_peep"] is not None
    packed = _kernels.pack_forward(c["cell"], p["W_hh"], p["W_hr"], peephole=peep)
    assert packed is not None
    args = (c["cell"], c["x"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], c["h0"], c["c0"])
    kw = dict(w_peep=p["w_peep"], W_hr=p["W_hr"], lengths=c["lengths"])
    want = _kernels.forward(*args, **kw)
    got = _kernels.forward(*args, packed=packed, **kw)
    for a, b in zip(want, got):
        if a is not None:
            assert np.array_equal(a, b)
    # a pack made for another hidden size is ignored: the kernel packs for itself
    if p["W_hr"] is None:
        G, P = _kernels.gates(c["cell"]), p["W_hh"].shape[1]
        other = _kernels.pack_forward(c["cell"], np.ones((G * (P + 1), P + 1), np.float32))
        assert np.array_equal(_kernels.forward(*args, packed=other, **kw)[0], want[0])


def test_pack_forward_is_none_where_it_does_not_apply():
    W = np.zeros((8, 2), np.float64)
    assert _kernels.pack_forward("lstm", W) is None            # float64 runs on BLAS
    _kernels.set_engine(False)
    try:
        assert _kernels.pack_forward("lstm", W.astype(np.float32)) is None
    finally:
        _kernels.set_engine(True)


def test_settings_are_validated_and_reported():
    info = _kernels.engine_info()
    assert set(info) == {"path", "isa", "threads"} and info["threads"] >= 1
    assert _kernels.supported_isas()[-1] == "none"
    with pytest.raises(ValueError, match="n:"):
        _kernels.set_num_threads(-1)
    with pytest.raises(ValueError, match="name:"):
        _kernels.set_isa("sse9")
    _kernels.set_num_threads(3)
    assert _kernels.get_num_threads() == 3
    _kernels.set_num_threads(None)


def _stack_run(cls, L, bi, dropout, T, B, lengths, seed):
    """Training forward + backward and an inference forward of a float32 stack."""
    import fastrnn
    layer = getattr(fastrnn, cls)(6, 40, num_layers=L, bidirectional=bi, dropout=dropout,
                                  dtype="float32", seed=seed)
    layer._dropout_rng = np.random.default_rng(seed)        # the same masks in every run
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((T, B, 6)).astype(np.float32)
    lens = rng.integers(0, T + 1, B) if lengths else None
    y, _ = layer.forward(x, lengths=lens)
    dx, _ = layer.backward(rng.standard_normal(y.shape).astype(np.float32))
    y_inf, _ = layer.forward(x, lengths=lens, train=False)
    return y, dx, layer.grads.copy(), y_inf


@needs_engine
@settings(max_examples=12, deadline=None, derandomize=True)
@given(cls=st.sampled_from(["LSTM", "GRU", "RNN"]), L=st.integers(1, 3), bi=st.booleans(),
       dropout=st.sampled_from([0.0, 0.3]), T=st.integers(1, 12), B=st.integers(1, 40),
       lengths=st.booleans(), seed=st.integers(0, 99))
def test_stacks_give_the_same_bits_for_every_schedule(cls, L, bi, dropout, T, B, lengths, seed):
    runs = []
    for threads, wavefront in ((1, "1"), (2, "1"), (3, "1"), (2, "0")):
        os.environ["FASTRNN_WAVEFRONT"] = wavefront
        _kernels.set_num_threads(threads)
        try:
            runs.append(_stack_run(cls, L, bi, dropout, T, B, lengths, seed))
        finally:
            _kernels.set_num_threads(None)
            del os.environ["FASTRNN_WAVEFRONT"]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert np.array_equal(a, b)


@needs_engine
def test_steps_of_a_few_sequences_are_exact_on_every_thread_count():
    """Regression: below 8 rows the input projection's product reads W in place, its columns
    shared out -- it once started before every member had written its bias rows (wrong `step`
    and short-sequence outputs at 2 threads, varying run to run)."""
    import fastrnn
    for H, B in ((64, 2), (64, 7), (200, 1), (512, 3)):
        layer = fastrnn.LSTM(30, H, num_layers=2, dtype="float32", seed=1)
        x = np.random.default_rng(B).standard_normal((B, 30)).astype(np.float32)
        xs = np.random.default_rng(H).standard_normal((3, 1, 30)).astype(np.float32)  # 3 rows
        _kernels.set_num_threads(1)
        want, want_seq = layer.step(x)[0], layer.forward(xs, train=False)[0]
        _kernels.set_num_threads(2)
        try:
            for _ in range(20):
                assert np.array_equal(layer.step(x)[0], want), (H, B)
                assert np.array_equal(layer.forward(xs, train=False)[0], want_seq), H
        finally:
            _kernels.set_num_threads(None)


def test_two_python_threads_at_once_stay_correct():
    cases = [make_case("lstm", 20, 33, 17, 64, np.float32, s, lengths=True) for s in range(2)]
    want = [run_kernel(c) for c in cases]
    errors = []

    def work(i):
        for _ in range(15):
            got = run_kernel(cases[i])
            if not all(v is None or np.array_equal(v, got[k]) for k, v in want[i].items()):
                errors.append(i)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _paths():
    """Every engine path this CPU supports other than the default one, and BLAS."""
    isas = [i for i in _kernels.supported_isas() if i != "none"]
    envs = [{"FASTRNN_ISA": isa} for isa in isas[1:]]       # the best ISA is the default run
    return envs + [{"FASTRNN_KERNELS": "blas"}]


@pytest.mark.skipif(os.environ.get("FASTRNN_KERNELS") == "blas" or "FASTRNN_ISA" in os.environ,
                    reason="already running on a forced path")
@pytest.mark.parametrize("env", _paths(), ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_kernel_and_layer_tests_pass_on_every_path(env):
    here = os.path.dirname(os.path.abspath(__file__))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          os.path.join(here, "test_kernels.py"), os.path.join(here, "test_layers.py")],
                         capture_output=True, text=True, env=dict(os.environ, **env), timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
