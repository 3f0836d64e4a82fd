"""Train the same char-level LSTM on tiny-shakespeare for a fixed time with fastrnn or PyTorch.

    python bench/tinyshakespeare.py --impl fastrnn --minutes 10
    python bench/tinyshakespeare.py --impl torch --minutes 10

Same corpus split (90/5/5), vocabulary, batches (50 streams x 50 steps, hidden state carried),
model (one-hot -> 2-layer LSTM, hidden 256 -> linear), Adam lr 2e-3, global-norm clip 5,
validation over the whole validation split every 200 iterations; the time budget includes the
validations. Prints one JSON line: iterations done, best validation loss, final validation loss.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

from fastrnn.data import StreamBatches, Vocab, split

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare.txt")


def data(batch, seq_len):
    with open(CORPUS, encoding="utf-8") as f:
        text = f.read()
    vocab = Vocab.build(text)
    train, val, _ = split(vocab.encode(text), 0.05, 0.05)
    return vocab, StreamBatches(train, batch, seq_len), StreamBatches(val, batch, seq_len)


def run_fastrnn(args, vocab, train, val):
    from fastrnn import optim
    from fastrnn.models import LanguageModel
    model = LanguageModel(len(vocab), hidden_size=args.hidden, num_layers=args.layers, seed=args.seed)
    opt = optim.Adam(model, lr=args.lr)

    def train_step(inputs, targets, state):
        model.zero_grad()
        loss, state = model.forward(inputs, targets, state)
        model.backward()
        optim.clip_grad_norm(model, 5.0)
        opt.step()
        return loss, state

    def evaluate():
        total, state = 0.0, None
        for inputs, targets in val:
            loss, state = model.forward(inputs, targets, state, train=False)
            total += loss
        return total / len(val)
    return train_step, evaluate


def run_torch(args, vocab, train, val):
    import torch
    torch.manual_seed(args.seed)
    V = len(vocab)

    class LM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(V, args.hidden, num_layers=args.layers)
            self.head = torch.nn.Linear(args.hidden, V)

        def forward(self, ids, state):
            y, state = self.rnn(torch.nn.functional.one_hot(ids, V).float(), state)
            return self.head(y), state

    model = LM()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.T))

    def train_step(inputs, targets, state):
        opt.zero_grad()
        logits, state = model(as_t(inputs), state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), as_t(targets).reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.item(), tuple(s.detach() for s in state)

    def evaluate():
        total, state = 0.0, None
        with torch.inference_mode():
            for inputs, targets in val:
                logits, state = model(as_t(inputs), state)
                total += torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                                           as_t(targets).reshape(-1)).item()
        return total / len(val)
    return train_step, evaluate


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--impl", choices=["fastrnn", "torch"], required=True)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.impl == "torch":
        import torch
        torch.set_num_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count())))
    vocab, train, val = data(50, 50)
    train_step, evaluate = (run_fastrnn if args.impl == "fastrnn" else run_torch)(args, vocab, train, val)
    budget, start = args.minutes * 60, time.perf_counter()
    it, state, best, last = 0, None, math.inf, math.inf
    while time.perf_counter() - start < budget:
        k = it % len(train)
        if k == 0:
            state = None                      # a new epoch restarts the streams
        loss, state = train_step(*train[k], state)
        it += 1
        if it % args.eval_every == 0:
            last = evaluate()
            best = min(best, last)
            print(f"{args.impl} iter {it} ({time.perf_counter() - start:.0f} s): train {loss:.4f} "
                  f"val {last:.4f}", file=sys.stderr, flush=True)
    print(json.dumps(dict(impl=args.impl, minutes=args.minutes, iterations=it,
                          epochs=round(it / len(train), 2), best_val=best, last_val=last,
                          threads=os.environ.get("OPENBLAS_NUM_THREADS", "default"))))


if __name__ == "__main__":
    main()
