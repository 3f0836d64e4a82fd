"""Layer benchmarks (float32): a 2-layer bidirectional LSTM vs fastrnn.reference and torch.nn.LSTM,
streaming `step` latency at batch 1, and the Python overhead of a layer call at batch 1 (the
layer call vs the bare kernel calls it makes; the summary prints the percentage).

Run: python -m pytest bench/test_layers.py -q (with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset).
"""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels, reference
from conftest import OVERHEAD_GROUP, record, torch

T, B, I, H = 50, 50, 128, 256


def flops_bilstm(train):
    """Forward FLOPs of the 2-layer bidirectional LSTM (layer 2 reads 2H features), x3 with backward."""
    per_dir = lambda inp: 2 * T * B * (inp + H) * 4 * H
    return 2 * (per_dir(I) + per_dir(2 * H)) * (3 if train else 1)


def reference_bilstm(lstm, x, dy, train):
    """The same stack in plain NumPy: fastrnn.reference per direction, reversal in time by slicing."""
    w = lstm.named_parameters()
    weights = [[tuple(w[f"{n}_l{k}{s}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                for s in ("", "_reverse")] for k in range(2)]

    def run():
        inp, caches = x, []
        for k in range(2):
            yf, _, cf = reference.lstm_forward(inp, None, None, *weights[k][0])
            yb, _, cb = reference.lstm_forward(inp[::-1], None, None, *weights[k][1])
            caches.append((cf, cb))
            inp = np.concatenate([yf, yb[::-1]], axis=2)
        if train:
            d = dy
            for cf, cb in reversed(caches):
                gf = reference.lstm_backward(np.ascontiguousarray(d[:, :, :H]), None, cf)
                gb = reference.lstm_backward(np.ascontiguousarray(d[::-1, :, H:]), None, cb)
                d = gf["x"] + gb["x"][::-1]
    return run


@pytest.mark.parametrize("impl", ["fastrnn", "reference", "torch"])
@pytest.mark.parametrize("train", [False, True], ids=["forward", "fwd+bwd"])
def test_bidirectional_lstm(benchmark, train, impl):
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I), dtype=np.float32)
    dy = rng.standard_normal((T, B, 2 * H), dtype=np.float32)
    lstm = fastrnn.LSTM(I, H, num_layers=2, bidirectional=True, seed=0)
    if impl == "fastrnn":
        def fn():
            y, _ = lstm(x, train=train)
            if train:
                lstm.backward(dy)
    elif impl == "reference":
        fn = reference_bilstm(lstm, x, dy, train)
    else:
        tl = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
        xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)

        def fn():
            if train:
                y, _ = tl(xt.detach().requires_grad_(True))
                y.backward(dyt)
            else:
                with torch.inference_mode():
                    tl(xt)
    record(benchmark, f"2-layer bi-LSTM {'fwd+bwd' if train else 'forward'} (T={T}, B={B}, I={I}, H={H})",
           impl, fn, flops_bilstm(train))


@pytest.mark.parametrize("impl", ["layer", "kernels"])
def test_python_overhead_batch1(benchmark, impl):
    """fastrnn.LSTM(64, 128) forward+backward at T=100, B=1 vs the two kernel calls it makes;
    the summary prints the difference as the layer's Python overhead."""
    t, b, i, h = 100, 1, 64, 128
    rng = np.random.default_rng(0)
    x = rng.standard_normal((t, b, i), dtype=np.float32)
    dy = rng.standard_normal((t, b, h), dtype=np.float32)
    lstm = fastrnn.LSTM(i, h, seed=0)
    if impl == "layer":
        def fn():
            lstm(x)
            lstm.backward(dy)
    else:
        w = lstm.named_parameters()
        args = (w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"])
        tape = np.empty(_kernels.tape_size("lstm", t, b, i, h), np.float32)
        grads = {"W_ih": np.zeros_like(args[0]), "W_hh": np.zeros_like(args[1]),
                 "b_ih": np.zeros_like(args[2]), "b_hh": np.zeros_like(args[3])}

        def fn():
            _kernels.forward("lstm", x, *args, tape=tape)
            _kernels.backward("lstm", tape, x, *args, dy=dy, grads=grads)
    record(benchmark, OVERHEAD_GROUP, impl, fn)


@pytest.mark.parametrize("impl", ["fastrnn", "torch"])
def test_step_batch1(benchmark, impl):
    """One streaming step of a 2-layer LSTM(64, 256) at batch 1 (the sampling loop's unit of work)."""
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed")
    i, h = 64, 256
    x = np.random.default_rng(0).standard_normal((1, i), dtype=np.float32)
    if impl == "fastrnn":
        lstm = fastrnn.LSTM(i, h, num_layers=2, seed=0)
        state = lstm.step(x)[1]
        fn = lambda: lstm.step(x, state)
    else:
        tl = torch.nn.LSTM(i, h, num_layers=2)
        xt = torch.from_numpy(x)[None]
        with torch.inference_mode():
            state = tl(xt)[1]

        def fn():
            with torch.inference_mode():
                tl(xt, state)
    record(benchmark, f"2-layer LSTM({i}, {h}) step, B=1", impl, fn, 2 * (i + 3 * h) * 4 * h)


def test_step_bare_kernels_batch1(benchmark):
    """The two `_kernels.step` calls `LSTM.step` makes above, with preallocated outputs: the
    difference to the layer's row is the streaming step's Python overhead."""
    i, h = 64, 256
    x = np.random.default_rng(0).standard_normal((1, i), dtype=np.float32)
    lstm = fastrnn.LSTM(i, h, num_layers=2, seed=0)
    w = lstm.named_parameters()
    hs, cs = np.zeros((2, 1, h), np.float32), np.zeros((2, 1, h), np.float32)
    works = [np.empty(_kernels.work_size("lstm", 1, 1, n, h), np.float32) for n in (i, h)]
    layer_args = [tuple(w[f"{n}_l{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                  for k in range(2)]

    def fn():
        inp = x
        for k in range(2):
            _kernels.step("lstm", inp, hs[k], cs[k], *layer_args[k], work=works[k], h_out=hs[k], c_out=cs[k])
            inp = hs[k]
    record(benchmark, f"2-layer LSTM({i}, {h}) step, B=1, bare _kernels.step", "fastrnn", fn,
           2 * (i + 3 * h) * 4 * h)
