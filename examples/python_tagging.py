"""Many-to-many (equal lengths): tag every character of Python source with its token type.

Data: .py files of the running interpreter's standard library (a seeded choice), tagged by the
stdlib `tokenize` module: NAME (identifiers and keywords), OP, NUMBER, STRING, COMMENT, and
"other" (spaces, newlines, indentation). Files are split 80/20 by file and cut into pieces of at
most 200 characters at line ends. A bidirectional LSTM SequenceTagger over character ids learns
the tags; prints the per-character test accuracy next to the per-character majority tag
baseline (each character gets the tag it most often has in the training files).

    python examples/python_tagging.py [--quick] [--json] [--write-data python.conll] [--int8]

--int8 also reports the per-character test accuracy after fastrnn.quantize (int8 weights).
"""
import sys

import numpy as np

from _common import Timer, parser, report, show_command
from _data import TAGS, char_tags, chunks, split_indices, stdlib_sources, train

import fastrnn

ESCAPES = {" ": "<sp>", "\n": "<nl>", "\t": "<tab>", "\r": "<cr>", "\f": "<ff>", "\v": "<vt>"}


def pieces(sources, max_len=200):
    """[(text, tag ids)] of every source that tokenizes, cut into pieces."""
    out = []
    for text in sources:
        tags = char_tags(text)
        if tags is not None:
            out += chunks(text, tags, max_len)
    return out


def conll(data):
    """CoNLL lines: one `character tag` per line (whitespace characters escaped as <sp>, <nl>,
    ..., any other whitespace as <ws>), a blank line after each piece."""
    for text, tags in data:
        for c, t in zip(text, tags):
            yield f"{ESCAPES.get(c, '<ws>' if c.isspace() else c)} {TAGS[t]}"
        yield ""


def char_majority(data, vocab):
    """(V,) the most frequent tag of each character id in `data` (unseen: the overall majority)."""
    counts = np.zeros((len(vocab), len(TAGS)), np.int64)
    for text, tags in data:
        np.add.at(counts, (vocab.encode(text), tags), 1)
    best = counts.argmax(1)
    best[counts.sum(1) == 0] = counts.sum(0).argmax()
    return best


def tag_accuracy(model, vocab, data):
    """(correctly tagged characters, characters) of `model` on `data`."""
    correct = total = 0
    for k in range(0, len(data), 64):
        part = data[k:k + 64]
        ids, lengths = fastrnn.pad_sequences([vocab.encode(t) for t, _ in part])
        for pred, (_, tags) in zip(model.predict(ids, lengths), part):
            correct += int((np.asarray(pred) == tags).sum())
            total += len(tags)
    return correct, total


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--int8", action="store_true", help="also report the int8-quantized model's accuracy")
    args = p.parse_args(argv)
    sources = list(stdlib_sources(12 if args.quick else 40, seed=args.seed).values())
    tr, te = split_indices(len(sources), 0.2, args.seed)
    train_data, test_data = pieces([sources[i] for i in tr]), pieces([sources[i] for i in te])
    show_command(args, "fastrnn train --task tag {data} --level word --cell lstm --bidirectional "
                       "--hidden 64 --embed 32 --epochs 3", lambda: list(conll(train_data + test_data)))
    timer = Timer()
    vocab = fastrnn.Vocab.build("".join(t for t, _ in train_data), "char")
    model = fastrnn.SequenceTagger(len(TAGS), vocab_size=len(vocab), embed_size=32, hidden_size=64,
                                   bidirectional=True, seed=args.seed)
    batches = fastrnn.PaddedBatches([vocab.encode(t) for t, _ in train_data], [g for _, g in train_data],
                                    batch_size=32, seed=args.seed, targets_per_step=True)
    seconds = train(model, batches, epochs=1 if args.quick else 3, lr=5e-3, args=args)
    correct, total = tag_accuracy(model, vocab, test_data)
    extra = {}
    if args.int8:
        fastrnn.quantize(model)
        extra["int8_accuracy"] = tag_accuracy(model, vocab, test_data)[0] / total
    best = char_majority(train_data, vocab)
    base = sum(int((best[vocab.encode(t)] == g).sum()) for t, g in test_data)
    return report(args, dict(accuracy=correct / total, **extra, char_majority_baseline=base / total,
                             train_chars=int(batches.lengths.sum()), test_chars=total,
                             train_seconds=seconds, seconds=timer.seconds))


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
