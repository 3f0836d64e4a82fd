"""One training loop for every model (`Trainer`, `fit`) and its callbacks."""
from .callbacks import Callback, Metric, StateCarry
from .checkpoint_callback import ModelCheckpoint
from .early_stopping import EarlyStopping
from .fit import fit
from .history import History
from .init import init_uniform
from .scheduling import SchedulerStep
from .trainer import OPTIMIZERS, Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainingDiverged", "Callback", "StateCarry", "Metric", "OPTIMIZERS", "init_uniform",
           "fit", "History", "EarlyStopping", "ModelCheckpoint", "SchedulerStep"]
