"""Issue 22's accuracy targets: the same training run in float32 and in bf16, same seed and steps.

    python bench/bf16_accuracy.py lm  [--iterations 423]   # 2x256 char-LSTM, tiny-shakespeare
    python bench/bf16_accuracy.py gru [--epochs 20] [--seeds 10]   # GRU classifier, scikit-learn's digits

`lm`: a 2x256 char-LSTM on ../shared/data/tinyshakespeare.txt (bench/tinyshakespeare.py's corpus),
batch 50 x 50, Adam 2e-3, clip 5, seed 0; training = the first 95 % of the characters, validation
= the first --val-tokens of the last 5 % (the setup of the numbers in docs/performance.md, "bf16
mixed precision": 150 iterations and one epoch = 423). Target: the bf16 run's validation loss within
1 % of the float32 run's. Both runs' weights are also evaluated in float32 (`val_float32_eval`).
`gru`: examples/digits_classify.py's setup with cell="gru" (needs scikit-learn); target: test
accuracy within 0.5 points. Each run prints one JSON line, then a summary line with the relative
difference. Not a timing benchmark (the seconds are only for planning a run).
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                                  # bench/tinyshakespeare.py's CORPUS
from tinyshakespeare import CORPUS  # noqa: E402


def lm_run(precision, args):
    """One LM run; returns its JSON record."""
    from fastrnn.data import Vocab
    from fastrnn.models import LanguageModel
    from fastrnn.train import Trainer
    with open(args.corpus, encoding="utf-8") as f:
        text = f.read()
    vocab = Vocab.build(text)
    ids = vocab.encode(text)
    cut = int(len(ids) * 0.95)
    model = LanguageModel(len(vocab), hidden_size=256, num_layers=2, seed=args.seed)
    trainer = Trainer(model, vocab, ids[:cut], ids[cut:], batch_size=50, seq_len=50, lr=2e-3,
                      eval_every=args.iterations, val_tokens=args.val_tokens, progress=False,
                      out=None, precision=precision)
    t0 = time.perf_counter()
    trainer.fit(max_iters=args.iterations)
    own = trainer.evaluate()                # in the run's own precision
    model.precision = "float32"             # the same float32 evaluation for both runs' weights
    val32 = trainer.evaluate()
    return dict(task="lm", precision=precision, iterations=args.iterations, val_loss=own,
                val_float32_eval=val32, seconds=round(time.perf_counter() - t0, 1))


def gru_run(precision, args):
    """One GRU-classifier run; returns its JSON record."""
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    from _data import digits, train

    import fastrnn
    (x_train, y_train), (x_test, y_test) = digits(0)
    model = fastrnn.SequenceClassifier(10, input_size=8, hidden_size=64, cell="gru", seed=args.seed)
    batches = fastrnn.PaddedBatches(list(x_train), y_train, batch_size=32, seed=args.seed)
    quiet = argparse.Namespace(json=True)
    seconds = train(model, batches, epochs=args.epochs, lr=1e-2, args=quiet, precision=precision)
    accuracy = float((model.predict(x_test) == y_test).mean())
    return dict(task="gru", precision=precision, epochs=args.epochs, test_accuracy=accuracy,
                test_images=len(y_test), seconds=round(seconds, 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("task", choices=["lm", "gru"])
    p.add_argument("--iterations", type=int, default=423, help="lm: training iterations (one epoch: 423)")
    p.add_argument("--val-tokens", type=int, default=50_000, help="lm: validation characters")
    p.add_argument("--epochs", type=int, default=20, help="gru: training epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1, help="gru: also the mean over this many seeds from --seed")
    p.add_argument("--corpus", default=CORPUS, help="lm: the text (default: ../shared/data/tinyshakespeare.txt "
                   "beside the checkout, as bench/tinyshakespeare.py)")
    args = p.parse_args(argv)
    run = lm_run if args.task == "lm" else gru_run
    f32, bf16 = (run(precision, args) for precision in ("float32", "bf16"))
    for record in (f32, bf16):
        print(json.dumps(record), flush=True)
    if args.task == "lm":
        rel = (bf16["val_loss"] - f32["val_loss"]) / f32["val_loss"]
        print(f"lm 2x256 validation loss: float32 {f32['val_loss']:.5f}, bf16 {bf16['val_loss']:.5f}, "
              f"relative difference {100 * rel:+.3f} % "
              f"(target: within 1 %: {'met' if abs(rel) <= 0.01 else 'MISSED'})")
    else:
        diff = 100 * (bf16["test_accuracy"] - f32["test_accuracy"])
        print(f"gru classifier test accuracy: float32 {100 * f32['test_accuracy']:.2f} %, bf16 "
              f"{100 * bf16['test_accuracy']:.2f} %, difference {diff:+.2f} points "
              f"(target: within 0.5 points: {'met' if abs(diff) <= 0.5 else 'MISSED'})")
        if args.seeds > 1:       # one test image is 0.28 points: the seeds' mean says more than one run
            pairs = [(f32["test_accuracy"], bf16["test_accuracy"])]
            for seed in range(args.seed + 1, args.seed + args.seeds):
                one = argparse.Namespace(**{**vars(args), "seed": seed})
                pairs.append(tuple(run(precision, one)["test_accuracy"] for precision in ("float32", "bf16")))
            m32, m16 = (100 * sum(p[i] for p in pairs) / len(pairs) for i in (0, 1))
            print(f"gru classifier over seeds {args.seed}-{args.seed + args.seeds - 1}: per seed bf16 - float32 "
                  f"{', '.join(f'{100 * (b - a):+.2f}' for a, b in pairs)} points; mean float32 {m32:.2f} %, "
                  f"bf16 {m16:.2f} %, difference {m16 - m32:+.2f} points "
                  f"(target: within 0.5 points: {'met' if abs(m16 - m32) <= 0.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
