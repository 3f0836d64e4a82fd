"""Output->hidden recurrence vs hidden->hidden recurrence on the same forecasting task.

The task is sunspots_forecast.py's (one year ahead, test years 1949-2008, 40-year windows of
1700-1948 for training). Both nets train with Adam for the same epochs on the same windows:

- hidden->hidden: a SequenceRegressor (LSTM, 32 units) reading z_t and predicting z_{t+1}; its
  memory is its hidden state, so training runs BPTT through every window.
- output->hidden: an OutputRecurrentNet (32 units), h_t = tanh(b + W o_{t-1} + U x_t); trained
  with teacher forcing, o_{t-1} is the true previous target (= z_t), so training has no time loop.
  Its only memory is the previous output, so it is run twice: with x_t = z_t (the same input as
  the LSTM: it then sees one year) and with x_t = the last 9 years (as the AR(9) baseline).

One-step prediction of a test year feeds the true last value as o_{t-1} (teacher forcing is
exact here: that value is known). Prints MAE / RMSE and training seconds of each, and the
persistence and AR(9) baselines.

    python examples/output_vs_hidden.py [--quick] [--json]
"""
import sys

import numpy as np

from _common import Timer, parser, report
from _data import SunspotTask, train
from sunspots_forecast import WINDOW, train_regressor

import fastrnn


def lagged(z_windows, z, starts, lags):
    """(N, W, lags) inputs: at each step the current value and the lags-1 values before it."""
    idx = starts[:, None, None] + np.arange(z_windows.shape[1])[None, :, None] - np.arange(lags)
    return z[idx].astype(np.float32)


def train_orn(task, lags, epochs, seed, args):
    """An OutputRecurrentNet on the task's windows with `lags` input values per step; returns
    (test predictions (scaled), training seconds)."""
    x, y = task.train_windows()
    # windows start at year `lags - 1` or later so every lag exists
    keep = np.arange(lags - 1, len(x))
    x = lagged(x[keep], task.z, keep, lags)
    model = fastrnn.OutputRecurrentNet(lags, 1, hidden_size=32, seed=seed)
    batches = fastrnn.PaddedBatches(list(x), list(y[keep]), batch_size=16, seed=seed,
                                    targets_per_step=True)
    seconds = train(model, batches, epochs=epochs, lr=5e-3, args=args,
                    forward=lambda b, train: model.forward((b[0], b[1]), train=train))
    t = task.test_idx
    x_last = task.z[t[:, None] - 1 - np.arange(lags)][:, None, :]          # (N, 1, lags)
    o_prev = task.z[t - 1][:, None]                                        # the true z_{t-1}
    return model.predict(x_last, o_init=o_prev)[:, 0, 0], seconds


def main(argv=None):
    args = parser(__doc__, write_data=False).parse_args(argv)
    task = SunspotTask(window=WINDOW)
    if not args.json:
        print("equivalent command: none for the output->hidden net (the forecast task trains the "
              "hidden->hidden regressor; see sunspots_forecast.py)")
    timer, epochs = Timer(), 10 if args.quick else 60
    metrics = {}
    lstm, seconds = train_regressor(task, epochs, seed=args.seed, args=args)
    rows = [("lstm", lstm.predict(task.test_windows())[:, -1, 0], seconds)]
    for lags in (1, 9):
        pred, seconds = train_orn(task, lags, epochs, args.seed, args)
        rows.append((f"orn_{lags}lag", pred, seconds))
    for name, pred, seconds in rows:
        metrics.update({f"{name}_{k}": v for k, v in task.errors(pred).items()})
        metrics[f"{name}_train_seconds"] = seconds
    base = task.baselines()
    metrics.update({k: v for k, v in base.items() if k.startswith(("persistence", "ar9"))})
    metrics["seconds"] = timer.seconds
    return report(args, metrics)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
