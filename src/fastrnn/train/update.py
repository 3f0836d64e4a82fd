"""The Trainer's update as separate Python steps: zero_grad, forward, backward (or the
data-parallel gradients), the divergence checks, clipping and the optimiser step. The fused native
call (train/fused.py) does the same in one call where it applies; this is the general path."""
import math

import numpy as np

from .. import optim
from .divergence import TrainingDiverged


def python_update(trainer, batch):
    """One iteration's update of `trainer` on `batch` in Python; returns the loss. Raises
    TrainingDiverged (the parameters left as they were when the loss or gradients are bad)."""
    trainer.model.zero_grad()
    if trainer.dist is None:
        trainer.last_items = trainer.items(batch)     # for the items/s display
        loss = float(trainer.forward(batch, True))
        trainer._check_loss("training loss", loss, trainer.loss_level)
        trainer.model.backward()
    else:       # this rank's share, then one all-reduce: the global batch's loss and gradient
        loss = trainer.dist.gradients(trainer.forward, batch)
        trainer.last_items = trainer.dist.global_items
        trainer._check_loss("training loss", loss, trainer.loss_level)
    g = trainer.model.grads
    if not math.isfinite(float(np.dot(g, g))):
        raise TrainingDiverged(f"the gradients became non-finite at iteration {trainer.iteration}")
    if trainer.settings["clip"]:
        optim.clip_grad_norm(trainer.model, trainer.settings["clip"])
    if trainer.settings.get("clip_value"):
        optim.clip_grad_value(trainer.model, trainer.settings["clip_value"])
    trainer.optimizer.step()
    p = trainer.model.params
    if not math.isfinite(float(np.dot(p, p))):
        raise TrainingDiverged(f"the parameters became non-finite at iteration {trainer.iteration}")
    return loss
