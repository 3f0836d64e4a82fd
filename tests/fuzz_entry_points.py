"""The fuzzed public entry points: one table, ENTRY_POINTS = {name: case function}.

A case function gets `draw(strategy, label)` (hypothesis draws, logged before anything runs),
builds one call -- mostly valid arguments with one or two of them broken in a random way -- and
makes it. It returns normally for a correct result, lets ValueError/TypeError escape for a
rejected call, and fails an `assert` (or raises anything else) for a wrong outcome. Where a
mutation keeps the values (a strided or Fortran-ordered view, a read-only array, a list), an
accepted call must give exactly what the clean call gives.

To fuzz a new model or entry point, add one function here and one line to ENTRY_POINTS.
"""
import os
import tempfile

import numpy as np
from hypothesis import strategies as st

import fastrnn
from fastrnn import _kernels, io, optim
from fastrnn.data import StreamBatches, Vocab, pad_sequences
from fastrnn.sample import MIN_TEMPERATURE, generate
from test_kernels import CASES, make_case

SIZES = st.integers(1, 4)
FLOATS = [np.float32, np.float64]
OTHER_DTYPES = [np.float16, np.int32, np.int64, np.bool_, np.complex64, np.float32, np.float64]
# mutations that keep every value, so an accepted call must equal the clean call
SAME_VALUES = ("strided", "fortran", "readonly", "list")
KINDS = SAME_VALUES + ("dtype", "shape", "none", "scalar", "nonfinite", "empty")


def mutate(draw, a, label):
    """(a broken in one random way, the kind of breakage)."""
    kind = draw(st.sampled_from(KINDS), f"{label} mutation")
    if a is None or kind == "none":
        return None, "none"
    if kind == "strided":
        b = np.zeros(a.shape + (2,), a.dtype)
        b[..., 0] = a
        return b[..., 0], kind
    if kind == "fortran":
        return np.asfortranarray(a) if a.ndim > 1 else a[::-1].copy()[::-1], kind
    if kind == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b, kind
    if kind == "list":
        return a.tolist(), kind
    if kind == "dtype":
        return a.astype(draw(st.sampled_from(OTHER_DTYPES), f"{label} dtype")), kind
    if kind == "shape":
        shape = list(a.shape)
        op = draw(st.sampled_from(["grow", "shrink", "drop", "add"]), f"{label} shape op")
        if op == "drop" and shape:
            shape.pop()
        elif op == "add":
            shape.append(draw(st.integers(1, 3), f"{label} new dim"))
        elif shape:
            i = draw(st.integers(0, len(shape) - 1), f"{label} dim")
            shape[i] = max(0, shape[i] + (1 if op == "grow" else -1))
        return np.resize(a, shape), kind
    if kind == "scalar":
        return 1.0, kind
    if kind == "empty":
        return np.zeros((0,) * max(a.ndim, 1), a.dtype), kind
    b = a.astype(np.float64).copy() if a.dtype.kind not in "fc" else a.copy()   # nonfinite
    if b.size:
        b.flat[draw(st.integers(0, b.size - 1), f"{label} index")] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf]), f"{label} value")
    return b.astype(a.dtype) if a.dtype.kind in "fc" else b, kind


def same(got, want, dtype):
    """Results equal up to summation-order rounding (NaN where the clean call has NaN)."""
    tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True)


def clean(fn, *args, **kw):
    """A call with clean arguments: it must succeed (a rejection here is a harness bug)."""
    try:
        return fn(*args, **kw)
    except (ValueError, TypeError) as e:
        raise AssertionError(f"the clean call was rejected: {e!r}") from e


def copies(out):
    return [None if o is None else np.array(o) for o in out]


# ---- kernels ---------------------------------------------------------------------------------

def _kernel_case(draw, **over):
    case = draw(st.sampled_from(sorted(CASES)), "cell case")
    T, B, I, H = (draw(SIZES, n) for n in "TBIH")
    dtype = draw(st.sampled_from(FLOATS), "dtype")
    c = make_case(case, T, B, I, H, dtype, 0, bias=draw(st.booleans(), "bias"),
                  lengths=draw(st.booleans(), "lengths"), state=draw(st.booleans(), "state"))
    return c, dtype


