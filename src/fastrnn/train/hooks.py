"""Checking and calling the Trainer's callbacks.

The Trainer calls `on_step_end`, `on_epoch_end`, `on_validation_start`, `metrics` and
`checkpoint_state`/`restore` on every callback (a `Callback` subclass has them all; duck-typed
objects such as `PaddedBatches` define them); the newer hooks -- `on_train_begin/end`,
`on_epoch_begin`, `on_validation_end` -- are called only where a callback defines them.
"""
REQUIRED = ("on_step_end", "on_epoch_end", "on_validation_start", "metrics", "checkpoint_state", "restore")
OPTIONAL = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_validation_end", "postfix")


def check_callbacks(callbacks):
    """`callbacks` as a list, each checked to have callable hooks; TypeError naming the bad one."""
    from .callbacks import Callback
    if isinstance(callbacks, (Callback, str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks: expected a list of callbacks, got {type(callbacks).__name__}")
    callbacks = list(callbacks)
    for k, cb in enumerate(callbacks):
        missing = [name for name in REQUIRED if not callable(getattr(cb, name, None))]
        bad = [name for name in OPTIONAL if hasattr(cb, name) and not callable(getattr(cb, name))]
        if missing or bad:
            what = f"missing {', '.join(missing)}" if missing else f"{', '.join(bad)} not callable"
            raise TypeError(f"callbacks[{k}]: expected a fastrnn.train.Callback (or an object with "
                            f"its methods), got {type(cb).__name__} ({what})")
    return callbacks


def call(callbacks, name, *args):
    """Call hook `name` on every callback that defines it, in order."""
    for cb in callbacks:
        hook = getattr(cb, name, None)
        if hook is not None:
            hook(*args)
