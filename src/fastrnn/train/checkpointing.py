"""Checkpoints of a training run: what `Trainer.save` writes (parameters, optimiser state, the
RNG states of the whole model, the callbacks' state, the position in the data, the settings and
metadata) and how `Trainer.resume` rebuilds a Trainer that continues exactly from it."""
import math

import numpy as np

from .. import io
from . import run_files
from .divergence import TrainingDiverged, finite


def save(trainer, path):
    """Write `trainer`'s checkpoint to `path` (see Trainer.save)."""
    p = trainer.model.params
    if not math.isfinite(float(np.dot(p, p))):
        raise TrainingDiverged("refusing to save non-finite parameters")
    cb_state, extra = {}, {}
    for cb in trainer.callbacks:
        state, arrays = cb.checkpoint_state()
        cb_state[type(cb).__name__] = state
        if trainer.dist is not None:
            arrays = trainer.dist.gather_arrays(cb, arrays)
        extra.update(arrays or {})
    if not trainer.is_root:
        return
    training = dict(iteration=trainer.iteration, epoch=trainer.epoch, window=trainer.window,
                    best_val=finite(trainer.best_val), elapsed=trainer.elapsed,
                    loss_level=finite(trainer.loss_level), settings=trainer.settings,
                    rng=trainer.model.rng_state(), callbacks=cb_state)
    io.save(path, trainer.model, trainer.vocab, optimizer=trainer.optimizer, arrays=extra,
            training=training, **trainer.meta)


def resume(cls, path, train, val=None, progress=True, forward=None, callbacks=(), items=None,
           distributed=None, overlap=False, **overrides):
    """A `cls` (Trainer) continuing the run saved at `path` (see Trainer.resume)."""
    model, vocab, extra = io.load(path)
    training = extra["meta"].get("training")
    if training is None:
        raise ValueError(f"{path}: holds a model but no training state to resume from")
    if extra["optimizer"] is None:
        raise ValueError(f"{path}: holds no optimizer state to resume from")
    settings = dict(training["settings"], **overrides)
    out = settings.pop("out", None)
    meta = {k: v for k, v in extra["meta"].items() if k not in io.RESERVED_META and k != "training"}
    # a language model's checkpoint resumed in the first form: (path, train_ids, val_ids)
    data = (vocab, train, val) if vocab is not None and forward is None else (train, val)
    trainer = cls(model, *data, forward=forward, callbacks=callbacks, items=items,
                  vocab=None if len(data) == 3 else vocab, out=out,
                  progress=progress, meta=meta, distributed=distributed, overlap=overlap,
                  **settings)
    trainer.optimizer.load_state_dict(extra["optimizer"])
    rng = training["rng"]
    if "bit_generator" in rng:      # written before fastrnn.nn: the layer stack's one RNG
        rng = {"rnn._dropout_rng": rng}
    model.set_rng_state(rng)
    if trainer.dist is not None:
        trainer.dist.decorrelate_rngs()
    trainer.iteration, trainer.epoch = training["iteration"], training["epoch"]
    trainer.window, trainer.elapsed = training["window"], training["elapsed"]
    trainer.best_val = math.inf if training["best_val"] is None else training["best_val"]
    trainer.loss_level = training.get("loss_level")
    for cb in trainer.callbacks:
        arrays = extra["arrays"] if trainer.dist is None else trainer.dist.local_arrays(cb, extra["arrays"])
        cb.restore(training.get("callbacks", {}).get(type(cb).__name__, {}), arrays)
    if trainer.window >= len(trainer.batches):
        raise ValueError(f"{path}: data position {trainer.window} is past the end of this data "
                         f"({len(trainer.batches)} batches); was it trained on other data?")
    run_files.reconcile(trainer, path)     # best.npz and log.jsonl as last.npz vouches for them
    return trainer
