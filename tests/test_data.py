"""Vocab, splits, char-rnn stream batching and padding."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastrnn.data import StreamBatches, Vocab, pad_sequences, split, tokenize


def test_char_vocab_round_trip_and_unknowns():
    v = Vocab.build("hello world")
    assert v.tokens[:2] == ["<unk>", "<eos>"] and v.tokens[2] == "l"      # most frequent first
    assert v.decode(v.encode("hello world")) == "hello world"
    ids = v.encode("hex")
    assert ids.dtype == np.int64 and ids[2] == v.unk_id
    assert v.decode(ids) == "he\ufffd"
    assert Vocab.from_dict(v.to_dict()) == v


def test_word_vocab_lines_and_punctuation():
    text = "The cat sat.\nThe dog sat!\n"
    assert tokenize(text, "word") == ["The", "cat", "sat", ".", "<eos>", "The", "dog", "sat", "!", "<eos>"]
    v = Vocab.build(text, level="word")
    assert v.decode(v.encode(text)) == "The cat sat .\nThe dog sat !\n"
    assert v.encode("The bird")[1] == v.unk_id


def test_min_count_and_max_size():
    v = Vocab.build("aaabbc", min_count=2)
    assert v.tokens == ["<unk>", "<eos>", "a", "b"]
    assert Vocab.build("aaabbc", max_size=3).tokens == ["<unk>", "<eos>", "a"]
    with pytest.raises(ValueError, match="level"):
        Vocab.build("abc", level="byte")
    with pytest.raises(TypeError, match="text"):
        Vocab.build(b"abc")


def test_split_is_contiguous_and_validated():
    ids = np.arange(100)
    tr, va, te = split(ids, 0.1, 0.05)
    assert (len(tr), len(va), len(te)) == (85, 10, 5)
    np.testing.assert_array_equal(np.concatenate([tr, va, te]), ids)
    with pytest.raises(ValueError, match="val_frac"):
        split(ids, 1.2)
    with pytest.raises(ValueError, match="val_frac \\+ test_frac"):
        split(ids, 0.6, 0.5)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(2, 400), batch=st.integers(1, 9), seq=st.integers(1, 12))
def test_stream_windows_continue_each_other(n, batch, seq):
    ids = np.arange(n)
    if (n - 1) // batch < seq:
        with pytest.raises(ValueError, match="too few"):
            StreamBatches(ids, batch, seq)
        return
    sb = StreamBatches(ids, batch, seq)
    windows = list(sb)
    assert len(windows) == len(sb) >= 1
    for inputs, targets in windows:
        assert inputs.shape == targets.shape == (batch, seq) and inputs.dtype == np.int64
        np.testing.assert_array_equal(targets, inputs + 1)          # next token of the stream
    for (a, _), (b, _) in zip(windows, windows[1:]):
        np.testing.assert_array_equal(b[:, 0], a[:, -1] + 1)        # row b continues row b
    firsts = windows[0][0][:, 0]
    assert len(set(firsts)) == batch and (np.diff(firsts) == (n - 1) // batch).all()


def test_pad_sequences():
    ids, lengths = pad_sequences([[1, 2, 3], [4], []], pad_id=9)
    np.testing.assert_array_equal(ids, [[1, 2, 3], [4, 9, 9], [9, 9, 9]])
    np.testing.assert_array_equal(lengths, [3, 1, 0])


def test_type_confusions_raise_instead_of_guessing():
    from fastrnn.data import StreamBatches, Vocab, pad_sequences
    from fastrnn.params import as_float_dtype
    v = Vocab.build("abcabc")
    with pytest.raises(TypeError, match="text"):
        v.encode(b"abc")                          # used to return all <unk>
    with pytest.raises(TypeError, match="ids"):
        v.decode(np.array([2.7, 3.2]))            # used to truncate to [2, 3]
    with pytest.raises(TypeError, match="ids"):
        v.decode([2.0])
    assert v.decode([]) == "" and v.decode(np.array([2, 3], np.uint8)) == v.decode([2, 3])
    with pytest.raises(TypeError, match="tokens"):
        Vocab(["<unk>", "<eos>", 5])
    ids = np.arange(100)
    for bad in (dict(batch_size=True), dict(seq_len=True), dict(batch_size=2.0)):
        kw = {**dict(batch_size=2, seq_len=3), **bad}
        with pytest.raises(TypeError, match=list(bad)[0]):
            StreamBatches(ids, **kw)
    with pytest.raises(TypeError, match="seqs"):
        pad_sequences([[1, 2], [1.5]])
    with pytest.raises(TypeError, match="pad_id"):
        pad_sequences([[1, 2]], pad_id=0.5)
    with pytest.raises(TypeError, match="dtype"):
        as_float_dtype(None)                      # used to mean float64 silently
