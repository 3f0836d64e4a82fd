"""Running a selection of workloads into one report (the JSON document of docs/bench.md)."""
import datetime
import statistics
import sys
import time

from ..precision import check_precision
from . import memory, timing
from .workloads import select

SCHEMA = "fastrnn-bench/1"
# (seconds of timing per workload, minimum rounds, repeats of the peak measurement)
SETTINGS = {"quick": (0.05, 3, 2), "default": (1.0, 3, 5)}


def _time_record(w, fns, peak, budget, min_rounds):
    samples = timing.time_interleaved(fns, budget, min_rounds)
    results = {}
    for impl, s in samples.items():
        med = statistics.median(s)
        gflops = w.flops / med / 1e9 if w.flops else None
        results[impl] = dict(median_s=med, min_s=min(s), max_s=max(s), gflops=gflops,
                             pct_peak=None if gflops is None else 100 * gflops / peak["gflops"])
    return results, len(next(iter(samples.values())))


def _memory_record(w, threads):
    # each implementation in its own fresh process: in this one, earlier workloads' freed heap
    # would be reused and hide the allocation (memory.py)
    return {impl: dict(peak_rss_bytes=memory.measure(w.name, impl, threads)) for impl in w.impls}, 1


def _ratios(kind, results):
    """{other/fastrnn: ratio} of medians (time: > 1 means fastrnn is faster) or of peak RSS growth.

    Present whenever both ran and measured something; a memory growth of 0 for fastrnn gives no
    ratio (it would be infinite, which JSON cannot hold), nor does a null (no /proc).
    """
    key = "median_s" if kind == "time" else "peak_rss_bytes"
    base = results.get("fastrnn", {}).get(key)
    out = {}
    for impl in ("reference", "torch"):
        other = results.get(impl, {}).get(key)
        if base is not None and base > 0 and other is not None:
            out[f"{impl}/fastrnn"] = other / base
    return out


def run(quick=False, pattern=None, progress=True, command=None, threads=None, precision="float32"):
    """Measure the peak, then every selected workload; returns the report dict.

    `threads` (default: fastrnn's team size, i.e. FASTRNN_NUM_THREADS or the CPUs this process may
    use) is given to fastrnn, torch and OpenBLAS alike for the run, then the old settings return.
    `precision` ("bf16": bf16 mixed precision) is that of fastrnn's float32 recurrent layers.
    """
    from tqdm import tqdm

    from .. import _kernels
    budget, min_rounds, peak_repeats = SETTINGS["quick" if quick else "default"]
    workloads = select(quick=quick, pattern=pattern)
    if not workloads:
        raise ValueError(f"--filter: no workload matches {pattern!r}")
    count = threads or _kernels.get_num_threads()
    restore = timing.apply_threads(count)
    from . import runners
    runners.PRECISION = check_precision(precision)
    try:
        start = time.perf_counter()
        report = dict(schema=SCHEMA, created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                      mode="quick" if quick else "default", filter=pattern, precision=precision,
                      command=command or "fastrnn.benchmarks.suite.run()",
                      machine=timing.machine_info(count), peak=timing.measure_peak(peak_repeats),
                      workloads=[])
        mismatch = timing.thread_mismatch(report["machine"]["threads"])
        if mismatch:
            print(f"fastrnn bench: warning: {mismatch} (install threadpoolctl, or set "
                  f"OPENBLAS_NUM_THREADS={count} before starting)", file=sys.stderr)
        for w in tqdm(workloads, desc="fastrnn bench", unit="workload", disable=not progress):
            if w.group == "memory":
                kind, (results, rounds) = "memory", _memory_record(w, count)
            else:
                fns = {impl: w.builders[impl]() for impl in w.impls}
                kind, (results, rounds) = "time", _time_record(w, fns, report["peak"], budget, min_rounds)
                del fns
            report["workloads"].append(dict(name=w.name, group=w.group, kind=kind, params=w.params,
                                            flops=w.flops, rounds=rounds, results=results,
                                            ratios=_ratios(kind, results)))
        report["duration_s"] = time.perf_counter() - start
    finally:
        restore()
        runners.PRECISION = "float32"
    return report
