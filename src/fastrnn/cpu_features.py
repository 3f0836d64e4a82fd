"""Which of the kernels' target_clones paths this CPU runs (read from /proc/cpuinfo): for
`fastrnn info` and the benchmarks' machine description."""


def cpu_level():
    """Which of the kernels' target_clones (x86-64-v4 / v3 / default) this CPU runs."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        return "portable C loops (no /proc/cpuinfo to inspect)"
    if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags:
        return "x86-64-v4 (AVX-512)"
    if {"avx2", "fma", "bmi2"} <= flags:
        return "x86-64-v3 (AVX2 + FMA)"
    return "x86-64 baseline (SSE2)"

