"""The data a `fastrnn train` run learns from, one class per kind of task: a text corpus (the
language model) or a labelled file (classify, tag, seq2seq, forecast). Each reads its data,
fits the task on it (a new run) or takes the task's fitted state from the checkpoint (a resumed
run), and hands the one run path (`fastrnn.cli.run`) the pieces of its Trainer: training and
validation batches, the task's Trainer hooks, the metadata to save and what every MPI rank must
share. A bad file ends the command with one line before anything is written.
"""
import sys
from dataclasses import dataclass, field
from typing import Callable

from .options import UsageError, parse_duration

EMBEDDED_MAX_TIME = "8m"          # the embedded default must finish within 10 minutes


@dataclass
class Pieces:
    """What a task's data gives the Trainer: batches, hooks(model) -> the Trainer's forward,
    items, callbacks and vocab arguments, metadata to save, and summary(model) -> one line."""
    train: object
    val: object
    hooks: Callable
    meta: dict = field(default_factory=dict)
    summary: Callable = str


def stdlib_corpus(max_bytes=None):
    """The stdlib's *.py source, files in sorted order, separated by blank lines."""
    import os
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


def _fail(e):
    sys.exit(f"fastrnn: {e}")


class Corpus:
    """A language model's text: a file, a directory, a glob, - (stdin) or, when none is given,
    the Python standard library's own source (the embedded corpus)."""

    STDLIB = "<python stdlib>"

    @staticmethod
    def check(pieces, model):
        pass

    @staticmethod
    def settings(o):
        """The Trainer settings that shape the stream batches (a resume reads them back)."""
        return dict(batch_size=o["batch"], seq_len=o["seq_len"])

    @staticmethod
    def options(o, path, task_name):
        """The embedded corpus' own defaults for what the options leave open."""
        embedded = path is None
        return dict(o, epochs=o["epochs"] or (1 if embedded else 10),
                    max_time=o["max_time"] or (parse_duration(EMBEDDED_MAX_TIME) if embedded else None),
                    min_count=o["min_count"] or (100 if embedded else 1))  # the stdlib has rare unicode

    @staticmethod
    def resume_path(args, meta, path):
        """The corpus to resume on: the one given, else the one the run recorded."""
        from ..data_digest import stdin_resume
        corpus = args.corpus
        if corpus is None and meta.get("corpus") not in (None, Corpus.STDLIB):
            corpus = meta["corpus"]         # resume on the corpus the run was trained on
        if corpus == "-" and args.corpus is None:
            raise UsageError(stdin_resume(args.resume))
        if corpus is None and meta.get("corpus") is None:     # not the stdlib: a run we did not start
            _fail(f"{path}: records no corpus to resume on; give it: fastrnn train CORPUS "
                  f"--resume {args.resume}")
        return corpus

    @staticmethod
    def read(path):
        """The corpus text (one line on a bad path)."""
        if path is None:
            text = stdlib_corpus()
            print(f"fastrnn: no corpus given; training on the Python standard library's source "
                  f"({len(text) / 1e6:.1f} M characters)")
            return text
        from .paths import read_corpus
        return read_corpus(path)       # a file, a directory of text files, a glob or - (stdin)

    @staticmethod
    def digest(path, text):
        from ..data_digest import file_digest, text_digest
        return file_digest(path) if path else text_digest(text)

    @staticmethod
    def from_checkpoint(task_cls, meta, vocab, path):
        if vocab is None:
            _fail(f"{path}: holds no vocabulary; a language model's run needs it to resume")
        fractions = {k: meta.get(k, task_cls.defaults[k]) for k in task_cls.resume_split}
        return task_cls(dict(task_cls.defaults, **fractions), vocab)

    @staticmethod
    def pieces(task, text, settings, new, expected, checkpoint=None):
        """The stream batches of the corpus (a new run fits the vocabulary on it first)."""
        from ..tasks.lm import VAL_TOKENS
        from .distributed import expect_lm
        if new:
            task.fit(text)
        expect_lm(expected, task.vocab, text, checkpoint)       # under MPI: what every rank shares
        train, val, n_train = task.batches(text, settings["batch_size"], settings["seq_len"],
                                           settings.get("val_tokens", VAL_TOKENS))
        about = f"vocabulary {len(task.vocab)} ({task.o['level']}), {n_train} training tokens"
        return Pieces(train, val, task.trainer_hooks,
                      meta=dict(task.split_meta(), init_range=task.o["init_range"]),
                      summary=lambda model: f"{model}, {about}")

    @staticmethod
    def stored_name(path):
        return path or Corpus.STDLIB


class LabelledFile:
    """A task's labelled file (text<TAB>label lines, CoNLL, source<TAB>target, CSV)."""

    @staticmethod
    def options(o, path, task_name):
        if path is None:
            raise UsageError(f"--task {task_name}: expected a FILE to train on")
        return o

    @staticmethod
    def settings(o):
        return {}           # the batch size is a task option (task_options in the checkpoint)

    @staticmethod
    def check(pieces, model):
        """ValueError when the checkpoint this run writes could not be loaded again."""
        from ..tasks.validate import check_task
        check_task(pieces.meta, model)

    @staticmethod
    def resume_path(args, meta, path):
        from ..data_digest import stdin_resume
        data = args.corpus or meta.get("corpus")
        if args.corpus is None and meta.get("corpus") == "-":
            raise UsageError(stdin_resume(args.resume))
        if not isinstance(data, str):
            raise UsageError(f"--resume {args.resume}: the checkpoint names no data file; give it: "
                             f"fastrnn train --resume {args.resume} FILE")
        return data

    @staticmethod
    def read(path):
        return path         # read by `pieces`, which knows the task's format

    @staticmethod
    def digest(path, data):
        from ..data_digest import file_digest
        return file_digest(path)

    @staticmethod
    def from_checkpoint(task_cls, meta, vocab, path):
        return task_cls(meta["task_options"], meta["task_state"])

    @staticmethod
    def pieces(task, path, settings, new, expected, checkpoint=None):
        """Batches of the file's split (a new run fits the task's state on the training part)."""
        from ..tasks.base import TaskMetrics
        from .distributed import expect_task
        from .tasks import prepare
        o = task.o
        enc_train, enc_val = prepare(task, path, o, fit=new)
        expect_task(task, expected, enc_train, enc_val, checkpoint)   # under MPI: what every rank shares
        train = task.batches(enc_train, o["batch"], shuffle=True, seed=o["seed"])
        val = task.batches(enc_val, o["batch"], shuffle=False) if enc_val else None
        n_val = len(enc_val[0]) if enc_val else 0
        about = f"{len(enc_train[0])} training and {n_val} validation examples"
        return Pieces(train, val, lambda model: dict(forward=task.forward(model),
                                                     callbacks=[train, TaskMetrics(task, enc_val)]),
                      meta=dict(task=task.name, task_options=o, task_state=task.state),
                      summary=lambda model: f"{task.name}: {model}, {about}")

    @staticmethod
    def stored_name(path):
        return path
