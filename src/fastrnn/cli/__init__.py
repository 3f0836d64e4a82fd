"""The `fastrnn` command line (console script `fastrnn`, `python -m fastrnn`).

    main.py         entry point: parse, threads, dispatch, usage errors -> one line, exit 2
    parser.py       every subcommand and its options
    options.py      option types (integers, numbers, durations) and UsageError / Parser
    run.py          `train`: one new-run and one resume path for every task (fastrnn.tasks)
    sources.py      the data a run learns from: a text corpus or a task's labelled file
    checkpoints.py  checkpoints named on the command line, loaded or refused in one line
    paths.py        what a path is (file, directory, FIFO), corpora as files, dirs or globs
    tasks.py        predict, evaluate, sample --condition; reading a task's file
    commands.py     sample, export, plot, bench, info
    quantize.py     quantize;  plot.py: plot;  distributed.py: `train` under MPI
"""
import os  # noqa: F401  (tests replace fastrnn.cli.os.execve to see _set_threads' re-run)

from .checkpoints import load_checkpoint as _load_checkpoint
from .main import _set_threads, main
from .options import Parser, UsageError, integer, number, parse_duration
from .parser import build_parser
from .sources import stdlib_corpus

__all__ = ["main", "build_parser", "Parser", "UsageError", "parse_duration", "integer", "number",
           "stdlib_corpus", "_load_checkpoint", "_set_threads"]
