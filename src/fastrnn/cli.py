"""The `fastrnn` command: `fastrnn train [CORPUS]`, `fastrnn sample CHECKPOINT`,
`fastrnn export CHECKPOINT MODEL.onnx`, `fastrnn bench`, `fastrnn info`; the task side
(`train --task ...`, `predict`, `evaluate`, `sample --condition`) lives in `cli_tasks`.

With no CORPUS, `fastrnn train` learns from the Python standard library's own source code (the
running interpreter's `*.py` files, in sorted order): a real multi-megabyte corpus that every
Python install has, so the first command works with nothing downloaded.
"""
import argparse
import math
import os
import re
import signal
import sys

DEFAULT_OUT = "fastrnn-run"
EMBEDDED_MAX_TIME = "8m"          # the embedded default must finish within 10 minutes


def parse_duration(text):
    """Seconds in a duration such as '90', '90s', '10m', '1.5h' (used by --max-time); must be > 0."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 10m or 1h, got {text!r}")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return seconds


def integer(low):
    """argparse type: an integer >= low."""
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    return convert


def number(low=None, high=None, low_open=False, high_open=False):
    """argparse type: a finite float in the interval given by low/high (open or closed ends)."""
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"

    def convert(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = math.isfinite(value)
        if low is not None:
            ok = ok and (value > low if low_open else value >= low)
        if high is not None:
            ok = ok and (value < high if high_open else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
        return value
    return convert


POSITIVE, NON_NEGATIVE = integer(1), integer(0)
FRACTION = number(0, 1, high_open=True)

# train options: argparse leaves them None when not given, so that a resumed run can tell which
# flags the user gave; a new run fills in these defaults
TRAIN_DEFAULTS = dict(level="char", cell="lstm", hidden=128, layers=2, dropout=0.0, embed=None,
                      batch=50, seq_len=50, lr=2e-3, optimizer="adam", clip=5.0, lr_decay=1.0,
                      lr_decay_every=None, val_frac=0.05, test_frac=0.0, eval_every=200, seed=0,
                      dtype="float32", min_count=None, epochs=None, max_time=None, split="tail",
                      clip_value=None, lr_decay_after=None, init_range=None, early_stop=None,
                      precision="float32")
# on --resume: these flags change the Trainer's settings (flag -> setting) ...
RESUME_SETTINGS = dict(epochs="epochs", max_time="max_time", eval_every="eval_every", lr="lr",
                       clip="clip", lr_decay="lr_decay", lr_decay_every="lr_decay_every",
                       clip_value="clip_value", lr_decay_after="lr_decay_after", early_stop="early_stop",
                       precision="precision")
# ... these are fixed by the checkpoint (model, vocabulary, batching, optimiser, RNG) ...
RESUME_FIXED = ("level", "min_count", "cell", "hidden", "layers", "dropout", "embed", "dtype",
                "seed", "batch", "seq_len", "optimizer", "init_range")
# ... and these must match how the run split its corpus (stored in the checkpoint's metadata)
RESUME_SPLIT = ("val_frac", "test_frac", "split")


# what loading a hostile checkpoint may raise besides CheckpointError: metadata that a model or
# optimiser cannot take (TypeError, LookupError...) or sizes it cannot allocate (MemoryError)
_LOAD_ERRORS = (OSError, ValueError, LookupError, TypeError, AttributeError, MemoryError)


class UsageError(Exception):
    """A bad combination of command-line options (reported like argparse's own errors)."""
    exit_code = 2       # argparse's (distributed.Setup reports it with this status)


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors, exit status 2:
    `fastrnn train: --hidden: expected an integer >= 1, got -3 (see fastrnn train --help)`
    (argparse's own error() prints the whole usage first)."""

    def error(self, message):
        message = " ".join(re.sub(r"^argument ([^:]+): ", r"\1: ", str(message)).split())
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def stdlib_corpus(max_bytes=None):
    """The stdlib's *.py source, files in sorted order, separated by blank lines."""
    import sysconfig
    root = sysconfig.get_paths()["stdlib"]
    parts, size = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "dist-packages", "__pycache__"))
        for name in sorted(f for f in filenames if f.endswith(".py")):
            try:
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    parts.append(f.read())
            except (UnicodeDecodeError, OSError):
                continue                        # a few test fixtures are deliberately not UTF-8
            size += len(parts[-1])
            if max_bytes and size >= max_bytes:
                return "\n\n".join(parts)
    return "\n\n".join(parts)


def _regex(text):
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a regular expression: {e}") from None
    return text


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number such as 0.1, got {text!r}")
    return value


