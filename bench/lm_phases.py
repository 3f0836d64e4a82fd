"""Where the time of one fused language-model training iteration goes, phase by phase.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/lm_phases.py [--layers 2]
        [--hidden 128] [--threads 1 2] [--budget 2]

The char-rnn iteration of bench/targets.py (B 50, T 50, vocabulary 65, Adam, clip 5) as
`fastrnn.train.fused.FusedStep` runs it, timed interleaved in one process (issue 21 asks the %
of peak per phase):
  - whole step: the one native call (forward, loss, backward, clip, Adam);
  - recurrent stack: the layers' forward + backward on the projected one-hot input, alone
    (input projections, recurrent steps, weight gradients), and within it
      - input projection: layers 2..L's W_ih x and its input gradient dG W_ih (layer 1 reads the
        one-hot rows: no product), the same products timed alone with `_kernels.gemm`;
      - weight gradients: dW_hh += dG^T h (every layer) and dW_ih += dG^T x (layers 2..L), the
        same products timed alone;
      - recurrent steps: the stack minus those two (the per-step products h W_hh^T, dG W_hh, the
        gate functions, the barriers);
  - head + loss: the fused call without an optimiser minus the stack (the head's three products,
    softmax cross-entropy, the input gather and the gradient scatter, zeroing the gradients): a
    difference of two timings, so it carries both one's noise and whatever the stack timed alone
    through the Python layer costs more or less than inside the fused call (at 2 threads the last
    session read 0.56 ms, less than the head's products alone can take at the peak); hence also
      - head products (timed alone): logits = y W^T, dW += dlogits^T y, dy = dlogits W with
        `_kernels.gemm`, the part of head + loss that is a product;
  - optimiser: clip + Adam over the flat buffers, alone (`_kernels.optim_step`): memory-bound,
    so it is given in GB/s (8 arrays of n parameters read or written), not % of peak.
% of peak is of the float32 peak measured at the same thread count (fastrnn, torch and OpenBLAS
all set to it while it is measured): the 1-thread table against the one-thread peak.
"""
import argparse

import numpy as np

from fastrnn import _kernels, optim
from fastrnn.benchmarks import runners, timing, workloads
from fastrnn.models import LanguageModel
from fastrnn.train.fused import KINDS, FusedStep

B, T = 50, 50


def builders(layers, hidden):
    """{phase: fn} over one model's buffers."""
    model = LanguageModel(runners.VOCAB, hidden_size=hidden, num_layers=layers, seed=0)
    opt = optim.Adam(model, lr=2e-3)
    inputs, targets = runners._ids(B, T)
    whole, grads_only = FusedStep(model, opt, clip=5.0), FusedStep(model)
    rnn = model.rnn
    x = np.random.default_rng(0).standard_normal((T, B, rnn.G * hidden)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((T, B, hidden)).astype(np.float32)

    def stack():
        rnn.forward(x, input_projected=True, train=True)
        rnn.backward(dy)

    spec = dict(opt.hyper, kind=KINDS[optim.Adam], steps=1, lr=opt.lr, clip=5.0,
                state=[opt.state[n] for n in opt.state_names])
    params, grads = model._params.copy(), model.grads.copy()      # scratch: the model stays put
    N, GH = T * B, rnn.G * hidden
    rng = np.random.default_rng(2)
    arr = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in
         (("x", (N, hidden)), ("W", (GH, hidden)), ("dG", (N, GH)), ("pre", (N, GH)), ("dx", (N, hidden)),
          ("dW", (GH, hidden)))}

    def projection():                 # layers 2..L: x W_ih^T forward, dG W_ih back
        for _ in range(layers - 1):
            _kernels.gemm(arr["x"], arr["W"], trans_b=True, out=arr["pre"])
            _kernels.gemm(arr["dG"], arr["W"], out=arr["dx"])

    V, P = runners.VOCAB, hidden
    hd = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in
          (("y", (N, P)), ("W", (V, P)), ("logits", (N, V)), ("dW", (V, P)), ("dy", (N, P)))}

    def head_products():              # the fused head's three products, as head_impl.h calls them
        _kernels.gemm(hd["y"], hd["W"], trans_b=True, out=hd["logits"])
        _kernels.gemm(hd["logits"], hd["y"], trans_a=True, out=hd["dW"], accumulate=True)
        _kernels.gemm(hd["logits"], hd["W"], out=hd["dy"])

    def weight_grads():               # dW_hh (every layer), dW_ih (layers 2..L)
        for _ in range(2 * layers - 1):
            _kernels.gemm(arr["dG"], arr["x"], trans_a=True, out=arr["dW"], accumulate=True)

    return {"whole step": lambda: whole.step(inputs, targets),
            "fused without optimiser": lambda: grads_only.step(inputs, targets),
            "recurrent stack": stack, "input projection": projection, "weight gradients": weight_grads,
            "head products": head_products,
            "optimiser": lambda: _kernels.optim_step(params, grads, spec)}, model.params.size


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per phase")
    a = ap.parse_args(argv)
    L, H, V = a.layers, a.hidden, runners.VOCAB
    print(f"LM {L}x{H} LSTM, B {B}, T {T}, V {V}, float32; {timing._cpu()[0]}")
    stack_fl = workloads.layer_flops(T, B, 0, H, 4, True, L)        # one-hot: no input product
    head_fl = 3 * 2 * T * B * H * V
    product = 2 * T * B * H * 4 * H                                # one (N, H) x (H, 4H) product
    proj_fl, wgrad_fl = 2 * (L - 1) * product, (2 * L - 1) * product
    for threads in a.threads:
        restore = timing.apply_threads(threads)
        try:
            peak = timing.measure_peak()
            fns, n = builders(L, H)
            med = {k: float(np.median(v)) for k, v in timing.time_interleaved(fns, a.budget * len(fns), 5).items()}
        finally:
            restore()
        head = med["fused without optimiser"] - med["recurrent stack"]
        steps = med["recurrent stack"] - med["input projection"] - med["weight gradients"]
        rows = [("whole step", med["whole step"], stack_fl + head_fl),
                ("recurrent stack", med["recurrent stack"], stack_fl),
                ("- input projection + its gradient (timed alone)", med["input projection"], proj_fl),
                ("- weight gradients (timed alone)", med["weight gradients"], wgrad_fl),
                ("- recurrent steps (stack minus the two above)", steps, stack_fl - proj_fl - wgrad_fl),
                ("head + loss (+ gather, scatter; whole minus stack)", head, head_fl),
                ("- head products (timed alone)", med["head products"], head_fl),
                ("optimiser (clip + Adam)", med["optimiser"], None)]
        print(f"\n{threads} thread(s), peak {peak['gflops']:.1f} GFLOP/s ({peak['source']})\n"
              "| phase | ms | GFLOP/s | % of peak |\n|---|---|---|---|")
        for name, s, fl in rows:
            if fl is None:
                print(f"| {name} | {s * 1e3:.2f} | {8 * 4 * n / s / 1e9:.1f} GB/s | - |")
                continue
            if fl == 0:
                print(f"| {name} | {s * 1e3:.2f} | - | - |")
                continue
            gf = fl / s / 1e9 if s > 0 else float("nan")
            print(f"| {name} | {s * 1e3:.2f} | {gf:.1f} | {100 * gf / peak['gflops']:.0f}% |")


if __name__ == "__main__":
    main()
