"""A/B of the wavefront over layers (csrc/stack.h) against layer after layer, in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/wavefront.py [--threads 2] [--budget 2]

Each stack runs with FASTRNN_WAVEFRONT=1 and =0 (read by the C code at every call), interleaved
by `fastrnn.benchmarks.timing.time_interleaved`; prints split time / wavefront time (> 1: the
wavefront is faster) for a training iteration (forward + backward) and an inference forward.
"""
import argparse
import os

import numpy as np

import fastrnn
from fastrnn.benchmarks import timing

STACKS = [("LSTM", 50, 50, 128, 128, 2), ("LSTM", 50, 50, 256, 256, 3), ("LSTM", 100, 32, 128, 256, 2),
          ("LSTM", 50, 64, 512, 512, 2), ("LSTM", 100, 1, 64, 128, 2), ("GRU", 100, 32, 128, 256, 2)]


def _with(flag, fn):
    def run():
        os.environ["FASTRNN_WAVEFRONT"] = flag
        fn()
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per stack and mode")
    a = ap.parse_args(argv)
    fastrnn.set_num_threads(a.threads)
    print(f"{a.threads} threads; {timing._cpu()[0]}\n")
    print("| stack (T, B, I, H) x layers | fwd+bwd split/wave | forward split/wave |\n|---|---|---|")
    for cls, T, B, I, H, L in STACKS:
        layer = getattr(fastrnn, cls)(I, H, num_layers=L, dtype="float32", seed=0)
        x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)

        def train():
            y, _ = layer.forward(x)
            layer.backward(np.ones_like(y))
        ratios = []
        for fn in (train, lambda: layer.forward(x, train=False)):
            s = timing.time_interleaved({"wave": _with("1", fn), "split": _with("0", fn)}, 2 * a.budget, 5)
            ratios.append(np.median(s["split"]) / np.median(s["wave"]))
        os.environ.pop("FASTRNN_WAVEFRONT", None)
        print(f"| {cls} ({T}, {B}, {I}, {H}) x {L} | {ratios[0]:.2f}x | {ratios[1]:.2f}x |")


if __name__ == "__main__":
    main()