def build_parser():
    """The argparse parser of the `fastrnn` command."""
    from . import __version__, cli_plot, cli_quantize, cli_tasks
    from .nn.recurrent import block_names
    p = Parser(prog="fastrnn", description="Fast CPU recurrent language models.")
    p.add_argument("--version", action="version", version=f"fastrnn {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a language model on a text file, or a --task model")
    t.add_argument("corpus", nargs="?", help="UTF-8 text: a file, a directory (its text files, "
                   "sorted), a quoted glob or - for stdin (default: the Python stdlib's source); "
                   "or the --task's labelled file")
    t.add_argument("--level", choices=cli_tasks.LEVELS,
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
    cli_tasks.add_train_options(t)
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
    s.add_argument("--condition", metavar="LABEL", help="a ConditionedGenerator's condition")
    s.add_argument("--stream", action="store_true", help="print the text as it is generated")
    s.add_argument("--beam", type=POSITIVE, metavar="N", help="beam search with N beams: the most "
                   "likely text (by mean log-probability per token) instead of a sample")
    s.add_argument("--threads", type=POSITIVE)
    s.add_argument("--precision", choices=["float32", "bf16"],
                   help="the recurrent layers' products (default: the run's)")
    cli_tasks.add_parsers(sub)
    cli_quantize.add_parser(sub, POSITIVE)

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
    b.add_argument("--filter", type=_regex, metavar="REGEX", help="only workloads whose name matches")
    b.add_argument("--threads", type=POSITIVE, help="kernel, BLAS and torch threads (default: the CPUs this process may use)")
    b.add_argument("--precision", choices=["float32", "bf16"],
                   help="fastrnn's float32 recurrent layers in bf16 mixed precision (default: float32)")
    b.add_argument("--json", metavar="PATH", help="write the report as JSON (schema: docs/bench.md)")
    b.add_argument("--markdown", metavar="PATH", help="write the report's tables as Markdown")
    b.add_argument("--plot", metavar="PATH", help="write a PNG: speed-up over torch and %% of peak (matplotlib)")
    b.add_argument("--compare", nargs=2, metavar=("OLD.json", "NEW.json"),
                   help="compare two JSON reports instead of measuring; exit 1 on a slowdown")
    b.add_argument("--threshold", type=_fraction, default=0.1,
                   help="--compare flags new/old above 1 + THRESHOLD (default 0.1)")

    i = sub.add_parser("info", help="versions, BLAS, threads and CPU features")
    i.add_argument("--threads", type=POSITIVE)
    cli_plot.add_parser(sub)
    return p


def main(argv=None):
    """Entry point of the `fastrnn` console script."""
    from . import cli_distributed
    from . import distributed as mpi
    parser = build_parser()
    args = cli_distributed.parse_args(parser, argv)     # parse_args; under MPI see cli_distributed
    threads = getattr(args, "threads", None)
    if mpi.launched():
        # several ranks: they share this host's cores (None: the Trainer asks MPI), only rank 0 prints
        threads = threads or mpi.default_threads()
        if mpi.launch_rank() != 0:
            sys.stdout = open(os.devnull, "w")
    _set_threads(threads, argv)
    try:
        from . import cli_commands, cli_quantize, cli_tasks
        return {"train": _train, "sample": cli_commands.sample, "export": cli_commands.export,
                "bench": cli_commands.bench, "info": cli_commands.info, "predict": cli_tasks.predict,
                "evaluate": cli_tasks.evaluate, "plot": cli_commands.plot,
                "quantize": cli_quantize.quantize}[args.command](args) or 0
    except UsageError as e:
        Parser(prog=f"fastrnn {args.command}").error(str(e))        # one line, exit code 2
    except mpi.SetupFailed as e:    # every rank raises it, rank 0 says which rank failed or differs
        cli_distributed.setup_failed(e)
    except SystemExit as e:         # a bad file or checkpoint: every rank finds it, rank 0 says it
        if mpi.launched() and mpi.launch_rank() != 0 and isinstance(e.code, str):
            raise SystemExit(1) from None
        raise


def _set_threads(threads, argv):
    """BLAS reads its thread count when it loads, so re-run ourselves with the variable set."""
    if threads is None:
        return
    want = {k: str(threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "FASTRNN_NUM_THREADS")}
    if any(os.environ.get(k) != v for k, v in want.items()):
        env = dict(os.environ, **want)
        argv = sys.argv[1:] if argv is None else list(argv)
        os.execve(sys.executable, [sys.executable, "-m", "fastrnn", *argv], env)


def _flag(name):
    return "--" + name.replace("_", "-")


def _given(args):
    """{option: value} of the train options given on the command line."""
    return {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k) is not None}


