"""char-rnn's tiny-shakespeare run, reproduced with fastrnn.

Settings of karpathy/char-rnn's train.lua defaults: a 2-layer LSTM of 128 units on one-hot
characters, batch 50, sequence 50, RMSprop (lr 2e-3, alpha 0.95), gradients clamped element-wise
to [-5, 5], weights uniform in [-0.08, 0.08] with forget-gate biases 1, dropout 0, 30 epochs, and
after every epoch e >= 10 the learning rate multiplied by 0.97 (train.lua: `if epoch >=
learning_rate_decay_after then lr = lr * decay`).

The data split is char-rnn's (CharSplitLMMinibatchLoader), "interleaved": the corpus, cut to a
multiple of batch*seq, is laid out as 50 contiguous streams; window k holds steps [50k, 50k+50)
of every stream; the first floor(0.95 * windows) windows train and the rest validate, so the
validation set is the last 5 % of every stream, not the last 5 % of the text. The validation loss
is the mean over all validation windows with the state carried across them (as eval_split).
char-rnn's published validation loss is 1.3950 at epoch 30.

One difference: char-rnn carries the training state from an epoch's last window into the next
epoch's first; fastrnn's StateCarry starts each epoch from zeros (the two are not continuous text).

    python examples/charrnn_shakespeare.py ../shared/data/tinyshakespeare.txt
"""
import json
import os
import sys
import tempfile

import numpy as np

from _common import Timer, parser, report

import fastrnn
from fastrnn.train import Trainer
from fastrnn.train.callbacks import Callback, StateCarry


def interleaved_split(ids, batch_size, seq_len, train_frac=0.95):
    """char-rnn's windows: ([(x, y) train windows], [(x, y) validation windows]), each (B, T).

    y is x shifted by one, the last target wrapping to the first id (as char-rnn's ydata).
    Written here because fastrnn.data has no interleaved split yet (the CLI's `--split
    interleaved` is being added separately)."""
    n = len(ids) - len(ids) % (batch_size * seq_len)
    if n == 0:
        raise ValueError(f"ids: {len(ids)} tokens are fewer than one window of "
                         f"{batch_size} x {seq_len}")
    x = np.asarray(ids[:n], np.int64)
    y = np.roll(x, -1)
    xs, ys = x.reshape(batch_size, -1), y.reshape(batch_size, -1)
    windows = [(np.ascontiguousarray(xs[:, k:k + seq_len]), np.ascontiguousarray(ys[:, k:k + seq_len]))
               for k in range(0, xs.shape[1], seq_len)]
    ntrain = int(np.floor(len(windows) * train_frac))
    return windows[:ntrain], windows[ntrain:]


class CharRNNDecay(Callback):
    """Multiply the learning rate by `factor` after every epoch e >= `after` (char-rnn)."""

    def __init__(self, factor=0.97, after=10):
        self.factor, self.after = factor, after

    def on_epoch_end(self, trainer):
        if trainer.epoch >= self.after:
            trainer.optimizer.lr *= self.factor


def charrnn_init(model, rng):
    """char-rnn's initialisation: all parameters U(-0.08, 0.08), LSTM forget-gate biases 1."""
    model.params[:] = rng.uniform(-0.08, 0.08, model.params.size)
    H = model.config["hidden_size"]
    for name, p in model.named_parameters().items():
        if name.startswith("rnn.bias_ih_l"):          # gate order i f g o: f is the second block
            p[H:2 * H] = 1.0


def clamp_gradients(model, limit):
    """Make model.backward() clamp every gradient element to [-limit, limit] (char-rnn's clip)."""
    backward = model.backward

    def clamped():
        out = backward()
        np.clip(model.grads, -limit, limit, out=model.grads)
        return out
    model.backward = clamped


def main(argv=None):
    p = parser(__doc__, write_data=False)
    p.add_argument("corpus", help="the text file, e.g. ../shared/data/tinyshakespeare.txt")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", help="directory for checkpoints and log.jsonl (default: a temp dir)")
    args = p.parse_args(argv)
    with open(args.corpus, encoding="utf-8") as f:
        text = f.read()
    hidden, batch, seq, epochs = 128, 50, 50, args.epochs
    if args.quick:                   # a small slice and model: checks the pipeline, not the number
        text, hidden, batch, epochs = text[:60_000], 64, 20, 3
    vocab = fastrnn.Vocab.build(text, "char")
    train, val = interleaved_split(vocab.encode(text), batch, seq)
    rng = np.random.default_rng(args.seed)
    model = fastrnn.LanguageModel(len(vocab), cell="lstm", hidden_size=hidden, num_layers=2,
                                  seed=args.seed)
    charrnn_init(model, rng)
    clamp_gradients(model, 5.0)
    out = args.out or tempfile.mkdtemp(prefix="charrnn-")
    carry = StateCarry(model)
    trainer = Trainer(model, train, val, forward=carry, callbacks=[CharRNNDecay()], optimizer="rmsprop",
                      lr=2e-3, clip=None, epochs=epochs, eval_every=len(train), explode_factor=None,
                      out=out, progress=not args.json, items=lambda b: b[0].size)
    if not args.json:
        print(f"{len(text)} chars, vocabulary {len(vocab)}, {len(train)} training and {len(val)} "
              f"validation windows of {batch}x{seq}; checkpoints in {out}")
        print(f"equivalent command: fastrnn train {args.corpus} --split interleaved --cell lstm "
              f"--hidden {hidden} --layers 2 --batch {batch} --seq-len {seq} --optimizer rmsprop "
              f"--lr 2e-3 --lr-decay 0.97 --val-frac 0.05 --epochs {epochs}  (approximately: the CLI "
              f"decays from epoch 1 and clips the gradient norm; this script decays after epoch 10 "
              f"and clamps elements, as char-rnn)")
    timer = Timer()
    trainer.fit()
    with open(os.path.join(out, "log.jsonl")) as f:
        val_losses = [json.loads(line)["val_loss"] for line in f]
    metrics = dict(val_loss_per_epoch=[round(v, 4) for v in val_losses], final_val_loss=val_losses[-1],
                   best_val_loss=min(val_losses), best_epoch=int(np.argmin(val_losses)) + 1,
                   charrnn_published=1.3950, unigram_baseline=unigram_loss(train, val, len(vocab)),
                   seconds=timer.seconds)
    return report(args, metrics)


def unigram_loss(train, val, V):
    """Baseline: cross-entropy (nats/char) of the validation windows under the training
    windows' character frequencies (add-one smoothed)."""
    counts = np.bincount(np.concatenate([y.ravel() for _, y in train]), minlength=V) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-np.mean(np.concatenate([logp[y.ravel()] for _, y in val])))


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
