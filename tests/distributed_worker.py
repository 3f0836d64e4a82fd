"""Run by tests/test_distributed.py, as one process or as every rank under `mpiexec -n K`:
trains the same seeded float64 models (a language model, a classifier and a tagger on ragged
padded batches) with one global batch size, and writes the checkpoints into OUT/<model>/.

Usage: python distributed_worker.py OUT MODE [args]; MODE is `train` (20 steps of each model),
`overlap` (the same with the bucketed non-blocking reduction),
`resume` (continue OUT/<model>/last.npz for 10 more steps into OUT/<model>-resumed/),
`hang` (rank 1 stops at step 13 and prints its pid: the test kills it),
`nan` (rank 1's loss becomes NaN at step 13), `raise` (rank 1 raises at step 13): after
the checkpoint of step 10, which must stay intact; `mismatch` (rank 1 builds a wider model:
every rank must refuse to train at the start of fit).
"""
import os
import sys
import time

import numpy as np

import fastrnn
from fastrnn.data import Vocab
from fastrnn.train import Trainer

B_GLOBAL, STEPS = 6, 20


def lm_data():
    rng = np.random.default_rng(1)
    text = "".join(rng.choice(list("abcdefgh \n"), size=3000))
    vocab = Vocab.build(text)
    ids = vocab.encode(text)
    return vocab, ids[:2600], ids[2600:]


def padded_data(per_step):
    """Ragged sequences of 1..12 ids; 23 of them: the last global batch of 6 has 5 (3 + 2 on
    two ranks), so shards hold different numbers of examples and of tokens."""
    rng = np.random.default_rng(2)
    seqs = [rng.integers(0, 7, size=rng.integers(1, 13)) for _ in range(23)]
    targets = [s % 3 for s in seqs] if per_step else [int(s.sum() % 3) for s in seqs]
    val = [rng.integers(0, 7, size=rng.integers(1, 13)) for _ in range(7)]
    val_t = [s % 3 for s in val] if per_step else [int(s.sum() % 3) for s in val]
    kw = dict(targets_per_step=per_step)
    return (fastrnn.PaddedBatches(seqs, targets, batch_size=B_GLOBAL, seed=5, **kw),
            fastrnn.PaddedBatches(val, val_t, batch_size=B_GLOBAL, shuffle=False, **kw))


def trainer(name, out, hidden=8, **kw):
    common = dict(lr=0.01, epochs=100, eval_every=10, out=os.path.join(out, name), progress=False)
    common.update(kw)
    if name == "lm":
        vocab, train, val = lm_data()
        model = fastrnn.LanguageModel(len(vocab), hidden_size=12, num_layers=2, dtype="float64", seed=3)
        return Trainer(model, vocab, train, val, batch_size=B_GLOBAL, seq_len=7, **common)
    per_step = name == "tagger"
    train, val = padded_data(per_step)
    cls = fastrnn.SequenceTagger if per_step else fastrnn.SequenceClassifier
    model = cls(3, vocab_size=7, embed_size=5, hidden_size=hidden, dtype="float64", seed=4)
    return Trainer(model, train, val, callbacks=[train], **common)


def resume(name, out):
    path = os.path.join(out, name, "last.npz")
    kw = dict(progress=False, out=os.path.join(out, name + "-resumed"))
    if name == "lm":
        _, train, val = lm_data()
        return Trainer.resume(path, train, val, **kw)
    train, val = padded_data(name == "tagger")
    return Trainer.resume(path, train, val, callbacks=[train], **kw)


def faulty_forward(t, mode, rank):
    """The model's forward, with rank 1 failing at the third step as `mode` says."""
    base = t.forward

    def forward(batch, train):
        loss = base(batch, train)
        if train and rank == 1 and t.iteration == 13:
            if mode == "nan":
                return float("nan")
            if mode == "raise":
                raise RuntimeError("injected failure on rank 1")
            if mode == "hang":
                print(f"rank 1 hanging pid {os.getpid()}", flush=True)
                time.sleep(600)
        return loss
    return forward


def main():
    out, mode = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or ["lm", "classifier", "tagger"]
    for name in names:
        if mode in ("train", "overlap"):
            trainer(name, out, overlap=mode == "overlap").fit(max_iters=STEPS)
        elif mode == "resume":
            resume(name, out).fit(max_iters=10)
        elif mode == "mismatch":
            from fastrnn.distributed import SetupFailed, launch_rank
            try:
                trainer(name, out, hidden=8 + launch_rank()).fit(max_iters=STEPS)
            except SetupFailed as e:
                print(f"rank {launch_rank()}: {e}", flush=True)
                sys.exit(4)
        else:
            t = trainer(name, out)
            rank = t.dist.rank if t.dist is not None else 0
            t.forward = faulty_forward(t, mode, rank)     # StateCarry stays among the callbacks
            try:
                t.fit(max_iters=STEPS)
            except fastrnn.train.TrainingDiverged as e:
                print(f"rank {rank}: stopped: {e}", flush=True)
                sys.exit(3)


if __name__ == "__main__":
    main()
