"""The `forecast` task: a CSV of series (one column each) -> SequenceRegressor(output="last").

An example is a window of `--window` consecutive rows of every column, normalised with the mean
and standard deviation of the TRAINING rows only (stored in the checkpoint); its target is the
next `--horizon` values of the `--target` column (a header name or a 0-based index; default:
the last column). The split is chronological: validation holds the last `--val-frac` of the rows
(its windows may look back into the training rows, their targets never do). Metrics are in the
data's units: MAE and RMSE, and the MAE of the persistence forecast (the last value repeated)
as the baseline to beat.

The mean and standard deviation are computed on each column scaled by its largest magnitude, so
that values near the float64 limit (1e200, 1e308) do not overflow; a constant column (standard
deviation 0, or below 1e-12 of its magnitude) is only centred (its std is stored as 1). Training
data whose statistics or normalised values are still not finite is refused with one line.
"""
import numpy as np

from ..meta_checks import MAX_SCALE
from ..models import SequenceRegressor
from . import metrics as M
from .base import Task
from .formats import DataError, FormatError, read_csv


class Series:
    """The rows (N, F) of a CSV file, their column names and line numbers, and where the
    examples' targets start (0, or the first validation row)."""

    def __init__(self, names, values, lines, path, first_target=0):
        self.names, self.values, self.lines, self.path = names, values, lines, path
        self.first_target = first_target

    def __len__(self):
        return len(self.values)


def normaliser(values, path):
    """(mean, std) of every column of `values` (N, F), computed without overflow (see the module
    doc); DataError naming `path` when they, or the normalised values, are not finite."""
    with np.errstate(all="ignore"):
        scale = np.abs(values).max(axis=0) if len(values) else np.zeros(values.shape[1])
        scale[scale == 0] = 1.0
        scaled = values / scale
        mean_s, std_s = scaled.mean(axis=0), scaled.std(axis=0)
        constant = ~(std_s > 1e-12)
        mean, std = mean_s * scale, np.where(constant, 1.0, std_s * scale)
        z = (values - mean) / std
    bad = [k for k in range(values.shape[1]) if not (np.isfinite(mean[k]) and np.isfinite(std[k])
                                                      and np.isfinite(z[:, k]).all())]
    if bad:
        raise DataError(path, f"column {bad[0] + 1}: values too large to normalise (largest "
                              f"magnitude {scale[bad[0]]:.3g}); rescale the data")
    return mean, std


