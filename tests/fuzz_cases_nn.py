"""Fuzz cases of the numeric core: kernels, layers, cells and the language model."""
import numpy as np
from hypothesis import strategies as st

import fastrnn
from fastrnn import _kernels
from fuzz_mutations import FLOATS, SAME_VALUES, SIZES, clean, copies, mutate, same
from test_kernels import CASES, make_case


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
    if kw["dtype"] == "float32":
        kw["precision"] = draw(st.sampled_from(["float32", "bf16"]), "precision")
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
            part, kind = mutate(draw, h0[0], "h0[0]")
            h0 = (part, h0[1])
        else:
            h0, kind = mutate(draw, h0, "h0")
        kind = kind if kind in SAME_VALUES else "junk"      # None is zeros, not the clean state
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
                            dtype=layer.dtype, seed=0, precision=layer.precision)
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
        part, kind = mutate(draw, state[0] if layer.lstm else state, "h")
        state = (part, state[1]) if layer.lstm else part
        kind = kind if kind in SAME_VALUES else "junk"
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
