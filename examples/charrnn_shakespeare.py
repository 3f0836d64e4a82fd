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

Every piece is fastrnn's own: the split is `fastrnn.tasks.interleaved.interleaved_split` with
wrap=True (char-rnn's exact layout, wrap-around target included; the measured run in the README
used that layout, so the script keeps it), the initialisation is `fastrnn.train.init_uniform`,
and the clamp, the decay and its start are the Trainer's clip_value, lr_decay and lr_decay_after.
The `fastrnn train` command it prints sets the same, except that the CLI's interleaved split keeps
the true last target (no wrap-around), so its streams are (N - 1) // 50 characters long instead
of char-rnn's N // 2500 * 50 and each window's text is shifted by a few characters.

    python examples/charrnn_shakespeare.py ../shared/data/tinyshakespeare.txt
"""
import json
import os
import sys
import tempfile

import numpy as np

from _common import Timer, parser, report

import fastrnn
from fastrnn.tasks.interleaved import interleaved_split
from fastrnn.tasks.lm import carry
from fastrnn.train import Trainer, init_uniform

# train.lua's defaults (RMSprop's alpha 0.95 is fastrnn's default too)
CHARRNN = dict(optimizer="rmsprop", lr=2e-3, clip=None, clip_value=5.0, lr_decay=0.97,
               lr_decay_after=10)
INIT_RANGE = 0.08


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
    train, val = interleaved_split(vocab.encode(text), batch, seq, val_frac=0.05, wrap=True)
    model = fastrnn.LanguageModel(len(vocab), cell="lstm", hidden_size=hidden, num_layers=2,
                                  seed=args.seed)
    init_uniform(model, INIT_RANGE, seed=args.seed)
    out = args.out or tempfile.mkdtemp(prefix="charrnn-")
    trainer = Trainer(model, train, val, vocab=vocab, **carry(model), batch_size=batch, seq_len=seq,
                      **CHARRNN, epochs=epochs, eval_every=len(train), explode_factor=None, out=out,
                      progress=not args.json)
    if not args.json:
        print(f"{len(text)} chars, vocabulary {len(vocab)}, {len(train)} training and {len(val)} "
              f"validation windows of {batch}x{seq}; checkpoints in {out}")
        print(f"equivalent command: fastrnn train {args.corpus} --split interleaved --cell lstm "
              f"--hidden {hidden} --layers 2 --batch {batch} --seq-len {seq} --optimizer rmsprop "
              f"--lr 2e-3 --lr-decay 0.97 --lr-decay-after 10 --clip 0 --clip-value 5 "
              f"--init-range {INIT_RANGE} --val-frac 0.05 --epochs {epochs}  (its streams have no "
              f"wrap-around target: see the docstring)")
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
