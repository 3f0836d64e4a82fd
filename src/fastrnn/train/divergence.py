"""Divergence: training that blew up stops with `TrainingDiverged` before anything is written,
so the last checkpoint on disk always holds finite parameters and a finite validation loss."""
import math


class TrainingDiverged(RuntimeError):
    """Training blew up (non-finite or exploding loss); the last good checkpoint is kept."""


def check_loss(what, loss, level, factor, iteration):
    """Raise TrainingDiverged for a non-finite loss, or one above `factor` times its running
    `level` (plus 1; factor 0/None: only non-finite values count)."""
    if not math.isfinite(loss):
        raise TrainingDiverged(f"the {what} became {loss} at iteration {iteration}")
    if factor and level is not None and math.isfinite(level) and loss > factor * abs(level) + 1:
        raise TrainingDiverged(f"the {what} exploded to {loss:.4g} (running level {level:.4g}) "
                               f"at iteration {iteration}")


def finite(v):
    """A JSON-safe float: None for None/NaN/inf."""
    return None if v is None or not math.isfinite(v) else float(v)
