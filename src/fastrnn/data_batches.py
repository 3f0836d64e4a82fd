"""`PaddedBatches`: variable-length sequences in padded batches of similar lengths (bucketing),
so padding costs little, for the classifier / tagger / regressor and the generic `Trainer`.

Each epoch the sequences are put in a seeded random order and then stably sorted by length (so
sequences of equal length mix differently every epoch); consecutive runs of `batch_size` make
the batches, and the batches are visited in a seeded random order. Everything follows from
(seed, epoch), so the source is indexable (`batches[k]`, `len`) and an interrupted run resumes
exactly: pass the training batches as a Trainer callback (`callbacks=[train_batches]`); it
follows the Trainer's epoch and saves it in every checkpoint.
"""
import numpy as np

from . import checks


def _pad(seqs, lengths, pad):
    """(B, T_max, ...) array of `seqs` (each (T_i, ...)) padded with `pad`."""
    out = np.full((len(seqs), int(lengths.max())) + seqs[0].shape[1:], pad, dtype=seqs[0].dtype)
    for b, s in enumerate(seqs):
        out[b, :len(s)] = s
    return out


class PaddedBatches:
    """`batches[k]` -> (inputs (B, T_max[, F]), targets, lengths (B,) int64), bucketed by length.

    inputs: a list of sequences, each (T_i,) integer ids or (T_i, F) floats, T_i >= 1.
    targets: one per sequence: a label / vector (stacked into (B, ...)) or, with
    targets_per_step=True, a sequence of T_i items padded like the inputs (with target_pad).
    shuffle=False keeps the order given (no bucketing): for validation and test sets.
    seed: a non-negative int; the layout of epoch e depends on (seed, e) only.

    Parameters
    ----------
    inputs : sequence of array_like
        Each (T_i,) integer ids or (T_i, F) floats, T_i >= 1.
    targets : sequence
        One per sequence (a label or vector; with `targets_per_step`, T_i items).
    batch_size : int, default 32
    shuffle : bool, default True
        Shuffle and bucket by length each epoch; False keeps the order given.
    seed : int, default 0
        A non-negative seed of the epochs' layouts.
    targets_per_step : bool, default False
        Targets are sequences padded like the inputs.
    pad_id : int, default 0
        Pad value of integer inputs.
    target_pad : int or float, default 0
        Pad value of per-step targets.

    Raises
    ------
    TypeError, ValueError
        Bad sequences or options, named in the message.
    """

    def __init__(self, inputs, targets, batch_size=32, shuffle=True, seed=0, targets_per_step=False,
                 pad_id=0, target_pad=0):
        self.batch_size = checks.positive_int("batch_size", batch_size)
        checks.integer("seed", seed, 0)
        self.inputs = [self._as_sequence("inputs", k, s) for k, s in enumerate(inputs)]
        if not self.inputs:
            raise ValueError("inputs: expected at least one sequence")
        if len({(s.dtype.kind == "f", s.shape[1:]) for s in self.inputs}) > 1:
            raise ValueError("inputs: expected all ids or all feature sequences of one width")
        targets = list(targets)
        if len(targets) != len(self.inputs):
            raise ValueError(f"targets: expected one per sequence ({len(self.inputs)}), got {len(targets)}")
        self.targets = [np.asarray(t) for t in targets]
        if targets_per_step:
            for k, (s, t) in enumerate(zip(self.inputs, self.targets)):
                if t.ndim < 1 or len(t) != len(s):
                    raise ValueError(f"targets[{k}]: expected {len(s)} per-step targets (as inputs[{k}]), "
                                     f"got shape {t.shape}")
        if len({t.shape[1:] if targets_per_step else t.shape for t in self.targets}) > 1:
            raise ValueError("targets: expected items of one shape")
        self.lengths = np.array([len(s) for s in self.inputs], np.int64)
        self.shuffle, self.seed = bool(shuffle), seed
        self.targets_per_step, self.pad_id, self.target_pad = bool(targets_per_step), pad_id, target_pad
        self.set_epoch(0)

    @staticmethod
    def _as_sequence(name, k, s):
        s = np.asarray(s)
        if s.dtype.kind not in "iuf" or s.ndim not in (1, 2):
            raise TypeError(f"{name}[{k}]: expected (T,) integer ids or (T, F) floats, got "
                            f"{s.dtype.name} {s.shape}")
        if s.dtype.kind == "f" and s.ndim != 2 or s.dtype.kind != "f" and s.ndim != 1:
            raise ValueError(f"{name}[{k}]: ids must be 1-D and features 2-D, got {s.dtype.name} {s.shape}")
        if len(s) == 0:
            raise ValueError(f"{name}[{k}]: empty sequence")
        return s.astype(np.int64) if s.dtype.kind != "f" else s

    def set_epoch(self, epoch):
        """Lay out the batches of `epoch` (a function of seed and epoch only)."""
        self.epoch = int(epoch)
        n, B = len(self.inputs), self.batch_size
        if not self.shuffle:
            self._batches = [np.arange(i, min(i + B, n)) for i in range(0, n, B)]
            return
        rng = np.random.default_rng([int(self.seed), self.epoch])
        order = rng.permutation(n)
        order = order[np.argsort(self.lengths[order], kind="stable")]      # bucket by length
        batches = [order[i:i + B] for i in range(0, n, B)]
        self._batches = [batches[k] for k in rng.permutation(len(batches))]

    def __len__(self):
        return len(self._batches)

    def __getitem__(self, k):
        if not -len(self) <= k < len(self):
            raise IndexError(f"batch {k} out of range for {len(self)} batches")
        idx = self._batches[k]
        lengths = self.lengths[idx]
        inputs = _pad([self.inputs[i] for i in idx], lengths, self.pad_id)
        targets = [self.targets[i] for i in idx]
        targets = _pad(targets, lengths, self.target_pad) if self.targets_per_step else np.stack(targets)
        return inputs, targets, lengths.copy()

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    @property
    def padding_fraction(self):
        """The share of padded (wasted) steps over this epoch's batches."""
        padded = sum(len(b) * int(self.lengths[b].max()) for b in self._batches)
        return 1 - self.lengths.sum() / padded

    # ---- the Trainer's callback interface (fastrnn.train.Callback, duck-typed: data does not
    # import train): follow the Trainer's epoch and save it in checkpoints for exact resume ----------
    def on_step_end(self, trainer, loss):
        """Nothing per step."""

    def on_validation_start(self, trainer):
        """Nothing before validation."""

    def metrics(self, trainer):
        """No numbers of its own."""
        return {}

    def on_epoch_end(self, trainer):
        self.set_epoch(trainer.epoch)

    def checkpoint_state(self):
        return {"epoch": self.epoch}, {}

    def restore(self, state, arrays):
        self.set_epoch(state.get("epoch", 0))