def kernel_forward(draw):
    c, dtype = _kernel_case(draw)
    p = c["params"]
    args = dict(x=c["x"], W_ih=p["W_ih"], W_hh=p["W_hh"], b_ih=p["b_ih"], b_hh=p["b_hh"],
                h0=c["h0"], c0=c["c0"])
    kw = dict(w_peep=p["w_peep"], W_hr=p["W_hr"], lengths=c["lengths"])
    train = draw(st.booleans(), "train")
    sizes = (c["cell"], *c["x"].shape, p["W_ih"].shape[0] // _kernels.gates(c["cell"]),
             p["W_hh"].shape[1], p["w_peep"] is not None)
    buf = np.empty(_kernels.tape_size(*sizes) if train else _kernels.work_size(*sizes), dtype)
    kw["tape" if train else "work"] = buf
    want = copies(clean(_kernels.forward, c["cell"], *args.values(), **dict(kw)))
    target = draw(st.sampled_from(sorted(args) + sorted(kw) + ["y", "h_T", "alias"]), "target")
    if target == "alias":       # outputs written over inputs
        T, B, _ = c["x"].shape
        pairs = [("h_T", "h0"), ("c_T", "c0"), ("y", "x")]
        out, inp = draw(st.sampled_from(pairs), "alias pair")
        if args[inp] is None:
            return
        kw[out] = args[inp] = args[inp].copy()
        kind = "alias"
    elif target in ("y", "h_T"):
        kw[target], kind = mutate(draw, want[0] if target == "y" else want[1], target)
        kind = "output"
    elif target in args:
        args[target], kind = mutate(draw, args[target], target)
    else:
        if target == "lengths":
            kw[target] = draw(st.one_of(st.lists(st.integers(-2, 6), max_size=5),
                                        st.sampled_from([None, 1.5, "ab", [0.5]])), "lengths")
            kind = "lengths"
        else:
            kw[target], kind = mutate(draw, kw[target], target)
    got = _kernels.forward(c["cell"], *args.values(), **kw)
    if kind in SAME_VALUES or kind in ("alias", "output"):
        same(got, want, dtype)


def kernel_step(draw):
    c, dtype = _kernel_case(draw)
    p = c["params"]
    T, B, I = c["x"].shape
    H = p["W_ih"].shape[0] // _kernels.gates(c["cell"])
    P = p["W_hh"].shape[1]
    h = c["h0"] if c["h0"] is not None else np.zeros((B, P), dtype)
    cc = (c["c0"] if c["c0"] is not None else np.zeros((B, H), dtype)) if c["lstm"] else None
    args = dict(x_t=c["x"][0], h=h, c=cc, W_ih=p["W_ih"], W_hh=p["W_hh"], b_ih=p["b_ih"], b_hh=p["b_hh"])
    kw = dict(w_peep=p["w_peep"], W_hr=p["W_hr"])
    want = copies(clean(_kernels.step, c["cell"], *args.values(), **kw))
    target = draw(st.sampled_from(sorted(args) + ["work", "h_out", "in_place"]), "target")
    kind = "output"
    if target == "in_place":        # documented: h_out may be h and c_out c
        args["h"] = kw["h_out"] = h.copy()
        if cc is not None:
            args["c"] = kw["c_out"] = cc.copy()
    elif target == "work":
        kw["work"] = np.empty(draw(st.integers(0, 4 * _kernels.work_size(
            c["cell"], 1, B, I, H, P, p["w_peep"] is not None)), "work size"), dtype)
    elif target == "h_out":
        kw["h_out"], _ = mutate(draw, want[0], "h_out")
    else:
        args[target], kind = mutate(draw, args[target], target)
    got = _kernels.step(c["cell"], *args.values(), **kw)
    if kind in SAME_VALUES or kind == "output":
        same(got, want, dtype)


def kernel_backward(draw):
    c, dtype = _kernel_case(draw)
    p = c["params"]
    T, B, I = c["x"].shape
    H = p["W_ih"].shape[0] // _kernels.gates(c["cell"])
    P = p["W_hh"].shape[1]
    tape = np.empty(_kernels.tape_size(c["cell"], T, B, I, H, P, p["w_peep"] is not None), dtype)
    wkw = dict(w_peep=p["w_peep"], W_hr=p["W_hr"], lengths=c["lengths"])
    fargs = (c["cell"], c["x"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], c["h0"], c["c0"])
    clean(_kernels.forward, *fargs, tape=tape, **wkw)
    grads_kw = dict(dy=c["dy"], dh_T=c["dh_T"], dc_T=c["dc_T"])
    want = clean(_kernels.backward, c["cell"], tape.copy(), *fargs[1:], **wkw, **grads_kw)
    want = copies(want[:3]) + [{k: v.copy() for k, v in want[3].items()}]
    target = draw(st.sampled_from(["dy", "dh_T", "dc_T", "tape", "grads", "dx", "need_dx"]), "target")
    kind = "other"
    t = tape.copy()
    extra = {}
    if target in grads_kw:
        grads_kw[target], kind = mutate(draw, grads_kw[target], target)
    elif target == "tape":
        t, kind = mutate(draw, t, "tape")
    elif target == "grads":
        name = draw(st.sampled_from(["W_ih", "W_hh", "b_ih", "b_hh", "w_peep", "W_hr", "bogus"]), "grad")
        base = p.get(name)
        extra["grads"] = {name: mutate(draw, np.zeros_like(base), "grad")[0] if base is not None
                          else np.zeros(3, dtype)}
    elif target == "dx":
        extra["dx"], kind = mutate(draw, want[0], "dx")
        kind = "output"
    else:
        extra["need_dx"] = False
    got = _kernels.backward(c["cell"], t, *fargs[1:], **wkw, **grads_kw, **extra)
    if kind in SAME_VALUES or kind == "output":
        same(got[1:3], want[1:3], dtype)
        same([got[3][k] for k in sorted(want[3])], [want[3][k] for k in sorted(want[3])], dtype)


