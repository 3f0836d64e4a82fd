"""One-to-many: generate Python identifiers conditioned on what they name.

Data: the names defined in the running interpreter's standard library, found with `ast`:
functions (def), classes (class) and constants (module-level UPPER_CASE assignments), split
85/15 per kind (seeded). A ConditionedGenerator (the kind -> the LSTM's initial state -> a
character model ending each name with <eos>) is trained next to the same model given no
condition (one class for everything). Prints the held-out loss per kind (nats per character,
<eos> included) of both, and samples for each kind.

    python examples/conditioned_names.py [--quick] [--json]
"""
import sys

import numpy as np

from _common import Timer, parser, report
from _data import identifiers, split_indices, stdlib_sources, train

import fastrnn

KINDS = ["function", "class", "constant"]
BOS, EOS = 0, 1


def batches_by_length(names, kinds, encode, batch_size, seed):
    """[(kind ids (B,), tokens (B, T))]: names of one length per batch (no padding, so the loss
    is exact), each name's characters followed by <eos>; batches in a seeded order."""
    by_len = {}
    for name, kind in zip(names, kinds):
        by_len.setdefault(len(name), []).append((encode(name) + [EOS], kind))
    out = []
    for items in by_len.values():
        for k in range(0, len(items), batch_size):
            part = items[k:k + batch_size]
            out.append((np.array([c for _, c in part]), np.array([t for t, _ in part])))
    order = np.random.default_rng(seed).permutation(len(out))
    return [out[i] for i in order]


def heldout_loss(model, batches):
    """Mean loss per token over `batches` (each batch's mean weighted by its token count)."""
    total = sum(model.forward(b, train=False) * b[1].size for b in batches)
    return total / sum(b[1].size for b in batches)


def main(argv=None):
    p = parser(__doc__, write_data=False)
    p.add_argument("--save", metavar="PATH", help="also save the conditioned model, for "
                   "`fastrnn sample PATH --condition function|class|constant`")
    args = p.parse_args(argv)
    if not args.json:
        print("equivalent command: none for training; `fastrnn sample CHECKPOINT --condition "
              "class` samples from the model saved with --save CHECKPOINT")
    timer = Timer()
    found = identifiers(stdlib_sources(80 if args.quick else 10_000, seed=args.seed))
    alphabet = sorted({c for names in found.values() for name in names for c in name})
    stoi = {c: i + 2 for i, c in enumerate(alphabet)}               # 0 <bos>, 1 <eos>
    encode = lambda name: [stoi[c] for c in name]                   # noqa: E731
    split = {kind: split_indices(len(found[kind]), 0.15, args.seed) for kind in KINDS}
    train_names = [(found[k][i], c) for c, k in enumerate(KINDS) for i in split[k][0]]
    train_set = batches_by_length([n for n, _ in train_names], [c for _, c in train_names], encode, 64,
                                  args.seed)
    test_sets = {k: batches_by_length([found[k][i] for i in split[k][1]], [c] * len(split[k][1]),
                                      encode, 256, 0) for c, k in enumerate(KINDS)}
    epochs = 3 if args.quick else 10
    metrics = {}
    for label, classes in (("conditioned", len(KINDS)), ("unconditioned", 1)):
        model = fastrnn.ConditionedGenerator(len(alphabet) + 2, num_classes=classes, hidden_size=128,
                                             embed_size=32, bos_id=BOS, seed=args.seed)
        # the unconditioned model sees class 0 for every name: same network, no information
        relabel = (lambda b: b) if classes > 1 else (lambda b: (np.zeros_like(b[0]), b[1]))
        metrics[f"{label}_train_seconds"] = train(
            model, train_set, epochs=epochs, lr=3e-3, args=args,
            forward=lambda b, train, m=model, r=relabel: m.forward(r(b), train=train))
        for kind, batches in test_sets.items():
            metrics[f"{label}_{kind}_loss"] = heldout_loss(model, [relabel(b) for b in batches])
        if classes > 1:
            samples = {k: sample_names(model, c, alphabet, args.seed) for c, k in enumerate(KINDS)}
            if args.save:       # the Vocab's ids are the script's: 0 (<unk>; here <bos>), 1 <eos>, then the alphabet
                fastrnn.save(args.save, model, fastrnn.Vocab(["<unk>", "<eos>"] + alphabet), labels=KINDS)
    metrics.update({f"{k}_names": len(found[k]) for k in KINDS}, seconds=timer.seconds)
    if args.json:
        metrics["samples"] = samples
    else:
        for kind, names in samples.items():
            print(f"  {kind:>8}: {' '.join(names)}")
    return report(args, metrics)


def sample_names(model, kind, alphabet, seed, count=6):
    """`count` names sampled (temperature 0.8) for one kind, each cut at its <eos>."""
    ids = model.generate(np.full(count, kind), 30, temperature=0.8, seed=seed)
    names = []
    for row in ids.tolist():
        row = row[:row.index(EOS)] if EOS in row else row
        names.append("".join(alphabet[i - 2] for i in row if i >= 2))
    return names


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