def _read_corpus(path):
    if path is None:
        text = stdlib_corpus()
        print(f"fastrnn: no corpus given; training on the Python standard library's source "
              f"({len(text) / 1e6:.1f} M characters)")
        return text
    from .cli_paths import read_corpus
    return read_corpus(path)       # a file, a directory of text files, a glob or - (stdin)


def _train(args):
    from . import cli_tasks
    from .cli_distributed import train_setup
    from .train import TrainingDiverged
    out = args.out or (None if args.resume else DEFAULT_OUT)
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: exists and is not a directory")
    if args.data_changed_ok and not args.resume:
        raise UsageError("--data-changed-ok: only with --resume")
    try:
        # under MPI: every rank leaves this setup ready with the same data and options, or the
        # whole job ends with the failing rank's message (see cli_distributed)
        setup, distributed = train_setup(args.distributed)
        with setup:
            if cli_tasks.wants_task(args):
                trainer, hint = cli_tasks.train(args, DEFAULT_OUT, distributed), "predict"
            else:
                given = _given(args)
                trainer = _resume(args, given, distributed) if args.resume else _new_run(args, given, distributed)
                hint = "sample"
    except ImportError as e:        # --distributed (or mpiexec) without mpi4py
        sys.exit(f"fastrnn: {e}")
    try:
        summary = trainer.fit()
    except TrainingDiverged as e:
        sys.exit(f"fastrnn: stopped: {e}")
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # exiting anyway: no traceback from a third
        where = f"; the last checkpoint is {trainer.last_checkpoint}" if trainer.last_checkpoint else ""
        print(f"fastrnn: interrupted twice, stopped{where}", file=sys.stderr)
        sys.exit(130)
    if summary.stopped == "interrupted":
        # the Trainer has restored Ctrl-C's default; a late second press (after the final save)
        # must not turn the clean exit into a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    best = summary.best_val
    val = f"; best validation loss {best:.4f}" if best < float("inf") else ""
    print(f"fastrnn: {summary.stopped} after {summary.iterations} iterations "
          f"({summary.epochs_done:.2f} epochs, {summary.seconds:.0f} s){val}")
    print(f"fastrnn: checkpoints in {trainer.out}/ (best.npz, last.npz, log.jsonl); "
          f"try: fastrnn {hint} {trainer.out}")


def _new_run(args, given, distributed=None):
    """A Trainer for a new run from the command-line options."""
    from .cli_distributed import expect_lm
    from .cli_tasks import init_weights, schedule, stored_path
    from .data import Vocab
    from .data_digest import file_digest, text_digest
    from .models import LanguageModel
    from .tasks.interleaved import lm_data
    o = dict(TRAIN_DEFAULTS, **given)
    if o["precision"] == "bf16" and o["dtype"] == "float64":
        raise UsageError("--precision bf16: needs --dtype float32 (bf16 products of float32 weights)")
    if o["val_frac"] + o["test_frac"] >= 1:
        raise UsageError(f"--val-frac + --test-frac: expected < 1, got {o['val_frac'] + o['test_frac']}")
    embedded = args.corpus is None
    text = _read_corpus(args.corpus)
    epochs = o["epochs"] or (1 if embedded else 10)
    max_time = o["max_time"] or (parse_duration(EMBEDDED_MAX_TIME) if embedded else None)
    min_count = o["min_count"] or (100 if embedded else 1)   # the stdlib has rare unicode
    out = args.out or DEFAULT_OUT
    try:
        vocab = Vocab.build(text, level=o["level"], min_count=min_count)
        expect_lm(dict(o, epochs=epochs, max_time=max_time, min_count=min_count), vocab, text)
        trainer_class, train, val, n_train = lm_data(o["split"], vocab.encode(text), o["batch"],
                                                     o["seq_len"], o["val_frac"], o["test_frac"])
        model = init_weights(LanguageModel(len(vocab), cell=o["cell"], hidden_size=o["hidden"],
                                           num_layers=o["layers"], dropout=o["dropout"],
                                           embed_size=o["embed"], dtype=o["dtype"], seed=o["seed"]), o)
        trainer = trainer_class(model, vocab, train, val, batch_size=o["batch"],
                                seq_len=o["seq_len"], **schedule(o), epochs=epochs,
                                max_time=max_time, eval_every=o["eval_every"], out=out,
                                precision=o["precision"],
                                progress=not args.quiet, distributed=distributed,
                                meta=dict(corpus=stored_path(args.corpus) or "<python stdlib>",
                                          seed=o["seed"], val_frac=o["val_frac"],
                                          test_frac=o["test_frac"], split=o["split"],
                                          init_range=o["init_range"],
                                          data_digest=file_digest(args.corpus) if args.corpus
                                          else text_digest(text)))
    except (ValueError, MemoryError) as e:
        sys.exit(f"fastrnn: {e or 'out of memory building the model'}")
    print(f"fastrnn: {model}, vocabulary {len(vocab)} ({o['level']}), "
          f"{n_train} training tokens")
    return trainer