def kernel_gemm(draw):
    dtype = draw(st.sampled_from(FLOATS), "dtype")
    m, k, n = (draw(st.integers(0, 4), d) for d in "mkn")
    ta, tb = draw(st.booleans(), "trans_a"), draw(st.booleans(), "trans_b")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    acc = draw(st.booleans(), "accumulate")
    out = rng.standard_normal((m, n)).astype(dtype) if acc or draw(st.booleans(), "out") else None
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    if acc:
        want += out
    target = draw(st.sampled_from(["a", "b", "out", "none"]), "target")
    kind = "none"
    if target == "a":
        a, kind = mutate(draw, a, "a")
    elif target == "b":
        b, kind = mutate(draw, b, "b")
    elif target == "out" and out is not None:
        out, kind = mutate(draw, out, "out")
    got = _kernels.gemm(a, b, tb, out, trans_a=ta, accumulate=acc)
    if kind in SAME_VALUES + ("none",):
        same([got], [want], dtype)


def kernel_rows(draw):
    """gather_rows and scatter_add_rows (the embedding / one-hot input side)."""
    dtype = draw(st.sampled_from(FLOATS + [np.int64, np.float16]), "dtype")
    V, n = draw(st.integers(1, 5), "V"), draw(st.integers(0, 3), "n")
    columns = draw(st.booleans(), "columns")
    src = np.arange(V * n, dtype=np.float64).reshape((n, V) if columns else (V, n)).astype(dtype)
    ids = draw(st.one_of(
        st.lists(st.integers(-2, V + 1), max_size=6).map(lambda v: np.array(v, np.int64)),
        st.lists(st.integers(0, V - 1), max_size=6).map(lambda v: np.array(v, np.int64)),
        st.lists(st.integers(0, V - 1), max_size=6).map(lambda v: np.array(v, np.uint8)),
        st.lists(st.integers(0, V - 1), min_size=1, max_size=6).map(lambda v: np.array(v).reshape(-1, 1)),
        st.sampled_from([None, "ab", 3])), "ids")
    src, kind = mutate(draw, src, "src") if draw(st.booleans(), "mutate src") else (src, "none")
    got = _kernels.gather_rows(src, ids, columns=columns)
    s = np.asarray(src, np.float64)
    flat = np.asarray(ids).reshape(-1)
    assert flat.dtype.kind in "iu", f"accepted ids of dtype {flat.dtype}"
    want = (s.T if columns else s)[flat].reshape(np.shape(ids) + (s.shape[0] if columns else s.shape[1],))
    np.testing.assert_array_equal(got, want)
    rows = np.ones((flat.size, s.shape[0] if columns else s.shape[1]), s.dtype).astype(got.dtype)
    dst = np.zeros_like(np.asarray(src)) if kind != "readonly" else src
    out = _kernels.scatter_add_rows(dst, flat, rows, columns=columns)
    expect = np.zeros(s.shape)
    np.add.at(expect.T if columns else expect, flat, 1.0)
    np.testing.assert_array_equal(out, expect)


# ---- layers and cells ------------------------------------------------------------------------

LAYERS = [fastrnn.RNN, fastrnn.GRU, fastrnn.LSTM, fastrnn.SimplifiedGRU]
CELLS = [fastrnn.RNNCell, fastrnn.GRUCell, fastrnn.LSTMCell]


