"""Data-parallel training throughput on this machine, and what the gradient all-reduce costs on a
cluster network (issue 14). Not a test: run it by hand on a quiet machine.

    python bench/distributed.py [--steps 40] [--markdown PATH]

Measures the torch-rnn char-LM (one-hot input, 2-layer LSTM, hidden 128, float32, Adam, clip 5)
on tiny-shakespeare (65 characters; ../shared/data, else the Python stdlib's source with the
65 most frequent characters) with seq 50 in these set-ups, each a fresh process:
  1 rank  x 2 threads, batch 50                 (the baseline: one process uses both cores)
  1 rank  x 1 thread,  batch 50                 (what each rank would do alone)
  2 ranks x 1 thread,  global batch 50 (25 each) (the same optimisation, split by streams)
  2 ranks x 1 thread,  global batch 100 (50 each)(each rank keeps the baseline's batch)
and the 2-rank runs again with overlap=True (bucketed non-blocking reduction). For each: tokens/s
over `--steps` timed iterations after 3 warm-up ones (each set-up run `--repeats` times,
interleaved; medians reported), the time per iteration spent in (waiting
for) the reduction, and the bare Allreduce of the gradient buffer alone (after a barrier).

Then the table for a cluster: bytes per step (4 x parameters, float32) of the torch-rnn LM sizes
(LSTM 1/2/3 layers x 64/128/256/512 hidden, 65-character vocabulary), counted from the models
themselves, and the bandwidth term of a ring all-reduce, 2 (K-1)/K x bytes / bandwidth, at
10 and 100 Gbit/s (latency and the reduction's own arithmetic not included).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare.txt")
SEQ, HIDDEN, LAYERS = 50, 128, 2


def _text():
    if os.path.exists(CORPUS):
        with open(CORPUS, encoding="utf-8") as f:
            return f.read()
    from fastrnn.cli import stdlib_corpus
    return stdlib_corpus(max_bytes=2_000_000)


def worker(steps, batch, overlap):
    """One rank (or the only process): time `steps` training iterations; rank 0 prints JSON."""
    from fastrnn import LanguageModel, get_num_threads
    from fastrnn.data import Vocab
    from fastrnn.train import Trainer
    text = _text()
    vocab = Vocab.build(text, max_size=67)              # 65 characters + <unk>, <eos>
    ids = vocab.encode(text)
    model = LanguageModel(len(vocab), hidden_size=HIDDEN, num_layers=LAYERS, seed=0)
    t = Trainer(model, vocab, ids, None, batch_size=batch, seq_len=SEQ, progress=False,
                overlap=overlap, epochs=100)
    for _ in range(3):
        t.train_step()
    dist = t.dist
    if dist is not None:
        dist.comm.Barrier()
        dist.reduce_seconds = 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        t.train_step()
    seconds = time.perf_counter() - t0
    bare = None
    if dist is not None:                # the all-reduce alone, every rank ready
        buf = np.zeros_like(dist.buf)
        times = []
        for _ in range(20):
            dist.comm.Barrier()
            s = time.perf_counter()
            dist.comm.Allreduce(dist.MPI.IN_PLACE, buf, op=dist.MPI.SUM)
            times.append(time.perf_counter() - s)
        bare = float(np.median(times))
    if dist is None or dist.rank == 0:
        print(json.dumps(dict(
            ranks=1 if dist is None else dist.size, threads=get_num_threads(), batch=batch,
            overlap=overlap, params=int(model.params.size), vocab=len(vocab),
            tokens_per_s=batch * SEQ * steps / seconds, ms_per_iter=1e3 * seconds / steps,
            reduce_ms_per_iter=None if dist is None else 1e3 * dist.reduce_seconds / steps,
            bare_allreduce_ms=None if bare is None else 1e3 * bare)), flush=True)


def _launch(ranks, threads, batch, steps, overlap):
    env = dict(os.environ, FASTRNN_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--steps", str(steps),
           "--batch", str(batch)] + (["--overlap"] if overlap else [])
    if ranks > 1:
        mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        cmd = [mpiexec if os.access(mpiexec, os.X_OK) else "mpiexec", "-n", str(ranks)] + cmd
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ring_table(ks=(2, 8)):
    """Rows (layers, hidden, params, MB per step, ring seconds per bandwidth and K)."""
    from fastrnn import LanguageModel
    rows = []
    for layers in (1, 2, 3):
        for hidden in (64, 128, 256, 512):
            p = LanguageModel(65, hidden_size=hidden, num_layers=layers, seed=0).params.size
            nbytes = 4 * p
            times = {(gbit, k): 2 * (k - 1) / k * nbytes * 8 / (gbit * 1e9) for gbit in (10, 100) for k in ks}
            rows.append((layers, hidden, p, nbytes, times))
    return rows


def _median(runs, key, fmt):
    values = [r[key] for r in runs if r[key] is not None]
    return "-" if not values else fmt.format(float(np.median(values)))


def markdown(results, ks=(2, 8)):
    """The throughput table (medians over the repeats, tokens/s with its range) and the ring table."""
    lines = ["| set-up | batch per rank | tokens/s median (min-max) | ms/iter | reduce ms/iter "
             "(incl. waiting) | bare Allreduce ms |", "|---|---|---|---|---|---|"]
    for runs in results:
        r = runs[0]
        setup = f"{r['ranks']} rank(s) x {r['threads']} thread(s)" + (", overlap" if r["overlap"] else "")
        tok = [x["tokens_per_s"] for x in runs]
        lines.append(f"| {setup} | {r['batch'] // r['ranks']} | {np.median(tok):.0f} ({min(tok):.0f}-"
                     f"{max(tok):.0f}) | {_median(runs, 'ms_per_iter', '{:.1f}')} | "
                     f"{_median(runs, 'reduce_ms_per_iter', '{:.2f}')} | "
                     f"{_median(runs, 'bare_allreduce_ms', '{:.3f}')} |")
    lines += ["", "| LSTM | parameters | bytes/step | " +
              " | ".join(f"ring {g} Gbit/s, K={k}" for g in (10, 100) for k in ks) + " |",
              "|---|---|---|" + "---|" * (2 * len(ks))]
    for layers, hidden, p, nbytes, times in ring_table(ks):
        cells = " | ".join(f"{1e3 * times[(g, k)]:.3f} ms" for g in (10, 100) for k in ks)
        lines.append(f"| {layers}x{hidden} | {p:,} | {nbytes / 1e6:.2f} MB | {cells} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each set-up, interleaved")
    ap.add_argument("--markdown", help="also write the tables here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=50, help=argparse.SUPPRESS)
    ap.add_argument("--overlap", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.steps, args.batch, args.overlap)
    runs = [(1, 2, 50, False), (1, 1, 50, False), (2, 1, 50, False), (2, 1, 50, True),
            (2, 1, 100, False), (2, 1, 100, True)]      # (ranks, threads, global batch, overlap)
    results = [[] for _ in runs]
    for _ in range(args.repeats):       # interleaved: a busy spell of a shared machine hits all
        for k, (ranks, threads, batch, overlap) in enumerate(runs):
            results[k].append(_launch(ranks, threads, batch, args.steps, overlap))
            print(json.dumps(results[k][-1]), file=sys.stderr)
    text = markdown(results)
    print(text)
    if args.markdown:
        from fastrnn.atomic import write_text
        write_text(args.markdown, text + "\n")


if __name__ == "__main__":
    main()
