"""Measuring: thread settings, the float32 peak, interleaved timing rounds, machine info.

(Peak memory is measured in a fresh process per implementation: memory.py.)

All implementations of a workload are timed in the same process with the same thread count, in
interleaved rounds (each round runs every implementation once, in a rotating order), so a load
change on a shared machine hits them alike.
"""
import math
import os
import platform
import time

import numpy as np

from .runners import torch

PEAK_N = 2048


def blas_threads():
    """Threads OpenBLAS starts with (its environment variables, else one per available core);
    threadpoolctl may change it later (apply_threads), which openblas_threads() sees."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _openblas_pools():
    """threadpoolctl's records of the loaded OpenBLAS libraries, SciPy's first (fastrnn's float64
    path and its engine-off path call SciPy's BLAS); [] without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    pools = [p for p in threadpool_info() if p.get("internal_api") == "openblas"]
    return sorted(pools, key=lambda p: "scipy.libs" not in (p.get("filepath") or ""))


def openblas_threads():
    """(threads, source): OpenBLAS's thread count as the library reports it (threadpoolctl; the
    smallest over the loaded copies) or, without threadpoolctl, as its environment sets it."""
    pools = _openblas_pools()
    if pools:
        return min(p["num_threads"] for p in pools), "threadpoolctl"
    return blas_threads(), "environment"


def apply_threads(n):
    """Give fastrnn's team, torch and OpenBLAS the same `n` threads; returns a function that
    restores the previous settings.

    OpenBLAS fixes its pool size from the environment when it loads, so in a running process only
    threadpoolctl can change it; without threadpoolctl a different count stays and is reported
    (machine_info's threads, the Markdown header).
    """
    from .. import _kernels
    before_fastrnn = _kernels.get_num_threads()
    before_torch = None if torch is None else torch.get_num_threads()
    _kernels.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    limiter = None
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=n, user_api="blas")     # in force until restored
    except ImportError:
        pass

    def restore():
        _kernels.set_num_threads(before_fastrnn)
        if torch is not None:
            torch.set_num_threads(before_torch)
        if limiter is not None:
            limiter.restore_original_limits()
    return restore


def thread_mismatch(threads):
    """A sentence naming the thread counts that differ from `threads["count"]`, or None."""
    off = {k: threads.get(k) for k in ("fastrnn", "blas", "torch")
           if threads.get(k) is not None and threads.get(k) != threads.get("count")}
    if not off:
        return None
    return (f"not every implementation runs {threads['count']} threads: "
            + ", ".join(f"{k} {v}" for k, v in off.items()))


def openblas_core():
    """The OpenBLAS core (kernel family) picked at run time, e.g. 'Haswell' or 'SkylakeX':
    threadpoolctl's `architecture`, else OpenBLAS's own get_corename through ctypes, else 'unknown'.

    OPENBLAS_CORETYPE only overrides the choice; this is what the library actually runs.
    """
    cores = list(dict.fromkeys(p["architecture"] for p in _openblas_pools() if p.get("architecture")))
    if cores:
        return ", ".join(cores)
    return _corename_ctypes() or "unknown"


def _corename_ctypes():
    """get_corename of the first loaded OpenBLAS that exports one (SciPy's wheels prefix the
    symbols with scipy_, the 64-bit-integer build also suffixes 64_), or None."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            paths = list(dict.fromkeys(line.split()[-1] for line in f
                                       if "openblas" in line.lower() and ".so" in line))
    except OSError:
        return None
    for path in sorted(paths, key=lambda p: "scipy.libs" not in p):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sym in ("scipy_openblas_get_corename", "scipy_openblas_get_corename64_",
                    "openblas_get_corename", "openblas_get_corename64_"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


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


def measure_peak_bf16(repeats=3, n=PEAK_N):
    """GFLOP/s of an n x n x n product with bf16 inputs and float32 sums: the best of fastrnn's
    bf16 gemm (B packed once, as the layers' weights are) and torch.mm on bf16 tensors -- the
    limit of the bf16 rows, measured rather than assumed to be twice the float32 peak (torch's
    bf16 mm also has only the CPU's bf16 instructions; on a CPU without them both emulate).

    Returns {"gflops", "source", "fastrnn_gemm_gflops", "torch_mm_gflops", "kernel", "n"}.
    """
    from .._kernels import bf16_info, gemm, head_pack_bf16
    rng = np.random.default_rng(0)
    a, b_t = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    flops = 2 * n ** 3
    out, packed = np.empty((n, n), np.float32), head_pack_bf16(b_t)
    ours = flops / _best_seconds(lambda: gemm(a, b_t, trans_b=True, out=out, precision="bf16",
                                              packed=packed), repeats) / 1e9
    theirs = None
    if torch is not None:
        ta, tb = (torch.from_numpy(m).to(torch.bfloat16) for m in (a, b_t.T))
        theirs = flops / _best_seconds(lambda: torch.mm(ta, tb), repeats) / 1e9
    source = "torch.mm" if theirs is not None and theirs > ours else "fastrnn._kernels.gemm"
    return dict(gflops=max(ours, theirs or 0), source=source, fastrnn_gemm_gflops=ours,
                torch_mm_gflops=theirs, kernel=bf16_info()["kernel"], n=n)


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


def machine_info(count=None):
    """CPU, flags used, fastrnn's engine, BLAS and its core, versions and thread counts (`count`:
    the one count the run asked every implementation to use), for every report."""
    import numpy
    import scipy

    from .. import __version__, _kernels
    from ..cpu_features import cpu_level
    model, flags = _cpu()
    blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
    engine = _kernels.engine_info()
    openblas, source = openblas_threads()
    return dict(
        cpu_model=model, cpu_count=os.cpu_count(), cpu_flags=[f for f in VECTOR_FLAGS if f in flags],
        kernel_level=cpu_level(), platform=platform.platform(),
        engine=dict(path=engine["path"], isa=engine["isa"], threads=engine["threads"],
                    bf16=_kernels.bf16_info()["kernel"], amx=_kernels.amx_info()["mode"]),
        blas=dict(name=blas.get("name"), version=blas.get("version"), openblas_core=openblas_core(),
                  openblas_coretype=os.environ.get("OPENBLAS_CORETYPE"),
                  openblas_l2_size=os.environ.get("OPENBLAS_L2_SIZE")),
        versions=dict(fastrnn=__version__, python=platform.python_version(), numpy=numpy.__version__,
                      scipy=scipy.__version__, torch=None if torch is None else torch.__version__),
        threads=dict(count=engine["threads"] if count is None else count, fastrnn=engine["threads"],
                     blas=openblas, blas_source=source,
                     torch=None if torch is None else torch.get_num_threads(),
                     fastrnn_num_threads=os.environ.get("FASTRNN_NUM_THREADS"),
                     openblas_num_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
                     omp_num_threads=os.environ.get("OMP_NUM_THREADS")))
