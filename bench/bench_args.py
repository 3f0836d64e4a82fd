"""The command line the bench scripts share (--budget, --filter) and their thread setting: the
kernels and torch both get `timing.blas_threads()` threads, so that every row compares like with
like. Used by bench/targets.py and bench/int8_rows.py (imported as a sibling: bench/ is the
script's directory)."""
import argparse

from fastrnn import _kernels
from fastrnn.benchmarks import runners, timing


def parse(doc, argv=None):
    """The parsed arguments of a bench script whose docstring is `doc`, after setting the
    threads; `args.threads` is their number."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--budget", type=float, default=3.0, help="seconds per workload")
    p.add_argument("--filter", default="", help="regex on workload names")
    args = p.parse_args(argv)
    args.threads = timing.blas_threads()
    _kernels.set_num_threads(args.threads)
    if runners.torch is not None:
        runners.torch.set_num_threads(args.threads)
    return args
