"""Sampling speed, before/after in ONE process (only relative numbers mean anything on a shared
machine): fastrnn.generate of B sequences from a 2xH char-LSTM with the generation loop as one
team task per call (default) against the per-step path (FASTRNN_GENERATE=steps), and
model.step with its native fast path (nn/generate.py NativeStep) against the layer path it
replaces (the fast path made to decline: checks + a kernel call per layer + the head in Python,
as before).

    python bench/sampling.py                  # 2x256, 32 sequences and batch 1, 200 tokens, 2 threads
    python bench/sampling.py --rounds 9 --threads 2 --hidden 256
"""
import argparse
import os
import time

import numpy as np

import fastrnn
from fastrnn.benchmarks.runners import VOCAB
from fastrnn.data import EOS, UNK, Vocab
from fastrnn.models import LanguageModel
from fastrnn.sample import generate


def _time(fn, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is shown)")
    args = ap.parse_args()
    fastrnn.set_num_threads(args.threads)
    vocab = Vocab([UNK, EOS] + [chr(0x21 + i) for i in range(VOCAB - 2)])
    model = LanguageModel(VOCAB, hidden_size=args.hidden, num_layers=args.layers, seed=0)
    model.head._views["bias"][vocab.eos_id] = -1e30      # full-length texts
    model.invalidate()
    for B in (32, 1):
        n = None if B == 1 else B
        res = {"team": [], "steps": []}
        for _ in range(args.rounds):
            for name in res:
                if name == "steps":
                    os.environ["FASTRNN_GENERATE"] = "steps"
                else:
                    os.environ.pop("FASTRNN_GENERATE", None)
                res[name].append(_time(lambda: generate(model, vocab, length=args.tokens, seed=0,
                                                        num_samples=n), 1))
        os.environ.pop("FASTRNN_GENERATE", None)
        med = {k: float(np.median(v)) for k, v in res.items()}
        tok = args.tokens * B
        print(f"generate {args.layers}x{args.hidden} B={B}: team {tok / med['team']:,.0f} tok/s, "
              f"per-step {tok / med['steps']:,.0f} tok/s ({med['steps'] / med['team']:.2f}x)")
    ids = np.array([3])
    _, state = model.step(ids)
    reps = 1000
    res = {"native": [], "layers": []}
    native = model.__dict__["_native_step"]
    for _ in range(args.rounds):
        for name in res:        # the layer path: the fast path declining every call
            model.__dict__["_native_step"] = native if name == "native" else (lambda *a: None)
            res[name].append(_time(lambda: model.step(ids, state), reps))
    model.__dict__["_native_step"] = native
    med = {k: 1e6 * float(np.median(v)) for k, v in res.items()}
    print(f"model.step {args.layers}x{args.hidden} batch 1: native {med['native']:.1f} us a call, "
          f"layer path {med['layers']:.1f} us ({med['layers'] / med['native']:.2f}x)")

if __name__ == "__main__":
    main()
