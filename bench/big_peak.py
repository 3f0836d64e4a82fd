"""The two large issue-21 rows as a share of the peak measured in the SAME rounds, and what a second core costs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/big_peak.py [--threads 1 2] [--budget 20] [--pair]

Rows: LSTM (50, 64, 512, 512) fwd+bwd (the kernels with preallocated buffers, as bench/targets.py)
and the 2-layer bidirectional LSTM (50, 50, 128, 256) fwd+bwd (the layer API, as bench/targets.py).
bench/targets.py divides a row's time by the best peak reading of the run (torch.mm or our gemm on
2048^2, read before and after the rows); on this VM the speed moves by up to a third between
minutes, so a row timed in a slow minute against a peak read in a fast one reads low. Here the
rows and both 2048^2 products run interleaved round by round (timing.time_interleaved), and each
round's row rate is divided by the better product of the same round: the median of those ratios
is the "% of peak (same rounds)"; "% of best peak" is the targets.py rule for comparison.

--pair runs the rows on ONE thread in two processes at the same time (nothing shared but the
machine): if each process runs slower than alone by about what 2 threads lose against 2x the
one-thread rate, the second core's cost is the hardware's (shared L3, memory, the VM's vCPU
placement), not the decomposition (the bi-LSTM's two directions never meet per step).
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np

from fastrnn import _kernels
from fastrnn.benchmarks import runners, timing, workloads

N = 2048


def fns_and_flops():
    """{name: (fn, flops)}: the two rows and the two 2048^2 products."""
    a = runners.kernel_inputs("lstm", 50, 64, 512, 512, np.float32)
    rng = np.random.default_rng(0)
    x, w = (rng.standard_normal((N, N), dtype=np.float32) for _ in range(2))
    out = np.empty((N, N), np.float32)
    out_ = {"lstm (50, 64, 512, 512) fwd+bwd": (runners.kernel_fastrnn("lstm", a, True),
                                                workloads.layer_flops(50, 64, 512, 512, 4, True)),
            "bi-LSTM fwd+bwd (50, 50, 128, 256)": (runners.bilstm_fastrnn(50, 50, 128, 256, True),
                                                   workloads.layer_flops(50, 50, 128, 256, 4, True, layers=2,
                                                                         directions=2)),
            "gemm 2048": (lambda: _kernels.gemm(x, w, out=out), 2 * N ** 3)}
    if timing.torch is not None:
        tx, tw = timing.torch.from_numpy(x), timing.torch.from_numpy(w)
        out_["torch.mm 2048"] = (lambda: timing.torch.mm(tx, tw), 2 * N ** 3)
    return out_


def measure(threads, budget, rows_only=False):
    """{name: median GFLOP/s} plus {name: median % of the same round's peak} at `threads`."""
    restore = timing.apply_threads(threads)
    try:
        work = fns_and_flops()
        if rows_only:
            work = {k: v for k, v in work.items() if "2048" not in k}
        s = timing.time_interleaved({k: fn for k, (fn, _) in work.items()}, budget, 5)
    finally:
        restore()
    rate = {k: [work[k][1] / t / 1e9 for t in v] for k, v in s.items()}
    med = {k: float(np.median(v)) for k, v in rate.items()}
    same = {}
    if not rows_only:
        peaks = [max(rate[k][i] for k in rate if "2048" in k) for i in range(len(s["gemm 2048"]))]
        same = {k: float(np.median([100 * r / p for r, p in zip(v, peaks)])) for k, v in rate.items() if "2048" not in k}
        best = max(max(v) for k, v in rate.items() if "2048" in k)
        same = {k: (same[k], 100 * med[k] / best) for k in same}
    return med, same


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--budget", type=float, default=20.0, help="seconds of interleaved rounds per thread count")
    ap.add_argument("--pair", action="store_true", help="also: the rows on 1 thread in two processes at once")
    ap.add_argument("--rows-json", action="store_true", help=argparse.SUPPRESS)   # --pair's child
    a = ap.parse_args(argv)
    if a.rows_json:
        print(json.dumps(measure(1, a.budget, rows_only=True)[0]))
        return
    print(f"{timing._cpu()[0]}")
    for threads in a.threads:
        med, same = measure(threads, a.budget)
        print(f"\n{threads} thread(s): gemm 2048 {med['gemm 2048']:.1f} GFLOP/s, torch.mm 2048 "
              f"{med.get('torch.mm 2048', float('nan')):.1f} (medians)\n"
              "| row | GFLOP/s (median) | % of peak, same rounds | % of best peak (targets.py rule) |\n|---|---|---|---|")
        for k, (p_same, p_best) in same.items():
            print(f"| {k} | {med[k]:.1f} | {p_same:.0f}% | {p_best:.0f}% |")
    if a.pair:
        cmd = [sys.executable, __file__, "--rows-json", "--budget", str(a.budget)]
        alone = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        t0 = time.perf_counter()
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        both = [json.loads(p.communicate()[0]) for p in procs]
        print(f"\none thread, one process alone vs two processes at once ({time.perf_counter() - t0:.0f} s)\n"
              "| row | alone GFLOP/s | each of two at once | slowdown |\n|---|---|---|---|")
        for k, v in alone.items():
            pair = [b[k] for b in both]
            print(f"| {k} | {v:.1f} | {pair[0]:.1f}, {pair[1]:.1f} | {v / np.mean(pair):.2f}x |")


if __name__ == "__main__":
    main()
