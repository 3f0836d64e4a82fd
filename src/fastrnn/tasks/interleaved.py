"""char-rnn's data protocol for language models (`fastrnn train --split interleaved`).

char-rnn's `CharSplitLMMinibatchLoader` cuts the corpus into `batch_size` rows (one stream each),
splits the rows into windows of `seq_length` steps, and gives the first windows to training and
the following ones to validation (and test): validation is the LAST part of EVERY stream, read
with the state carried from window to window. `--split tail` (the default) instead keeps the
last part of the whole corpus for validation, which is one contiguous (and often different)
piece of text.

What char-rnn does, and where we differ:
- windows: char-rnn cuts the data to a multiple of batch_size * seq_length and makes the last
  target wrap around to the first token; here each stream is (N - 1) // batch_size tokens long and
  every target is the true next token (no wrap-around), as in `fastrnn.data.StreamBatches`.
  `interleaved_split(..., wrap=True)` lays the streams out exactly as char-rnn does instead (what
  examples/charrnn_shakespeare.py uses, so that its measured run is char-rnn's data to the token);
  the CLI keeps the true targets (its streams are (N - 1) // batch_size tokens long rather than
  char-rnn's, so each window's text is shifted by a few tokens).
- counts: with no test part char-rnn gives floor(windows * train_frac) windows to training and
  the rest to validation; with a test part, floor(windows * val_frac) to validation and the rest
  to test. We do the same with train_frac = 1 - val_frac - test_frac (the test windows are unused
  by the Trainer), except that validation gets at least one window when val_frac > 0 and training
  always keeps one.
- the training state: char-rnn carries the hidden state across epochs; fastrnn's `StateCarry`
  resets it at each epoch (and at each validation pass, as char-rnn's eval_split does).
"""
import math

import numpy as np

from ..data import StreamBatches


class StreamWindows(StreamBatches):
    """Windows [first, first + count) of `StreamBatches(ids, batch_size, seq_len)`: the same
    (inputs, targets) batches, restricted to one part of every stream."""

    def __init__(self, ids, batch_size, seq_len, first, count):
        super().__init__(ids, batch_size, seq_len)
        if not (0 <= first and count >= 1 and first + count <= self.windows):
            raise ValueError(f"windows [{first}, {first + count}) outside the {self.windows} windows")
        lo, hi = first * seq_len, (first + count) * seq_len + 1
        self._streams = np.ascontiguousarray(self._streams[:, lo:hi])
        self.windows = count


def interleaved_split(ids, batch_size, seq_len, val_frac=0.05, test_frac=0.0, wrap=False):
    """(training windows, validation windows or None) of an id stream, char-rnn style.

    wrap=True: char-rnn's exact layout (CharSplitLMMinibatchLoader): the ids cut to a multiple of
    batch_size * seq_len, stream b holding the b-th part, and the very last target wrapping
    around to the first id."""
    if wrap:
        ids = np.asarray(ids)
        n = len(ids) - len(ids) % (batch_size * seq_len)
        if n == 0:
            raise ValueError(f"ids: {len(ids)} tokens are fewer than one window of "
                             f"batch_size={batch_size} x seq_len={seq_len}")
        # StreamBatches on n + 1 ids makes streams of n / batch_size steps whose extra target is
        # the next stream's first id: for the last stream that is the appended first id
        ids = np.concatenate([ids[:n], ids[:1]])
    n = len(StreamBatches(ids, batch_size, seq_len))
    if test_frac == 0:
        n_train = math.floor(n * (1 - val_frac) + 1e-9)
        n_val = n - n_train
    else:
        n_train = math.floor(n * (1 - val_frac - test_frac) + 1e-9)
        n_val = math.floor(n * val_frac + 1e-9)
    if val_frac > 0 and n_val == 0 and n > 1:
        n_val, n_train = 1, min(n_train, n - 1)
    n_train = max(1, min(n_train, n - n_val)) if n > 1 else 1
    n_val = min(n_val, n - n_train)
    train = StreamWindows(ids, batch_size, seq_len, 0, n_train)
    val = StreamWindows(ids, batch_size, seq_len, n_train, n_val) if n_val else None
    return train, val
