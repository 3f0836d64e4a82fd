"""Text to token ids and ids to batches: `Vocab`, char-rnn stream batching, padding.

Char-rnn style batching (truncated BPTT): the id stream is cut into `batch_size` contiguous
streams; window k holds steps [k*T, (k+1)*T) of every stream, so row b of window k+1 continues
row b of window k and the hidden state can be carried from one window to the next.
"""
from __future__ import annotations

import os
import re
import sys
from collections import Counter

import numpy as np

from . import checks

UNK, EOS = "<unk>", "<eos>"
_WORD = re.compile(r"\w+|[^\w\s]")
# a word, a punctuation mark, or a line break as str.splitlines sees one (each break ends a line)
_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_WORD_OR_BREAK = re.compile(r"(\w+|[^\w\s])|\r\n|[" + _BREAKS + "]")

MAX_INPUT_BYTES = 1 << 30
"""The most bytes fastrnn reads as a whole: a language model's corpus, a task's training or
evaluation file (1 GiB; FASTRNN_MAX_INPUT_BYTES overrides it). Past it, a clear error, never an
out-of-memory: reading /dev/zero or an endless pipe ends there."""
_BOM = "\ufeff"


def tokenize(text, level):
    """Tokens of `text`: characters, or words and punctuation with `<eos>` ending every line."""
    if level == "char":
        return list(text)
    if level != "word":
        raise ValueError(f"level: expected 'char' or 'word', got {level!r}")
    tokens = []
    for line in text.splitlines():
        tokens.extend(_WORD.findall(line))
        tokens.append(EOS)
    return tokens


def iter_tokens(text, level):
    """The tokens of `tokenize(text, level)` one at a time, without building their list (a
    large corpus' list of word strings would take many times the text's memory)."""
    if level == "char":
        yield from text
        return
    if level != "word":
        raise ValueError(f"level: expected 'char' or 'word', got {level!r}")
    for m in _WORD_OR_BREAK.finditer(text):
        yield m.group() if m.group(1) else EOS
    # splitlines: text after the last break is one more line (a break at the very end is not)
    if text and text[-1] not in _BREAKS:
        yield EOS


def max_input_bytes():
    """MAX_INPUT_BYTES, or FASTRNN_MAX_INPUT_BYTES when set (ValueError if not a positive integer)."""
    return env_limit("FASTRNN_MAX_INPUT_BYTES", MAX_INPUT_BYTES)


def env_limit(variable, default):
    """The positive integer in environment `variable`, or `default` when it is not set."""
    value = os.environ.get(variable)
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{variable}: expected a positive number of bytes, got {value!r}")
    return n


class CorpusTooLarge(ValueError):
    """A corpus over the bytes fastrnn reads as a whole (FASTRNN_MAX_INPUT_BYTES)."""


