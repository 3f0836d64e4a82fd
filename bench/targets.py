"""Issues 10 and 21's targets, measured in one process: fastrnn's engine vs the BLAS path vs PyTorch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/targets.py [--budget 3] [--filter RE]

Every workload runs three ways, interleaved round by round (`fastrnn.benchmarks.timing`): the
float32 engine, the same fastrnn code with the engine off (`FASTRNN_KERNELS=blas`: SciPy's
OpenBLAS), and torch with the same thread count. The float32 peak is measured first (best of
torch.mm and fastrnn's own GEMM on 2048^2). Prints a Markdown table: medians, GFLOP/s, % of peak,
the ratios, and each target with "met" or "MISSED" -- what was measured, nothing else. A target
relative to torch also gives the % of the peak it asks of the engine (target x torch's GFLOP/s /
peak): above 100 % it is out of this machine's reach whatever the engine does. Where issue 21
names a row's target (the (100, 32, 128, 256) layers, the batch-1 LSTM, the (50, 64, 512, 512) and
bi-LSTM fwd+bwd at 85 % of peak, the fused LM rows) the row uses its number; elsewhere an earlier
issue's.
The ", bf16" rows (issue 22) run the recurrent layers with precision="bf16" and also time the same
workload in float32: their target is the ratio to float32 (their BLAS column runs bf16 too: bf16
products always run on fastrnn's bf16 kernels).
The ", 1 thread" rows (issue 21) run fastrnn, torch and OpenBLAS (the BLAS column) on one thread
and are compared with a one-thread peak, measured the same way before and after them.
"""
import os
import re
import sys

import numpy as np

import bench_args  # noqa: I001  (bench/, next to these scripts)
import int8_rows
from fastrnn import _kernels
from fastrnn.benchmarks import runners, shapes, timing, workloads

G = {"rnn": 1, "gru": 3, "lstm": 4}


def _kernel(cell, shape, train):
    T, B, I, H = shape
    return (f"{cell} {'fwd+bwd' if train else 'forward'} {shape}", runners.kernel(cell, T, B, I, H, "float32", train),
            workloads.layer_flops(T, B, I, H, G[cell], train))


def build():
    """(name, {impl: builder}, flops, target) for every workload; target = (kind, value) or None:
    ("torch", r): fastrnn >= r x torch; ("peak", f): >= f of the peak."""
    rows = []
    for cell in ("lstm", "gru", "rnn"):
        for shape in ((100, 32, 128, 256), (50, 64, 512, 512), (100, 1, 64, 128)):
            for train in (True, False):
                name, b, fl = _kernel(cell, shape, train)
                target = None
                # issue 21's numbers where it names the row; the earlier issues' elsewhere
                if shape == (100, 32, 128, 256):
                    target = ("torch", {("lstm", True): 1.5, ("lstm", False): 1.2, ("gru", True): 1.8,
                                        ("gru", False): 1.5, ("rnn", True): 1.8, ("rnn", False): 1.8}[cell, train])
                elif shape == (50, 64, 512, 512):
                    target = (("peak", 0.85 if cell == "lstm" else 0.75) if train
                              else ("torch", 1.1) if cell == "lstm" else ("torch", 2.0))
                elif cell == "lstm":
                    target = ("torch", 3.0 if train else 2.0)
                rows.append((name, b, fl, target))
    for train in (True, False):
        rows.append((f"2-layer bi-LSTM {'fwd+bwd' if train else 'forward'} (50, 50, 128, 256)",
                     runners.bilstm(50, 50, 128, 256, train),
                     workloads.layer_flops(50, 50, 128, 256, 4, train, layers=2, directions=2),
                     ("peak", 0.85) if train else ("torch", 1.3)))
    rows.append(("LM sampling step 2x256, batch 1", runners.lm_infer(2, 256, 1), None, ("torch", 8.0)))
    # the native generation loop, per call of SAMPLE_TOKENS tokens per sequence (issue 21 targets)
    rows.append(("LM sampling 2x256, batch 1 (generate)", runners.lm_sample(2, 256, 1, SAMPLE_TOKENS),
                 None, [("torch", 8.0), ("tokens/s", 15000, SAMPLE_TOKENS)]))
    rows.append(("LM sampling 2x256, 32 sequences (generate)", runners.lm_sample(2, 256, 32, SAMPLE_TOKENS),
                 None, [("torch", 1.0), ("tokens/s", 50000, 32 * SAMPLE_TOKENS)]))
    # issue 22 on AVX2 CPUs: bf16 weights halve the bytes a batch-1 step reads (>= 1.2x float32)
    for name, make in (("LM sampling step 2x512, batch 1", lambda p: runners.lm_infer(2, 512, 1, precision=p)),
                       ("LM sampling 2x512, batch 1 (generate)",
                        lambda p: runners.lm_sample(2, 512, 1, SAMPLE_TOKENS, precision=p))):
        rows.append((f"{name}, bf16", dict(make("bf16"), float32=make("float32")["fastrnn"]), None,
                     ("float32", 1.2)))
    for layers, hidden in workloads.LM_MATRIX:
        rows.append((f"LM train iteration L={layers} H={hidden}", runners.lm_train(layers, hidden, 50, 50),
                     workloads._lm_flops(layers, hidden, 50, 50, True), ("torch", 1.8 if layers > 1 else 1.5)))
        # the same iteration as one native call (fastrnn.train.fused); the row above is the unfused one
        rows.append((f"LM train iteration fused L={layers} H={hidden}", runners.lm_train_fused(layers, hidden, 50, 50),
                     workloads._lm_flops(layers, hidden, 50, 50, True),
                     ("torch_or_peak", 1.5 if (layers, hidden) == (2, 128) else 1.3)))
    # the tagger, classifier, conditioned generator and seq2seq (fastrnn bench's "models" shapes):
    # unfused, then the fused step (one native call each; the generator's condition block and the
    # seq2seq's encoder in Python around it)
    for key in ("tagger", "classifier", "conditioned", "seq2seq"):
        shape = shapes.SHAPES[key]
        flops = float(shape.flops(**shape.sizes))
        rows.append((shape.title, shapes.train(key), flops, None))
        rows.append((shape.title.replace("train iteration", "train iteration fused"), _seq_train_fused(key), flops,
                     None))
    # issue 21: "one thread vs torch one thread: the same LM rows >= 1.3x" (the fused iteration):
    # the same rows, so the same rule where torch already runs above 65 % of the (one-thread) peak
    # -- 1.3x would need more than 85 % -- and >= 85 % of that peak counts instead
    for layers, hidden in workloads.LM_MATRIX:
        rows.append((f"LM train iteration fused L={layers} H={hidden}{ONE_THREAD}",
                     _one_thread(runners.lm_train_fused(layers, hidden, 50, 50)),
                     workloads._lm_flops(layers, hidden, 50, 50, True), ("torch_or_peak", 1.3)))
    return rows


