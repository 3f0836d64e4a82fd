"""Where the time of one fused language-model training iteration goes, phase by phase.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/lm_phases.py [--layers 2]
        [--hidden 128] [--threads 1 2] [--budget 2]

The char-rnn iteration of bench/targets.py (B 50, T 50, vocabulary 65, Adam, clip 5) as
`fastrnn.train.fused.FusedStep` runs it, timed interleaved in one process (issue 21 asks the %
of peak per phase):
  - whole step: the one native call (forward, loss, backward, clip, Adam);
  - recurrent stack: the layers' forward + backward on the projected one-hot input, alone
    (input projections, recurrent steps, weight gradients);
  - head + loss: the fused call without an optimiser minus the stack (the head's three products,
    softmax cross-entropy, the input gather and the gradient scatter, zeroing the gradients);
  - optimiser: clip + Adam over the flat buffers, alone (`_kernels.optim_step`): memory-bound,
    so it is given in GB/s (8 arrays of n parameters read or written), not % of peak.
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
    return {"whole step": lambda: whole.step(inputs, targets),
            "fused without optimiser": lambda: grads_only.step(inputs, targets),
            "recurrent stack": stack,
            "optimiser": lambda: _kernels.optim_step(params, grads, spec)}, model.params.size


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per phase")
    a = ap.parse_args(argv)
    L, H, V = a.layers, a.hidden, runners.VOCAB
    peak = timing.measure_peak()
    print(f"LM {L}x{H} LSTM, B {B}, T {T}, V {V}, float32; peak {peak['gflops']:.1f} GFLOP/s "
          f"({peak['source']}); {timing._cpu()[0]}")
    stack_fl = workloads.layer_flops(T, B, 0, H, 4, True, L)        # one-hot: no input product
    head_fl = 3 * 2 * T * B * H * V
    for threads in a.threads:
        _kernels.set_num_threads(threads)
        fns, n = builders(L, H)
        med = {k: float(np.median(v)) for k, v in timing.time_interleaved(fns, a.budget * len(fns), 5).items()}
        head = med["fused without optimiser"] - med["recurrent stack"]
        rows = [("whole step", med["whole step"], stack_fl + head_fl),
                ("recurrent stack", med["recurrent stack"], stack_fl),
                ("head + loss (+ gather, scatter)", head, head_fl),
                ("optimiser (clip + Adam)", med["optimiser"], None)]
        print(f"\n{threads} thread(s)\n| phase | ms | GFLOP/s | % of peak |\n|---|---|---|---|")
        for name, s, fl in rows:
            if fl is None:
                print(f"| {name} | {s * 1e3:.2f} | {8 * 4 * n / s / 1e9:.1f} GB/s | - |")
                continue
            gf = fl / s / 1e9 if s > 0 else float("nan")
            print(f"| {name} | {s * 1e3:.2f} | {gf:.1f} | {100 * gf / peak['gflops']:.0f}% |")
    _kernels.set_num_threads(None)


if __name__ == "__main__":
    main()
