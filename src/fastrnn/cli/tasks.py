"""The task side of the `fastrnn` command: `predict CHECKPOINT [FILE|-]`, `evaluate CHECKPOINT
FILE`, `sample --condition LABEL`, and reading a task's labelled file for a training run
(`fastrnn train --task classify|tag|seq2seq|forecast FILE`, see run.py).

A task run goes through the same `Trainer` as a language model (validation, best/last
checkpoints, log.jsonl with the task's `val_<metric>`, Ctrl-C save, exact `--resume`); the
checkpoint's metadata holds the task, its options and its fitted state (vocabularies, labels,
normaliser), so `predict` and `evaluate` need nothing else. A bad file is reported as
'fastrnn: FILE:LINE: what was expected' before anything is written.
"""
import os
import sys

from .checkpoints import load_checkpoint, set_precision
from .options import POSITIVE, UsageError, flag


def add_parsers(sub):
    """The `predict` and `evaluate` subcommands."""
    p = sub.add_parser("predict", help="predict with a task checkpoint, one result per input")
    p.add_argument("checkpoint", help="a .npz checkpoint, or a training directory (uses best.npz)")
    p.add_argument("file", nargs="?", default="-", help="input file (default: - for stdin)")
    e = sub.add_parser("evaluate", help="the task's metrics of a checkpoint on a labelled file")
    e.add_argument("checkpoint", help="a .npz checkpoint, or a training directory (uses best.npz)")
    e.add_argument("file", help="a labelled file in the task's format")
    for q in (p, e):
        q.add_argument("--beam", type=POSITIVE, help="seq2seq: beam width (default: greedy)")
        q.add_argument("--batch", type=POSITIVE, help="examples per batch (default: the training batch)")
        q.add_argument("--threads", type=POSITIVE)
        q.add_argument("--precision", choices=["float32", "bf16"],
                       help="the recurrent layers' products (default: the run's)")


def _fail(e):
    sys.exit(f"fastrnn: {e}")


def read_examples(task, path, labelled=True, errors=None):
    """The examples of a task's file (one line on a bad path or file)."""
    from .paths import check_file
    check_file(path, "file or - for stdin")        # a directory or FIFO: one line, no hang
    try:
        return task.read(path, labelled, errors)
    except (OSError, ValueError) as e:        # FormatError, or a bad FASTRNN_MAX_INPUT_BYTES
        _fail(e if isinstance(e, ValueError) else f"cannot read {path!r}: {e}")


def prepare(task, path, o, fit):
    """Read and split the file; fit the task's state on the training part if `fit`; returns
    (encoded training part, encoded validation part or None)."""
    from ..tasks import FormatError
    data = read_examples(task, path)
    if not len(data):
        _fail(f"{path}: no examples found")
    train, val = task.split(data, o["val_frac"], o["seed"])
    try:
        if fit:
            task.fit(train, data)
        enc_train = task.encode(train, path)
        enc_val = task.encode(val, path) if val is not None and len(val) else None
    except FormatError as e:
        _fail(e)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not len(enc_train[0]):
        _fail(f"{path}: no training examples left after taking --val-frac {o['val_frac']} for validation")
    _refuse_nothing_to_learn(task, path, o, len(data), enc_val)
    return enc_train, enc_val if enc_val is not None and len(enc_val[0]) else None


def _refuse_nothing_to_learn(task, path, o, n, enc_val):
    """One line, before training, for data that would train without a word and learn nothing:
    a single label (classify) or tag (tag), or too few examples to give --val-frac any."""
    labels = (task.state or {}).get("labels")
    if labels is not None and len(labels) < 2:
        what = "token has the tag" if task.name == "tag" else "example has the label"
        _fail(f"{path}: every {what} {labels[0]!r}: nothing to learn (at least two are needed)")
    if o["val_frac"] > 0 and (enc_val is None or not len(enc_val[0])):
        unit = ("row" if task.name == "forecast" else "example") + ("s are" if n > 1 else " is")
        _fail(f"{path}: {n} {unit} too few for --val-frac {o['val_frac']}: none is left for "
              f"validation (give more, or --val-frac 0 to train without validation)")


# ---- predict / evaluate -------------------------------------------------------------------------

def _load_task(args):
    """(model, task) of a task checkpoint, with --beam/--batch applied."""
    from ..tasks import TASKS
    path, model, _, extra = load_checkpoint(args.checkpoint)
    meta = extra["meta"]
    if meta.get("task") not in TASKS:
        _fail(f"{path}: holds a {type(model).__name__} without a task; `fastrnn {args.command}` "
              f"needs a checkpoint of `fastrnn train --task ...` (use `fastrnn sample` for language models)")
    try:
        task = TASKS[meta["task"]](meta["task_options"], meta["task_state"])
    except (KeyError, TypeError, ValueError) as e:
        _fail(f"{path}: bad task metadata ({e})")
    for k in ("beam", "batch"):
        if getattr(args, k) is not None:
            task.o[k] = checked_option(k, getattr(args, k))
    set_precision(model, meta, args)
    return model, task


def checked_option(name, value):
    """A flag's value for the task option `name`, within the bounds a checkpoint's must keep."""
    from ..tasks.validate import check_option
    try:
        return check_option(name, value, where=flag(name))
    except ValueError as e:
        raise UsageError(str(e).replace("null or ", "")) from None


