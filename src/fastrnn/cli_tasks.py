"""The task side of the `fastrnn` command: `train --task classify|tag|seq2seq|forecast FILE`,
`predict CHECKPOINT [FILE|-]`, `evaluate CHECKPOINT FILE` and `sample --condition LABEL`.

A task run goes through the same `Trainer` as a language model (validation, best/last
checkpoints, log.jsonl with the task's `val_<metric>`, Ctrl-C save, exact `--resume`); the
checkpoint's metadata holds the task, its options and its fitted state (vocabularies, labels,
normaliser), so `predict` and `evaluate` need nothing else. A bad file is reported as
'fastrnn: FILE:LINE: what was expected' before anything is written.
"""
import argparse
import os
import sys

from .cli import (_LOAD_ERRORS, NON_NEGATIVE, POSITIVE, RESUME_SETTINGS, UsageError,
                  _checkpoint_path, _flag, _load_checkpoint, _load_error, number)

TASK_NAMES = ("lm", "classify", "tag", "seq2seq", "forecast")
LEVELS = ("char", "word", "char:word", "word:char")
# a task run's defaults (a language model's are cli.TRAIN_DEFAULTS); eval_every None = each epoch
TASK_DEFAULTS = dict(level="char", min_count=1, cell="lstm", hidden=64, layers=1, dropout=0.0,
                     embed=32, batch=32, lr=2e-3, optimizer="adam", clip=5.0, lr_decay=1.0,
                     lr_decay_every=None, val_frac=0.1, eval_every=None, seed=0, dtype="float32",
                     epochs=10, max_time=None, bidirectional=None, pool="last", target=None,
                     horizon=1, window=24, beam=None, clip_value=None, lr_decay_after=None,
                     init_range=None, early_stop=None, attention=None)
TASK_ONLY = ("bidirectional", "pool", "target", "horizon", "window", "beam", "attention")
LM_ONLY = ("seq_len", "test_frac", "split")
RESUME_FREE = tuple(RESUME_SETTINGS) + ("beam",)        # may change on --resume


