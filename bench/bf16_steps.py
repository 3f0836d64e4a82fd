"""Issue 22 on AVX2 CPUs: batch-1 steps and sampling in bf16 vs float32, interleaved in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bf16_steps.py [--budget 3] [--hidden 256,512,1024]

Per char-LSTM LM of 2 layers (vocabulary 65, the model of bench/targets.py's ", bf16" rows) and
hidden size, three workloads, each in float32 and in bf16 (`model.precision`: the layers and the head), timed in
interleaved rounds (fastrnn.benchmarks.timing) so a load change hits both alike:
  - feed: the native loop advancing the state over 100 tokens (Generator.feed): only the
    recurrent steps -- the weight streaming the bf16 panels halve, no Python per token;
  - step: model.step (one token, batch 1, from Python: the row "LM sampling step 2xH, batch 1");
  - generate: fastrnn.generate of 100 tokens (the row "LM sampling 2xH, batch 1 (generate)").
Prints the medians per token and the bf16 / float32 speed ratio (target >= 1.2 for step and
generate). Weights 2 x 4H x (In + H) x 4 bytes: 2x256 3 MB, 2x512 12 MB, 2x1024 48 MB in float32.
"""
import argparse

import numpy as np

from fastrnn.benchmarks import runners, timing
from fastrnn.models import LanguageModel

TOKENS = 100


def _feed(hidden, precision):
    """The native loop over TOKENS tokens: the recurrent steps alone."""
    model = LanguageModel(runners.VOCAB, hidden_size=hidden, num_layers=2, seed=0)
    model.precision = precision
    gen = model.generator(1, 1)
    ids = np.random.default_rng(0).integers(0, runners.VOCAB, (TOKENS, 1)).astype(np.int32)
    return lambda: gen.feed(ids)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per workload (default 3)")
    ap.add_argument("--hidden", default="256,512,1024", help="hidden sizes, comma separated")
    args = ap.parse_args(argv)
    print("| model | workload | float32 us/token | bf16 us/token | bf16 speed / float32 |")
    print("|---|---|---|---|---|")
    for hidden in [int(h) for h in args.hidden.split(",")]:
        work = {"feed": (lambda p: _feed(hidden, p), TOKENS),
                "step": (lambda p: runners.lm_infer(2, hidden, 1, precision=p)["fastrnn"](), 1),
                "generate": (lambda p: runners.lm_sample(2, hidden, 1, TOKENS, precision=p)["fastrnn"](), TOKENS)}
        for name, (make, per) in work.items():
            fns = {p: make(p) for p in ("float32", "bf16")}
            samples = timing.time_interleaved(fns, args.budget, 3)
            f32, b16 = (float(np.median(samples[p])) / per * 1e6 for p in ("float32", "bf16"))
            print(f"| 2x{hidden} | {name} | {f32:.1f} | {b16:.1f} | {f32 / b16:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
