"""`SchedulerStep`: drive a `fastrnn.optim` learning-rate scheduler from the Trainer's hooks.

Epoch schedulers (StepLR, ExponentialLR, CosineAnnealingLR) step after every epoch (torch's
convention) or, with every="iteration", after every optimiser step; ReduceLROnPlateau steps
after every validation with the monitored value. Its state goes into checkpoints.
"""
from .callbacks import Callback

EVERY = ("epoch", "iteration", "validation")


def build_scheduler(factory, optimizer):
    """The scheduler `factory(optimizer)` makes, checked (TypeError/ValueError naming `scheduler`)."""
    if not callable(factory) or hasattr(factory, "step"):
        raise TypeError("scheduler: expected a function of the optimiser returning a scheduler, "
                        "e.g. lambda opt: fastrnn.optim.StepLR(opt, step_size=10); got "
                        f"{type(factory).__name__}")
    scheduler = factory(optimizer)
    if not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"scheduler: the function returned {type(scheduler).__name__}, not a "
                        f"scheduler (an object with step())")
    if getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError("scheduler: the function must build the scheduler on the optimiser it is given")
    return scheduler


class SchedulerStep(Callback):
    """Step `scheduler` every epoch / iteration / validation (default: validation for
    ReduceLROnPlateau, with `monitor`'s value; epoch for the others)."""

    def __init__(self, scheduler, every=None, monitor="val_loss"):
        if not callable(getattr(scheduler, "step", None)):
            raise TypeError(f"scheduler: expected a scheduler (an object with step()), got {type(scheduler).__name__}")
        plateau = type(scheduler).__name__ == "ReduceLROnPlateau"
        every = every or ("validation" if plateau else "epoch")
        if every not in EVERY:
            raise ValueError(f"scheduler_every: expected one of {', '.join(EVERY)}, got {every!r}")
        if plateau != (every == "validation"):
            raise ValueError(f"scheduler_every: {type(scheduler).__name__} steps "
                             f"{'only' if plateau else 'never'} at validations")
        self.scheduler, self.every, self.monitor = scheduler, every, monitor

    def on_train_begin(self, trainer):
        if self.every == "validation" and self.monitor.startswith("val_") and not trainer.val_batches:
            raise ValueError(f"scheduler: {type(self.scheduler).__name__} needs the validation value "
                             f"{self.monitor!r} (validation data, val=...)")

    def on_step_end(self, trainer, loss):
        if self.every == "iteration":
            self.scheduler.step()

    def on_epoch_end(self, trainer):
        if self.every == "epoch":
            self.scheduler.step()

    def on_validation_end(self, trainer, record):
        if self.every != "validation":
            return
        if record.get(self.monitor) is None:
            if self.monitor not in record or not trainer.val_batches:
                raise ValueError(f"scheduler: {type(self.scheduler).__name__} needs the validation "
                                 f"value {self.monitor!r} (validation data, val=...)")
            return
        self.scheduler.step(record[self.monitor])

    def checkpoint_state(self):
        s = self.scheduler
        state = s.state_dict() if hasattr(s, "state_dict") else {k: v for k, v in vars(s).items() if k != "optimizer"}
        return {"scheduler": state}, {}

    def restore(self, state, arrays):
        saved, s = state.get("scheduler"), self.scheduler
        if saved is None:
            return
        if hasattr(s, "load_state_dict"):
            s.load_state_dict(saved)
        else:
            vars(s).update(saved)