def _resume(args, given, distributed=None):
    """A Trainer continuing the run in args.resume, with the given flags applied or refused."""
    from .data_digest import file_digest, resume_data, stdin_resume, text_digest
    from .cli_distributed import expect_lm
    from .io import load
    from .tasks.interleaved import lm_data
    fixed = [_flag(k) for k in RESUME_FIXED if k in given]
    if fixed:
        raise UsageError(f"{', '.join(fixed)}: cannot be changed when resuming (the model, "
                         f"vocabulary, batching and optimiser come from the checkpoint)")
    path = _checkpoint_path(args.resume, "last.npz")
    # by default a resumed run goes on writing into its own directory
    out = args.out or (args.resume if os.path.isdir(args.resume) else os.path.dirname(path) or ".")
    try:
        _, vocab, extra = load(path)
    except _LOAD_ERRORS as e:
        sys.exit(_load_error("cannot resume from", path, e))
    meta = extra["meta"]
    if vocab is None:
        sys.exit(f"fastrnn: {path}: holds no vocabulary; a language model's run needs it to resume")
    fractions = {}
    for k in RESUME_SPLIT:
        fractions[k] = meta.get(k, TRAIN_DEFAULTS[k])
        if k in given and given[k] != fractions[k]:
            raise UsageError(f"{_flag(k)}: cannot be changed when resuming (the run was split "
                             f"with {_flag(k)} {fractions[k]})")
    corpus = args.corpus
    if corpus is None and meta.get("corpus") not in (None, "<python stdlib>"):
        corpus = meta["corpus"]         # resume on the corpus the run was trained on
    if corpus == "-" and args.corpus is None:
        raise UsageError(stdin_resume(args.resume))
    if corpus is None and meta.get("corpus") is None:     # not the stdlib: a run we did not start
        sys.exit(f"fastrnn: {path}: records no corpus to resume on; give it: fastrnn train CORPUS "
                 f"--resume {args.resume}")
    text = _read_corpus(corpus)
    data = resume_data(path, meta, corpus or "<python stdlib>",
                       file_digest(corpus) if corpus else text_digest(text), args, meta.get("training"))
    expect_lm(given, vocab, text, path)         # under MPI: what every rank must share
    overrides = {RESUME_SETTINGS[k]: v for k, v in given.items() if k in RESUME_SETTINGS}
    try:
        s = meta["training"]["settings"]
        trainer_class, train, val, _ = lm_data(fractions["split"], vocab.encode(text), s["batch_size"],
                                               s["seq_len"], fractions["val_frac"], fractions["test_frac"])
        trainer = trainer_class.resume(path, train, val, progress=not args.quiet, out=out,
                                             distributed=distributed, **overrides)
    except _LOAD_ERRORS as e:
        sys.exit(_load_error("cannot resume from", path, e))
    trainer.meta.update(data)
    if "lr" in given:           # the optimiser state restored its saved learning rate
        trainer.optimizer.lr = given["lr"]
    changed = "".join(f", {_flag(k)} {v}" for k, v in given.items())
    print(f"fastrnn: resuming {path} at iteration {trainer.iteration} into {out}/{changed}")
    return trainer


def _load_error(what, path, e):
    """One line for a checkpoint that failed to load (CheckpointError already names the file)."""
    text = " ".join(str(e).split())
    return f"fastrnn: {text}" if path in text else f"fastrnn: {what} {path}: {text}"


def _checkpoint_path(path, default_name):
    from .cli_paths import checkpoint_path
    return checkpoint_path(path, default_name)     # "not a run directory", FIFOs: one line


def _load_checkpoint(checkpoint):
    """(path, model, vocab, extra) of a checkpoint file or run directory (its best.npz, else its
    last.npz); one that cannot be loaded ends the command with one line, no traceback."""
    from .cli_paths import check_file
    from .io import load, run_checkpoint
    path = checkpoint
    try:
        path = run_checkpoint(checkpoint)
        check_file(path, "checkpoint file (.npz) or a run directory")    # a FIFO would block: one line
        return (path,) + tuple(load(path))
    except _LOAD_ERRORS as e:
        sys.exit(_load_error("cannot load", path, e))
