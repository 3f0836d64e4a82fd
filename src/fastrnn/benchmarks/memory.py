"""Peak memory of one call, measured in a fresh Python process per implementation.

Measured inside the benchmark's own process, the number depended on what ran before: glibc hands
freed heap back out, so a forward+backward could allocate its whole tape without the RSS growing
(0.0 MB against a 69.5 MB tape after the timed workloads). A child process that only imports,
builds one implementation and runs it starts from the same state every time, whatever the parent
did. The child gets the parent's environment with the run's thread count in every variable that
sets one, and applies it as the parent does (timing.apply_threads).
"""
import gc
import json
import os
import subprocess
import sys

CHILD = "from fastrnn.benchmarks.memory import _child; _child()"


def _proc_status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def _fixed_mmap_threshold():
    """Make glibc serve every allocation >= 128 KiB from fresh pages (mmap) and unmap it on free.

    By default glibc raises its mmap threshold after large frees and then serves later large
    allocations from heap memory the process already holds, which does not show as RSS growth.
    """
    import ctypes
    try:
        ctypes.CDLL(None).mallopt(-3, 128 * 1024)       # M_MMAP_THRESHOLD (fixed: no dynamic raise)
    except (OSError, AttributeError):
        pass                                            # not glibc: measure as is


def peak_rss_growth(fn):
    """Bytes by which this process's peak RSS (VmHWM) rose above its RSS just before fn() ran.

    The peak is reset to the current RSS first (/proc/self/clear_refs). Where that reset is not
    allowed, the growth is still known if fn() set a new peak (VmHWM rose); otherwise None, as
    where /proc is missing (not Linux).
    """
    gc.collect()
    try:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")                            # reset VmHWM (peak RSS) to the current RSS
            reset = True
        except OSError:
            reset = False
        hwm, base = _proc_status_kb("VmHWM"), _proc_status_kb("VmRSS")
        fn()
        after = _proc_status_kb("VmHWM")
    except OSError:
        return None
    if not reset and after <= hwm:
        return None                                     # fn's peak stayed below an earlier one
    return max(0, after - base) * 1024


def child_env(threads):
    """The parent's environment with `threads` in every thread-count variable (BLAS reads them
    when it loads, so they must be set before the child starts)."""
    return dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                MKL_NUM_THREADS=str(threads), FASTRNN_NUM_THREADS=str(threads))


def measure(name, impl, threads, timeout=600):
    """Peak RSS growth (bytes, or None without Linux's /proc) of one call of workload `name`'s
    implementation `impl`, in a fresh process running `threads` threads.

    The child imports, builds the implementation (inputs, weights), runs one warm-up call so
    one-time library set-up (thread pools, BLAS buffers, fastrnn's workspace) is not charged to
    the workload, and then measures one call from its RSS just before it.
    """
    r = subprocess.run([sys.executable, "-c", CHILD, name, impl, str(threads)], env=child_env(threads),
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        raise RuntimeError(f"memory measurement of {name!r} ({impl}) failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])["peak_rss_bytes"]


def _child():
    """Entry point of the child process: argv = name, impl, threads; prints {"peak_rss_bytes": ...}."""
    name, impl, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    _fixed_mmap_threshold()                             # before anything allocates
    from . import timing
    from .workloads import all_workloads
    timing.apply_threads(threads)
    workload = next((w for w in all_workloads() if w.name == name), None)
    if workload is None or impl not in workload.impls:
        sys.exit(f"no workload {name!r} with implementation {impl!r}")
    fn = workload.builders[impl]()
    fn()                                                # warm-up (see measure)
    print(json.dumps({"peak_rss_bytes": peak_rss_growth(fn)}))
