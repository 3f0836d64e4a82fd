"""Fuzz cases of the text and file side: sampling, Vocab, batching, padding, optimisers, checkpoints."""
import os
import tempfile

import numpy as np
from hypothesis import strategies as st

import fastrnn
from fastrnn import io, optim
from fastrnn.data import StreamBatches, Vocab, pad_sequences, split
from fastrnn.sample import MIN_TEMPERATURE, generate
from fuzz_mutations import pick


_SAMPLE_VOCAB = Vocab.build("abcdef ghij\n")


def sampling(draw):
    model = fastrnn.LanguageModel(len(_SAMPLE_VOCAB), hidden_size=4, num_layers=1, seed=0)
    broken = draw(st.sampled_from(["length", "temperature", "top_k", "top_p", "prime", "stop",
                                   "seed", "num_samples", "nan", "none"]), "broken argument")
    numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 5),
                        st.sampled_from([1e-320, 5e-324, 1e-31, True, None, "1"]))
    kw = dict(length=pick(draw, st.integers(0, 12), st.one_of(st.integers(-3, -1), st.sampled_from(
                  [1.5, True, None, "3"])), broken, "length"),
              temperature=pick(draw, st.one_of(st.floats(0.05, 5), st.sampled_from([1e-320, 5e-324, 1e-31])),
                               numbers, broken, "temperature"),
              top_k=pick(draw, st.one_of(st.none(), st.integers(1, 20)),
                         st.one_of(st.integers(-2, 0), st.sampled_from([2.5, True, "2"])), broken, "top_k"),
              top_p=pick(draw, st.one_of(st.none(), st.floats(0.01, 1)), numbers, broken, "top_p"),
              prime=pick(draw, st.text("abcxyz \n", max_size=4), st.sampled_from([b"ab", None, 3]),
                         broken, "prime"),
              stop=pick(draw, st.one_of(st.none(), st.text("abc", max_size=2)),
                        st.sampled_from([b"a", 3]), broken, "stop"),
              seed=pick(draw, st.one_of(st.none(), st.integers(0, 2**70)),
                        st.sampled_from([-1, 1.5, "s"]), broken, "seed"),
              num_samples=pick(draw, st.one_of(st.none(), st.integers(1, 3)),
                               st.sampled_from([0, -1, 5000, 2.0, True, "2"]), broken, "num_samples"),
              argmax=draw(st.booleans(), "argmax"))
    if broken == "nan":         # a model with non-finite parameters
        model.params[draw(st.integers(0, model.params.size - 1), "nan at")] = np.nan
    texts = generate(model, _SAMPLE_VOCAB, **kw)
    assert broken in ("none", "nan", "top_p", "temperature"), f"accepted a bad {broken}"
    if kw["num_samples"] is None:
        texts = [texts]
    assert isinstance(texts, list) and len(texts) == (kw["num_samples"] or 1)
    for text in texts:
        assert isinstance(text, str) and text.startswith(kw["prime"])
        assert len(text) - len(kw["prime"]) <= kw["length"]
    if kw["temperature"] < MIN_TEMPERATURE and not kw["argmax"]:
        greedy = generate(model, _SAMPLE_VOCAB, **dict(kw, argmax=True, num_samples=None))
        assert texts == [greedy] * len(texts)


def vocab(draw):
    broken = draw(st.sampled_from(["text", "level", "min_count", "max_size", "encode", "decode",
                                   "none"]), "broken argument")
    text = pick(draw, st.text(max_size=30), st.one_of(st.binary(max_size=5), st.none(), st.integers()),
                broken, "text")
    level = pick(draw, st.sampled_from(["char", "word"]), st.sampled_from(["byte", None, 1]), broken, "level")
    v = Vocab.build(text, level=level,
                    min_count=pick(draw, st.integers(1, 3), st.sampled_from([0, -1, 1.5, "2"]), broken, "min_count"),
                    max_size=pick(draw, st.sampled_from([None, 2, 5]), st.sampled_from([1, True, 2.5]),
                                  broken, "max_size"))
    probe = pick(draw, st.text(max_size=10), st.sampled_from([b"ab", None, 3]), broken, "encode")
    ids = v.encode(probe)
    assert ids.dtype == np.int64 and ((0 <= ids) & (ids < len(v))).all()
    if level == "char" and all(ch in v.stoi for ch in text) and isinstance(text, str):
        assert v.decode(v.encode(text)) == text
    junk = pick(draw, st.lists(st.integers(0, len(v) - 1), max_size=4),
                st.one_of(st.lists(st.integers(-1, len(v)), min_size=1, max_size=4).filter(
                    lambda ids: min(ids) < 0 or max(ids) >= len(v)),
                          st.sampled_from([[1.5], np.array([2.0]), "ab", [[0, 1]], None,
                                           np.array([2**63], np.uint64)])), broken, "decode")
    assert isinstance(v.decode(junk), str)
    assert Vocab.from_dict(v.to_dict()) == v
    assert broken == "none", f"accepted a bad {broken}"


