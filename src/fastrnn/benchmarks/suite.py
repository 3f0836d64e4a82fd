"""Running a selection of workloads into one report (the JSON document of docs/bench.md)."""
import datetime
import statistics
import time

from . import timing
from .runners import torch
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


def _memory_record(fns):
    return {impl: dict(peak_rss_bytes=timing.peak_rss_growth(fn)) for impl, fn in fns.items()}, 1


def _ratios(kind, results):
    """{other/fastrnn: ratio} of medians (time: > 1 means fastrnn is faster) or of peak RSS."""
    key = "median_s" if kind == "time" else "peak_rss_bytes"
    base = results.get("fastrnn", {}).get(key)
    out = {}
    for impl in ("reference", "torch"):
        other = results.get(impl, {}).get(key)
        if base and other is not None:
            out[f"{impl}/fastrnn"] = other / base
    return out


def run(quick=False, pattern=None, progress=True, command=None):
    """Measure the peak, then every selected workload; returns the report dict."""
    from tqdm import tqdm
    budget, min_rounds, peak_repeats = SETTINGS["quick" if quick else "default"]
    if torch is not None:
        torch.set_num_threads(timing.blas_threads())      # the same thread count for everyone
    workloads = select(quick=quick, pattern=pattern)
    if not workloads:
        raise ValueError(f"--filter: no workload matches {pattern!r}")
    start = time.perf_counter()
    report = dict(schema=SCHEMA, created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                  mode="quick" if quick else "default", filter=pattern,
                  command=command or "fastrnn.benchmarks.suite.run()",
                  machine=timing.machine_info(), peak=timing.measure_peak(peak_repeats), workloads=[])
    for w in tqdm(workloads, desc="fastrnn bench", unit="workload", disable=not progress):
        kind = "memory" if w.group == "memory" else "time"
        fns = {impl: w.builders[impl]() for impl in w.impls}
        if kind == "time":
            results, rounds = _time_record(w, fns, report["peak"], budget, min_rounds)
        else:
            results, rounds = _memory_record(fns)
        report["workloads"].append(dict(name=w.name, group=w.group, kind=kind, params=w.params,
                                        flops=w.flops, rounds=rounds, results=results,
                                        ratios=_ratios(kind, results)))
        del fns
    report["duration_s"] = time.perf_counter() - start
    return report
