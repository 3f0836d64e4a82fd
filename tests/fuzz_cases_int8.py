"""Fuzz cases of int8 inference: fastrnn.quantize on hostile models, the int8 product on hostile
arguments, and damaged quantized checkpoints (a bad scale, a NaN, a truncated or retyped int8
array: CheckpointError, never garbage)."""
import os
import tempfile

import numpy as np
from hypothesis import strategies as st

import fastrnn
from fastrnn import _kernels, io, quant
from fastrnn.nn.recurrent import BLOCKS


def quantize_call(draw):
    """fastrnn.quantize on a layer or language model, maybe float64 or with non-finite weights;
    a quantized model's inference stays near its float twin."""
    name = draw(st.sampled_from(sorted(BLOCKS)), "cell")
    kind = draw(st.sampled_from(["layer", "lm", "linear", "string"]), "model")
    dtype = draw(st.sampled_from(["float32", "float32", "float64"]), "dtype")
    poison = draw(st.sampled_from([None, None, np.nan, np.inf]), "poison")
    H = draw(st.integers(1, 20), "hidden")
    if kind == "layer":
        cls, opts, _ = BLOCKS[name]
        make = lambda: cls(3, H, num_layers=2, dtype=dtype, seed=1, **opts)   # noqa: E731
    elif kind == "lm":
        make = lambda: fastrnn.LanguageModel(7, cell=name, hidden_size=H, num_layers=1, dtype=dtype, seed=1)  # noqa: E731
    elif kind == "linear":
        make = lambda: fastrnn.nn.Linear(3, H)   # noqa: E731
    else:
        make = lambda: name                      # noqa: E731
    model, twin = make(), make()
    if poison is not None and kind != "string":
        model.params[draw(st.integers(0, model.params.size - 1), "where")] = poison
    fastrnn.quantize(model)
    assert quant.is_quantized(model)
    if kind == "layer":
        x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
        y, _ = model.forward(x, train=False)
        y0, _ = twin.forward(x, train=False)
    else:
        ids = np.arange(8).reshape(2, 4) % 7
        y, _ = model.forward(ids[:, :-1], ids[:, 1:], train=False)
        y0, _ = twin.forward(ids[:, :-1], ids[:, 1:], train=False)
    if poison is None:          # (a poisoned float weight outside the recurrent layers stays)
        assert np.all(np.isfinite(y)) and np.abs(np.asarray(y) - y0).max() < 0.5


def int8_product(draw):
    """_kernels.q8_matmul: bad dtypes, shapes, scales; an accepted call gives the scheme's bits
    (which do not depend on the path)."""
    M, N, K = (draw(st.integers(1, 9), n) for n in "MNK")
    rng = np.random.default_rng(M * 100 + N * 10 + K)
    x = (rng.standard_normal((M, K)) * draw(st.sampled_from([1e-30, 1.0, 1e30]), "magnitude")).astype(np.float32)
    q, s = quant.quantize_weight(rng.standard_normal((N, K)))
    broken = draw(st.sampled_from(["none", "none", "x dtype", "x shape", "q dtype", "-128", "scale",
                                   "scale nan", "x nan"]), "broken")
    if broken == "x dtype":
        x = x.astype(np.float64)
    elif broken == "x shape":
        x = x[:, :-1] if K > 1 else x[:, None]
    elif broken == "q dtype":
        q = q.astype(np.int16)
    elif broken == "-128":
        q[0, 0] = -128
    elif broken == "scale":
        s = s[:-1]
    elif broken == "scale nan":
        s[0] = np.nan
    elif broken == "x nan":
        x[0, 0] = np.nan
    got = _kernels.q8_matmul(x, q, s)
    before = _kernels.int8_isa()
    try:
        _kernels.set_int8_isa("ref")
        want = _kernels.q8_matmul(x, q, s)
    finally:
        _kernels.set_int8_isa(before)
    np.testing.assert_array_equal(got, want)
    assert np.all(np.isnan(got[0])) if broken == "x nan" else np.all(np.isfinite(got))


_SAVED = {}


def _quantized_checkpoint():
    if not _SAVED:
        model = fastrnn.quantize(fastrnn.LanguageModel(6, hidden_size=4, num_layers=2, seed=0))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "q.npz")
            fastrnn.save(path, model, fastrnn.Vocab.build("abcd"))
            _SAVED.update(data=open(path, "rb").read(), arrays=io.load_arrays(path), params=model.params.copy())
    return _SAVED


def int8_checkpoint_damage(draw):
    """A quantized checkpoint with its bytes damaged, or its int8 entries rewritten with valid
    CRCs (a NaN/inf/negative scale, -128, a truncated, reshaped or retyped array, a dropped entry,
    a bad static-rows list): CheckpointError, or it loads the very same model."""
    ref = _quantized_checkpoint()
    arrays, meta = ({k: v.copy() for k, v in ref["arrays"][0].items()}, dict(ref["arrays"][1]))
    names = sorted(k for k in arrays if k.startswith("int8"))
    victim = draw(st.sampled_from(names), "entry")
    op = draw(st.sampled_from(["bytes", "nan", "inf", "negative", "-128", "truncate", "reshape",
                               "retype", "drop", "static", "none"]), "damage")
    a = arrays[victim]
    if op == "nan" and a.dtype.kind == "f":
        a[0] = np.nan
    elif op == "inf" and a.dtype.kind == "f":
        a[0] = np.inf
    elif op == "negative" and a.dtype.kind == "f":
        a[0] = -a[0] - 1
    elif op == "-128" and a.dtype == np.int8:
        a.flat[0] = -128
    elif op == "truncate":
        arrays[victim] = a.reshape(-1)[:-1]
    elif op == "reshape":
        arrays[victim] = a.reshape(-1)
    elif op == "retype":
        arrays[victim] = a.astype(np.float32 if a.dtype == np.int8 else np.int8)
    elif op == "drop":
        del arrays[victim]
    elif op == "static":            # the per-layer static-rows flags: valid lists load, others fail
        hh = sorted(n for n in meta["int8"]["names"] if n.endswith("weight_hh_l0"))
        meta["int8"] = dict(meta["int8"], static=draw(st.sampled_from(
            [[], hh, "rnn.weight_hh_l0", [1], None, ["rnn.weight_ih_l0"], ["rnn.weight_hh_l9"], hh * 2 + [0.5]]),
            "static"))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "damaged.npz")
        io.save_arrays(path, arrays, {k: v for k, v in meta.items() if k not in ("format", "format_version")})
        if op == "bytes":
            data = bytearray(open(path, "rb").read())
            data[draw(st.integers(0, len(data) - 1), "at")] ^= 1 << draw(st.integers(0, 7), "bit")
            open(path, "wb").write(bytes(data))
        model, _, _ = io.load(path)            # CheckpointError (a ValueError) or intact
        assert quant.is_quantized(model)
        np.testing.assert_array_equal(model.params, ref["params"])