def stream_batches(draw):
    ids = draw(st.one_of(st.integers(0, 60).map(np.arange),
                         st.sampled_from([np.ones(20), np.ones((4, 5), np.int64), "abc", None,
                                          np.ones(20, bool), np.arange(30, dtype=np.uint8)])), "ids")
    sizes = st.one_of(st.integers(-1, 8), st.sampled_from([True, 2.0, None, 2**62, np.int64(3)]))
    b = StreamBatches(ids, draw(sizes, "batch_size"), draw(sizes, "seq_len"))
    assert len(b) >= 1
    prev = None
    for inputs, targets in b:
        assert inputs.shape == targets.shape == (b.batch_size, b.seq_len)
        np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
        if prev is not None:
            np.testing.assert_array_equal(prev[:, -1], inputs[:, 0])    # streams continue
        prev = targets


def splitting(draw):
    ids = draw(st.one_of(st.integers(0, 40).map(np.arange), st.sampled_from([np.ones((3, 3)), "abc", 5])), "ids")
    fracs = st.one_of(st.floats(0, 0.6), st.sampled_from([-0.1, 1.0, 1.5, float("nan"), None, "0.1"]))
    val, test = draw(fracs, "val_frac"), draw(fracs, "test_frac")
    parts = split(ids, val, test)
    assert 0 <= val < 1 and 0 <= test < 1 and val + test < 1, f"accepted {val}, {test}"
    np.testing.assert_array_equal(np.concatenate(parts), np.asarray(ids))


def padding(draw):
    seq = st.one_of(st.lists(st.integers(-3, 9), max_size=4), st.lists(st.floats(0, 3), min_size=1, max_size=2),
                    st.sampled_from([np.arange(3), np.ones((2, 2), np.int64), "ab", None, 5]))
    seqs = draw(st.one_of(st.lists(seq, max_size=4), st.sampled_from(["abc", None, 7])), "seqs")
    pad = draw(st.sampled_from([0, -1, 1.5, None, 7]), "pad_id")
    out, lengths = pad_sequences(seqs, pad)
    assert out.shape == (len(seqs), max(1, max(lengths)))
    for row, s, n in zip(out, seqs, lengths):
        np.testing.assert_array_equal(row[:n], np.asarray(s).reshape(-1))
        assert (row[n:] == pad).all()


OPTIMIZERS = [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad]


def optimizers(draw):
    cls = draw(st.sampled_from(OPTIMIZERS), "optimizer")
    model = fastrnn.LSTM(2, 3, dtype=draw(st.sampled_from(["float32", "float64"]), "dtype"), seed=0)
    lr = draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e-3, None, "x"])), "lr")
    opt = cls(model, lr=lr)
    model.grads[...] = np.random.default_rng(5).standard_normal(model.grads.shape)
    clip = draw(st.one_of(st.floats(allow_nan=True), st.just(None)), "max_norm")
    if clip is not None:
        optim.clip_grad_norm(model, clip)
        assert np.linalg.norm(model.grads) <= clip * (1 + 1e-5) + 1e-6
    opt.step()
    state = opt.state_dict()
    name = draw(st.sampled_from(sorted(state) + ["nothing"]), "corrupt")
    if name != "nothing":
        state[name] = draw(st.sampled_from([None, "x", np.zeros(3), -1, np.zeros((2, 2))]), "value")
    other = cls(model, lr=1e-3)
    other.load_state_dict(state)
    assert other.steps == opt.steps or name == "steps"


_CHECKPOINT = {}


def _checkpoint_bytes():
    if not _CHECKPOINT:
        model = fastrnn.LanguageModel(5, hidden_size=3, num_layers=1, seed=0)
        v = Vocab.build("abc")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "c.npz")
            fastrnn.save(path, model, v, optimizer=optim.Adam(model), arrays={"state/0": np.ones((1, 3))})
            _CHECKPOINT.update(data=open(path, "rb").read(), arrays=io.load_arrays(path), params=model.params.copy())
    return _CHECKPOINT


def _rezip(data, draw, k):
    """The checkpoint `data` with Python syntax written into one .npy header, re-zipped."""
    import io as _io
    import zipfile
    out = _io.BytesIO()
    with zipfile.ZipFile(_io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        names = src.namelist()
        victim = draw(st.sampled_from(names), f"entry {k}")
        for name in names:
            payload = bytearray(src.read(name))
            if name == victim:
                at = 10 + draw(st.integers(0, 60), f"offset {k}")
                payload[at:at + 1] = draw(st.sampled_from(
                    [b'"""', b"'", b"(", b")", b"{", b"}", b"#", b"\\", b"[", b",", b":", b"\n",
                     b"\x00", b"9" * 30, b"((((((((((((((((((((("]), f"syntax {k}")
            dst.writestr(name, bytes(payload))
    return out.getvalue()


def checkpoint_damage(draw):
    ref = _checkpoint_bytes()
    data, crafted = bytearray(ref["data"]), False
    for k in range(draw(st.integers(1, 3), "edits")):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append", "random",
                                   "header"]), f"op {k}")
        at = draw(st.integers(0, max(len(data) - 1, 0)), f"at {k}")
        if op == "header":      # a crafted file: valid CRCs, Python syntax inside a .npy header
            data, crafted = bytearray(_rezip(ref["data"], draw, k)), True
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7), f"bit {k}")
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255), f"byte {k}")
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8), f"bytes {k}")
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 8), f"n {k}")]
        elif op == "truncate":
            del data[at:]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=30), f"tail {k}")
        elif op == "random":
            data = bytearray(b"PK\x03\x04" + draw(st.binary(max_size=200), f"junk {k}"))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "damaged.npz")
        with open(path, "wb") as f:
            f.write(data)
        arrays, meta = io.load_arrays(path)        # CheckpointError (a ValueError) or intact
        if crafted:
            return                  # valid CRCs: a different but well-formed file may load
        want_arrays, want_meta = ref["arrays"]
        assert meta == want_meta and sorted(arrays) == sorted(want_arrays)
        for k, v in want_arrays.items():
            assert arrays[k].dtype == v.dtype and arrays[k].tobytes() == v.tobytes(), k
        model, _, _ = io.load(path)
        np.testing.assert_array_equal(model.params, ref["params"])


