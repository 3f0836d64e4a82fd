"""The `fastrnn` command: `fastrnn train [CORPUS]`, `fastrnn sample CHECKPOINT`,
`fastrnn export CHECKPOINT MODEL.onnx`, `fastrnn predict|evaluate CHECKPOINT FILE`, `fastrnn
quantize`, `fastrnn plot`, `fastrnn bench`, `fastrnn info`: parse (parser.py), set the threads,
run the subcommand, and turn its usage errors into one line with exit status 2.

With no CORPUS, `fastrnn train` learns from the Python standard library's own source code (the
running interpreter's `*.py` files, in sorted order): a real multi-megabyte corpus that every
Python install has, so the first command works with nothing downloaded.
"""
import os
import signal
import sys

from .options import Parser, UsageError


def main(argv=None):
    """Entry point of the `fastrnn` console script."""
    from .. import distributed as mpi
    from . import distributed as cli_distributed
    from .parser import build_parser
    parser = build_parser()
    args = cli_distributed.parse_args(parser, argv)     # parse_args; under MPI see cli/distributed.py
    threads = getattr(args, "threads", None)
    if mpi.launched():
        # several ranks: they share this host's cores (None: the Trainer asks MPI), only rank 0 prints
        threads = threads or mpi.default_threads()
        if mpi.launch_rank() != 0:
            sys.stdout = open(os.devnull, "w")
    _set_threads(threads, argv)
    try:
        from . import commands, quantize, tasks
        return {"train": _train, "sample": commands.sample, "export": commands.export,
                "bench": commands.bench, "info": commands.info, "predict": tasks.predict,
                "evaluate": tasks.evaluate, "plot": commands.plot,
                "quantize": quantize.quantize}[args.command](args) or 0
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


def _train(args):
    """`fastrnn train`: set up the run (run.py), fit, and say where the checkpoints are."""
    from ..train import TrainingDiverged
    from . import run
    from .distributed import train_setup
    out = args.out or (None if args.resume else run.DEFAULT_OUT)
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: exists and is not a directory")
    if args.data_changed_ok and not args.resume:
        raise UsageError("--data-changed-ok: only with --resume")
    try:
        # under MPI: every rank leaves this setup ready with the same data and options, or the
        # whole job ends with the failing rank's message (see cli_distributed)
        setup, distributed = train_setup(args.distributed)
        with setup:
            trainer, hint = run.train(args, distributed)
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
