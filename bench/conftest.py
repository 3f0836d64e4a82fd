"""Shared benchmark plumbing: thread settings, the machine's SGEMM peak, and a summary table.

Every figure is printed next to the same workload run by fastrnn.reference and (when installed)
PyTorch in the same process, so ratios are measured on the same machine at the same time.
"""
import os
import time

import numpy as np
import pytest

try:
    import torch
except ImportError:  # the torch columns are simply absent
    torch = None

RESULTS = {}   # (group, impl) -> median seconds
FLOPS = {}     # group -> floating-point operations of one call
OVERHEAD_GROUP = "python overhead: LSTM(64, 128) fwd+bwd, T=100, B=1"   # impls "layer", "kernels"


def blas_threads():
    """Threads OpenBLAS uses (its environment variables, else one per available core)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return len(os.sched_getaffinity(0))


if torch is not None:
    torch.set_num_threads(blas_threads())


def record(benchmark, group, impl, fn, flops=None):
    """Benchmark fn() and keep its median for the summary table."""
    benchmark.group = group
    benchmark.extra_info["impl"] = impl
    benchmark(fn)
    RESULTS[(group, impl)] = benchmark.stats.stats.median
    if flops:
        FLOPS[group] = flops


def run_workload(benchmark, workload, impl):
    """Benchmark one implementation of a shared workload (fastrnn.benchmarks.workloads)."""
    if impl not in workload.impls:
        pytest.skip(f"{impl} does not run {workload.name!r} here")
    record(benchmark, workload.name, impl, workload.builders[impl](), workload.flops)


def sgemm_gflops(n=1024, repeats=15):
    """Median SGEMM GFLOP/s of an n x n x n product through SciPy's BLAS (the machine's peak)."""
    from scipy.linalg.blas import sgemm
    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32))
    b = np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32))
    sgemm(1.0, a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sgemm(1.0, a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / np.median(times) / 1e9


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    peak = sgemm_gflops()
    w = terminalreporter.write_line
    w("")
    w(f"fastrnn benchmark summary (medians; BLAS threads {blas_threads()}; "
      f"SGEMM peak {peak:.1f} GFLOP/s measured now)")
    w("| workload | fastrnn ms | reference ms | torch ms | ref/fastrnn | torch/fastrnn | GFLOP/s | % SGEMM |")
    w("|---|---|---|---|---|---|---|---|")
    for group in dict.fromkeys(g for g, _ in RESULTS if g != OVERHEAD_GROUP):
        fast = RESULTS.get((group, "fastrnn"))
        ref = RESULTS.get((group, "reference"))
        tch = RESULTS.get((group, "torch"))
        cell = lambda v: "-" if v is None else f"{v * 1e3:.3f}"
        ratio = lambda v: "-" if v is None or fast is None else f"{v / fast:.2f}x"
        gf = FLOPS.get(group, 0) / fast / 1e9 if fast and group in FLOPS else None
        w(f"| {group} | {cell(fast)} | {cell(ref)} | {cell(tch)} | {ratio(ref)} | {ratio(tch)} | "
          f"{'-' if gf is None else f'{gf:.1f}'} | {'-' if gf is None else f'{100 * gf / peak:.0f}%'} |")
    layer, kernels = RESULTS.get((OVERHEAD_GROUP, "layer")), RESULTS.get((OVERHEAD_GROUP, "kernels"))
    if layer and kernels:
        w(f"{OVERHEAD_GROUP}: layer {layer * 1e3:.3f} ms, bare kernels {kernels * 1e3:.3f} ms, "
          f"Python overhead {100 * (layer - kernels) / layer:.1f}% of the layer call")