def shard(draw):
    """fastrnn.train.distributed.shard_batch: each rank's rows of a batch; together the shares
    are the batch, other values pass through."""
    from fastrnn.train.distributed import shard_batch
    broken = draw(st.sampled_from(["batch", "rank", "size", "none", "none", "none"]), "broken argument")
    n = draw(st.integers(0, 6), "rows")
    rows = st.sampled_from([np.arange(n * 2).reshape(n, 2), np.arange(n), np.zeros((n, 0), np.int64)])
    other = st.sampled_from([np.zeros(n + 1), np.float64(1.0), None, 7, "x", (1, 2)])
    valid = st.one_of(rows, st.tuples(rows, st.lists(st.one_of(rows, other), max_size=3)).map(
        lambda t: (t[0], *t[1])), st.lists(rows, min_size=1, max_size=3))
    junk = st.one_of(st.sampled_from([None, "ab", 3, {}, np.float64(2.0), (None, 1)]),
                     st.lists(other, max_size=3))
    batch = pick(draw, valid, junk, broken, "batch")
    size = pick(draw, st.integers(1, 4), st.sampled_from([0, -1, 1.5, True, None]), broken, "size")
    rank = pick(draw, st.just(0), st.sampled_from([-1, 0.0, False, 9]), broken, "rank")
    shard_batch(batch, rank, size)          # bad arguments are rejected here
    shares = [shard_batch(batch, r, size) for r in range(size)]
    # every rank's share: together, the batch's arrays in order; the rest passed through
    items = [batch] if isinstance(batch, np.ndarray) else list(batch)
    first = next(a for a in items if isinstance(a, np.ndarray) and a.ndim)
    for k, a in enumerate(items):
        got = [(s if isinstance(batch, np.ndarray) else s[k]) for s in shares if s is not None]
        if isinstance(a, np.ndarray) and a.ndim and len(a) == len(first):
            np.testing.assert_array_equal(np.concatenate(got) if got else a[:0], a)
        else:
            assert all(g is a for g in got)


def init_and_clip(draw):
    """fastrnn.train.init_uniform (char-rnn's initialisation) and optim.clip_grad_value on a
    random model: accepted values give parameters inside the range (forget-gate input biases at
    forget_bias) and gradients inside [-clip, clip]."""
    from fastrnn.train import init_uniform
    kind = draw(st.sampled_from(["lstm", "bilstm", "gru", "lm"]), "model")
    model = {"lstm": lambda: fastrnn.LSTM(3, 4, num_layers=2, seed=0),
             "bilstm": lambda: fastrnn.LSTM(3, 4, bidirectional=True, seed=0),
             "gru": lambda: fastrnn.GRU(3, 4, seed=0),
             "lm": lambda: fastrnn.LanguageModel(6, hidden_size=4, num_layers=1, seed=0)}[kind]()
    numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3),
                        st.sampled_from([True, None, "0.1", np.float32(0.05)]))
    R = draw(numbers, "init_range")
    forget = draw(st.one_of(numbers, st.just(1.0)), "forget_bias")
    seed = draw(st.sampled_from([None, 0, 7, -1, "s", 1.5]), "seed")
    init_uniform(model, R, seed=seed, forget_bias=forget)
    lstm = [m for _, m in model.modules() if isinstance(m, fastrnn.LSTM)]
    forget_blocks = 0
    for layer in lstm:
        for name, p in layer.named_parameters():
            if name.startswith("bias_ih"):
                H = p.size // 4
                if forget is not None:
                    assert np.all(p[H:2 * H] == np.float32(forget)), name
                    forget_blocks += H
    inside = np.abs(model.params) <= np.float32(R) * (1 + 1e-6)
    assert np.count_nonzero(~inside) <= forget_blocks
    model.grads[...] = np.random.default_rng(1).standard_normal(model.grads.shape) * 10
    clip = draw(numbers, "clip")
    optim.clip_grad_value(model, clip)
    assert np.all(np.abs(model.grads) <= np.float32(clip))