class Forecast(Task):
    """See the module docstring."""

    name, metric_names, stats_size = "forecast", ("mae", "rmse", "persistence_mae"), 4

    def read(self, path, labelled=True, errors=None):
        # predict needs only the last window: reading a file of any length keeps just that
        window = self.o.get("window")
        tail = window if not labelled and type(window) is int and window > 0 else None
        names, values, lines = read_csv(path, errors, tail=tail)
        if self.state is not None and names and values.shape[1] != len(self.state["columns"]):
            where = FormatError(path, lines[0] if lines else 1,
                                f"expected {len(self.state['columns'])} columns (as in training: "
                                f"{', '.join(self.state['columns'])}), found {values.shape[1]}")
            raise where
        return Series(names, values, lines, path)

    def split(self, data, val_frac, seed):
        n_val = int(round(len(data) * val_frac))
        n_train = len(data) - n_val
        train = Series(data.names, data.values[:n_train], data.lines[:n_train], data.path)
        if not n_val:
            return train, None
        return train, Series(data.names, data.values, data.lines, data.path, first_target=n_train)

    def _target_column(self, names):
        target = self.o["target"]
        if target is None:
            return len(names) - 1
        if target in names:
            return names.index(target)
        if target.isdigit() and int(target) < len(names):
            return int(target)
        raise ValueError(f"--target: expected a column name ({', '.join(names)}) or an index "
                         f"below {len(names)}, got {target!r}")

    def fit(self, train, everything):
        data = train
        mean, std = normaliser(data.values, data.path)     # scaled: no overflow on the way
        # beyond MAX_SCALE a forecast's y * std + mean could overflow
        huge = ~((np.abs(mean) <= MAX_SCALE) & (std <= MAX_SCALE))
        if huge.any():
            k = int(np.argmax(huge))
            row = int(np.argmax(np.abs(data.values[:, k])))
            raise FormatError(data.path, data.lines[row], f"column {data.names[k]!r}: values as large "
                              f"as {data.values[row, k]:g} cannot be normalised (a column's mean and "
                              f"standard deviation must stay within {MAX_SCALE:g})")
        self.state = dict(columns=list(data.names), target=self._target_column(data.names),
                          mean=mean.tolist(), std=std.tolist())

    def encode(self, data, path, errors=None):
        """Windows (W, F) float and targets (horizon,) for every target position of `data`."""
        W, Hz = self.o["window"], self.o["horizon"]
        z = self._normalised(data.values, data.lines, path)
        starts = range(max(W, data.first_target), len(z) - Hz + 1)
        inputs = [z[t - W:t] for t in starts]
        targets = np.array([z[t:t + Hz, self.state["target"]] for t in starts],
                           self.o["dtype"]).reshape(len(inputs), Hz)
        if not inputs and data.first_target:
            raise ValueError(f"--val-frac: the validation part (the last {len(z) - data.first_target}"
                             f" rows) is shorter than --horizon {Hz}; give a larger fraction or 0")
        if not inputs:
            raise FormatError(path, data.lines[-1] if data.lines else 1,
                              f"expected at least {W + Hz} rows for one window of {W} rows and "
                              f"{Hz} target rows, found {len(z)}")
        return inputs, targets, list(starts)

    def _normalised(self, values, lines, path):
        """`values` normalised with the training statistics, in the model's dtype; FormatError
        naming the line of a value too far from the training rows to be represented."""
        with np.errstate(all="ignore"):
            z = ((values - self.state["mean"]) / self.state["std"]).astype(self.o["dtype"])
        bad = np.argwhere(~np.isfinite(z))
        if len(bad):
            row, k = bad[0]
            raise FormatError(path, lines[row], f"column {k + 1}: {values[row, k]:.6g} is too far "
                                                f"from the training rows' mean to normalise "
                                                f"({self.o['dtype']})")
        return z

    def build_model(self):
        o = self.o
        return SequenceRegressor(len(self.state["columns"]), output_size=o["horizon"],
                                 hidden_size=o["hidden"], cell=o["cell"], num_layers=o["layers"],
                                 output="last", dropout=o["dropout"], dtype=o["dtype"], seed=o["seed"])

    def _unscale(self, y):
        k = self.state["target"]
        with np.errstate(over="ignore"):            # beyond float64: inf, which is what it is
            return np.asarray(y, np.float64) * self.state["std"][k] + self.state["mean"][k]

    def _forecasts_z(self, model, inputs):
        """(N, horizon) forecasts in units of the target's standard deviation (float64)."""
        x = np.stack(inputs)
        out = np.concatenate([model.predict(x[i:i + self.o["batch"]])
                              for i in range(0, len(x), self.o["batch"])])
        return np.asarray(out, np.float64)

    def forecasts(self, model, inputs):
        """(N, horizon) forecasts in the data's units."""
        return self._unscale(self._forecasts_z(model, inputs))

    def metric_stats(self, model, encoded):
        """[sum of |error|, sum of error^2, values, sum of the persistence forecast's |error|], the
        errors in units of the target's standard deviation: sums of values near the float64
        limit would overflow in the data's units (metrics_from_stats scales them back)."""
        inputs, targets, _ = encoded
        gold, predicted = np.asarray(targets, np.float64), self._forecasts_z(model, inputs)
        last = np.stack([w[-1, self.state["target"]] for w in inputs]).astype(np.float64)
        persistence = np.repeat(last[:, None], gold.shape[1], axis=1)
        return np.array([*M.error_sums(predicted, gold), M.error_sums(persistence, gold)[0]], np.float64)

    def metrics_from_stats(self, stats):
        abs_sum, sq_sum, n, persistence = stats
        std = float(self.state["std"][self.state["target"]])
        # Python floats: a product beyond float64 is inf, without a NumPy warning
        return {"mae": float(M.ratio(abs_sum, n)) * std,
                "rmse": float(np.sqrt(M.ratio(sq_sum, n))) * std,
                "persistence_mae": float(M.ratio(persistence, n)) * std}

    def predict_file(self, model, data, path, errors):
        """One line per forecast step: the forecast from the last window of `data`."""
        return [f"{v:.6g}" for v in self.predict_last(model, data)]

    def predict_last(self, model, data):
        """The forecast (horizon,) from the last window of `data` (FormatError if too short)."""
        W = self.o["window"]
        if len(data) < W:
            raise FormatError(data.path, data.lines[-1] if data.lines else 1,
                              f"expected at least {W} rows (one window), found {len(data)}")
        z = self._normalised(data.values[-W:], data.lines[-W:], data.path)
        return self.forecasts(model, [z])[0]
