"""`fastrnn train`: one new-run and one resume path for every task.

The task (`--task`, or the one a resumed checkpoint records; the language model by default)
brings its options and their defaults, checks them, builds the model and gives the Trainer its
hooks; its kind of data (`sources.Corpus` for the language model, `sources.LabelledFile` for the
others) reads and splits the data. Everything else is common: which options a task takes, which a
resume may change, the schedule, the checkpoint metadata (data file and digest, seed, split) and
the Trainer itself.
"""
import os
import sys

from .checkpoints import LOAD_ERRORS, checkpoint_path, load_error, saved_meta
from .options import UsageError, flag
from .sources import Corpus, LabelledFile
from .tasks import checked_option

DEFAULT_OUT = "fastrnn-run"
# on --resume: these flags change the Trainer's settings (flag -> setting); the task's own
# `resume_free` options may change too, everything else is fixed by the checkpoint
RESUME_SETTINGS = dict(epochs="epochs", max_time="max_time", eval_every="eval_every", lr="lr",
                       clip="clip", lr_decay="lr_decay", lr_decay_every="lr_decay_every",
                       clip_value="clip_value", lr_decay_after="lr_decay_after", early_stop="early_stop")
SCHEDULE = ("optimizer", "lr", "clip", "clip_value", "lr_decay", "lr_decay_every", "lr_decay_after",
            "early_stop")


def source(task_cls):
    """The kind of data a task learns from: a corpus (it fits a vocabulary) or a labelled file."""
    return Corpus if getattr(task_cls, "vocab_from_corpus", False) else LabelledFile


def pick_task(args):
    """The task class of `fastrnn train`: --task, else the resumed run's, else the language model."""
    from ..tasks import ALL_TASKS, TASKS
    if args.task is None and args.resume:
        meta = saved_meta(checkpoint_path(args.resume, "last.npz")) or {}
        if meta.get("task") in TASKS:
            return TASKS[meta["task"]]
    return ALL_TASKS[args.task or "lm"]


def given_options(args):
    """{option: value} of the train options given on the command line (argparse leaves the
    others None, so that a resumed run can tell which flags the user gave)."""
    from ..tasks import ALL_TASKS
    names = dict.fromkeys(k for t in ALL_TASKS.values() for k in t.defaults)
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def refuse_foreign(task_cls, given):
    """UsageError for options the task does not take, naming the tasks that do."""
    from ..tasks import ALL_TASKS
    foreign = [k for k in given if k not in task_cls.defaults]
    levels = getattr(task_cls, "levels", None)
    if not foreign and isinstance(levels, tuple) and given.get("level", levels[0]) not in levels:
        raise UsageError(f"--level {given['level']}: only for --task "
                         + "|".join(n for n, t in ALL_TASKS.items() if t is not task_cls))
    if foreign:
        owners = [n for n, t in ALL_TASKS.items() if foreign[0] in t.defaults]
        where = "language models (--task lm)" if owners == ["lm"] else "--task " + "|".join(owners)
        raise UsageError(f"{', '.join(flag(k) for k in foreign)}: only for {where}")


def schedule(o):
    """The Trainer's optimiser, clipping and learning-rate arguments from the options `o`."""
    return {k: o[k] for k in SCHEDULE}


def init_weights(model, o):
    """char-rnn's uniform initialisation when --init-range was given (seeded by --seed)."""
    if o.get("init_range"):
        from ..train import init_uniform
        init_uniform(model, o["init_range"], seed=o["seed"])
    return model


def stored_path(path):
    """The data file's path as the checkpoint records it: absolute, so that `--resume` finds it
    from any directory (stdin, '-', stays as it is)."""
    return path if path in (None, "-") else os.path.abspath(path)


def train(args, distributed=None):
    """(a Trainer for `fastrnn train`, new or resumed; the subcommand that uses its checkpoints);
    distributed as for the Trainer (None: data-parallel over MPI when launched under mpiexec)."""
    task_cls = pick_task(args)
    given = given_options(args)
    refuse_foreign(task_cls, given)
    start = resume if args.resume else new_run
    return start(args, task_cls, given, distributed), task_cls.try_next