def _layer(draw):
    cls = draw(st.sampled_from(LAYERS), "layer")
    I, H, L = draw(SIZES, "I"), draw(SIZES, "H"), draw(st.integers(1, 2), "num_layers")
    kw = dict(num_layers=L, bidirectional=draw(st.booleans(), "bidirectional"),
              batch_first=draw(st.booleans(), "batch_first"),
              dtype=draw(st.sampled_from(["float32", "float64"]), "dtype"), seed=0)
    if cls is fastrnn.LSTM and H > 1 and draw(st.booleans(), "proj"):
        kw["proj_size"] = H - 1
    return cls(I, H, **kw)


def _state(layer, B, rng):
    LD = layer.num_layers * layer.D
    h = rng.standard_normal((LD, B, layer.P)).astype(layer.dtype)
    return (h, rng.standard_normal((LD, B, layer.hidden_size)).astype(layer.dtype)) if layer.lstm else h


def layer_forward_backward(draw):
    layer = _layer(draw)
    rng = np.random.default_rng(1)
    T, B = draw(SIZES, "T"), draw(SIZES, "B")
    x = rng.standard_normal((B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size))
    x = x.astype(layer.dtype)
    h0 = _state(layer, B, rng) if draw(st.booleans(), "h0") else None
    lengths = rng.integers(0, T + 1, B) if draw(st.booleans(), "lengths") else None
    want = copies(clean(layer.forward, x, h0, lengths, train=False)[:1])
    target = draw(st.sampled_from(["x", "h0", "h0 part", "lengths", "none"]), "target")
    kind = "none"
    if target == "x":
        x, kind = mutate(draw, x, "x")
    elif target == "h0":
        h0 = draw(st.sampled_from([3, "h", (1, 2, 3), [None]]), "h0 value")
        kind = "junk"
    elif target == "h0 part" and h0 is not None:
        if layer.lstm:
            h0 = (mutate(draw, h0[0], "h0[0]")[0], h0[1])
        else:
            h0, kind = mutate(draw, h0, "h0")
        kind = "junk" if kind != "none" else kind
    elif target == "lengths":
        lengths = draw(st.one_of(st.lists(st.integers(-1, T + 1), max_size=B + 1),
                                 st.sampled_from([[0.5] * B, "x", 2])), "lengths value")
        kind = "junk"
    train = draw(st.booleans(), "train")
    y, state = layer.forward(x, h0, lengths, train=train)
    if kind in SAME_VALUES + ("none",) and not (train and layer.dropout):
        same([y], want, layer.dtype)
    if train:
        dout = rng.standard_normal(np.shape(y))
        if draw(st.booleans(), "break dout"):
            dout, _ = mutate(draw, dout, "dout")
        dx, _ = layer.backward(dout)
        assert np.shape(dx) == np.shape(np.asarray(x, layer.dtype))


def layer_step(draw):
    layer = _layer(draw)
    if layer.bidirectional:
        layer = type(layer)(layer.input_size, layer.hidden_size, num_layers=layer.num_layers,
                            dtype=layer.dtype, seed=0)
    rng = np.random.default_rng(2)
    B = draw(SIZES, "B")
    x_t = rng.standard_normal((B, layer.input_size)).astype(layer.dtype)
    state = _state(layer, B, rng) if draw(st.booleans(), "state") else None
    x_seq = x_t[:, None] if layer.batch_first else x_t[None]
    want = copies(clean(layer.forward, x_seq, state, train=False)[:1])
    target = draw(st.sampled_from(["x_t", "state", "none"]), "target")
    kind = "none"
    if target == "x_t":
        x_t, kind = mutate(draw, x_t, "x_t")
    elif target == "state" and state is not None:
        state = (mutate(draw, state[0], "h")[0], state[1]) if layer.lstm else mutate(draw, state, "h")[0]
        kind = "junk"
    y, new_state = layer.step(x_t, state)
    if kind in SAME_VALUES + ("none",):
        same([y], [want[0][:, 0] if layer.batch_first else want[0][0]], layer.dtype)


def cell_call(draw):
    cls = draw(st.sampled_from(CELLS), "cell")
    I, H, B = draw(SIZES, "I"), draw(SIZES, "H"), draw(SIZES, "B")
    cell = cls(I, H, dtype=draw(st.sampled_from(["float32", "float64"]), "dtype"), seed=0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, I)).astype(cell.dtype)
    lstm = cls is fastrnn.LSTMCell
    hx = rng.standard_normal((B, H)).astype(cell.dtype)
    hx = (hx, hx.copy()) if lstm else hx
    want = copies([clean(cell, x, hx, train=False)[0] if lstm else clean(cell, x, hx, train=False)])
    target = draw(st.sampled_from(["x", "hx", "none"]), "target")
    kind = "none"
    if target == "x":
        x, kind = mutate(draw, x, "x")
    elif target == "hx":
        hx = draw(st.sampled_from([None, 3, (1,), "h"]), "hx value")
        kind = "junk"
    train = draw(st.booleans(), "train")
    out = cell(x, hx, train=train)
    if kind in SAME_VALUES + ("none",):
        same([out[0] if lstm else out], want, cell.dtype)
    if train:
        dh = np.ones(np.shape(out[0] if lstm else out))
        cell.backward(dh, dh if lstm else None)


