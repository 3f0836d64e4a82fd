"""The `fastrnn` command: `fastrnn train [CORPUS]`, `fastrnn sample CHECKPOINT`,
`fastrnn export CHECKPOINT MODEL.onnx`, `fastrnn bench`, `fastrnn info`.

With no CORPUS, `fastrnn train` learns from the Python standard library's own source code (the
running interpreter's `*.py` files, in sorted order): a real multi-megabyte corpus that every
Python install has, so the first command works with nothing downloaded.
"""
import argparse
import os
import re
import sys

DEFAULT_OUT = "fastrnn-run"
EMBEDDED_MAX_TIME = "8m"          # the embedded default must finish within 10 minutes


def parse_duration(text):
    """Seconds in a duration such as '90', '90s', '10m', '1.5h' (used by --max-time)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 10m or 1h, got {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


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
    p = argparse.ArgumentParser(prog="fastrnn", description="Fast CPU recurrent language models.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a char/word language model on a text file")
    t.add_argument("corpus", nargs="?", help="UTF-8 text file (default: the Python stdlib's source)")
    t.add_argument("--level", choices=["char", "word"], default="char")
    t.add_argument("--min-count", type=int, default=None,
                   help="rarer tokens become <unk> (default: 1, or 100 on the embedded corpus)")
    t.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    t.add_argument("--hidden", type=int, default=128, help="hidden units per layer")
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--embed", type=int, default=None, help="embedding size (default: one-hot input)")
    t.add_argument("--batch", type=int, default=50)
    t.add_argument("--seq-len", type=int, default=50)
    t.add_argument("--epochs", type=int, default=None, help="default: 10, or 1 on the embedded corpus")
    t.add_argument("--max-time", type=parse_duration, default=None,
                   help=f"time budget such as 90s or 10m (default: none, {EMBEDDED_MAX_TIME} on the embedded corpus)")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--optimizer", choices=["adam", "adamw", "rmsprop", "sgd", "adagrad"], default="adam")
    t.add_argument("--clip", type=float, default=5.0, help="global gradient-norm clip (0 = off)")
    t.add_argument("--lr-decay", type=float, default=1.0,
                   help="learning-rate factor per epoch (or per --lr-decay-every iterations)")
    t.add_argument("--lr-decay-every", type=int, default=None, metavar="N",
                   help="decay the learning rate every N iterations instead of every epoch")
    t.add_argument("--val-frac", type=float, default=0.05)
    t.add_argument("--test-frac", type=float, default=0.0)
    t.add_argument("--eval-every", type=int, default=200, help="iterations between validations")
    t.add_argument("--out", default=DEFAULT_OUT, help="directory for best.npz, last.npz, log.jsonl")
    t.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in this file/directory")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--threads", type=int, default=None,
                   help="kernel threads: fastrnn's team and BLAS (default: the CPUs this process may use)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="generate text from a checkpoint")
    s.add_argument("checkpoint", help="a .npz checkpoint, or a training directory (uses best.npz)")
    s.add_argument("--prime", default="")
    s.add_argument("--length", type=int, default=500)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-k", type=int, default=None)
    s.add_argument("--top-p", type=float, default=None)
    s.add_argument("--argmax", action="store_true", help="always take the most likely token")
    s.add_argument("--stop", default=None, help="stop when this string is generated")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--threads", type=int, default=None)

    e = sub.add_parser("export", help="write a language-model checkpoint as an ONNX graph")
    e.add_argument("checkpoint", help="a .npz checkpoint, or a training directory (uses best.npz)")
    e.add_argument("output", help="the .onnx file to write")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (14 or later)")
    e.add_argument("--lengths", action="store_true", help="add a lengths (B,) input for ragged batches")
    e.add_argument("--no-initial-state", action="store_true", help="no h0/c0 inputs: start from zeros")

    b = sub.add_parser("bench", help="measure fastrnn against fastrnn.reference and torch on this machine")
    b.add_argument("--quick", action="store_true", help="a small subset (under a minute)")
    b.add_argument("--filter", type=_regex, metavar="REGEX", help="only workloads whose name matches")
    b.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: BLAS's choice)")
    b.add_argument("--json", metavar="PATH", help="write the report as JSON (schema: docs/bench.md)")
    b.add_argument("--markdown", metavar="PATH", help="write the report's tables as Markdown")
    b.add_argument("--plot", metavar="PATH", help="write a PNG: speed-up over torch and %% of peak (matplotlib)")
    b.add_argument("--compare", nargs=2, metavar=("OLD.json", "NEW.json"),
                   help="compare two JSON reports instead of measuring; exit 1 on a slowdown")
    b.add_argument("--threshold", type=_fraction, default=0.1,
                   help="--compare flags new/old above 1 + THRESHOLD (default 0.1)")

    i = sub.add_parser("info", help="versions, BLAS, threads and CPU features")
    i.add_argument("--threads", type=int, default=None)
    return p


def main(argv=None):
    """Entry point of the `fastrnn` console script."""
    args = build_parser().parse_args(argv)
    _set_threads(getattr(args, "threads", None), argv)
    return {"train": _train, "sample": _sample, "export": _export,
            "bench": _bench, "info": _info}[args.command](args) or 0


def _set_threads(threads, argv):
    """BLAS reads its thread count when it loads, so re-run ourselves with the variable set."""
    if threads is None:
        return
    if threads < 1:
        sys.exit("fastrnn: --threads must be at least 1")
    if os.environ.get("OPENBLAS_NUM_THREADS") != str(threads):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                   FASTRNN_NUM_THREADS=str(threads))
        argv = sys.argv[1:] if argv is None else list(argv)
        os.execve(sys.executable, [sys.executable, "-m", "fastrnn", *argv], env)


def _train(args):
    from .data import Vocab, split
    from .models import LanguageModel
    from .train import Trainer, TrainingDiverged
    embedded = args.corpus is None
    if embedded:
        text = stdlib_corpus()
        print(f"fastrnn: no corpus given; training on the Python standard library's source "
              f"({len(text) / 1e6:.1f} M characters)")
    else:
        try:
            with open(args.corpus, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            sys.exit(f"fastrnn: cannot read corpus {args.corpus!r}: {e}")
    epochs = args.epochs or (1 if embedded else 10)
    max_time = args.max_time if args.max_time is not None else (
        parse_duration(EMBEDDED_MAX_TIME) if embedded else None)

    if args.resume:
        path = _checkpoint_path(args.resume, "last.npz")
        from .io import load
        _, vocab, _ = load(path)
        train_ids, val_ids, _ = split(vocab.encode(text), args.val_frac, args.test_frac)
        trainer = Trainer.resume(path, train_ids, val_ids, progress=not args.quiet,
                                 epochs=epochs, max_time=max_time, out=args.out)
        print(f"fastrnn: resuming {path} at iteration {trainer.iteration}")
    else:
        min_count = args.min_count or (100 if embedded else 1)   # the stdlib has rare unicode
        vocab = Vocab.build(text, level=args.level, min_count=min_count)
        train_ids, val_ids, _ = split(vocab.encode(text), args.val_frac, args.test_frac)
        model = LanguageModel(len(vocab), cell=args.cell, hidden_size=args.hidden,
                              num_layers=args.layers, dropout=args.dropout, embed_size=args.embed,
                              dtype=args.dtype, seed=args.seed)
        try:
            trainer = Trainer(model, vocab, train_ids, val_ids, batch_size=args.batch,
                              seq_len=args.seq_len, optimizer=args.optimizer, lr=args.lr,
                              clip=args.clip, lr_decay=args.lr_decay,
                              lr_decay_every=args.lr_decay_every, epochs=epochs,
                              max_time=max_time, eval_every=args.eval_every, out=args.out,
                              progress=not args.quiet,
                              meta=dict(corpus=args.corpus or "<python stdlib>", seed=args.seed))
        except ValueError as e:
            sys.exit(f"fastrnn: {e}")
        print(f"fastrnn: {model}, vocabulary {len(vocab)} ({args.level}), "
              f"{len(train_ids)} training tokens")
    try:
        summary = trainer.fit()
    except TrainingDiverged as e:
        sys.exit(f"fastrnn: stopped: {e}")
    except KeyboardInterrupt:
        where = f"; the last checkpoint is {trainer.last_checkpoint}" if trainer.last_checkpoint else ""
        print(f"fastrnn: interrupted twice, stopped{where}", file=sys.stderr)
        sys.exit(130)
    best = summary["best_val"]
    val = f"; best validation loss {best:.4f}" if best < float("inf") else ""
    print(f"fastrnn: {summary['stopped']} after {summary['iterations']} iterations "
          f"({summary['epochs']:.2f} epochs, {summary['seconds']:.0f} s){val}")
    print(f"fastrnn: checkpoints in {args.out}/ (best.npz, last.npz, log.jsonl); "
          f"try: fastrnn sample {args.out}")


def _checkpoint_path(path, default_name):
    if os.path.isdir(path):
        return os.path.join(path, default_name)
    return path


def _sample(args):
    from .io import load
    from .sample import generate
    path = _checkpoint_path(args.checkpoint, "best.npz")
    try:
        model, vocab, _ = load(path)
        if vocab is None or not hasattr(model, "step"):
            raise ValueError(f"{path}: holds a {type(model).__name__} without a vocabulary; "
                             f"`fastrnn sample` needs a language-model checkpoint")
        text = generate(model, vocab, prime=args.prime, length=args.length,
                        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                        argmax=args.argmax, stop=args.stop, seed=args.seed)
    except (OSError, ValueError) as e:
        sys.exit(f"fastrnn: {e}")
    print(text)


def _export(args):
    from .export import export_onnx
    from .io import load
    path = _checkpoint_path(args.checkpoint, "best.npz")
    try:
        model, _, _ = load(path)
        export_onnx(model, args.output, opset=args.opset, lengths=args.lengths,
                    initial_state=not args.no_initial_state)
    except (OSError, ValueError, ImportError) as e:
        sys.exit(f"fastrnn: {e}")
    print(f"fastrnn: wrote {args.output} ({model})")


def _bench(args):
    from .benchmarks import main as bench_main
    return bench_main(args)


def _info(args):
    import platform

    import numpy
    import scipy

    from . import __version__
    print(f"fastrnn {__version__}  (Python {platform.python_version()}, {platform.machine()})")
    print(f"numpy {numpy.__version__}, scipy {scipy.__version__}")
    try:
        import torch
        print(f"torch {torch.__version__} (optional, for parity tests and benchmarks)")
    except ImportError:
        print("torch: not installed (optional)")
    blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
    print(f"BLAS (via scipy.linalg.cython_blas): {blas.get('name')} {blas.get('version', '')}".rstrip())
    print(f"CPUs: {os.cpu_count()}; BLAS threads: OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', '(unset: one per CPU)')}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"note: {var}={os.environ[var]} is set (forces an OpenBLAS kernel choice)")
    print(f"CPU features used by the kernels' activation loops: {_cpu_level()}")
    from ._kernels import engine_info, supported_isas
    e = engine_info()
    if e["path"] == "engine":
        print(f"float32 kernels: fastrnn's engine, {e['isa']} micro-kernels (supported here: "
              f"{', '.join(supported_isas())}), {e['threads']} thread(s) of its own team")
    else:
        print("float32 kernels: SciPy's BLAS (FASTRNN_KERNELS=blas, or no AVX2/AVX-512 here)")
    print("float64 kernels: SciPy's BLAS")


def _cpu_level():
    """Which of the kernels' target_clones (x86-64-v4 / v3 / default) this CPU runs."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        return "portable C loops (no /proc/cpuinfo to inspect)"
    if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags:
        return "x86-64-v4 (AVX-512)"
    if {"avx2", "fma", "bmi2"} <= flags:
        return "x86-64-v3 (AVX2 + FMA)"
    return "x86-64 baseline (SSE2)"

