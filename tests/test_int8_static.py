"""int8 static rows of h (csrc/int8.h, quant.py `activations=`): the fixed scale 1/63 is taken
exactly where the cell keeps |h| <= 1 and h0 allows it, its products are the scheme's with those
bytes, a whole-sequence forward equals its steps (the bytes the gate step writes are the ones a
fresh call makes of the same h), and the per-layer flag survives checkpoints and is checked on load."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels, quant
from fastrnn.nn.recurrent import BLOCKS


def _pair(name, opts=None, seed=3):
    """(static, dynamic) int8 copies of the same layer."""
    cls, base, _ = BLOCKS[name]
    make = lambda: cls(10, 40, num_layers=2, seed=seed, **base, **(opts or {}))   # noqa: E731
    return fastrnn.quantize(make(), activations="auto"), fastrnn.quantize(make(), activations="dynamic")


def _static_product(x, q, s):
    """Static rows in NumPy: 64 + clamp(rint(63 x), -63, 63) (float product), s_a = 1/63."""
    qa = np.clip(np.rint(x * np.float32(63)), -63, 63)
    acc = (qa.astype(np.int64) @ q.T.astype(np.int64)).astype(np.int32)
    return acc.astype(np.float32) * (np.float32(1 / 63) * s[None, :])


@pytest.mark.parametrize("name,opts", [(n, {}) for n in sorted(BLOCKS)] + [("lstm", {"proj_size": 8}),
                                                                            ("lstm", {"peephole": True})])
def test_static_rows_where_h_is_bounded(name, opts):
    static, dynamic = _pair(name, opts)
    layer = static
    bounded = quant.bounded(layer)
    assert layer._int8["static"] == bounded and not dynamic._int8["static"]
    x = np.random.default_rng(0).standard_normal((7, 3, 10)).astype(np.float32)
    ys, _ = static.forward(x, train=False)
    yd, _ = dynamic.forward(x, train=False)
    assert (not np.array_equal(ys, yd)) == bounded            # static rows change the bits
    assert np.abs(ys - yd).max() < 0.1                        # ... by about the quantization step
    # h0 outside [-1, 1]: dynamic rows for that call
    P = static.P
    h0 = np.full((2, 3, P), 1.5, np.float32)
    state = (h0, np.zeros((2, 3, static.hidden_size), np.float32)) if static.lstm else h0
    np.testing.assert_array_equal(static.forward(x, state, train=False)[0], dynamic.forward(x, state, train=False)[0])


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_forward_equals_steps_with_static_rows(name):
    """Each step of a forward multiplies the bytes the previous gate step wrote; a call of one
    step quantizes its h0 afresh: equal results say both make the same bytes of the same h."""
    static, _ = _pair(name)
    x = np.random.default_rng(1).standard_normal((6, 2, 10)).astype(np.float32)
    lengths = np.array([6, 4])
    y, final = static.forward(x, lengths=lengths, train=False)
    state = None
    for t in range(6):
        yt, state = static.forward(x[t:t + 1], state, lengths=(lengths > t).astype(np.int64), train=False)
        np.testing.assert_array_equal(yt[0][lengths > t], y[t][lengths > t])
    for a, b in zip(final if isinstance(final, tuple) else (final,), state if isinstance(state, tuple) else (state,)):
        np.testing.assert_array_equal(a, b)


def test_one_step_is_the_scheme_with_static_rows():
    """A one-layer tanh RNN step from h0: tanh(x W_ih^T (dynamic rows) + b + h0 W_hh^T (static
    rows)), every product as the NumPy transcription."""
    from test_int8 import scheme
    cls, base, _ = BLOCKS["rnn"]
    layer = fastrnn.quantize(cls(10, 40, seed=5, **base))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 10)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (1, 4, 40)).astype(np.float32)
    w, p = layer._int8["weights"], dict(layer.named_parameters())
    pre = scheme(x[0], *w["weight_ih_l0"]) + (p["bias_ih_l0"] + p["bias_hh_l0"])
    pre = pre + _static_product(h0[0], *w["weight_hh_l0"])
    y, _ = layer.forward(x, h0, train=False)
    np.testing.assert_allclose(y[0], np.tanh(pre), rtol=0, atol=2e-6)   # the float tanh's own rounding
    # the dynamic transcription of the same step is further away than the tanh's rounding
    dyn = np.tanh(scheme(x[0], *w["weight_ih_l0"]) + (p["bias_ih_l0"] + p["bias_hh_l0"])
                  + scheme(h0[0], *w["weight_hh_l0"]))
    assert np.abs(y[0] - dyn).max() > 2e-6


def test_activations_option_is_checked():
    cls, base, _ = BLOCKS["rnn_relu"]
    with pytest.raises(ValueError, match="static activations need"):
        fastrnn.quantize(cls(4, 8, **base), activations="static")
    with pytest.raises(ValueError, match="activations"):
        fastrnn.quantize(cls(4, 8, **base), activations="u8")
    assert not fastrnn.quantize(cls(4, 8, **base))._int8["static"]           # auto: dynamic
    assert fastrnn.quantize(BLOCKS["gru"][0](4, 8), activations="static")._int8["static"]


@pytest.mark.parametrize("activations", ["auto", "dynamic"])
def test_checkpoint_keeps_the_static_flag(tmp_path, activations):
    model = fastrnn.quantize(fastrnn.LanguageModel(30, hidden_size=32, num_layers=2, seed=0), activations=activations)
    fastrnn.save(tmp_path / "q.npz", model)
    loaded, _, extra = fastrnn.load(tmp_path / "q.npz")
    assert extra["meta"]["int8"]["static"] == (["rnn.weight_hh_l0"] if activations == "auto" else [])
    assert loaded.rnn._int8["static"] == (activations == "auto")
    ids = np.random.default_rng(0).integers(0, 30, (3, 9))
    np.testing.assert_array_equal(model.forward(ids[:, :-1], ids[:, 1:], train=False)[0],
                                  loaded.forward(ids[:, :-1], ids[:, 1:], train=False)[0])


def test_file_without_the_flag_loads_dynamic(tmp_path):
    """Checkpoints written before static rows (no 'static' key) keep the rows they ran."""
    path = tmp_path / "q.npz"
    fastrnn.save(path, fastrnn.quantize(fastrnn.LanguageModel(30, hidden_size=16, seed=0)))
    arrays, meta = fastrnn.io.load_arrays(path)
    meta["int8"] = {k: v for k, v in meta["int8"].items() if k != "static"}
    fastrnn.io.save_arrays(tmp_path / "old.npz", arrays,
                           {k: v for k, v in meta.items() if k not in ("format", "format_version")})
    loaded, _, _ = fastrnn.load(tmp_path / "old.npz")
    assert loaded.rnn._int8["static"] is False


@pytest.mark.parametrize("static", ["rnn.weight_hh_l0", [1], None, ["rnn.weight_ih_l0"], ["rnn.weight_hh_l1"],
                                    ["head.weight"], ["nope.weight_hh_l0"]])
def test_bad_static_flag_is_a_checkpoint_error(tmp_path, static):
    path = tmp_path / "q.npz"
    fastrnn.save(path, fastrnn.quantize(fastrnn.LanguageModel(30, hidden_size=16, num_layers=2, seed=0)))
    arrays, meta = fastrnn.io.load_arrays(path)
    meta["int8"] = dict(meta["int8"], static=static)
    fastrnn.io.save_arrays(tmp_path / "bad.npz", arrays,
                           {k: v for k, v in meta.items() if k not in ("format", "format_version")})
    with pytest.raises(fastrnn.CheckpointError):
        fastrnn.load(tmp_path / "bad.npz")


def test_static_flag_on_an_unbounded_layer_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "q.npz"
    model = fastrnn.LanguageModel(30, cell="rnn_relu", hidden_size=16, seed=0)
    fastrnn.save(path, fastrnn.quantize(model))
    arrays, meta = fastrnn.io.load_arrays(path)
    assert meta["int8"]["static"] == []
    meta["int8"] = dict(meta["int8"], static=["rnn.weight_hh_l0"])
    fastrnn.io.save_arrays(tmp_path / "bad.npz", arrays,
                           {k: v for k, v in meta.items() if k not in ("format", "format_version")})
    with pytest.raises(fastrnn.CheckpointError, match="unbounded"):
        fastrnn.load(tmp_path / "bad.npz")


def test_product_paths_agree_on_static_layers():
    static, _ = _pair("lstm")
    x = np.random.default_rng(4).standard_normal((5, 3, 10)).astype(np.float32)
    before = _kernels.int8_isa()
    try:
        outs = []
        for isa in _kernels.int8_isas():
            _kernels.set_int8_isa(isa)
            for threads in (1, 2, 3):
                fastrnn.set_num_threads(threads)
                outs.append(static.forward(x, train=False)[0])
    finally:
        _kernels.set_int8_isa(before)
        fastrnn.set_num_threads(0)
    for o in outs[1:]:
        np.testing.assert_array_equal(outs[0], o)
