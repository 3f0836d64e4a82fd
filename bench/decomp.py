"""Each decomposition of the time loop (csrc/decomp.h) on the char-rnn LM stack and a layer row,
timed in one process, with the % of peak per phase and the team's barrier count per call.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/decomp.py [--threads 1 2]
        [--budget 2] [--decomp units batch pipeline one auto auto+batch] [--count]

Rows: the LM stack LSTM 2x128 (T 50, B 50, input 65: a one-hot vocabulary), LSTM
(T, B, I, H) = (100, 32, 128, 256) and the 2-layer bidirectional LSTM (50, 50, 128, 256). Every
decomposition runs through FASTRNN_DECOMP (read by the C code at every call), interleaved by
`fastrnn.benchmarks.timing.time_interleaved`; "auto+batch" is auto with FASTRNN_BATCH_AUTO=1 (the
cost model may pick the batch split: csrc/decomp.h FRNN_BATCH_AUTO). To decide whether to flip
FRNN_BATCH_AUTO, on a quiet machine:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/decomp.py --threads 2 \
        --decomp units batch pipeline auto auto+batch

and compare each row's "whole forward+backward" of batch against units / pipeline. The
bidirectional row's direction split ("directions": direction d on half d of the team, a join per
layer; units there runs the directions in turn, each split by units) against the rest:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/decomp.py --threads 2 \
        --decomp units directions batch auto
Phases, as bench/phases.py: the input projection and the weight-gradient products timed alone
on the engine (the same for every decomposition), the recurrent steps the rest of the forward
(backward) -- the per-step products, the gate maths, and the barriers or chunk bookkeeping.
--inference times inference forwards (fastrnn.no_grad) split by units against auto, which runs
them as the batch split where csrc/decomp.h frnn_infer_chunks picks it (float32 and bf16):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/decomp.py --threads 2 --inference
--count prints only the barriers (frnn_sync) each call opens, no timing: a measure of the
decompositions that does not depend on how loaded the machine is.
"""
import argparse
import os
import resource

import numpy as np

import fastrnn
from fastrnn import _kernels
from fastrnn.benchmarks import timing

ROWS = [("LM LSTM 2x128", 50, 50, 65, 128, 2, 1), ("LSTM (100, 32, 128, 256)", 100, 32, 128, 256, 1, 1),
        ("bi-LSTM 2x (50, 50, 128, 256)", 50, 50, 128, 256, 2, 2)]
DECOMPS = ["units", "batch", "pipeline", "one", "directions", "auto", "auto+batch"]


def _set(name):
    """FASTRNN_DECOMP (and FASTRNN_BATCH_AUTO for auto+batch) for decomposition `name`."""
    os.environ["FASTRNN_DECOMP"] = "auto" if name == "auto+batch" else name
    os.environ["FASTRNN_BATCH_AUTO"] = "1" if name == "auto+batch" else "0"


def _with(name, fn):
    def run():
        _set(name)
        fn()
    return run


