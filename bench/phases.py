"""Where the time of one float32 layer goes, phase by phase, against the float32 peak.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/phases.py [--cell lstm]
        [--shape 100 32 128 256] [--threads 2] [--budget 2]

Issue 10 asks, for every missed target, the % of peak of each phase. The phases are measured in
one process, interleaved (`fastrnn.benchmarks.timing`):
  - input projection: the product x (T*B, I) @ W_ih^T on the engine, alone (`_kernels.gemm`,
    the same packed micro-kernels and team the layer uses);
  - weight gradients: dW_ih = dG^T x, dW_hh = dG^T h_prev and dx = dG @ W_ih, alone;
  - recurrent steps: the layer's forward (or backward) minus the products above -- the per-step
    recurrent product, the gate maths (elementwise) and the barriers, which run interleaved
    inside the time loop and cannot be timed apart without changing them;
  - the peak: the best of torch.mm and fastrnn's own GEMM on 2048^2 in the same run.
GFLOP/s count 2*m*n*k per product (the recurrent phase: its products only).
"""
import argparse

import numpy as np

import fastrnn
from fastrnn import _kernels
from fastrnn.benchmarks import timing

G = {"rnn": 1, "gru": 3, "lstm": 4}
CLASSES = {"rnn": fastrnn.RNN, "gru": fastrnn.GRU, "lstm": fastrnn.LSTM}


def builders(cell, T, B, I, H):
    """{phase: fn} on float32 arrays of the layer's sizes."""
    rng = np.random.default_rng(0)
    GH, rows = G[cell] * H, T * B

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    x, W_ih, dG, h = arr(rows, I), arr(GH, I), arr(rows, GH), arr(rows, H)
    layer = CLASSES[cell](I, H, dtype="float32", seed=0)
    xs, dy = x.reshape(T, B, I), arr(T, B, H)
    proj, dW_ih, dW_hh, dx = (np.empty(s, np.float32) for s in ((rows, GH), (GH, I), (GH, H), (rows, I)))

    def fwd_bwd():
        layer.forward(xs)
        layer.backward(dy)
    return {
        "forward": lambda: layer.forward(xs),
        "forward+backward": fwd_bwd,
        "input projection": lambda: _kernels.gemm(x, W_ih, trans_b=True, out=proj),
        "weight gradients": lambda: (_kernels.gemm(dG, x, trans_a=True, out=dW_ih),
                                     _kernels.gemm(dG, h, trans_a=True, out=dW_hh),
                                     _kernels.gemm(dG, W_ih, out=dx)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cell", choices=sorted(G), default="lstm")
    ap.add_argument("--shape", type=int, nargs=4, default=[100, 32, 128, 256], metavar=("T", "B", "I", "H"))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per phase")
    a = ap.parse_args(argv)
    T, B, I, H = a.shape
    threads = a.threads or _kernels.get_num_threads()
    _kernels.set_num_threads(threads)
    if timing.torch is not None:
        timing.torch.set_num_threads(threads)
    peak = timing.measure_peak()
    fns = builders(a.cell, T, B, I, H)
    med = {k: float(np.median(v)) for k, v in timing.time_interleaved(fns, a.budget * len(fns), 5).items()}
    GH, rows = G[a.cell] * H, T * B
    flops = {"input projection": 2 * rows * I * GH, "recurrent (fwd)": 2 * rows * H * GH,
             "weight gradients": 2 * rows * GH * (2 * I + H), "recurrent (bwd)": 2 * rows * GH * H}
    secs = {"input projection": med["input projection"],
            "recurrent (fwd)": med["forward"] - med["input projection"],
            "weight gradients": med["weight gradients"],
            "recurrent (bwd)": med["forward+backward"] - med["forward"] - med["weight gradients"]}
    print(f"{a.cell.upper()} (T, B, I, H) = {tuple(a.shape)}, {threads} threads, float32; "
          f"peak {peak['gflops']:.1f} GFLOP/s ({peak['source']}); {timing._cpu()[0]}, engine "
          f"{_kernels.engine_info()}")
    print("| phase | ms | GFLOP/s | % of peak |\n|---|---|---|---|")
    for k, s in secs.items():
        gf = flops[k] / s / 1e9 if s > 0 else float("nan")
        print(f"| {k} | {s * 1e3:.2f} | {gf:.1f} | {100 * gf / peak['gflops']:.0f}% |")
    for k in ("forward", "forward+backward"):
        total = flops["input projection"] + flops["recurrent (fwd)"]
        if k == "forward+backward":
            total += flops["weight gradients"] + flops["recurrent (bwd)"]
        gf = total / med[k] / 1e9
        print(f"| whole {k} | {med[k] * 1e3:.2f} | {gf:.1f} | {100 * gf / peak['gflops']:.0f}% |")


if __name__ == "__main__":
    main()
