"""One large LSTM layer's forward+backward split by phase, engine against the BLAS path.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/big_phases.py [--shape 50 64 512 512]
        [--threads 2] [--budget 2]

The row `lstm fwd+bwd (50, 64, 512, 512)` of bench/targets.py, with each product of the layer
timed alone, interleaved in one process, on the float32 engine and on the BLAS path
(`_kernels.set_engine(False)`, as FASTRNN_KERNELS=blas: SciPy's OpenBLAS under fastrnn's loops):
  - whole forward+backward (the kernels with preallocated buffers, as the bench row);
  - input projection: x W_ih^T, (T*B, I) x (I, 4H);
  - weight gradients: dW_ih = dG^T x and dW_hh = dG^T h, (4H, T*B) x (T*B, I|H): A read transposed;
  - dx = dG W_ih, (T*B, 4H) x (4H, I);
  - recurrent steps: the whole minus those four (per step h W_hh^T forward and dG W_hh backward,
    (B, H) x (H, 4H) and (B, 4H) x (4H, H), the gate maths, the barriers);
  - one step's products alone, T times: (B, H) x (H, 4H) and (B, 4H) x (4H, H) through
    `_kernels.gemm` (a team product each: packs W every call, unlike the time loop).
% of peak is of the float32 peak measured at the same thread count.
"""
import argparse

import numpy as np

from fastrnn import _kernels
from fastrnn.benchmarks import runners, timing, workloads
from targets import _blas  # noqa: I001  (bench/, next to this script)


def builders(T, B, I, H):
    """{phase: (fn, flops)} of one LSTM layer's forward+backward."""
    a = runners.kernel_inputs("lstm", T, B, I, H, np.float32)
    GH, N = 4 * H, T * B
    rng = np.random.default_rng(3)
    m = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    x, h, dG, pre, dx, dWih, dWhh, Wih = m(N, I), m(N, H), m(N, GH), m(N, GH), m(N, I), m(GH, I), m(GH, H), m(GH, I)
    hb, dGb, gb, cb, Whh = m(B, H), m(B, GH), m(B, GH), m(B, H), m(GH, H)
    proj = 2 * N * I * GH

    def wgrads():
        _kernels.gemm(dG, x, trans_a=True, out=dWih, accumulate=True)
        _kernels.gemm(dG, h, trans_a=True, out=dWhh, accumulate=True)

    def steps():
        for _ in range(T):
            _kernels.gemm(hb, Whh, trans_b=True, out=gb)
        for _ in range(T):
            _kernels.gemm(dGb, Whh, out=cb)

    return {"whole forward+backward": (runners.kernel_fastrnn("lstm", a, True), workloads.layer_flops(T, B, I, H, 4, True)),
            "input projection": (lambda: _kernels.gemm(x, Wih, trans_b=True, out=pre), proj),
            "weight gradients": (wgrads, 2 * N * GH * (I + H)),
            "dx": (lambda: _kernels.gemm(dG, Wih, out=dx), proj),
            "step products alone": (steps, 2 * 2 * T * B * H * GH)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs=4, default=[50, 64, 512, 512], metavar=("T", "B", "I", "H"))
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per phase and path")
    a = ap.parse_args(argv)
    T, B, I, H = a.shape
    print(f"LSTM (T, B, I, H) = {tuple(a.shape)} fwd+bwd, float32; {timing._cpu()[0]}")
    for threads in a.threads:
        restore = timing.apply_threads(threads)
        try:
            peak = timing.measure_peak()
            phases = builders(T, B, I, H)
            fns = {}
            for name, (fn, _) in phases.items():
                fns[("engine", name)] = fn
                fns[("blas", name)] = _blas(fn)
            med = {k: float(np.median(v)) for k, v in timing.time_interleaved(fns, a.budget * len(fns), 5).items()}
        finally:
            restore()
        print(f"\n{threads} thread(s), peak {peak['gflops']:.1f} GFLOP/s ({peak['source']})\n"
              "| phase | engine ms | % of peak | BLAS path ms | % of peak | BLAS/engine |\n|---|---|---|---|---|---|")
        rest = {p: med[p, "whole forward+backward"] - sum(med[p, n] for n in ("input projection", "weight gradients", "dx"))
                for p in ("engine", "blas")}
        rest_fl = phases["whole forward+backward"][1] - sum(phases[n][1] for n in ("input projection", "weight gradients", "dx"))
        rows = [(n, med["engine", n], med["blas", n], fl) for n, (_, fl) in phases.items()]
        rows.insert(4, ("recurrent steps (whole minus the three above)", rest["engine"], rest["blas"], rest_fl))
        for name, e, b, fl in rows:
            pe, pb = (100 * fl / s / 1e9 / peak["gflops"] for s in (e, b))
            print(f"| {name} | {e * 1e3:.2f} | {pe:.0f}% | {b * 1e3:.2f} | {pb:.0f}% | {b / e:.2f}x |")


if __name__ == "__main__":
    main()
