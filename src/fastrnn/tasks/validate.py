"""A task checkpoint's task metadata -- `task`, `task_options`, `task_state` -- checked for type,
range and agreement with the model rebuilt from the arrays, before `predict`, `evaluate` or
`--resume` use it (called by `fastrnn.checkpoint_meta.check_checkpoint`, so by `fastrnn.load`).

The same check runs on a new run's options and fitted state before training starts, so a run
never writes a checkpoint that its own loader would refuse. Agreement means: the model type of the
task; the options the model was built from (cell, hidden, layers, embed, dropout, dtype, seed,
bidirectional, pool, horizon) equal to its config; vocabularies as long as the embeddings; as many
labels as the head has outputs; a single-label classifier (the task trains softmax); the seq2seq
<bos>/<eos> ids where the target vocabulary has them; a forecast normaliser of one finite mean and
std (> 1e-12) per input column and a target column among them.
"""
from ..meta_checks import (MAX_BATCH, MAX_COUNT, MAX_SCALE, bad, boolean, choice, equal,
                           finite_params, get, integer, obj, real, string, strings, vocab)
from ..models.seq2seq import MAX_BEAM, MAX_DECODE_LEN
from ..nn.recurrent import block_names

MAX_WINDOW = 1_000_000          # forecast rows per input window (and horizon)
LEVELS = ("char", "word", "char:word", "word:char")
MODEL_OF = {"classify": "SequenceClassifier", "tag": "SequenceTagger", "seq2seq": "Seq2Seq",
            "forecast": "SequenceRegressor"}


def _int(lo, hi=MAX_COUNT, none_ok=False):
    return lambda w, v: integer(w, v, lo, hi, none_ok=none_ok)


def _real(lo, hi=float("inf"), none_ok=False, **ends):
    return lambda w, v: real(w, v, lo, hi, none_ok=none_ok, **ends)


def _one_of(*choices):
    return lambda w, v: choice(w, v, choices)


# every option a task run records (the command-line flags' own ranges, plus upper bounds)
OPTIONS = {
    "level": _one_of(*LEVELS), "min_count": _int(1), "cell": _one_of(*block_names()),
    "hidden": _int(1), "layers": _int(1), "dropout": _real(0, 1, high_open=True), "embed": _int(1),
    "batch": _int(1, MAX_BATCH), "lr": _real(0, low_open=True),
    "optimizer": _one_of("adam", "adamw", "rmsprop", "sgd", "adagrad"), "clip": _real(0),
    "lr_decay": _real(0, 1, low_open=True), "lr_decay_every": _int(1, none_ok=True),
    "val_frac": _real(0, 1, high_open=True), "eval_every": _int(1, none_ok=True),
    "seed": _int(0, 2 ** 64 - 1), "dtype": _one_of("float32", "float64"), "epochs": _int(1),
    "max_time": _real(0, low_open=True, none_ok=True),
    "bidirectional": lambda w, v: boolean(w, v, none_ok=True), "pool": _one_of("last", "mean", "max"),
    "target": lambda w, v: string(w, v, none_ok=True), "horizon": _int(1, MAX_WINDOW),
    "window": _int(1, MAX_WINDOW), "beam": _int(1, MAX_BEAM, none_ok=True),
}
# options added after the first task runs: checked when present
LATER_OPTIONS = {"clip_value": _real(0, none_ok=True), "lr_decay_after": _int(0, none_ok=True),
                 "init_range": _real(0, none_ok=True), "early_stop": _int(1, none_ok=True),
                 "attention": lambda w, v: None if v is None else choice(w, v, ("general", "additive"))}
# option -> the model config key it was built into, per task
_BUILT = dict(cell="cell", hidden="hidden_size", layers="num_layers", dtype="dtype", seed="seed")
SAME_AS_MODEL = {
    "classify": dict(_BUILT, embed="embed_size", dropout="dropout", pool="pooling"),
    "tag": dict(_BUILT, embed="embed_size", dropout="dropout"),
    "seq2seq": dict(_BUILT, embed="embed_size"),
    "forecast": dict(_BUILT, dropout="dropout", horizon="output_size"),
}
BIDIRECTIONAL_DEFAULT = {"classify": False, "tag": True, "seq2seq": False}


def check_option(name, value, where=None):
    """`value` checked as the task option `name` (e.g. a --beam or --batch given to predict);
    CheckpointError (a ValueError) naming `where` (default task_options.NAME) otherwise."""
    check = OPTIONS.get(name) or LATER_OPTIONS[name]
    return check(where or f"task_options.{name}", value)


