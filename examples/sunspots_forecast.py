"""Forecasting: the yearly sunspot number (statsmodels' bundled `sunspots`, 1700-2008), one year
ahead, with a SequenceRegressor.

An LSTM reads 40 years and predicts every next year (trained on all 40-year windows of
1700-1948, Adam, MSE on scaled values); tested one year ahead on 1949-2008, each test year
predicted from the 40 years before it. Prints MAE / RMSE (sunspot numbers) next to the
persistence forecast (next year = this year), the 11-year cycle (= 11 years ago), the
training mean and a least-squares linear AR(9) model, and a 10-year free-running forecast
from 1998 (the model feeding back its own predictions) against what happened.

    python examples/sunspots_forecast.py [--quick] [--json] [--write-data sunspots.csv]
"""
import sys

import numpy as np

from _common import Timer, parser, report, show_command
from _data import SunspotTask, forecast_errors, train

import fastrnn

WINDOW = 40


def train_regressor(task, epochs, hidden=32, seed=0, args=None):
    """A SequenceRegressor trained on the task's windows; (model, training seconds)."""
    x, y = task.train_windows()
    model = fastrnn.SequenceRegressor(1, hidden_size=hidden, cell="lstm", seed=seed)
    batches = fastrnn.PaddedBatches(list(x), list(y), batch_size=16, seed=seed, targets_per_step=True)
    return model, train(model, batches, epochs=epochs, lr=5e-3, args=args)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    task = SunspotTask(window=WINDOW)
    show_command(args, f"fastrnn train --task forecast {{data}} --target SUNACTIVITY --horizon 1 "
                       f"--window {WINDOW} --cell lstm --hidden 32 --lr 5e-3 --epochs 60",
                 lambda: ["SUNACTIVITY"] + [f"{v:g}" for v in task.values])
    timer = Timer()
    model, seconds = train_regressor(task, 10 if args.quick else 60, seed=args.seed, args=args)
    pred = model.predict(task.test_windows())[:, -1, 0]           # the output after each window
    metrics = {f"lstm_{k}": v for k, v in task.errors(pred).items()}
    metrics.update(task.baselines())
    start = int(np.searchsorted(task.years, 1998))                 # free-running: 1998-2007
    future = model.forecast(task.z[start - WINDOW:start, None], 10)[:, 0]
    metrics.update({f"free_run_10y_{k}": v for k, v in
                    forecast_errors(task.unscale(future), task.values[start:start + 10]).items()})
    metrics.update(train_seconds=seconds, seconds=timer.seconds)
    return report(args, metrics)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
