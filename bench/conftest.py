"""Shared benchmark plumbing: thread settings, the machine's float32 peak, and a summary table.

Every figure is printed next to the same workload run by fastrnn.reference and (when installed)
PyTorch in the same process, so ratios are measured on the same machine at the same time. The
threads and the peak are those of `fastrnn bench` (fastrnn.benchmarks.timing), so both report
the same "% of peak".
"""
import pytest

from fastrnn import _kernels
from fastrnn.benchmarks import timing
from fastrnn.benchmarks.runners import torch  # noqa: F401  (None without torch; tests import it from here)

RESULTS = {}   # (group, impl) -> median seconds
FLOPS = {}     # group -> floating-point operations of one call
MEMORY = {}    # (workload name, impl) -> peak RSS growth in bytes (bench/test_memory.py)
PEAK = {}      # timing.measure_peak()'s record, measured before the first benchmark
THREADS = {}   # timing.machine_info()'s thread counts
OVERHEAD_GROUP = "python overhead: LSTM(64, 128) fwd+bwd, T=100, B=1"   # impls "layer", "kernels"


@pytest.fixture(scope="session", autouse=True)
def same_threads_and_peak():
    """One thread count for fastrnn, torch and OpenBLAS (fastrnn's team size, i.e.
    FASTRNN_NUM_THREADS or the CPUs this process may use), and the float32 peak measured with it
    at the start of the session, as `fastrnn bench` does."""
    count = _kernels.get_num_threads()
    restore = timing.apply_threads(count)
    THREADS.update(timing.machine_info(count)["threads"])
    PEAK.update(timing.measure_peak())
    yield
    restore()


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


def pytest_terminal_summary(terminalreporter):
    """The summary table: medians, ratios, GFLOP/s and % of the peak; then memory and overhead."""
    if not RESULTS and not MEMORY:
        return
    peak = PEAK["gflops"]
    w = terminalreporter.write_line
    w("")
    mismatch = timing.thread_mismatch(THREADS)
    w(f"fastrnn benchmark summary (medians; threads {THREADS['count']}: fastrnn {THREADS['fastrnn']}, "
      f"OpenBLAS {THREADS['blas']}, torch {THREADS['torch'] or '-'}"
      + (f" - WARNING: {mismatch}" if mismatch else "")
      + f"; float32 peak {peak:.1f} GFLOP/s, {PEAK['source']} on {PEAK['n']}², measured at the start)")
    groups = list(dict.fromkeys(g for g, _ in RESULTS if g != OVERHEAD_GROUP))
    if groups:
        w("| workload | fastrnn ms | reference ms | torch ms | ref/fastrnn | torch/fastrnn | GFLOP/s | % of peak |")
        w("|---|---|---|---|---|---|---|---|")
    for group in groups:
        fast = RESULTS.get((group, "fastrnn"))
        ref = RESULTS.get((group, "reference"))
        tch = RESULTS.get((group, "torch"))
        cell = lambda v: "-" if v is None else f"{v * 1e3:.3f}"
        ratio = lambda v: "-" if v is None or fast is None else f"{v / fast:.2f}x"
        gf = FLOPS.get(group, 0) / fast / 1e9 if fast and group in FLOPS else None
        w(f"| {group} | {cell(fast)} | {cell(ref)} | {cell(tch)} | {ratio(ref)} | {ratio(tch)} | "
          f"{'-' if gf is None else f'{gf:.1f}'} | {'-' if gf is None else f'{100 * gf / peak:.0f}%'} |")
    if MEMORY:
        mb = lambda b: "-" if b is None else f"{b / 2**20:.1f}"
        w("| memory workload | fastrnn peak RSS growth MB | reference MB | torch MB |")
        w("|---|---|---|---|")
        for name in dict.fromkeys(n for n, _ in MEMORY):
            w(f"| {name} | " + " | ".join(mb(MEMORY.get((name, i))) for i in ("fastrnn", "reference", "torch"))
              + " |")
    layer, kernels = RESULTS.get((OVERHEAD_GROUP, "layer")), RESULTS.get((OVERHEAD_GROUP, "kernels"))
    if layer and kernels:
        w(f"{OVERHEAD_GROUP}: layer {layer * 1e3:.3f} ms, bare kernels {kernels * 1e3:.3f} ms, "
          f"Python overhead {100 * (layer - kernels) / layer:.1f}% of the layer call")
