"""What `fastrnn.load` checks in a checkpoint's metadata: the model-level fields here (with the
checks of `fastrnn.meta_checks`), the Trainer's training state (`fastrnn.train.checkpoint_checks`)
and a task's options and fitted state (`fastrnn.tasks.validate`). Kept apart from
`fastrnn.meta_checks`, whose checks those modules use: the checks never import their users."""
from .meta_checks import CheckpointError, check_optimizer, string, strings


def check_checkpoint(meta, model, vocabulary, optimizer):
    """Check the metadata of a loaded checkpoint (see the module docstring); `optimizer` is the
    optimiser state dict (scalars and arrays) or None. Raises CheckpointError naming the field."""
    name = type(model).__name__
    if "fastrnn_version" in meta:
        string("fastrnn_version", meta["fastrnn_version"])
    size = model.config.get("vocab_size") if isinstance(model.config, dict) else None
    if vocabulary is not None and name in ("LanguageModel", "ConditionedGenerator") \
            and len(vocabulary) != size:
        raise CheckpointError(f"vocab: holds {len(vocabulary)} tokens but the model's embedding "
                              f"has {size} rows")
    if name == "ConditionedGenerator" and meta.get("labels") is not None:
        labels = strings("labels", meta["labels"])
        C = model.config.get("num_classes")
        if C is None or len(labels) != C:
            raise CheckpointError(f"labels: {len(labels)} names for a generator with "
                                  f"{C or 'no'} classes")
    if optimizer is not None:
        check_optimizer(meta["optimizer"], optimizer, model)
    if "training" in meta:
        from .train.checkpoint_checks import check_training
        check_training(meta, model)
    if any(k in meta for k in ("task_options", "task_state")) or \
            isinstance(meta.get("task"), str) and _known_task(meta["task"]):
        from .tasks.validate import check_task
        check_task(meta, model)


def _known_task(name):
    from .tasks import TASKS
    return name in TASKS