# ---- models, sampling, data, optimisers, checkpoints ------------------------------------------

def _lm(draw):
    V = draw(st.integers(3, 8), "V")
    return fastrnn.LanguageModel(V, cell=draw(st.sampled_from(["lstm", "gru", "rnn"]), "cell"),
                                 hidden_size=draw(SIZES, "H"), num_layers=draw(st.integers(1, 2), "L"),
                                 embed_size=draw(st.sampled_from([None, 2]), "embed"),
                                 dtype=draw(st.sampled_from(["float32", "float64"]), "dtype"), seed=0)


def _ids(draw, V, shape, label):
    return draw(st.one_of(
        st.just(np.random.default_rng(4).integers(0, V, shape)),
        st.sampled_from([np.full(shape, V), np.full(shape, -1), np.full(shape, 1.0),
                         np.full(shape, 2**64 - 1, np.uint64), np.full(shape, True),
                         np.zeros(shape[:-1] or (2, 2), np.int64), np.zeros(shape, np.int8),
                         np.full(shape, 1, object), "ab", None])), label)


def model_forward_step(draw):
    model = _lm(draw)
    V = model.config["vocab_size"]
    B, T = draw(SIZES, "B"), draw(SIZES, "T")
    inputs, targets = _ids(draw, V, (B, T), "inputs"), _ids(draw, V, (B, T), "targets")
    loss, state = model.forward(inputs, targets, train=draw(st.booleans(), "train"))
    assert np.isfinite(loss) and loss >= 0
    ids = _ids(draw, V, (B,), "step ids")
    logits, state = model.step(ids, state if draw(st.booleans(), "carry state") else None)
    assert logits.shape == (np.shape(ids)[0], V) and np.isfinite(logits).all()


_SAMPLE_VOCAB = Vocab.build("abcdef ghij\n")


def pick(draw, valid, junk, broken, name):
    """A value for argument `name`: from `junk` if it is the `broken` one, else from `valid`."""
    return draw(junk if name == broken else valid, name)


def sampling(draw):
    model = fastrnn.LanguageModel(len(_SAMPLE_VOCAB), hidden_size=4, num_layers=1, seed=0)
    broken = draw(st.sampled_from(["length", "temperature", "top_k", "top_p", "prime", "stop",
                                   "seed", "nan", "none"]), "broken argument")
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
              argmax=draw(st.booleans(), "argmax"))
    if broken == "nan":         # a model with non-finite parameters
        model.params[draw(st.integers(0, model.params.size - 1), "nan at")] = np.nan
    text = generate(model, _SAMPLE_VOCAB, **kw)
    assert broken in ("none", "nan", "top_p", "temperature"), f"accepted a bad {broken}"
    assert isinstance(text, str) and text.startswith(kw["prime"])
    assert len(text) - len(kw["prime"]) <= kw["length"]
    if kw["temperature"] < MIN_TEMPERATURE and not kw["argmax"]:
        assert text == generate(model, _SAMPLE_VOCAB, **dict(kw, argmax=True))


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


def checkpoint_damage(draw):
    ref = _checkpoint_bytes()
    data = bytearray(ref["data"])
    for k in range(draw(st.integers(1, 3), "edits")):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append", "random"]), f"op {k}")
        at = draw(st.integers(0, max(len(data) - 1, 0)), f"at {k}")
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
        want_arrays, want_meta = ref["arrays"]
        assert meta == want_meta and sorted(arrays) == sorted(want_arrays)
        for k, v in want_arrays.items():
            assert arrays[k].dtype == v.dtype and arrays[k].tobytes() == v.tobytes(), k
        model, _, _ = io.load(path)
        np.testing.assert_array_equal(model.params, ref["params"])


ENTRY_POINTS = {
    "kernel_forward": kernel_forward, "kernel_step": kernel_step, "kernel_backward": kernel_backward,
    "kernel_gemm": kernel_gemm, "kernel_rows": kernel_rows,
    "layer_forward_backward": layer_forward_backward, "layer_step": layer_step, "cell": cell_call,
    "model": model_forward_step, "sampling": sampling, "vocab": vocab,
    "stream_batches": stream_batches, "pad_sequences": padding, "optimizers": optimizers,
    "checkpoint_damage": checkpoint_damage,
}
