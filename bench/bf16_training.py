"""Issue 22 on AVX2 CPUs: compute-bound training in bf16 vs float32 ("no slower"), interleaved in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bf16_training.py [--budget 5] [--threads 2]

Workloads (each built once in float32 and once in bf16, timed in interleaved rounds with
fastrnn.benchmarks.timing so a load change hits both alike):
  - LSTM, GRU and RNN (T, B, I, H) = (100, 32, 128, 256) and (50, 64, 512, 512): one layer's forward
    + backward through the C kernels (the rows "lstm fwd+bwd" of bench/targets.py), and the forward
    alone (`--filter lstm` narrows);
  - LM 2x256: one training iteration (forward, backward, clip 5, Adam; batch 50, 50 steps; the row
    "LM train iteration L=2 H=256").
Prints the medians and the bf16 / float32 speed ratio (the target on AVX2: >= 1.0x here, >= 1.2x
for batch-1 steps and sampling, which bench/bf16_steps.py times). `fastrnn info` names the bf16
kernel (FASTRNN_BF16=emulated|avx2 forces one).
"""
import argparse

import numpy as np

from fastrnn import _kernels
from fastrnn.benchmarks import runners, timing

SHAPES = [(100, 32, 128, 256), (50, 64, 512, 512)]


def _built(make, precision):
    """make() with runners.PRECISION set to `precision` while the workload is built."""
    before = runners.PRECISION
    runners.PRECISION = precision
    try:
        return make()
    finally:
        runners.PRECISION = before


def workloads():
    """{name: builder()} of the workloads (a builder reads runners.PRECISION)."""
    work = {}
    for cell in ("lstm", "gru", "rnn"):
        for T, B, I, H in SHAPES:
            def layer(train, shape=(T, B, I, H), cell=cell):
                return lambda: runners.kernel_fastrnn(cell, runners.kernel_inputs(cell, *shape, np.float32), train)
            work[f"{cell} fwd+bwd {(T, B, I, H)}"] = layer(True)
            work[f"{cell} forward {(T, B, I, H)}"] = layer(False)
    work["LM train iteration 2x256 (50x50)"] = lambda: runners.lm_train(2, 256, 50, 50)["fastrnn"]()
    return work


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per workload (default 5)")
    ap.add_argument("--threads", type=int, default=None, help="threads (default: fastrnn's)")
    ap.add_argument("--filter", default="", help="only workloads whose name contains this")
    args = ap.parse_args(argv)
    if args.threads:
        _kernels.set_num_threads(args.threads)
    print(f"bf16 kernel: {_kernels.bf16_info()['kernel']}; "
          f"threads {_kernels.get_num_threads()}")
    print("| workload | float32 ms | bf16 ms | bf16 speed / float32 |")
    print("|---|---|---|---|")
    for name, make in workloads().items():
        if args.filter not in name:
            continue
        fns = {p: _built(make, p) for p in ("float32", "bf16")}
        samples = timing.time_interleaved(fns, args.budget, 3)
        f32, b16 = (float(np.median(samples[p])) * 1e3 for p in ("float32", "bf16"))
        print(f"| {name} | {f32:.2f} | {b16:.2f} | {f32 / b16:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
