"""One training loop for every model (`Trainer`) and its callbacks."""
from .callbacks import Callback, Metric, StateCarry
from .init import init_uniform
from .trainer import OPTIMIZERS, Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainingDiverged", "Callback", "StateCarry", "Metric", "OPTIMIZERS", "init_uniform"]