def read_corpus(path, max_bytes=None):
    """The text of a UTF-8 corpus file (or stdin for '-'): at most `max_bytes` bytes (default:
    max_input_bytes()), a leading BOM dropped, \\r\\n and \\r read as \\n. ValueError naming the
    file (and the line of a byte that is not UTF-8); OSError if it cannot be opened."""
    limit = max_input_bytes() if max_bytes is None else max_bytes
    name = "<stdin>" if path == "-" else str(path)
    f = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        data = f.read(limit + 1)
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    if len(data) > limit:
        raise CorpusTooLarge(f"{name}: more than {limit} bytes, the most fastrnn reads as a whole "
                         f"(FASTRNN_MAX_INPUT_BYTES raises it)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{name}:{line}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    del data
    if text.startswith(_BOM):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


class Vocab:
    """Token <-> id mapping. Ids 0 and 1 are `<unk>` and `<eos>`; then tokens by frequency.

    Parameters
    ----------
    tokens : list of str
        Distinct tokens, starting with ``"<unk>", "<eos>"``; a token's id is its index.
    level : {"char", "word"}, default "char"
        Characters or whitespace-separated words.

    Raises
    ------
    TypeError, ValueError
        `tokens` not a list of distinct str starting with the two specials, or a bad `level`.

    See Also
    --------
    Vocab.build : the vocabulary of a text.
    """

    def __init__(self, tokens: list[str], level: str = "char"):
        tokens = list(tokens)
        if not all(isinstance(t, str) for t in tokens):
            raise TypeError("tokens: expected a list of str")
        if tokens[:2] != [UNK, EOS] or len(set(tokens)) != len(tokens):
            raise ValueError("tokens: expected distinct tokens starting with '<unk>', '<eos>'")
        if level not in ("char", "word"):
            raise ValueError(f"level: expected 'char' or 'word', got {level!r}")
        self.tokens, self.level = tokens, level
        self.stoi = {t: i for i, t in enumerate(tokens)}
        self.unk_id, self.eos_id = 0, 1
        self._decode_table = np.array(tokens, dtype=object)

    @classmethod
    def build(cls, text: str, level: str = "char", min_count: int = 1, max_size: int | None = None) -> Vocab:
        """The vocabulary of `text`: tokens seen at least `min_count` times, most frequent first
        (ties in order of first appearance), at most `max_size` tokens including the two specials.

        Parameters
        ----------
        text : str
            The corpus.
        level : {"char", "word"}, default "char"
            Characters or whitespace-separated words.
        min_count : int, default 1
            Rarer tokens are left out (they encode as ``<unk>``).
        max_size : int, optional
            At most this many tokens (>= 2), the two specials included.

        Returns
        -------
        Vocab
        """
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        checks.positive_int("min_count", min_count)
        if max_size is not None:
            checks.positive_int("max_size", max_size)
            if max_size < 2:
                raise ValueError(f"max_size: expected at least 2 (room for <unk> and <eos>), got {max_size}")
        counts = Counter(iter_tokens(text, level))
        counts.pop(UNK, None)
        counts.pop(EOS, None)
        # Counter keeps first-appearance order, and sorted() is stable: ties stay in that order
        kept = [t for t, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= min_count]
        if max_size is not None:
            kept = kept[:max_size - 2]
        return cls([UNK, EOS] + kept, level)

    def __len__(self):
        return len(self.tokens)

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.tokens == other.tokens and self.level == other.level

    def encode(self, text: str) -> np.ndarray:
        """int64 ids of the tokens of `text` (unseen tokens -> `<unk>`).

        Parameters
        ----------
        text : str

        Returns
        -------
        numpy.ndarray
            (n,) int64 ids.
        """
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        get = self.stoi.get
        count = len(text) if self.level == "char" else -1
        return np.fromiter((get(t, 0) for t in iter_tokens(text, self.level)), np.int64, count)

    def decode(self, ids) -> str:
        """Text of `ids`: characters joined as they are; words joined by spaces, `<eos>` -> newline.

        Parameters
        ----------
        ids : array_like of int
            1-D ids in ``[0, len(vocab))``.

        Returns
        -------
        str

        Raises
        ------
        ValueError
            An id out of range.
        """
        ids = _as_ids("ids", ids)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids: expected values in [0, {len(self)}), got {ids.min()}..{ids.max()}")
        ids = ids.astype(np.int64)
        if self.level == "char":
            return "".join("\ufffd" if i == 0 else "" if i == 1 else self.tokens[i] for i in ids.tolist())
        out = []
        for i in ids.tolist():
            if i == self.eos_id:
                out.append("\n")
            else:
                if out and out[-1] != "\n":
                    out.append(" ")
                out.append(self.tokens[i])
        return "".join(out)

    def to_dict(self) -> dict:
        """JSON-serialisable form (for checkpoints)."""
        return {"level": self.level, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, d):
        """Inverse of `to_dict`."""
        return cls(d["tokens"], d["level"])


def split(ids, val_frac: float = 0.05, test_frac: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contiguous (train, val, test) parts of a 1-D id array, in that order.

    Parameters
    ----------
    ids : array_like
        The id stream.
    val_frac, test_frac : float, default 0.05
        Fractions in [0, 1) of the validation and test parts (their sum < 1).

    Returns
    -------
    train, val, test : numpy.ndarray
        Views of `ids`.

    Raises
    ------
    ValueError
        A fraction out of range.
    """
    ids = np.asarray(ids)
    for name, f in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not 0 <= f < 1:
            raise ValueError(f"{name}: expected a fraction in [0, 1), got {f!r}")
    if val_frac + test_frac >= 1:
        raise ValueError(f"val_frac + test_frac: expected < 1, got {val_frac + test_frac}")
    n = len(ids)
    n_val, n_test = int(round(n * val_frac)), int(round(n * test_frac))
    n_train = n - n_val - n_test
    return ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]


class StreamBatches:
    """Truncated-BPTT windows over an id stream: `batches[k]` -> (inputs, targets), each (B, T)."""

    def __init__(self, ids, batch_size, seq_len):
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise TypeError(f"ids: expected a 1-D integer array, got {ids.dtype} {ids.shape}")
        for name, v in (("batch_size", batch_size), ("seq_len", seq_len)):
            checks.positive_int(name, v)
        per_stream = (len(ids) - 1) // batch_size     # each stream needs one extra id for targets
        self.windows = per_stream // seq_len
        if self.windows < 1:
            raise ValueError(f"ids: {len(ids)} tokens are too few for one window of batch_size="
                             f"{batch_size} x seq_len={seq_len}; need at least "
                             f"{batch_size * seq_len + 1}")
        self.batch_size, self.seq_len = batch_size, seq_len
        n = self.windows * seq_len
        # stream b is ids[b*per_stream : b*per_stream + n + 1]
        starts = np.arange(batch_size)[:, None] * per_stream
        self._streams = np.ascontiguousarray(ids[starts + np.arange(n + 1)[None, :]], dtype=np.int64)

    def __len__(self):
        return self.windows

    def __getitem__(self, k):
        if not -self.windows <= k < self.windows:
            raise IndexError(f"window {k} out of range for {self.windows} windows")
        k %= self.windows
        lo, hi = k * self.seq_len, (k + 1) * self.seq_len
        return (np.ascontiguousarray(self._streams[:, lo:hi]),
                np.ascontiguousarray(self._streams[:, lo + 1:hi + 1]))

    def __iter__(self):
        return (self[k] for k in range(self.windows))


def pad_sequences(seqs, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids (B, T_max) int64 padded with pad_id, lengths (B,) int64) of a list of id sequences.

    Parameters
    ----------
    seqs : sequence of array_like of int
        B non-empty id sequences.
    pad_id : int, default 0
        The id put past each sequence's end.

    Returns
    -------
    ids : numpy.ndarray
        (B, T_max) int64.
    lengths : numpy.ndarray
        (B,) int64.

    Raises
    ------
    TypeError, ValueError
        `seqs` not a list of id sequences, or a bad `pad_id`.
    """
    if isinstance(seqs, (str, bytes)):
        raise TypeError(f"seqs: expected a list of id sequences, got {type(seqs).__name__}")
    checks.integer("pad_id", pad_id)
    seqs = [_as_ids(f"seqs[{b}]", s).astype(np.int64) for b, s in enumerate(seqs)]
    if not seqs:
        raise ValueError("seqs: expected at least one sequence")
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.full((len(seqs), max(lengths.max(), 1)), pad_id, dtype=np.int64)
    for b, s in enumerate(seqs):
        out[b, :len(s)] = s
    return out, lengths


def _as_ids(name, ids):
    """`ids` as a 1-D integer array (an empty sequence is fine); float or other ids: TypeError."""
    a = np.asarray(ids)
    if a.ndim > 1:
        raise ValueError(f"{name}: expected a 1-D sequence of ids, got shape {a.shape}")
    if a.size == 0:
        return np.zeros(0, np.int64)
    if a.dtype.kind not in "iu":        # floats would be truncated silently
        raise TypeError(f"{name}: expected integer ids, got {a.dtype.name}")
    return a.reshape(-1)
