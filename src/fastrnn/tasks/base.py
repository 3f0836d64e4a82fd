"""What every task shares: the Task interface, token vocabularies, the validation split, batching
for prediction, and the Trainer callback that puts the task's metrics into the log.

A task turns a labelled file into padded batches for one model of `fastrnn.models`, and a
trained model back into metrics and printed predictions. Everything fitted on the training part
(vocabularies, label list, normaliser, ...) lives in `task.state`, a JSON-serialisable dict that
goes into the checkpoint's metadata, so `predict` and `evaluate` need only the checkpoint.
"""
from collections import Counter

import numpy as np

from ..data import EOS, UNK, Vocab, tokenize
from ..data_batches import PaddedBatches
from ..train.callbacks import Callback


class Task:
    """Base class; subclasses implement the methods below for one file format and model."""

    name = None
    metric_names = ()       # the names `metrics` returns, best-known first
    headline_names = None   # the metric(s) for the progress bar, in preference (None: metric_names)
    stats_size = 0          # the length of `metric_stats`' vector
    line_oriented = False   # one example per input line: `predict` answers line for line
    # the options of a task run and their defaults (eval_every None: once per epoch)
    defaults = dict(level="char", min_count=1, cell="lstm", hidden=64, layers=1, dropout=0.0,
                    embed=32, batch=32, lr=2e-3, optimizer="adam", clip=5.0, lr_decay=1.0,
                    lr_decay_every=None, val_frac=0.1, eval_every=None, seed=0, dtype="float32",
                    epochs=10, max_time=None, bidirectional=None, pool="last", target=None,
                    horizon=1, window=24, beam=None, clip_value=None, lr_decay_after=None,
                    init_range=None, early_stop=None, attention=None)
    resume_free = ("beam",)     # besides the Trainer's schedule: may change on --resume
    try_next = "predict"        # the command that uses its checkpoints
    fixed_reason = "the model, data split and batching come from the checkpoint"

    def __init__(self, options, state=None):
        self.o, self.state = dict(options), state

    # ---- data --------------------------------------------------------------------------------
    def read(self, path, labelled=True, errors=None):
        """The examples of a file (FormatError naming file and line; see tasks.formats)."""
        raise NotImplementedError

    def split(self, data, val_frac, seed):
        """(training part, validation part or None) of `data`: a seeded random `val_frac` of
        the examples (the same for the same seed, so `--resume` redoes it exactly)."""
        n_val = int(round(len(data) * val_frac))
        order = np.random.default_rng(seed).permutation(len(data))
        val = sorted(order[:n_val].tolist())
        train = sorted(order[n_val:].tolist())
        return [data[i] for i in train], [data[i] for i in val] if val else None

    def fit(self, train, everything):
        """Set `self.state` (vocabularies, normaliser, ...) from the training part; label lists
        come from `everything` (a label seen only in validation is still a label)."""
        raise NotImplementedError

    def encode(self, data, path, errors=None):
        """(inputs, targets, kept examples) as the model's arrays; an example the state cannot
        encode (e.g. a label unseen in training) raises FormatError, or is reported into
        `errors` and left out."""
        raise NotImplementedError

    def batches(self, encoded, batch_size, shuffle, seed=0):
        """PaddedBatches of encoded (inputs, targets, examples)."""
        return PaddedBatches(encoded[0], encoded[1], batch_size=batch_size, shuffle=shuffle, seed=seed)

    def check_options(self):
        """ValueError for options that this task cannot take together."""
        if ":" in self.o["level"]:
            raise ValueError(f"--level {self.o['level']}: source:target levels are only for --task seq2seq")
        if self.o["attention"]:
            raise ValueError("--attention: only for --task seq2seq")

    # ---- model -------------------------------------------------------------------------------
    def build_model(self):
        """A new model for `self.state` and the options."""
        raise NotImplementedError

    def forward(self, model):
        """forward(batch, train) -> loss for the Trainer (None: model.forward)."""
        return None

    def metrics(self, model, encoded):
        """{name: value} of the model on encoded labelled data."""
        return self.metrics_from_stats(self.metric_stats(model, encoded))

    def metric_stats(self, model, encoded):
        """The sufficient statistics of `metrics` on encoded labelled data (at least one
        example): a float64 vector of `stats_size` sums over the examples (counts, error sums,
        edit distances, span counts). Disjoint parts' vectors add up to the whole's, which is how
        data-parallel validation combines the ranks' shares."""
        raise NotImplementedError

    def metrics_from_stats(self, stats):
        """{name: value} from a (summed) `metric_stats` vector."""
        raise NotImplementedError

    def headline(self, values):
        """(name, value) of the metric shown in the progress bar, from `metrics`' values (the
        first of `headline_names` that has a value), or None."""
        for name in self.headline_names or self.metric_names:
            if values.get(name) is not None and np.isfinite(values[name]):
                return name, values[name]
        return None

    def predict(self, model, encoded):
        """One output string per example (may hold several lines)."""
        raise NotImplementedError

    def predict_file(self, model, data, path, errors, first_line=1):
        """The output strings for the unlabelled examples `data` read from `path`; examples that
        cannot be encoded are reported into `errors`.

        A line-oriented task returns one string per input line from `first_line` on (data and
        errors hold a piece of the input that starts there), an empty one for a blank line (a
        record whose x is None) or a bad one (its error is in `errors`), so that output line k
        always answers input line k; the others leave bad examples out."""
        real = [r for r in data if r.x is not None]
        encoded = self.encode(real, path, errors)
        outputs = self.predict(model, encoded) if len(encoded[0]) else []
        if not self.line_oriented:
            return outputs
        by_line = {r.line: text for r, text in zip(encoded[2], outputs)}
        last = max([r.line for r in data] + [e.line for e in errors], default=0)
        return [by_line.get(n, "") for n in range(first_line, last + 1)]