def check_task(meta, model):
    """Check meta's task, task_options and task_state against bounds and `model`."""
    task = choice("task", get(meta, "task", ""), sorted(MODEL_OF))
    options = meta.get("task_options")
    attention = task == "seq2seq" and isinstance(options, dict) and options.get("attention")
    expected = "AttentionSeq2Seq" if attention else MODEL_OF[task]       # --attention's model
    if type(model).__name__ != expected:
        raise bad("model_type", f"{expected!r} for a {task} checkpoint", type(model).__name__)
    if meta.get("vocab") is not None:
        raise bad("vocab", "null in a task checkpoint (its vocabularies are in task_state)",
                  "a vocabulary")
    o = obj("task_options", get(meta, "task_options", ""))
    for name, check in OPTIONS.items():
        check(f"task_options.{name}", get(o, name, "task_options"))
    for name, check in LATER_OPTIONS.items():
        if name in o:
            check(f"task_options.{name}", o[name])
    config = model.config
    for name, key in SAME_AS_MODEL[task].items():
        equal(f"task_options.{name}", o[name], config[key], f"the model's {key}")
    if task in BIDIRECTIONAL_DEFAULT:
        want = BIDIRECTIONAL_DEFAULT[task] if o["bidirectional"] is None else o["bidirectional"]
        equal("task_options.bidirectional", want, config["bidirectional"], "the model's")
    for key in ("seed", "val_frac"):        # the run's copies of two options
        if key in meta:
            equal(key, meta[key], o[key], f"task_options.{key}")
    state = obj("task_state", get(meta, "task_state", ""))
    _STATE[task](state, o, config)
    finite_params(model)


def _classify(state, o, config):
    if ":" in o["level"]:
        raise bad("task_options.level", "'char' or 'word' for classify", o["level"])
    vocab("task_state.vocab", get(state, "vocab", "task_state"), config["vocab_size"], o["level"])
    labels = strings("task_state.labels", get(state, "labels", "task_state"))
    equal("task_state.labels", len(labels), config["num_classes"], "labels: the head's outputs")
    equal("model.multi_label", config["multi_label"], False, "the classify task trains "
          "single-label (softmax) models")


def _tag(state, o, config):
    vocab("task_state.vocab", get(state, "vocab", "task_state"), config["vocab_size"], "word")
    labels = strings("task_state.labels", get(state, "labels", "task_state"))
    equal("task_state.labels", len(labels), config["num_tags"], "labels: the head's outputs")


def _seq2seq(state, o, config):
    from .text import BOS
    levels = o["level"].split(":") * (1 if ":" in o["level"] else 2)
    vocab("task_state.src_vocab", get(state, "src_vocab", "task_state"), config["src_vocab"], levels[0])
    tgt = vocab("task_state.tgt_vocab", get(state, "tgt_vocab", "task_state"), config["tgt_vocab"],
                levels[1])
    if BOS not in tgt.stoi:
        raise bad("task_state.tgt_vocab", f"a vocabulary holding {BOS!r}", tgt.tokens[:5])
    equal("model.bos_id", config["bos_id"], tgt.stoi[BOS], f"the id of {BOS} in task_state.tgt_vocab")
    equal("model.eos_id", config["eos_id"], tgt.eos_id, "the id of <eos> in task_state.tgt_vocab")
    integer("task_state.max_len", get(state, "max_len", "task_state"), 1, MAX_DECODE_LEN)


def _forecast(state, o, config):
    columns = strings("task_state.columns", get(state, "columns", "task_state"), distinct=False)
    F = equal("task_state.columns", len(columns), config["input_size"], "columns: the model's inputs")
    integer("task_state.target", get(state, "target", "task_state"), 0, F - 1)
    equal("model.output", config["output"], "last", "forecast models predict from the last step")
    for key, lo, low_open in (("mean", -MAX_SCALE, False), ("std", 1e-12, True)):
        values = get(state, key, "task_state")
        if not isinstance(values, list) or len(values) != F:
            raise bad(f"task_state.{key}", f"a list of {F} numbers (one per column)", values)
        for k, v in enumerate(values):
            real(f"task_state.{key}[{k}]", v, lo, MAX_SCALE, low_open=low_open)


_STATE = {"classify": _classify, "tag": _tag, "seq2seq": _seq2seq, "forecast": _forecast}