def _calls(T, B, I, H, L, D=1):
    """(forward, forward+backward, input projections, weight-gradient products) of the row."""
    rng = np.random.default_rng(0)
    layer = fastrnn.LSTM(I, H, num_layers=L, bidirectional=D == 2, dtype="float32", seed=0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dy = rng.standard_normal((T, B, D * H)).astype(np.float32)
    GH, rows = 4 * H, T * B
    ins = [rng.standard_normal((rows, I if k == 0 else D * H)).astype(np.float32) for k in range(L) for _ in range(D)]
    W = [rng.standard_normal((GH, a.shape[1])).astype(np.float32) for a in ins]
    dG, h = rng.standard_normal((rows, GH)).astype(np.float32), rng.standard_normal((rows, H)).astype(np.float32)

    def train():
        layer.forward(x)
        layer.backward(dy)

    def proj():
        for a, w in zip(ins, W):
            _kernels.gemm(a, w, trans_b=True)

    def wgrads():
        for a, w in zip(ins, W):
            _kernels.gemm(dG, a, trans_a=True), _kernels.gemm(dG, h, trans_a=True), _kernels.gemm(dG, w)
    flops = {"input projection": sum(2 * rows * a.shape[1] * GH for a in ins),
             "recurrent (fwd)": 2 * L * D * rows * H * GH,
             "weight gradients": sum(2 * rows * GH * (2 * a.shape[1] + H) for a in ins),
             "recurrent (bwd)": 2 * L * D * rows * GH * H}
    return (lambda: layer.forward(x)), train, proj, wgrads, flops


def count(threads, decomps):
    print(f"barriers (and minor page faults) per call at {threads} threads (FASTRNN_DECOMP; auto: the cost model)\n")
    print("| row | decomposition | runs as | forward | forward+backward | page faults, forward+backward |")
    print("|---|---|---|---|---|---|")
    for name, T, B, I, H, L, D in ROWS:
        fwd, train, _, _, _ = _calls(T, B, I, H, L, D)
        for d in decomps:
            _set(d)
            train()                              # warm: the kept areas, the packed weights
            got = []
            for fn in (fwd, train):
                before = _kernels.sync_count()
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                fn()
                got.append(_kernels.sync_count() - before)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            runs = _kernels.decomposition("lstm", T, B, I, H, layers=L, directions=D, threads=threads)
            print(f"| {name} | {d} | {runs} | {got[0]} | {got[1]} | {faults} |")
    os.environ.pop("FASTRNN_DECOMP", None)
    os.environ.pop("FASTRNN_BATCH_AUTO", None)


INFER_ROWS = [("lstm", 100, 32, 128, 256, 1), ("gru", 100, 32, 128, 256, 1), ("rnn", 100, 32, 128, 256, 1),
              ("lstm", 100, 8, 128, 256, 1), ("lstm", 50, 50, 65, 128, 2), ("lstm", 50, 64, 256, 384, 1),
              ("lstm", 50, 64, 512, 512, 1), ("gru", 50, 64, 512, 512, 1), ("rnn", 50, 64, 512, 512, 1)]
LAYERS = {"lstm": fastrnn.LSTM, "gru": fastrnn.GRU, "rnn": fastrnn.RNN}


def inference(threads, budget):
    """Inference forwards (no tape: fastrnn.no_grad) split by units against auto, which runs them
    as the batch split where csrc/decomp.h frnn_infer_chunks says so: the same bits, no barrier
    per step. float32 and bf16, interleaved; ratio = units ms / auto ms."""
    peak = timing.measure_peak()["gflops"]
    print(f"\ninference, {threads} threads; peak {peak:.1f} GFLOP/s; {timing._cpu()[0]}")
    print("| cell (T, B, I, H) x layers | precision | auto runs as | units ms | auto ms | units/auto | auto % of peak |")
    print("|---|---|---|---|---|---|---|")
    for cell, T, B, I, H, L in INFER_ROWS:
        x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
        G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
        flops = 2 * T * B * G * H * (I + H + (L - 1) * 2 * H)
        for precision in ("float32", "bf16"):
            layer = LAYERS[cell](I, H, num_layers=L, seed=0, precision=precision)

            def fwd():
                with fastrnn.no_grad():
                    layer.forward(x)
            fns = {d: _with(d, fwd) for d in ("units", "auto")}
            med = {k: float(np.median(v)) for k, v in timing.time_interleaved(fns, budget * 2, 5).items()}
            os.environ.pop("FASTRNN_DECOMP", None)
            os.environ.pop("FASTRNN_BATCH_AUTO", None)
            runs = _kernels.decomposition("rnn_tanh" if cell == "rnn" else cell, T, B, I, H, layers=L,
                                          threads=threads, train=False,
                                          precision=precision)
            scale = 2 if precision == "bf16" else 1           # bf16: % of twice the float32 peak
            print(f"| {cell} ({T}, {B}, {I}, {H}) x {L} | {precision} | {runs} | {med['units'] * 1e3:.2f} | "
                  f"{med['auto'] * 1e3:.2f} | {med['units'] / med['auto']:.2f}x | "
                  f"{100 * flops / med['auto'] / 1e9 / (scale * peak):.0f}% |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per row, call and decomposition")
    ap.add_argument("--decomp", nargs="+", choices=DECOMPS, default=DECOMPS)
    ap.add_argument("--count", action="store_true", help="barrier counts only, no timing")
    ap.add_argument("--inference", action="store_true",
                    help="inference forwards only: units against auto (the inference batch split)")
    a = ap.parse_args(argv)
    for threads in a.threads:
        fastrnn.set_num_threads(threads)
        if a.inference:
            if timing.torch is not None:
                timing.torch.set_num_threads(threads)
            inference(threads, a.budget)
            continue
        if a.count:
            count(threads, a.decomp)
            continue
        if timing.torch is not None:
            timing.torch.set_num_threads(threads)
        peak = timing.measure_peak()["gflops"]
        print(f"\n{threads} threads; peak {peak:.1f} GFLOP/s; {timing._cpu()[0]}; engine {_kernels.engine_info()}")
        print("| row | decomposition | phase | ms | % of peak |\n|---|---|---|---|---|")
        for name, T, B, I, H, L, D in ROWS:
            fwd, train, proj, wgrads, flops = _calls(T, B, I, H, L, D)
            fns = {"proj": proj, "wgrads": wgrads}
            for d in a.decomp:
                fns[f"{d} fwd"], fns[f"{d} train"] = _with(d, fwd), _with(d, train)
            med = {k: float(np.median(v)) for k, v in timing.time_interleaved(fns, a.budget * len(fns), 5).items()}
            os.environ.pop("FASTRNN_DECOMP", None)
            os.environ.pop("FASTRNN_BATCH_AUTO", None)
            for d in a.decomp:
                secs = {"recurrent (fwd)": med[f"{d} fwd"] - med["proj"],
                        "recurrent (bwd)": med[f"{d} train"] - med[f"{d} fwd"] - med["wgrads"],
                        "input projection": med["proj"], "weight gradients": med["wgrads"],
                        "whole forward+backward": med[f"{d} train"]}
                for phase, s in secs.items():
                    f = sum(flops.values()) if phase.startswith("whole") else flops[phase]
                    pct = 100 * f / s / 1e9 / peak if s > 0 else float("nan")
                    print(f"| {name} | {d} | {phase} | {s * 1e3:.2f} | {pct:.0f}% |")


if __name__ == "__main__":
    main()