# ---- tokens and vocabularies -------------------------------------------------------------------

def tokens_of(text, level):
    """The tokens of one line of text (characters, or words and punctuation without <eos>)."""
    tokens = tokenize(text, level)
    return [t for t in tokens if t != EOS] if level == "word" else tokens


def build_vocab(sequences, level, min_count=1, extra=()):
    """A Vocab of the tokens in `sequences` seen at least `min_count` times, most frequent first
    (ties in order of first appearance), after <unk>, <eos> and the `extra` special tokens."""
    counts = Counter(t for s in sequences for t in s)
    specials = [UNK, EOS, *extra]
    for t in specials:
        counts.pop(t, None)
    kept = [t for t, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= min_count]
    return Vocab(specials + kept, level)


def ids_of(vocab, tokens):
    """int64 ids of `tokens` (unknown tokens -> <unk>)."""
    get = vocab.stoi.get
    return np.fromiter((get(t, vocab.unk_id) for t in tokens), np.int64, len(tokens))


def in_batches(encoded_inputs, batch_size):
    """(indices, inputs (B, T...), lengths) over fixed-order padded batches of the inputs."""
    dummy = np.zeros(len(encoded_inputs), np.int64)
    batches = PaddedBatches(encoded_inputs, dummy, batch_size=batch_size, shuffle=False)
    for k in range(len(batches)):
        inputs, _, lengths = batches[k]
        yield np.arange(k * batch_size, k * batch_size + len(lengths)), inputs, lengths


class TaskMetrics(Callback):
    """The task's metrics on the validation part at every checkpoint: in the log as `val_<name>`,
    in the trainer's validation line, and the headline metric in the progress bar itself.

    Data-parallel, each rank computes the statistics of its share of the validation examples
    (rank r of K: examples [r*n//K, (r+1)*n//K)) and one all-reduce sums them: the metrics are
    those of the whole validation part, for 1/K of the work per rank (seq2seq decoding is costly).
    """

    def __init__(self, task, encoded_val):
        self.task, self.val, self.shown = task, encoded_val, None

    def metrics(self, trainer):
        self.shown = None
        if self.val is None or not len(self.val[0]):
            return {}
        dp = trainer.dist
        if dp is None:
            values = self.task.metrics(trainer.model, self.val)
        else:
            from ..train.distributed import bounds
            lo, hi = bounds(len(self.val[0]), dp.rank, dp.size)
            stats = (self.task.metric_stats(trainer.model, tuple(part[lo:hi] for part in self.val))
                     if hi > lo else np.zeros(self.task.stats_size))
            values = self.task.metrics_from_stats(dp.sum_over_ranks(stats))
        self.shown = self.task.headline(values)
        return {f"val_{k}": (None if v is None or not np.isfinite(v) else float(v))
                for k, v in values.items()}

    def postfix(self, trainer):
        """The headline validation metric for the progress bar (e.g. val_accuracy=0.9312)."""
        return {} if self.shown is None else {f"val_{self.shown[0]}": f"{self.shown[1]:.4f}"}
