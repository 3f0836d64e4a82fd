"""Measuring: the float32 peak, interleaved timing rounds, peak RSS growth, machine info.

All implementations of a workload are timed in the same process with the same thread count, in
interleaved rounds (each round runs every implementation once, in a rotating order), so a load
change on a shared machine hits them alike.
"""
import gc
import math
import os
import platform
import time

import numpy as np

from .runners import torch

PEAK_N = 2048


def blas_threads():
    """Threads OpenBLAS uses (its environment variables, else one per available core)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _best_seconds(fn, repeats):
    fn()                                    # warm-up: page faults, BLAS buffers, thread start
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_peak(repeats=3, n=PEAK_N):
    """Float32 GFLOP/s of an n x n x n product: best of torch.mm and fastrnn's own gemm.

    Returns {"gflops", "source", "fastrnn_gemm_gflops", "torch_mm_gflops", "n"}.
    """
    from .._kernels import gemm
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    flops = 2 * n ** 3
    out = np.empty((n, n), np.float32)
    ours = flops / _best_seconds(lambda: gemm(a, b, out=out), repeats) / 1e9
    theirs = None
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        theirs = flops / _best_seconds(lambda: torch.mm(ta, tb), repeats) / 1e9
    source = "torch.mm" if theirs is not None and theirs > ours else "fastrnn._kernels.gemm"
    return dict(gflops=max(ours, theirs or 0), source=source, fastrnn_gemm_gflops=ours,
                torch_mm_gflops=theirs, n=n)


def time_interleaved(fns, budget, min_rounds, max_rounds=1000, sample_seconds=0.2):
    """{impl: [seconds per call, one per round]} of the callables `fns` ({impl: fn}).

    Each sample repeats a call enough times to last about `sample_seconds`: microsecond calls are
    not timer noise, and the thread pools of the implementation that ran before (torch's OpenMP
    workers, OpenBLAS's) keep spinning for milliseconds after their last call, which must not be
    charged to the next one's few calls; rounds continue until `budget` seconds are spent and at least
    `min_rounds` rounds are done.
    """
    reps = {}
    for impl, fn in fns.items():
        t0 = time.perf_counter()
        fn()                                 # warm-up, and a first estimate of the call's time
        reps[impl] = max(1, int(sample_seconds / max(time.perf_counter() - t0, 1e-9)))
    samples = {impl: [] for impl in fns}
    order, start, rounds = list(fns), time.perf_counter(), 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget):
        for impl in order:
            fn, n = fns[impl], reps[impl]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[impl].append((time.perf_counter() - t0) / n)
        order = order[1:] + order[:1]        # rotate: nobody always runs right after another
        rounds += 1
    return samples


def _proc_status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def _fixed_mmap_threshold():
    """Make glibc serve every allocation >= 128 KiB from fresh pages (mmap) and return them on free.

    By default glibc raises its mmap threshold after large frees and then reuses memory the
    process already holds, so an allocation would not show as RSS growth. This setting stays for
    the rest of the process (the memory workloads run last).
    """
    import ctypes
    try:
        ctypes.CDLL(None).mallopt(-3, 128 * 1024)       # M_MMAP_THRESHOLD (fixed: no dynamic raise)
    except (OSError, AttributeError):
        pass                                            # not glibc: measure as is


def peak_rss_growth(fn):
    """Bytes by which the process's peak RSS rose above its current RSS while fn() ran, or None
    where Linux's resettable peak (/proc/self/clear_refs, VmHWM) is unavailable."""
    _fixed_mmap_threshold()
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                        # reset VmHWM (peak RSS) to the current RSS
        base = _proc_status_kb("VmRSS")
        fn()
        return max(0, _proc_status_kb("VmHWM") - base) * 1024
    except OSError:
        return None


def _cpu():
    """(model name, flags) from /proc/cpuinfo, else (platform.processor(), set())."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = (s.strip() for s in line.partition(":"))
                if key == "model name" and model is None:
                    model = value
                elif key == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl",
                "avx512cd", "avx512_vnni", "avx512_bf16", "amx_tile")


def machine_info():
    """CPU, flags used, BLAS and its core type, versions and thread counts, for every report."""
    import numpy
    import scipy

    from .. import __version__
    from ..cli import _cpu_level
    model, flags = _cpu()
    blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return dict(
        cpu_model=model, cpu_count=os.cpu_count(), cpu_flags=[f for f in VECTOR_FLAGS if f in flags],
        kernel_level=_cpu_level(), platform=platform.platform(),
        blas=dict(name=blas.get("name"), version=blas.get("version"),
                  openblas_coretype=os.environ.get("OPENBLAS_CORETYPE"),
                  openblas_l2_size=os.environ.get("OPENBLAS_L2_SIZE")),
        versions=dict(fastrnn=__version__, python=platform.python_version(), numpy=numpy.__version__,
                      scipy=scipy.__version__, torch=None if torch is None else torch.__version__),
        threads=dict(blas=blas_threads(), torch=None if torch is None else torch.get_num_threads(),
                     openblas_num_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
                     omp_num_threads=os.environ.get("OMP_NUM_THREADS")))