def new_run(args, task_cls, given, distributed=None):
    """A Trainer for a new run of the task from the command-line options."""
    from ..train import Trainer
    kind = source(task_cls)
    task = task_cls(dict(task_cls.defaults, **given))
    try:
        task.check_options()
    except ValueError as e:
        raise UsageError(str(e)) from None
    o = task.o = kind.options(task.o, args.corpus, task.name)
    precision = getattr(args, "precision", None) or "float32"   # the Trainer's setting, not a task option
    if precision == "bf16" and o["dtype"] == "float64":
        raise UsageError("--precision bf16: needs --dtype float32 (bf16 products of float32 weights)")
    data = kind.read(args.corpus)
    settings = kind.settings(o)
    try:
        pieces = kind.pieces(task, data, settings, new=True, expected=o)
        model = init_weights(task.build_model(), o)
        kind.check(pieces, model)           # the checkpoints it writes will load
        trainer = Trainer(model, pieces.train, pieces.val, **pieces.hooks(model), **schedule(o),
                          **settings, epochs=o["epochs"], max_time=o["max_time"],
                          eval_every=o["eval_every"] or len(pieces.train),
                          out=args.out or DEFAULT_OUT, progress=not args.quiet, distributed=distributed,
                          precision=precision,
                          meta=dict(pieces.meta, corpus=kind.stored_name(stored_path(args.corpus)),
                                    seed=o["seed"], val_frac=o["val_frac"],
                                    data_digest=kind.digest(args.corpus, data)))
    except (ValueError, MemoryError) as e:
        sys.exit(f"fastrnn: {e or 'out of memory building the model'}")
    print(f"fastrnn: {pieces.summary(model)}")
    return trainer


def _refused(task, given):
    """The flags given on --resume that the checkpoint fixes (or that would change its split)."""
    fixed = [k for k in getattr(task, "resume_fixed", ()) if k in given]
    if fixed:           # a language model refuses these even at their saved values
        return fixed, task.fixed_reason
    for k in getattr(task, "resume_split", ()):
        if k in given and given[k] != task.o[k]:
            return [k], f"the run was split with {flag(k)} {task.o[k]}"
    free = (*RESUME_SETTINGS, *task.resume_free)
    return [k for k, v in given.items() if k not in free and v != task.o.get(k)], task.fixed_reason


def resume(args, task_cls, given, distributed=None):
    """A Trainer continuing the run in args.resume, with the given flags applied or refused."""
    from ..data_digest import resume_data
    from ..io import load
    from ..train import Trainer
    kind = source(task_cls)
    path = checkpoint_path(args.resume, "last.npz")
    # by default a resumed run goes on writing into its own directory
    out = args.out or (args.resume if os.path.isdir(args.resume) else os.path.dirname(path) or ".")
    try:
        _, vocab, extra = load(path)
        meta = extra["meta"]
        task = kind.from_checkpoint(task_cls, meta, vocab, path)
    except (*LOAD_ERRORS, KeyError) as e:
        sys.exit(load_error("cannot resume from", path, e))
    if meta.get("task", "lm") != task.name:
        raise UsageError(f"--task {args.task}: cannot be changed when resuming (the run is "
                         f"--task {meta.get('task', 'lm')})")
    fixed, why = _refused(task, given)
    if fixed:
        raise UsageError(f"{', '.join(flag(k) for k in fixed)}: cannot be changed when resuming ({why})")
    task.o.update((k, checked_option(k, v)) for k, v in given.items() if k in task.resume_free)
    name = kind.resume_path(args, meta, path)
    data = kind.read(name)
    digest = resume_data(path, meta, kind.stored_name(name), kind.digest(name, data), args,
                         meta.get("training"))
    overrides = {RESUME_SETTINGS[k]: v for k, v in given.items() if k in RESUME_SETTINGS}
    if getattr(args, "precision", None) is not None:    # the Trainer's setting: free on resume
        overrides["precision"] = args.precision
    try:
        pieces = kind.pieces(task, data, meta["training"]["settings"], new=False,
                             expected=dict(task.o, **given), checkpoint=path)
        hooks = pieces.hooks(None)          # the model is the checkpoint's: set below
        hooks.pop("vocab", None)            # ... and so is the vocabulary
        trainer = Trainer.resume(path, pieces.train, pieces.val, progress=not args.quiet, out=out,
                                 distributed=distributed, **hooks, **overrides)
    except (*LOAD_ERRORS, KeyError) as e:
        sys.exit(load_error("cannot resume from", path, e))
    trainer.meta.update(digest)
    if getattr(hooks.get("forward"), "model", False) is None:
        hooks["forward"].model = trainer.model
    if "lr" in given:           # the optimiser state restored its saved learning rate
        trainer.optimizer.lr = given["lr"]
    changed = "".join(f", {flag(k)} {v}" for k, v in given.items())
    print(f"fastrnn: resuming {task.name} run {path} at iteration {trainer.iteration} into {out}/{changed}")
    return trainer

