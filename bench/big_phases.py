"""One large LSTM layer's forward+backward split by phase, engine against the BLAS path.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/big_phases.py [--shape 50 64 512 512]
        [--threads 2] [--budget 2] [--cpu-time]

The row `lstm fwd+bwd (50, 64, 512, 512)` of bench/targets.py, with each product of the layer
timed alone, interleaved in one process, on the float32 engine and on the BLAS path
(`_kernels.set_engine(False)`, as FASTRNN_KERNELS=blas: SciPy's OpenBLAS under fastrnn's loops):
  - whole forward+backward (the kernels with preallocated buffers, as the bench row);
  - input projection: x W_ih^T, (T*B, I) x (I, 4H);
  - weight gradients: dW_ih = dG^T x and dW_hh = dG^T h, (4H, T*B) x (T*B, I|H): A read transposed;
  - dx = dG W_ih, (T*B, 4H) x (4H, I);
  - whole forward (training, with the tape): split off the recurrent steps of the forward
    (whole forward minus the input projection) from those of the backward (the rest);
  - recurrent steps: the whole minus those four (per step h W_hh^T forward and dG W_hh backward,
    (B, H) x (H, 4H) and (B, 4H) x (4H, H), the gate maths, the barriers);
  - one step's products alone, T times: (B, H) x (H, 4H) and (B, 4H) x (4H, H) through
    `_kernels.gemm` (a team product each: packs W every call, unlike the time loop).
% of peak is of the float32 peak measured at the same thread count.
--cpu-time (one thread only): time by the calling thread's CPU time (time.thread_time) instead of
the wall clock, peak included: on a loaded machine that drops the time other processes take the
core, so the phases' shares stay comparable (cache sharing with them still costs).
"""
import argparse
import time

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

    kcell, tape, y = runners.CELLS["lstm"][0], None, np.empty((T, B, H), np.float32)
    tape = np.empty(_kernels.tape_size(kcell, T, B, I, H), np.float32)
    weights = (a["W_ih"], a["W_hh"], a["b_ih"], a["b_hh"], a["h0"], a["c0"])

    def forward():
        _kernels.forward(kcell, a["x"], *weights, tape=tape, y=y, precision=runners._precision(np.float32))

    return {"whole forward+backward": (runners.kernel_fastrnn("lstm", a, True), workloads.layer_flops(T, B, I, H, 4, True)),
            "whole forward (training)": (forward, workloads.layer_flops(T, B, I, H, 4, False)),
            "input projection": (lambda: _kernels.gemm(x, Wih, trans_b=True, out=pre), proj),
            "weight gradients": (wgrads, 2 * N * GH * (I + H)),
            "dx": (lambda: _kernels.gemm(dG, Wih, out=dx), proj),
            "step products alone": (steps, 2 * 2 * T * B * H * GH)}


class _CpuClock:
    """The `time` module with perf_counter replaced by the calling thread's CPU time."""
    perf_counter = staticmethod(time.thread_time)

    def __getattr__(self, name):
        return getattr(time, name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs=4, default=[50, 64, 512, 512], metavar=("T", "B", "I", "H"))
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per phase and path")
    ap.add_argument("--cpu-time", action="store_true", help="one thread: time by thread CPU time")
    a = ap.parse_args(argv)
    if a.cpu_time:
        if a.threads != [1]:
            ap.error("--cpu-time measures the calling thread only: use it with --threads 1")
        timing.time = _CpuClock()
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
        fwd = {p: med[p, "whole forward (training)"] - med[p, "input projection"] for p in ("engine", "blas")}
        fwd_fl = phases["whole forward (training)"][1] - phases["input projection"][1]
        rows = [(n, med["engine", n], med["blas", n], fl) for n, (_, fl) in phases.items()]
        rows[5:5] = [("recurrent steps (whole minus the three above)", rest["engine"], rest["blas"], rest_fl),
                     ("- of which forward (whole forward minus input projection)", fwd["engine"], fwd["blas"], fwd_fl),
                     ("- of which backward (the rest)", rest["engine"] - fwd["engine"], rest["blas"] - fwd["blas"],
                      rest_fl - fwd_fl)]
        for name, e, b, fl in rows:
            pe, pb = (100 * fl / s / 1e9 / peak["gflops"] for s in (e, b))
            print(f"| {name} | {e * 1e3:.2f} | {pe:.0f}% | {b * 1e3:.2f} | {pb:.0f}% | {b / e:.2f}x |")


if __name__ == "__main__":
    main()