def _seq_train_fused(key):
    """shapes.train(key)'s iteration (forward, backward, Adam) as one FusedStep call."""
    from fastrnn import optim
    from fastrnn.train.fused import FusedStep

    def fast():
        shape = shapes.SHAPES[key]
        model, batch = shape.make("float32", **shape.sizes)
        step = FusedStep(model, optim.Adam(model, lr=1e-3))
        return lambda: step.step_batch(batch)
    return {"fastrnn": fast, "torch": shapes.train(key)["torch"]}


def _one_thread(builders):
    """builders whose calls run on one thread: fastrnn's team size and torch.set_num_threads set to
    1 around each call and restored after it (main() also puts OpenBLAS on one thread for the
    row: the BLAS-path column is a one-thread figure too)."""
    def wrap(impl, build):
        def built():
            fn = build()

            def call():
                if impl == "torch":
                    before = runners.torch.get_num_threads()
                    runners.torch.set_num_threads(1)
                    try:
                        return fn()
                    finally:
                        runners.torch.set_num_threads(before)
                before = _kernels.get_num_threads()
                _kernels.set_num_threads(1)
                try:
                    return fn()
                finally:
                    _kernels.set_num_threads(before)
            return call
        return built
    return {impl: wrap(impl, build) for impl, build in builders.items()}


#: the name's end of a row timed on one thread (compared with the one-thread peak)
ONE_THREAD = ", 1 thread"

#: tokens per sequence of one sampling-workload call
SAMPLE_TOKENS = 200


def _verdict(target, e, t, flops, peak, f32=None):
    """'met'/'MISSED' of one target against the engine's time e (and torch's t) of a row."""
    if target[0] == "torch" and t:
        verdict = f"{'met' if t / e >= target[1] else 'MISSED'} (>= {target[1]}x torch"
        # what the target asks of the hardware: target x torch's rate, against the peak
        need = target[1] * flops / t / 1e9 / peak["gflops"] if flops else None
        return verdict + (")" if need is None else f"; needs {need:.0%} of peak)")
    if target[0] == "torch_or_peak" and t and flops:
        # issue 21: ">= r x torch; where torch already runs a row above 65 % of the peak, >= 85 % counts"
        torch_share, share = flops / t / 1e9 / peak["gflops"], flops / e / 1e9 / peak["gflops"]
        if torch_share > 0.65:
            return (f"{'met' if t / e >= target[1] or share >= 0.85 else 'MISSED'} (>= {target[1]}x torch "
                    f"or, as torch runs at {torch_share:.0%} of peak, >= 85% of peak)")
        return _verdict(("torch", target[1]), e, t, flops, peak)
    if target[0] == "peak" and flops:
        gf = flops / e / 1e9
        return f"{'met' if gf / peak['gflops'] >= target[1] else 'MISSED'} (>= {target[1]:.0%} of peak)"
    if target[0] == "float32" and f32:
        return f"{'met' if f32 / e >= target[1] else 'MISSED'} ({f32 / e:.2f}x float32; >= {target[1]}x)"
    if target[0] == "tokens/s":
        rate = target[2] / e
        return f"{'met' if rate >= target[1] else 'MISSED'} ({rate:,.0f} tokens/s; >= {target[1]:,})"
    return "-"


