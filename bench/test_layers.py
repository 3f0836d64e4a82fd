"""Layer benchmarks (float32): the shared `layers` and `latency` workloads of
fastrnn.benchmarks.workloads (a 2-layer bidirectional LSTM vs fastrnn.reference and torch; a
2x256 LM's batch-1 step and 100-token forward), plus two pytest-only diagnostics: streaming `step`
latency of a bare layer against the kernel calls it makes, and the Python overhead of a layer
call at batch 1 (the summary prints the percentage).

Run: python -m pytest bench/test_layers.py -q (with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset).
"""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels
from fastrnn.benchmarks.workloads import IMPLS, select
from conftest import OVERHEAD_GROUP, record, run_workload, torch


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("workload", select(group="layers") + select(group="latency"),
                         ids=lambda w: w.name)
def test_layer(benchmark, workload, impl):
    """The shared layer and latency workloads (2-layer bi-LSTM; batch-1 LM step and forward)."""
    run_workload(benchmark, workload, impl)


@pytest.mark.parametrize("impl", ["layer", "kernels"])
def test_python_overhead_batch1(benchmark, impl):
    """fastrnn.LSTM(64, 128) forward+backward at T=100, B=1 vs the two kernel calls it makes;
    the summary prints the difference as the layer's Python overhead."""
    t, b, i, h = 100, 1, 64, 128
    rng = np.random.default_rng(0)
    x = rng.standard_normal((t, b, i), dtype=np.float32)
    dy = rng.standard_normal((t, b, h), dtype=np.float32)
    lstm = fastrnn.LSTM(i, h, seed=0)
    if impl == "layer":
        def fn():
            lstm(x)
            lstm.backward(dy)
    else:
        w = dict(lstm.named_parameters())
        args = (w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"])
        tape = np.empty(_kernels.tape_size("lstm", t, b, i, h), np.float32)
        grads = {"W_ih": np.zeros_like(args[0]), "W_hh": np.zeros_like(args[1]),
                 "b_ih": np.zeros_like(args[2]), "b_hh": np.zeros_like(args[3])}

        def fn():
            _kernels.forward("lstm", x, *args, tape=tape)
            _kernels.backward("lstm", tape, x, *args, dy=dy, grads=grads)
    record(benchmark, OVERHEAD_GROUP, impl, fn)


@pytest.mark.parametrize("impl", ["fastrnn", "torch"])
def test_step_batch1(benchmark, impl):
    """One streaming step of a 2-layer LSTM(64, 256) at batch 1 (the sampling loop's unit of work)."""
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed")
    i, h = 64, 256
    x = np.random.default_rng(0).standard_normal((1, i), dtype=np.float32)
    if impl == "fastrnn":
        lstm = fastrnn.LSTM(i, h, num_layers=2, seed=0)
        state = lstm.step(x)[1]
        fn = lambda: lstm.step(x, state)
    else:
        tl = torch.nn.LSTM(i, h, num_layers=2)
        xt = torch.from_numpy(x)[None]
        with torch.inference_mode():
            state = tl(xt)[1]

        def fn():
            with torch.inference_mode():
                tl(xt, state)
    record(benchmark, f"2-layer LSTM({i}, {h}) step, B=1", impl, fn, 2 * (i + 3 * h) * 4 * h)


def test_step_bare_kernels_batch1(benchmark):
    """The two `_kernels.step` calls `LSTM.step` makes above, with preallocated outputs: the
    difference to the layer's row is the streaming step's Python overhead."""
    i, h = 64, 256
    x = np.random.default_rng(0).standard_normal((1, i), dtype=np.float32)
    lstm = fastrnn.LSTM(i, h, num_layers=2, seed=0)
    w = dict(lstm.named_parameters())
    hs, cs = np.zeros((2, 1, h), np.float32), np.zeros((2, 1, h), np.float32)
    works = [np.empty(_kernels.work_size("lstm", 1, 1, n, h), np.float32) for n in (i, h)]
    layer_args = [tuple(w[f"{n}_l{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                  for k in range(2)]

    def fn():
        inp = x
        for k in range(2):
            _kernels.step("lstm", inp, hs[k], cs[k], *layer_args[k], work=works[k], h_out=hs[k], c_out=cs[k])
            inp = hs[k]
    record(benchmark, f"2-layer LSTM({i}, {h}) step, B=1, bare _kernels.step", "fastrnn", fn,
           2 * (i + 3 * h) * 4 * h)
