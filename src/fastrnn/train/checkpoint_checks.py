"""The Trainer's part of a checkpoint's metadata (`training`: position, settings, RNG and
callback states; the run's split settings), checked before `Trainer.resume` uses any of it.

Called by `fastrnn.checkpoint_meta.check_checkpoint` (so by `fastrnn.load`); see
`fastrnn.meta_checks` for the rules (type, range, finiteness, agreement with the model). Keys
this version does not know are left alone, except in `settings`, whose keys must be Trainer
arguments (they are passed to it).
"""
import inspect

import numpy as np

from ..io import CheckpointError
from ..meta_checks import (MAX_BATCH, MAX_SEQ_LEN, bad, choice, finite_params, get, integer, obj,
                           real, string)

# settings every Trainer checkpoint holds, and their checks (the Trainer's own rules, plus bounds)
_SETTINGS = {
    "batch_size": lambda w, v: integer(w, v, 1, MAX_BATCH),
    "seq_len": lambda w, v: integer(w, v, 1, MAX_SEQ_LEN),
    "optimizer": None,                                      # checked against OPTIMIZERS below
    "lr": lambda w, v: real(w, v, 0),
    "clip": lambda w, v: real(w, v, 0, none_ok=True),
    "lr_decay": lambda w, v: real(w, v, 0),
    "epochs": lambda w, v: integer(w, v, 1),
    "max_time": lambda w, v: real(w, v, 0, none_ok=True),
    "eval_every": lambda w, v: integer(w, v, 1),
    "val_tokens": lambda w, v: integer(w, v, 0, none_ok=True),
}
# settings added later (a checkpoint from before them, e.g. tests/data/lm_v1_run_last.npz,
# resumes with the default)
_LATER_SETTINGS = {
    "explode_factor": lambda w, v: real(w, v, 0, none_ok=True),
    "clip_value": lambda w, v: real(w, v, 0, none_ok=True),
    "lr_decay_every": lambda w, v: integer(w, v, 1, none_ok=True),
    "lr_decay_after": lambda w, v: integer(w, v, 0, none_ok=True),
    # the recurrent layers' products (fastrnn.precision); a resume may change it (Trainer.resume's
    # precision=, the CLI's --precision): the parameters are float32 either way
    "precision": lambda w, v: None if v is None else choice(w, v, ("float32", "bf16")),
}
MAX_SECONDS = 1e10              # training time so far (317 years)
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def check_training(meta, model):
    """Check meta["training"] and the run's split settings (CheckpointError naming the field)."""
    t, w = meta["training"], "training"
    iteration = integer(f"{w}.iteration", get(t, "iteration", w))
    epoch = integer(f"{w}.epoch", get(t, "epoch", w))
    window = integer(f"{w}.window", get(t, "window", w))
    # every finished epoch took at least one iteration, and the window counts this epoch's
    if epoch + window > iteration or (epoch == 0 and window != iteration):
        raise CheckpointError(f"{w}: epoch {epoch} and window {window} cannot be reached in "
                              f"{iteration} iterations")
    steps = (meta.get("optimizer") or {}).get("scalars", {}).get("steps")
    if steps is not None and steps != iteration:     # one optimiser step per iteration
        raise CheckpointError(f"{w}.iteration: {iteration} iterations but the optimizer took "
                              f"{steps} steps")
    real(f"{w}.best_val", get(t, "best_val", w), none_ok=True)
    real(f"{w}.elapsed", get(t, "elapsed", w), 0, MAX_SECONDS)
    real(f"{w}.loss_level", t.get("loss_level"), none_ok=True)
    _check_settings(get(t, "settings", w), meta.get("optimizer"))
    _check_rng(get(t, "rng", w), model)
    callbacks = obj(f"{w}.callbacks", t.get("callbacks", {}))
    for name, state in callbacks.items():
        obj(f"{w}.callbacks.{name}", state)
    if "task_options" in meta:  # a task run's batches: their shuffle follows the Trainer's epoch
        get(callbacks, "PaddedBatches", f"{w}.callbacks")
    if "PaddedBatches" in callbacks:
        e = integer(f"{w}.callbacks.PaddedBatches.epoch",
                    get(callbacks["PaddedBatches"], "epoch", f"{w}.callbacks.PaddedBatches"))
        if e != epoch:
            raise CheckpointError(f"{w}.callbacks.PaddedBatches.epoch: expected {epoch} (the "
                                  f"training epoch), got {e}")
    finite_params(model)
    _check_run(meta)


def _check_settings(settings, stored_optimizer):
    from .trainer import OPTIMIZERS, Trainer
    w = "training.settings"
    accepted = set(inspect.signature(Trainer.__init__).parameters)
    for key in obj(w, settings):
        if key not in accepted:
            raise CheckpointError(f"{w}.{key}: not a Trainer setting")
    for key, check in _SETTINGS.items():
        value = get(settings, key, w)
        if check is not None:
            check(f"{w}.{key}", value)
    for key, check in _LATER_SETTINGS.items():
        if key in settings:
            check(f"{w}.{key}", settings[key])
    name = choice(f"{w}.optimizer", settings["optimizer"], sorted(OPTIMIZERS))
    if isinstance(stored_optimizer, dict) and stored_optimizer.get("type") != OPTIMIZERS[name].__name__:
        raise CheckpointError(f"optimizer.type: expected {OPTIMIZERS[name].__name__!r} (the run's "
                              f"--optimizer {name}), got {stored_optimizer.get('type')!r}")


def _check_rng(rng, model):
    """The RNG states: the model's RNGs, each a state its bit generator accepts."""
    w = "training.rng"
    if isinstance(rng, dict) and "bit_generator" in rng:     # before fastrnn.nn: one RNG
        rng = {"rnn._dropout_rng": rng}
    obj(w, rng)
    want = model.rng_state()
    if set(rng) != set(want):
        raise bad(w, f"states for the model's RNGs {sorted(want)}", sorted(rng))
    for name, state in rng.items():
        kind = get(state, "bit_generator", f"{w}.{name}")
        choice(f"{w}.{name}.bit_generator", kind, (want[name]["bit_generator"],))
        if kind not in _BIT_GENERATORS:
            raise bad(f"{w}.{name}.bit_generator", f"one of {list(_BIT_GENERATORS)}", kind)
        try:
            getattr(np.random, kind)().state = state
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            raise CheckpointError(f"{w}.{name}: not a {kind} state ({type(e).__name__}: {e})") from None


def _check_run(meta):
    """The settings a command-line run records (it always records its corpus) and reads back
    on --resume, when present."""
    if "corpus" not in meta:
        return                  # a run of the Python API: its metadata is its own
    string("corpus", meta["corpus"])
    if "seed" in meta:
        integer("seed", meta["seed"], 0, 2 ** 64 - 1, none_ok=True)
    fractions = [real(k, meta[k], 0, 1) for k in ("val_frac", "test_frac") if k in meta]
    if any(f >= 1 for f in fractions) or sum(fractions) >= 1:
        raise bad("val_frac, test_frac", "fractions in [0, 1) with a sum below 1", fractions)
    if "split" in meta:
        choice("split", meta["split"], ("tail", "interleaved"))
    if "init_range" in meta:
        real("init_range", meta["init_range"], 0, none_ok=True)
