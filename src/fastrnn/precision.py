"""The products' precision of a model's recurrent blocks and output head: 'float32' (default)
or 'bf16'.

bf16 mixed precision (issue 22, docs/performance.md "bf16 mixed precision"): the parameters,
gradients, optimiser state and recurrent states stay float32 -- so do checkpoints -- and every
product of a recurrent layer (input projection, per-step products, weight gradients, dx) and of
the model's output head (the `head` Linear: logits, dW, dx) reads its operands rounded to bf16 and
accumulates in float32. The other blocks of a model (embeddings, other Linears, attention) stay
float32.

A recurrent layer and a Linear hold their own `precision` (`fastrnn.nn.layers`, `nn.linear`); a
model or cell takes one for all of its recurrent blocks and heads with `model.precision = "bf16"`
(`Module.precision`, which calls `set_precision`), as `Trainer(precision=...)` and the CLI's
`--precision` do. The fused training step and native generation read the head's own precision,
so they run what the Python path runs.
"""
import numpy as np

PRECISIONS = ("float32", "bf16")


def check_precision(value, name="precision"):
    """`value` if it is one of PRECISIONS, else ValueError naming `name`."""
    if not isinstance(value, str) or value not in PRECISIONS:
        raise ValueError(f"{name}: expected one of {PRECISIONS}, got {value!r}")
    return value


def recurrent_blocks(module):
    """The recurrent layers (RNN, GRU, LSTM, MGU, ...) in `module`'s tree, itself included."""
    # a recurrent layer is the Module that holds its own precision (fastrnn.nn.layers._Recurrent);
    # asked by attribute, not by class, so that nn.Module's `precision` property can use this
    # module without an import cycle
    return [m for _, m in module.modules() if "_precision" in vars(m)]


def head_blocks(module):
    """The output heads in `module`'s tree: every Linear attached as a child named `head` (the
    language model's, tagger's, classifier's, regressor's, seq2seq's, ...)."""
    # a Linear is known by its class's `linear_products` flag, not by an import of nn.linear
    # (which imports this module: a cycle)
    return [m for name, m in module.modules()
            if name.rpartition(".")[2] == "head" and getattr(type(m), "linear_products", False)]


def set_precision(module, value):
    """Give every recurrent layer and output head of `module` the precision `value` (all or
    none: a bf16 request on a float64 model raises ValueError before any block changes)."""
    check_precision(value)
    blocks = recurrent_blocks(module)
    if value == "bf16" and not blocks:     # else the request would silently change nothing
        raise ValueError(f"precision: 'bf16' applies to fastrnn recurrent layers and this "
                         f"{type(module).__name__} has none")
    heads = head_blocks(module)
    if value == "bf16" and any(b.dtype != np.float32 for b in blocks + heads):
        raise ValueError(f"precision: 'bf16' needs a float32 model, this one is {module.dtype.name}")
    for b in blocks + heads:
        b.precision = value


def precision_of(module):
    """'bf16' when every recurrent layer and output head of `module` runs bf16 (and it has a
    recurrent layer), 'mixed' when some do, else 'float32'."""
    blocks = recurrent_blocks(module)
    kinds = {b.precision for b in blocks + (head_blocks(module) if blocks else [])}
    return kinds.pop() if len(kinds) == 1 else "mixed" if kinds else "float32"


def recorded(meta):
    """The precision a checkpoint's run trained with (its Trainer settings), or None."""
    training = meta.get("training") if isinstance(meta, dict) else None
    settings = training.get("settings") if isinstance(training, dict) else None
    value = settings.get("precision") if isinstance(settings, dict) else None
    return value if value in PRECISIONS else None


def for_command(model, meta, requested):
    """Set a loaded model's precision for a command (sample, predict, evaluate): `requested`
    (the --precision flag) or else the run's recorded one; returns the precision it runs.
    ValueError for bf16 on a float64 model."""
    value = requested or recorded(meta)
    if value is not None:
        set_precision(model, value)
    return precision_of(model)

