"""Layer benchmarks: a 2-layer bidirectional LSTM vs torch.nn.LSTM, and the Python overhead of a
layer call at batch 1 (layer call vs the bare kernel calls it makes).

Run: python -m pytest bench/test_layers.py -q (with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset).
"""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels
from conftest import OVERHEAD_GROUP, record, torch

T, B, I, H = 50, 50, 128, 256


def flops_bilstm(train):
    """Forward FLOPs of the 2-layer bidirectional LSTM (layer 2 reads 2H features), x3 with backward."""
    per_dir = lambda inp: 2 * T * B * (inp + H) * 4 * H
    return 2 * (per_dir(I) + per_dir(2 * H)) * (3 if train else 1)


@pytest.mark.parametrize("impl", ["fastrnn", "torch"])
@pytest.mark.parametrize("train", [False, True], ids=["forward", "fwd+bwd"])
def test_bidirectional_lstm(benchmark, train, impl):
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I), dtype=np.float32)
    dy = rng.standard_normal((T, B, 2 * H), dtype=np.float32)
    if impl == "fastrnn":
        lstm = fastrnn.LSTM(I, H, num_layers=2, bidirectional=True, seed=0)

        def fn():
            y, _ = lstm(x, train=train)
            if train:
                lstm.backward(dy)
    else:
        lstm = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
        xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)

        def fn():
            if train:
                y, _ = lstm(xt.detach().requires_grad_(True))
                y.backward(dyt)
            else:
                with torch.inference_mode():
                    lstm(xt)
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
