"""The Trainer's `precision` setting applied to a model (fastrnn.precision does the layers)."""
from ..precision import check_precision, precision_of, set_precision


def apply_precision(model, precision):
    """Give a fastrnn model's recurrent layers `precision` (None: keep theirs), as the Trainer
    does before its first step; returns what the checkpoints record: the model's precision now
    (None for a model-like object that is not a fastrnn Module, or a mix)."""
    from ..nn import Module
    if not isinstance(model, Module):
        if precision is not None:
            raise TypeError(f"precision: needs a fastrnn Module model, got {type(model).__name__}")
        return None
    if precision is not None:       # before the first forward; float64 models refuse bf16
        set_precision(model, check_precision(precision))
    now = precision_of(model)
    return None if now == "mixed" else now