def add_train_options(t):
    """The options of `fastrnn train` added here: char-rnn's schedule and initialisation (every
    model), --split (language models) and the task options."""
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
    t.add_argument("--task", choices=TASK_NAMES,
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


def _given(args):
    return {k: getattr(args, k) for k in (*TASK_DEFAULTS, *LM_ONLY)
            if getattr(args, k, None) is not None}


def schedule(o):
    """The Trainer's optimiser, clipping and learning-rate arguments from the options `o`."""
    return {k: o[k] for k in ("optimizer", "lr", "clip", "clip_value", "lr_decay",
                              "lr_decay_every", "lr_decay_after", "early_stop")}


def init_weights(model, o):
    """char-rnn's uniform initialisation when --init-range was given (seeded by --seed)."""
    if o.get("init_range"):
        from .train import init_uniform
        init_uniform(model, o["init_range"], seed=o["seed"])
    return model


def stored_path(path):
    """The data file's path as the checkpoint records it: absolute, so that `--resume` finds it
    from any directory (stdin, '-', stays as it is)."""
    return path if path in (None, "-") else os.path.abspath(path)


def wants_task(args):
    """True when `fastrnn train` runs a task: --task other than lm, or resuming a task run.
    Otherwise checks that no task option was given to a language model."""
    if args.task not in (None, "lm"):
        return True
    if args.resume and args.task is None and _saved_task(args.resume):
        return True
    task_flags = [_flag(k) for k in TASK_ONLY if getattr(args, k) is not None]
    if task_flags or (args.level or "char") not in ("char", "word"):
        raise UsageError(f"{', '.join(task_flags) or '--level ' + args.level}: only for "
                         f"--task classify|tag|seq2seq|forecast")
    return False


def _saved_task(resume):
    """The task recorded in the checkpoint to resume (None for a language model or no file)."""
    from .io import load_arrays
    try:
        _, meta = load_arrays(_checkpoint_path(resume, "last.npz"))
    except _LOAD_ERRORS:
        return None         # the language-model path reports the error
    return meta.get("task")


def _fail(e):
    sys.exit(f"fastrnn: {e}")


def _read(task, path, labelled=True, errors=None):
    from .cli_paths import check_file
    check_file(path, "file or - for stdin")        # a directory or FIFO: one line, no hang
    try:
        return task.read(path, labelled, errors)
    except (OSError, ValueError) as e:        # FormatError, or a bad FASTRNN_MAX_INPUT_BYTES
        _fail(e if isinstance(e, ValueError) else f"cannot read {path!r}: {e}")


def _prepare(task, path, o, fit):
    """Read and split the file; fit the task's state on the training part if `fit`; returns
    (encoded training part, encoded validation part or None)."""
    from .tasks import FormatError
    data = _read(task, path)
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


def _task_pieces(task, o, enc_train, enc_val):
    """(training batches, validation batches, callbacks) of an encoded split."""
    from .tasks.base import TaskMetrics
    train_b = task.batches(enc_train, o["batch"], shuffle=True, seed=o["seed"])
    val_b = task.batches(enc_val, o["batch"], shuffle=False) if enc_val else None
    return train_b, val_b, [train_b, TaskMetrics(task, enc_val)]


def train(args, out_default, distributed=None):
    """A Trainer for `fastrnn train --task ...` (new or resumed); distributed as for the Trainer
    (None: data-parallel over MPI when launched under mpiexec)."""
    given = _given(args)
    lm_flags = [_flag(k) for k in LM_ONLY if k in given]
    if lm_flags:
        raise UsageError(f"{', '.join(lm_flags)}: only for language models (--task lm)")
    return _resume(args, given, distributed) if args.resume else _new_run(args, given, out_default, distributed)


def _new_run(args, given, out_default, distributed):
    from .data_digest import file_digest
    from .cli_distributed import expect_task
    from .tasks import TASKS
    from .tasks.validate import check_task
    from .train import Trainer
    o = dict(TASK_DEFAULTS, **given)
    if ":" in o["level"] and args.task != "seq2seq":
        raise UsageError(f"--level {o['level']}: source:target levels are only for --task seq2seq")
    if o["attention"] and args.task != "seq2seq":
        raise UsageError("--attention: only for --task seq2seq")
    if args.corpus is None:
        raise UsageError(f"--task {args.task}: expected a FILE to train on")
    task = TASKS[args.task](o)
    enc_train, enc_val = _prepare(task, args.corpus, o, fit=True)
    expect_task(task, o, enc_train, enc_val)        # under MPI: what every rank must share
    try:
        model = init_weights(task.build_model(), o)
        check_task(dict(task=task.name, task_options=o, task_state=task.state), model)  # loadable
        train_b, val_b, callbacks = _task_pieces(task, o, enc_train, enc_val)
        trainer = Trainer(model, train_b, val_b, forward=task.forward(model), callbacks=callbacks,
                          **schedule(o), epochs=o["epochs"], max_time=o["max_time"],
                          eval_every=o["eval_every"] or len(train_b), out=args.out or out_default,
                          progress=not args.quiet, distributed=distributed,
                          precision=args.precision or "float32",
                          meta=dict(task=task.name, task_options=o, task_state=task.state,
                                    corpus=stored_path(args.corpus), seed=o["seed"],
                                    val_frac=o["val_frac"], data_digest=file_digest(args.corpus)))
    except (ValueError, MemoryError) as e:
        _fail(e or "out of memory building the model")
    n_val = len(enc_val[0]) if enc_val else 0
    print(f"fastrnn: {task.name}: {model}, {len(enc_train[0])} training and {n_val} validation examples")
    return trainer


def _resume(args, given, distributed):
    from .data_digest import file_digest, resume_data, stdin_resume
    from .cli_distributed import expect_task
    from .io import load
    from .tasks import TASKS
    from .train import Trainer
    path = _checkpoint_path(args.resume, "last.npz")
    out = args.out or (args.resume if os.path.isdir(args.resume) else os.path.dirname(path) or ".")
    try:
        _, _, extra = load(path)
        meta = extra["meta"]
        task = TASKS[meta["task"]](meta["task_options"], meta["task_state"])
    except (*_LOAD_ERRORS, KeyError) as e:
        sys.exit(_load_error("cannot resume from", path, e))
    if args.task not in (None, task.name):
        raise UsageError(f"--task {args.task}: cannot be changed when resuming (the run is --task {task.name})")
    fixed = [_flag(k) for k, v in given.items() if k not in RESUME_FREE and v != task.o.get(k)]
    if fixed:
        raise UsageError(f"{', '.join(fixed)}: cannot be changed when resuming (the model, data "
                         f"split and batching come from the checkpoint)")
    task.o.update((k, _override(k, v)) for k, v in given.items() if k == "beam")
    o = task.o
    data = args.corpus or meta.get("corpus")
    if args.corpus is None and meta.get("corpus") == "-":
        raise UsageError(stdin_resume(args.resume))
    if not isinstance(data, str):
        raise UsageError(f"--resume {args.resume}: the checkpoint names no data file; give it: "
                         f"fastrnn train --resume {args.resume} FILE")
    digest = resume_data(path, meta, data, file_digest(data), args, meta.get("training"))
    enc_train, enc_val = _prepare(task, data, o, fit=False)
    expect_task(task, dict(o, **given), enc_train, enc_val, path)
    overrides = {RESUME_SETTINGS[k]: v for k, v in given.items() if k in RESUME_SETTINGS}
    if args.precision is not None:      # not a task option: the Trainer's setting, free on resume
        overrides["precision"] = args.precision
    try:
        train_b, val_b, callbacks = _task_pieces(task, o, enc_train, enc_val)
        forward = task.forward(None)
        trainer = Trainer.resume(path, train_b, val_b, progress=not args.quiet, forward=forward,
                                 callbacks=callbacks, out=out, distributed=distributed, **overrides)
    except _LOAD_ERRORS as e:
        sys.exit(_load_error("cannot resume from", path, e))
    trainer.meta.update(digest)
    if forward is not None:
        forward.model = trainer.model
    if "lr" in given:           # the optimiser state restored its saved learning rate
        trainer.optimizer.lr = given["lr"]
    print(f"fastrnn: resuming {task.name} run {path} at iteration {trainer.iteration} into {out}/")
    return trainer


# ---- predict / evaluate -------------------------------------------------------------------------

def _load_task(args):
    """(model, task) of a task checkpoint, with --beam/--batch applied."""
    from .tasks import TASKS
    path, model, _, extra = _load_checkpoint(args.checkpoint)
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
            task.o[k] = _override(k, getattr(args, k))
    from .cli_commands import set_precision
    set_precision(model, meta, args)
    return model, task


def _override(name, value):
    """A flag's value for the task option `name`, within the bounds a checkpoint's must keep."""
    from .tasks.validate import check_option
    try:
        return check_option(name, value, where=_flag(name))
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
    from .tasks.formats import STREAMS, FormatError, Lines
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
    from .cli_paths import check_file
    from .tasks import FormatError
    from .tasks.formats import max_line_bytes
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
    from .tasks import FormatError
    model, task = _load_task(args)
    errors, bad = [], _BadLines(args.file)
    data = _read(task, args.file, labelled=True, errors=errors)
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


def sample_conditioned(model, vocab, meta, args):
    """`fastrnn sample --condition LABEL` on a ConditionedGenerator checkpoint (saved with a
    vocabulary, and optionally `labels=[...]` metadata naming the class ids)."""
    import numpy as np

    from .models import ConditionedGenerator
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
            condition = np.array([cid])
        else:
            condition = np.array([[float(v) for v in args.condition.split(",")]], model.dtype)
    except ValueError:
        known = f"one of {', '.join(labels)} or " if labels else ""
        want = (f"{known}a class id in [0, {c['num_classes']})" if c["num_classes"] is not None
                else f"{c['condition_size']} comma-separated numbers")
        raise UsageError(f"--condition: expected {want}, got {args.condition!r}") from None
    try:
        ids = model.generate(condition, max(args.length, 1), temperature=args.temperature,
                             top_k=args.top_k, top_p=args.top_p, argmax=args.argmax,
                             seed=args.seed)[0].tolist()
    except ValueError as e:
        _fail(e)
    if vocab.eos_id in ids:
        ids = ids[:ids.index(vocab.eos_id)]
    text = vocab.decode(ids[:args.length])
    if args.stop and args.stop in text:
        text = text[:text.index(args.stop) + len(args.stop)]
    print(text)
