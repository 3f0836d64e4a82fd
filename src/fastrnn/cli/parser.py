"""The argparse parser of the `fastrnn` command: every subcommand and its options. Options of
`fastrnn train` stay None when not given (each task fills in its own defaults, and a resumed run
can tell which flags were given); the help texts state the defaults."""
import argparse

from .options import (FRACTION, NON_NEGATIVE, POSITIVE, Parser, non_negative_fraction, number,
                      parse_duration, regex)
from .run import DEFAULT_OUT
from .sources import EMBEDDED_MAX_TIME

LEVELS = ("char", "word", "char:word", "word:char")


def build_parser():
    """The argparse parser of the `fastrnn` command."""
    from .._version import __version__
    from ..nn.recurrent import block_names
    from . import plot, quantize, tasks
    p = Parser(prog="fastrnn", description="Fast CPU recurrent language models.")
    p.add_argument("--version", action="version", version=f"fastrnn {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a language model on a text file, or a --task model")
    t.add_argument("corpus", nargs="?", help="UTF-8 text: a file, a directory (its text files, "
                   "sorted), a quoted glob or - for stdin (default: the Python stdlib's source); "
                   "or the --task's labelled file")
    t.add_argument("--level", choices=LEVELS,
                   help="default: char (seq2seq: SOURCE:TARGET levels such as char:word)")
    t.add_argument("--min-count", type=POSITIVE,
                   help="rarer tokens become <unk> (default: 1, or 100 on the embedded corpus)")
    t.add_argument("--cell", choices=block_names(), help="default: lstm")
    t.add_argument("--hidden", type=POSITIVE, help="hidden units per layer (default: 128)")
    t.add_argument("--layers", type=POSITIVE, help="default: 2")
    t.add_argument("--dropout", type=FRACTION, help="in [0, 1) (default: 0)")
    t.add_argument("--embed", type=POSITIVE, help="embedding size (default: one-hot input)")
    t.add_argument("--batch", type=POSITIVE, help="default: 50")
    t.add_argument("--seq-len", type=POSITIVE, help="default: 50")
    t.add_argument("--epochs", type=POSITIVE, help="default: 10, or 1 on the embedded corpus")
    t.add_argument("--max-time", type=parse_duration,
                   help=f"time budget such as 90s or 10m (default: none, {EMBEDDED_MAX_TIME} on the embedded corpus)")
    t.add_argument("--lr", type=number(0, low_open=True), help="default: 0.002")
    t.add_argument("--optimizer", choices=["adam", "adamw", "rmsprop", "sgd", "adagrad"],
                   help="default: adam")
    t.add_argument("--clip", type=number(0), help="global gradient-norm clip (0 = off; default: 5)")
    t.add_argument("--lr-decay", type=number(0, 1, low_open=True),
                   help="learning-rate factor in (0, 1] per epoch (or per --lr-decay-every iterations)")
    t.add_argument("--lr-decay-every", type=POSITIVE, metavar="N",
                   help="decay the learning rate every N iterations instead of every epoch")
    t.add_argument("--val-frac", type=FRACTION, help="in [0, 1) (default: 0.05)")
    t.add_argument("--test-frac", type=FRACTION, help="in [0, 1) (default: 0)")
    t.add_argument("--eval-every", type=POSITIVE, help="iterations between validations (default: 200)")
    t.add_argument("--out", help=f"directory for best.npz, last.npz, log.jsonl (default: {DEFAULT_OUT}, "
                   "or the resumed run's directory)")
    t.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue the run saved in this file/directory; flags given with it change "
                        "that run's settings where they can (epochs, time, lr, ...)")
    t.add_argument("--data-changed-ok", action="store_true",
                   help="with --resume: go on although the data file changed since the run started "
                        "(recorded in the checkpoints)")
    t.add_argument("--seed", type=NON_NEGATIVE, help="default: 0")
    t.add_argument("--dtype", choices=["float32", "float64"], help="default: float32")
    t.add_argument("--precision", choices=["float32", "bf16"],
                   help="the recurrent layers' products: bf16 mixed precision (float32 weights and "
                        "checkpoints) or float32 (default; a resume keeps the run's unless given)")
    t.add_argument("--threads", type=POSITIVE,
                   help="kernel threads: fastrnn's team and BLAS (default: the CPUs this process may use)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_train_options(t)
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI (detected by itself under mpiexec/mpirun; needs "
                        "fastrnn[mpi]); --batch is the global batch, split across the ranks")

    s = sub.add_parser("sample", help="generate text from a checkpoint")
    s.add_argument("checkpoint", help="a .npz checkpoint, or a training directory (uses best.npz)")
    s.add_argument("--prime", default="")
    s.add_argument("--length", type=NON_NEGATIVE, default=500,
                   help="tokens to generate (0: print the prime only)")
    s.add_argument("--temperature", type=number(0, low_open=True), default=1.0)
    s.add_argument("--top-k", type=POSITIVE)
    s.add_argument("--top-p", type=number(0, 1, low_open=True))
    s.add_argument("--argmax", action="store_true", help="always take the most likely token")
    s.add_argument("--stop", default=None, help="stop when this string is generated")
    s.add_argument("--seed", type=NON_NEGATIVE)
    s.add_argument("--condition", metavar="LABEL", help="a ConditionedGenerator's condition: a label, "
                   "a class id or comma-separated numbers (the other flags apply as for a language "
                   "model; not with --beam)")
    s.add_argument("--stream", action="store_true", help="print the text as it is generated")
    s.add_argument("--beam", type=POSITIVE, metavar="N", help="beam search with N beams: the most "
                   "likely text (by mean log-probability per token) instead of a sample")
    s.add_argument("--threads", type=POSITIVE)
    s.add_argument("--precision", choices=["float32", "bf16"],
                   help="the recurrent layers' products (default: the run's)")
    tasks.add_parsers(sub)
    quantize.add_parser(sub, POSITIVE)

    e = sub.add_parser("export", help="write a checkpoint (language model, classifier, tagger or "
                       "regressor) as an ONNX graph")
    e.add_argument("checkpoint", help="a .npz checkpoint, or a training directory (uses best.npz)")
    e.add_argument("output", help="the .onnx file to write")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (14 or later)")
    e.add_argument("--lengths", action="store_true", help="add a lengths (B,) input for ragged batches")
    e.add_argument("--no-initial-state", action="store_true", help="no h0/c0 inputs: start from zeros "
                   "(the classifier, tagger and regressor always do)")

    b = sub.add_parser("bench", help="measure fastrnn against fastrnn.reference and torch on this machine")
    b.add_argument("--quick", action="store_true", help="a small subset (under a minute)")
    b.add_argument("--filter", type=regex, metavar="REGEX", help="only workloads whose name matches")
    b.add_argument("--threads", type=POSITIVE, help="kernel, BLAS and torch threads (default: the CPUs this process may use)")
    b.add_argument("--precision", choices=["float32", "bf16"],
                   help="fastrnn's float32 recurrent layers in bf16 mixed precision (default: float32)")
    b.add_argument("--json", metavar="PATH", help="write the report as JSON (schema: docs/bench.md)")
    b.add_argument("--markdown", metavar="PATH", help="write the report's tables as Markdown")
    b.add_argument("--plot", metavar="PATH", help="write a PNG: speed-up over torch and %% of peak (matplotlib)")
    b.add_argument("--compare", nargs=2, metavar=("OLD.json", "NEW.json"),
                   help="compare two JSON reports instead of measuring; exit 1 on a slowdown")
    b.add_argument("--threshold", type=non_negative_fraction, default=0.1,
                   help="--compare flags new/old above 1 + THRESHOLD (default 0.1)")

    i = sub.add_parser("info", help="versions, BLAS, threads and CPU features")
    i.add_argument("--threads", type=POSITIVE)
    plot.add_parser(sub)
    return p


def add_train_options(t):
    """The options of `fastrnn train` beyond the model and schedule: char-rnn's schedule and
    initialisation (every model), --split (language models) and the task options."""
    from ..tasks import ALL_TASKS
    t.add_argument("--clip-value", type=number(0), metavar="V",
                   help="also clamp every gradient element to [-V, V] (char-rnn's grad_clip; "
                        "0 = off, the default); use --clip 0 for the clamp alone")
    t.add_argument("--lr-decay-after", type=NON_NEGATIVE, metavar="N",
                   help="apply --lr-decay only once N epochs are done (char-rnn's "
                        "learning_rate_decay_after; default: 0, from the start)")
    t.add_argument("--init-range", type=number(0, low_open=True), metavar="R",
                   help="initialise every parameter uniform in [-R, R] and LSTM forget-gate "
                        "biases to 1, as char-rnn (0.08); default: each layer's own initialisation")
    t.add_argument("--early-stop", type=POSITIVE, metavar="N",
                   help="stop once the validation loss has not improved for N validations in a row "
                        "(every --eval-every iterations; task runs validate once per epoch)")
    t.add_argument("--task", choices=list(ALL_TASKS),
                   help="lm (default): a language model on a text corpus; classify: text<TAB>label "
                        "lines; tag: CoNLL token/tag lines; seq2seq: source<TAB>target lines; "
                        "forecast: a CSV of numbers (task defaults: --hidden 64 --layers 1 --embed 32 "
                        "--batch 32 --epochs 10 --val-frac 0.1, validation every epoch)")
    t.add_argument("--split", choices=["tail", "interleaved"],
                   help="language models: validation is the corpus' tail (default) or the last "
                        "--val-frac of every batch stream (char-rnn)")
    t.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="bidirectional encoder (default: on for tag, off otherwise)")
    t.add_argument("--pool", choices=["last", "mean", "max"], help="classify: pooling (default: last)")
    t.add_argument("--target", metavar="COL", help="forecast: the column to predict, a header name "
                                                   "or 0-based index (default: the last)")
    t.add_argument("--horizon", type=POSITIVE, help="forecast: values to predict (default: 1)")
    t.add_argument("--window", type=POSITIVE, help="forecast: rows of history per input (default: 24)")
    t.add_argument("--beam", type=POSITIVE, help="seq2seq: beam width for validation (default: greedy)")
    t.add_argument("--attention", nargs="?", const="general", choices=["general", "additive"],
                   help="seq2seq: an AttentionSeq2Seq, its score general (Luong, the default) or "
                        "additive (Bahdanau); default: Seq2Seq without attention")