SHOWN_ERRORS = 20      # bad lines reported one by one by predict and evaluate; then a count
PREDICT_PIECE = 256    # the most examples predict holds before it answers them


class _BadLines:
    """Reports bad lines on stderr: the first SHOWN_ERRORS one by one, then how many in all."""

    def __init__(self, path):
        self.name, self.count = "<stdin>" if path == "-" else path, 0

    def add(self, errors):
        for e in sorted(errors, key=lambda e: e.line):
            self.count += 1
            if self.count <= SHOWN_ERRORS:
                print(f"fastrnn: {e}", file=sys.stderr)

    def done(self):
        """The exit status: 1 if any line was bad."""
        if self.count > SHOWN_ERRORS:
            print(f"fastrnn: {self.name}: {self.count} bad lines in all (the first {SHOWN_ERRORS} "
                  f"shown)", file=sys.stderr)
        return 1 if self.count else 0


def _predictions(task, model, path):
    """(output strings, errors) of successive pieces of the input, each answered as soon as it
    is read (at most PREDICT_PIECE examples, or what was there before a read that may block):
    memory stays bounded however long the input. forecast answers once, from the last window."""
    from ..tasks.formats import STREAMS, FormatError, Lines
    if task.name not in STREAMS:
        errors = []
        data = task.read(path, labelled=False, errors=errors)
        yield task.predict_file(model, data, path, errors), errors
        return
    lines, errors, piece, first = Lines(path), [], [], 1
    records = STREAMS[task.name](lines, labelled=False, errors=errors)
    while True:
        try:
            record = next(records, None)
        except FormatError:                 # a line past the limit: answer what came before it
            yield task.predict_file(model, piece, path, errors, first_line=first), errors
            raise
        if record is not None:
            piece.append(record)
        if record is None or len(piece) >= PREDICT_PIECE or lines.waiting:
            reported = errors[:]
            del errors[:]
            outputs = task.predict_file(model, piece, path, reported, first_line=first)
            yield outputs, reported
            first += len(outputs) if task.line_oriented else 0
            piece = []
        if record is None:
            return


def predict(args):
    """`fastrnn predict`: one result per input example on stdout, bad lines on stderr; for the
    line-oriented tasks (classify, seq2seq) output line k answers input line k (blank for a
    blank or bad input line), so the output can be pasted beside the input. The input is read
    and answered piece by piece (stdin may be a pipe that never ends)."""
    from .paths import check_file
    from ..tasks import FormatError
    from ..tasks.formats import max_line_bytes
    model, task = _load_task(args)
    check_file(args.file, "file or - for stdin")        # a directory or FIFO: one line, no hang
    try:
        max_line_bytes()
    except ValueError as e:                 # FASTRNN_MAX_LINE_BYTES is not a number of bytes
        _fail(e)
    bad = _BadLines(args.file)
    try:
        for outputs, errors in _predictions(task, model, args.file):
            try:
                for text in outputs:
                    print(text)
                sys.stdout.flush()
            except BrokenPipeError:     # e.g. `| head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                bad.add(errors)
                break
            bad.add(errors)
    except (OSError, FormatError) as e:     # a line past the limit, a forecast input too short
        bad.done()
        _fail(e if isinstance(e, FormatError) else f"cannot read {args.file!r}: {e}")
    return bad.done()


def evaluate(args):
    """`fastrnn evaluate`: the task's metrics on a labelled file (bad lines reported, skipped)."""
    from ..tasks import FormatError
    model, task = _load_task(args)
    errors, bad = [], _BadLines(args.file)
    data = read_examples(task, args.file, labelled=True, errors=errors)
    try:
        encoded = task.encode(data, args.file, errors)
    except FormatError as e:
        _fail(e)
    bad.add(errors)
    if not len(encoded[0]):
        bad.done()
        _fail(f"{args.file}: no examples to evaluate")
    print(f"examples\t{len(encoded[0])}")
    for name, value in task.metrics(model, encoded).items():
        print(f"{name}\t{value:.6g}")
    return bad.done()


def parsed_condition(model, vocab, meta, args):
    """The condition of `fastrnn sample --condition LABEL` for a ConditionedGenerator checkpoint
    (saved with a vocabulary, and optionally `labels=[...]` metadata naming the class ids): a
    class id, or a vector of the model's condition_size. `fastrnn sample` then runs as for a
    language model (fastrnn.generate / stream with condition=)."""
    import numpy as np

    from ..models import ConditionedGenerator
    if not isinstance(model, ConditionedGenerator) or vocab is None:
        _fail(f"--condition: expected a ConditionedGenerator checkpoint with a vocabulary, got a "
              f"{type(model).__name__}")
    if args.condition is None:
        _fail("--condition: required for a ConditionedGenerator checkpoint")
    labels = meta.get("labels") or []
    c = model.config
    try:
        if c["num_classes"] is not None:
            cid = labels.index(args.condition) if args.condition in labels else int(args.condition)
            if not 0 <= cid < c["num_classes"]:
                raise ValueError
            return cid
        vector = np.array([float(v) for v in args.condition.split(",")], model.dtype)
        if vector.size != c["condition_size"]:
            raise ValueError
        return vector
    except ValueError:
        known = f"one of {', '.join(labels)} or " if labels else ""
        want = (f"{known}a class id in [0, {c['num_classes']})" if c["num_classes"] is not None
                else f"{c['condition_size']} comma-separated numbers")
        raise UsageError(f"--condition: expected {want}, got {args.condition!r}") from None
