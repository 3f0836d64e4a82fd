"""Issue 22: bf16 against float32 (ours) and against torch, interleaved in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bf16_training.py [--budget 5] [--threads 2]

Workloads (each built once in float32 and once in bf16, and in torch, timed in interleaved rounds
with fastrnn.benchmarks.timing so a load change hits all alike):
  - LSTM, GRU and RNN (T, B, I, H) = (100, 32, 128, 256) and (50, 64, 512, 512): one layer's forward
    + backward through the C kernels (the rows "lstm fwd+bwd" of bench/targets.py), and the forward
    alone (`--filter lstm` narrows);
  - LM 2x256 and 3x512: one training iteration (forward, backward, clip 5, Adam; batch 50, 50 steps;
    the rows "LM train iteration" of bench/targets.py).
Columns: our float32 and bf16, torch float32 and, for the LSTM and the LM, torch's bf16 (its oneDNN
LSTM under `torch.autocast("cpu", torch.bfloat16)`; torch has no bf16 GRU or RNN on the CPU), then
the ratios issue 22 sets targets on: bf16 / our float32 (AVX512-BF16: >= 1.5x training, >= 1.8x
inference; AVX2: >= 1.0x), ours in bf16 against torch's bf16 LSTM (>= 1.3x) and against torch
float32 for GRU and RNN (>= 2x). The float32 peak (timing.measure_peak) and the bf16 peak
(timing.measure_peak_bf16: the best of our bf16 gemm and torch.mm on bf16 tensors at 2048^3) are
measured at the same thread count, and ours and torch's bf16 GFLOP/s are given as a % of the bf16
peak: what bounds a row that torch's bf16 LSTM already runs near the limit. The LM rows also run the
fused step (fastrnn.train.fused, the path the Trainer takes) in both precisions. `fastrnn info` names the bf16 kernel (FASTRNN_BF16=emulated|avx2|avx512bf16 forces one).
"""
import argparse

import numpy as np

from fastrnn import _kernels
from fastrnn.benchmarks import runners, timing
from fastrnn.benchmarks.workloads import _lm_flops

SHAPES = [(100, 32, 128, 256), (50, 64, 512, 512)]
LMS = [(2, 256), (3, 512)]


def _built(make, precision):
    """make() with runners.PRECISION set to `precision` while the workload is built."""
    before = runners.PRECISION
    runners.PRECISION = precision
    try:
        return make()
    finally:
        runners.PRECISION = before


def _autocast(make):
    """make()'s callable run under torch.autocast("cpu", torch.bfloat16)."""
    def build():
        fn = make()

        def run():
            with runners.torch.autocast("cpu", dtype=runners.torch.bfloat16):
                fn()
        return run
    return build


def _flops(cell, T, B, I, H, train):
    """Multiply-add FLOPs of one layer call: 2 T B (I + H) G H forward, three times that with the
    backward (dx, dh and the two weight gradients)."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    return 2.0 * T * B * (I + H) * G * H * (3 if train else 1)


def workloads():
    """{name: ({impl: builder()}, flops or None)} (a fastrnn builder reads runners.PRECISION)."""
    work = {}
    for cell in ("lstm", "gru", "rnn"):
        for T, B, I, H in SHAPES:
            for train, kind in ((True, "fwd+bwd"), (False, "forward")):
                def ours(shape=(T, B, I, H), cell=cell, train=train):
                    return runners.kernel_fastrnn(cell, runners.kernel_inputs(cell, *shape, np.float32), train)

                def theirs(shape=(T, B, I, H), cell=cell, train=train):
                    return runners.kernel_torch(cell, runners.kernel_inputs(cell, *shape, np.float32), train)
                impls = {"float32": ours, "bf16": ours}
                if runners.torch is not None:
                    impls["torch"] = theirs
                    if cell == "lstm":
                        impls["torch bf16"] = _autocast(theirs)
                work[f"{cell} {kind} {(T, B, I, H)}"] = (impls, _flops(cell, T, B, I, H, train))
    for layers, hidden in LMS:
        made = lambda layers=layers, hidden=hidden: runners.lm_train(layers, hidden, 50, 50)
        impls = {"float32": lambda made=made: made()["fastrnn"](), "bf16": lambda made=made: made()["fastrnn"]()}
        if runners.torch is not None:
            impls["torch"] = lambda made=made: made()["torch"]()
            impls["torch bf16"] = _autocast(impls["torch"])
        flops = _lm_flops(layers, hidden, 50, 50, True)
        work[f"LM train iteration {layers}x{hidden} (50x50)"] = (impls, flops)
        # the Trainer's path: the same iteration as one FusedStep call (torch's columns as above)
        fused = lambda layers=layers, hidden=hidden: runners.lm_train_fused(layers, hidden, 50, 50)["fastrnn"]()
        work[f"LM train iteration fused {layers}x{hidden} (50x50)"] = (dict(impls, float32=fused, bf16=fused), flops)
    return work


def _ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per workload (default 5)")
    ap.add_argument("--threads", type=int, default=None, help="threads (default: fastrnn's)")
    ap.add_argument("--filter", default="", help="only workloads whose name contains this")
    ap.add_argument("--no-torch", action="store_true", help="leave torch out")
    args = ap.parse_args(argv)
    if args.no_torch:
        runners.torch = None
    restore = timing.apply_threads(args.threads) if args.threads else None
    peak, peak16 = timing.measure_peak(), timing.measure_peak_bf16()
    torch_mm = peak16["torch_mm_gflops"]
    print(f"bf16 kernel: {_kernels.bf16_info()['kernel']}; threads {_kernels.get_num_threads()}; "
          f"float32 peak {peak['gflops']:.1f} GFLOP/s ({peak['source']}); bf16 peak {peak16['gflops']:.1f} "
          f"GFLOP/s (ours {peak16['fastrnn_gemm_gflops']:.1f}, torch.mm bf16 "
          f"{'-' if torch_mm is None else f'{torch_mm:.1f}'})")
    print("| workload | float32 ms | bf16 ms | torch ms | torch bf16 ms | bf16 / float32 | bf16 vs torch bf16 "
          "| bf16 vs torch | bf16 % of bf16 peak | torch bf16 % of bf16 peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (impls, flops) in workloads().items():
        if args.filter not in name:
            continue
        fns = {impl: _built(make, "bf16" if impl == "bf16" else "float32") for impl, make in impls.items()}
        samples = timing.time_interleaved(fns, args.budget, 3)
        ms = {impl: float(np.median(samples[impl])) * 1e3 for impl in fns}
        f32, b16, t32, t16 = (ms.get(k) for k in ("float32", "bf16", "torch", "torch bf16"))
        pct = [f"{100 * flops / (v / 1e3) / 1e9 / peak16['gflops']:.0f}%" if flops and v else "-" for v in (b16, t16)]
        cells = [f"{v:.2f}" if v else "-" for v in (f32, b16, t32, t16)]
        print(f"| {name} | {' | '.join(cells)} | {_ratio(f32, b16)} | {_ratio(t16, b16)} | {_ratio(t32, b16)} | "
              f"{' | '.join(pct)} |", flush=True)
    if restore:
        restore()


if __name__ == "__main__":
    main()