def _blas(fn):
    """fn run with the engine off (every float32 product on SciPy's BLAS, one kernel thread)."""
    def run():
        _kernels.set_engine(False)
        try:
            fn()
        finally:
            _kernels.set_engine(True)
    return run


def main(argv=None):
    args = bench_args.parse(__doc__, argv)
    threads = args.threads
    info = timing.machine_info()
    # the peak, measured before and after the workloads (a shared machine's clock and neighbours
    # vary): the best of the two is the limit the rows are compared with
    peaks = [timing.measure_peak(repeats=10)]
    print(f"CPU: {info['cpu_model']} ({', '.join(sorted(info['cpu_flags']))}); threads {threads}; "
          f"engine {_kernels.engine_info()}; {info['blas']['name']} {info['blas']['version']}")
    rows, peaks1 = [], []
    for name, builders, flops, target in build():
        if args.filter and not re.search(args.filter, name):
            continue
        # a one-thread row runs with fastrnn, torch and OpenBLAS all on one thread (the BLAS
        # column too) and is compared with the one-thread peak, measured like the other
        restore = timing.apply_threads(1) if name.endswith(ONE_THREAD) else None
        if restore is not None and not peaks1:
            peaks1.append(timing.measure_peak(repeats=10))
        fast = builders["fastrnn"]()
        fns = {"engine": fast, "blas": _blas(fast)}
        if "torch" in builders and runners.torch is not None:
            fns["torch"] = builders["torch"]()
        if "float32" in builders:          # a bf16 row: the same workload in float32
            fns["float32"] = builders["float32"]()
        # blocks of ~1 s per sample: the thread pools of the previous implementation (torch's
        # OpenMP, OpenBLAS) spin for up to ~0.1 s after their last call and would tax the next one
        try:
            samples = timing.time_interleaved(fns, args.budget, 3, sample_seconds=1.0)
        finally:
            if restore is not None:
                restore()
        rows.append((name, flops, target, {k: float(np.median(v)) for k, v in samples.items()}))
        print(f"measured {name}", file=sys.stderr, flush=True)
    peaks.append(timing.measure_peak(repeats=10))
    peak2 = max(peaks, key=lambda p: p["gflops"])
    if peaks1:
        restore = timing.apply_threads(1)
        try:
            peaks1.append(timing.measure_peak(repeats=10))
        finally:
            restore()
    for what, ps in ((f"float32 peak ({threads} threads)", peaks), ("one-thread float32 peak (the '1 thread' rows)", peaks1)):
        if ps:
            print(f"{what} {max(p['gflops'] for p in ps):.1f} GFLOP/s, the best of "
                  + ", ".join(f"{p['gflops']:.1f} ({p['source']}; fastrnn gemm {p['fastrnn_gemm_gflops']:.1f}, "
                              f"torch.mm {p['torch_mm_gflops'] or 0:.1f})" for p in ps)
                  + " measured before and after the workloads")
    print()
    peak1 = max(peaks1, key=lambda p: p["gflops"]) if peaks1 else None
    print("| workload | engine ms | BLAS path ms | torch ms | GFLOP/s | % peak | torch/engine | BLAS/engine | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, flops, target, med in rows:
        e, b, t = med["engine"], med["blas"], med.get("torch")
        peak = peak1 if name.endswith(ONE_THREAD) else peak2
        gf = flops / e / 1e9 if flops else None
        targets = target if isinstance(target, list) else [target] if target else []
        verdict = "; ".join(_verdict(x, e, t, flops, peak, med.get("float32")) for x in targets) or "-"
        ms = lambda v: "-" if v is None else f"{v * 1e3:.3f}"
        rate = "-" if gf is None else f"{gf:.1f}"
        share = "-" if gf is None else f"{100 * gf / peak['gflops']:.0f}%"
        vs_torch = "-" if t is None else f"{t / e:.2f}x"
        print(f"| {name} | {ms(e)} | {ms(b)} | {ms(t)} | {rate} | {share} | {vs_torch} | {b / e:.2f}x | "
              f"{verdict} |", flush=True)
    int8_rows.run(args.budget, args.filter)      # issue 23: int8 vs float32 vs torch quantize_dynamic


if __name__ == "__main__":
    sys.exit(main())
