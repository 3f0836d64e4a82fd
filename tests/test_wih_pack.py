"""The layers' kept inference pack holds W_ih^T too (float32 and bf16): a no-grad forward of
T * B >= 8 rows packs no weight per call. These tests check that the kept pack gives the bits of
a call that packs for itself, over many calls, shapes and thread counts, and that every way a user
changes W_ih is seen by the next call (tests/test_weight_edits.py does the same for W_hh)."""
import threading

import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels

NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
ENGINE = _kernels.pack_forward("lstm", np.zeros((8, 2), np.float32)) is not None


def _layer(cell="LSTM", I=6, H=8, **kw):
    return getattr(fastrnn, cell)(I, H, seed=0, **kw).eval()


def _infer(layer, x):
    with fastrnn.no_grad():
        return layer(x)[0]


def _unpacked(layer, x):
    """The same forward by the raw kernel with no pack at all (it packs for itself)."""
    p = {k: v.copy() for k, v in layer.state_dict().items()}
    return _kernels.forward(layer.cell, x, *(p[n] for n in NAMES), precision=layer.precision)[0]


def _fresh(layer):
    """A layer that never packed anything, holding copies of `layer`'s weights."""
    ref = type(layer)(layer.input_size, layer.hidden_size, seed=1).eval()
    ref.precision = layer.precision
    ref.load_state_dict({k: v.copy() for k, v in layer.state_dict().items()})
    return ref


def _x(T, B, I=6, seed=0):
    return np.random.default_rng(seed).standard_normal((T, B, I)).astype(np.float32)


@pytest.mark.skipif(not ENGINE, reason="float32 engine off: nothing is packed")
def test_the_kept_pack_holds_w_ih_so_the_tests_below_can_fail():
    layer = _layer()
    _infer(layer, _x(4, 2))
    (_, packed, copies), = layer._packs.entries.values()
    assert packed[:16].view(np.int32)[7] == layer.input_size     # W_ih^T is in the pack
    assert len(copies) == 2                                       # W_hh and W_ih are guarded


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_same_bits_with_and_without_the_kept_pack_over_many_calls(cell, threads):
    old = fastrnn.get_num_threads()
    fastrnn.set_num_threads(threads)
    try:
        layer = _layer(cell, I=40, H=24)
        shapes = [(20, 1), (3, 2), (4, 2), (1, 1), (7, 3), (100, 1), (2, 5)]   # T * B below and above 8
        for i in range(3):
            for T, B in shapes:
                x = _x(T, B, 40, seed=i)
                np.testing.assert_array_equal(_infer(layer, x), _unpacked(layer, x))
    finally:
        fastrnn.set_num_threads(old)


@pytest.mark.skipif(not ENGINE, reason="float32 engine off: nothing is packed")
def test_raw_forward_with_a_pack_holding_w_ih_gives_the_same_bits():
    layer = _layer("GRU", I=300, H=40)
    p = {k: v.copy() for k, v in layer.state_dict().items()}
    args = [p[n] for n in NAMES]
    packed = _kernels.pack_forward("gru", p["weight_hh_l0"], W_ih=p["weight_ih_l0"])
    assert packed.size > _kernels.pack_forward("gru", p["weight_hh_l0"]).size
    for T, B in [(9, 1), (2, 3), (30, 2)]:
        x = _x(T, B, 300)
        want = _kernels.forward("gru", x, *args)[0]
        np.testing.assert_array_equal(_kernels.forward("gru", x, *args, packed=packed)[0], want)
        # a pack claiming W_ih but too short for it is not used (the kernel packs for itself)
        np.testing.assert_array_equal(_kernels.forward("gru", x, *args, packed=packed[:-8].copy())[0], want)


def _scale_w_ih(layer, route):
    """Change weight_ih_l0 the way a user would; returns what the user still holds."""
    if route == "named_parameters":
        dict(layer.named_parameters())["weight_ih_l0"][...] *= 1.5
    elif route == "state_dict":
        sd = layer.state_dict()
        sd["weight_ih_l0"][:, 0] = 0.25
        return sd
    elif route == "one_element":
        dict(layer.named_parameters())["weight_ih_l0"][3, 2] += 0.5
    elif route == "params":
        layer.params[:layer.G * layer.hidden_size * layer.input_size] *= -1
    elif route == "load_state_dict":
        sd = {k: v.copy() for k, v in layer.state_dict().items()}
        sd["weight_ih_l0"] *= 0.5
        layer.load_state_dict(sd)
    elif route == "rebind":                    # a new array as the storage
        p = layer.params.copy()
        p[:10] += 1
        layer.rebind(p, np.zeros_like(p), copy=False)
        p[10:20] -= 1                          # and the caller's array edited in place later
        return p
    elif route == "optimizer":
        layer.train()
        y, _ = layer(_x(4, 2))
        layer.backward(np.ones_like(y))
        fastrnn.optim.SGD(layer, lr=0.5).step()
        layer.eval()
    elif route in ("torch_mul", "torch_copy"):
        torch = pytest.importorskip("torch")
        t = torch.from_numpy(dict(layer.named_parameters())["weight_ih_l0"])
        if route == "torch_mul":
            t.mul_(1.5)
            return t
        t.copy_(t * 1.5)
    elif route == "from_torch":
        torch = pytest.importorskip("torch")
        m = torch.nn.LSTM(layer.input_size, layer.hidden_size)
        fresh = fastrnn.LSTM.from_torch(m).eval()
        layer.load_state_dict({k: v.copy() for k, v in fresh.state_dict().items()})
    return None


ROUTES = ["named_parameters", "state_dict", "one_element", "params", "load_state_dict", "rebind",
          "optimizer", "torch_mul", "torch_copy", "from_torch"]


@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("route", ROUTES)
def test_every_change_of_w_ih_is_seen_by_the_next_inference_forward(route, precision):
    layer = _layer()
    layer.precision = precision
    x = _x(5, 2)
    before = _infer(layer, x)
    _infer(layer, x)                           # the pack is kept now
    held = _scale_w_ih(layer, route)
    after = _infer(layer, x)
    np.testing.assert_array_equal(after, _infer(_fresh(layer), x))
    assert not np.array_equal(after, before), "the change changed nothing: staleness would not show"
    np.testing.assert_array_equal(_infer(layer, x), after)       # and stays right on the next call
    del held


def test_a_precision_switch_gives_each_precision_its_own_bits_back():
    layer = _layer(I=16, H=16)
    x = _x(6, 2, 16)
    f32 = _infer(layer, x)
    layer.precision = "bf16"
    b16 = _infer(layer, x)
    np.testing.assert_array_equal(b16, _unpacked(layer, x))
    layer.precision = "float32"
    np.testing.assert_array_equal(_infer(layer, x), f32)


def test_a_float64_layer_keeps_no_pack_and_is_right():
    layer = fastrnn.LSTM(6, 8, seed=0, dtype="float64").eval()
    x = _x(5, 2).astype(np.float64)
    np.testing.assert_array_equal(_infer(layer, x), _unpacked(layer, x))
    assert all(v[1] is None for v in layer._packs.entries.values())


def test_two_python_threads_calling_one_layer_get_the_single_thread_bits():
    layer = _layer(I=32, H=48)
    xs = [_x(12, 1 + i % 3, 32, seed=i) for i in range(6)]
    want = [_unpacked(layer, x) for x in xs]
    errors = []

    def run():
        try:
            for _ in range(15):
                for x, w in zip(xs, want):
                    np.testing.assert_array_equal(_infer(layer, x), w)
        except Exception as e:       # reported to the main thread below
            errors.append(e)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
