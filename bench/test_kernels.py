"""Kernel benchmarks: one layer, one direction, float32; fastrnn vs fastrnn.reference vs torch.

Run: python -m pytest bench/test_kernels.py --benchmark-columns=median,iqr -q
(with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset). The summary table at the end gives the
ratios, GFLOP/s and the fraction of the SGEMM peak measured in the same run.
"""
import numpy as np
import pytest

from fastrnn import _kernels, reference
from conftest import record, torch

WORKLOADS = [(100, 1, 64, 128), (100, 32, 128, 256), (50, 64, 512, 512), (25, 16, 1024, 1024)]
CELLS = {"rnn": ("rnn_tanh", 1), "gru": ("gru", 3), "lstm": ("lstm", 4)}


def make(cell, T, B, I, H, seed=0):
    """Random float32 inputs and PyTorch-layout weights for one layer."""
    rng = np.random.default_rng(seed)
    G = CELLS[cell][1]
    s = 1 / np.sqrt(H)
    f = lambda *shape: rng.uniform(-s, s, shape).astype(np.float32)
    return dict(x=rng.standard_normal((T, B, I), dtype=np.float32), W_ih=f(G * H, I), W_hh=f(G * H, H),
                b_ih=f(G * H), b_hh=f(G * H), h0=f(B, H), c0=f(B, H), dy=f(T, B, H))


def fastrnn_runner(cell, a, train):
    kcell = CELLS[cell][0]
    T, B, I = a["x"].shape
    H = a["h0"].shape[1]
    c0 = a["c0"] if cell == "lstm" else None
    weights = (a["W_ih"], a["W_hh"], a["b_ih"], a["b_hh"], a["h0"], c0)
    tape = np.empty(_kernels.tape_size(kcell, T, B, I, H), np.float32)
    work = np.empty(_kernels.work_size(kcell, T, B, I, H), np.float32)
    y = np.empty((T, B, H), np.float32)
    grads = {k: np.zeros_like(a[k]) for k in ("W_ih", "W_hh", "b_ih", "b_hh")}
    dx = np.empty_like(a["x"])

    def infer():
        _kernels.forward(kcell, a["x"], *weights, work=work, y=y)

    def train_step():
        _kernels.forward(kcell, a["x"], *weights, tape=tape, y=y)
        _kernels.backward(kcell, tape, a["x"], *weights, dy=a["dy"], grads=grads, dx=dx)
    return train_step if train else infer


def reference_runner(cell, a, train):
    fwd = {"rnn": reference.rnn_forward, "gru": reference.gru_forward, "lstm": reference.lstm_forward}[cell]
    bwd = {"rnn": reference.rnn_backward, "gru": reference.gru_backward, "lstm": reference.lstm_backward}[cell]
    state = (a["h0"], a["c0"]) if cell == "lstm" else (a["h0"],)

    def run():
        y, _, cache = fwd(a["x"], *state, a["W_ih"], a["W_hh"], a["b_ih"], a["b_hh"])
        if train:
            bwd(a["dy"], None if cell != "lstm" else (None, None), cache)
    return run


def torch_runner(cell, a, train):
    T, B, I = a["x"].shape
    H = a["h0"].shape[1]
    mod = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](I, H)
    with torch.no_grad():
        for name, key in (("weight_ih_l0", "W_ih"), ("weight_hh_l0", "W_hh"), ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh")):
            getattr(mod, name).copy_(torch.from_numpy(a[key]))
    h0 = torch.from_numpy(a["h0"])[None]
    state = (h0, torch.from_numpy(a["c0"])[None]) if cell == "lstm" else h0
    x = torch.from_numpy(a["x"])
    dy = torch.from_numpy(a["dy"])

    def infer():
        with torch.inference_mode():
            mod(x, state)

    def train_step():
        xg = x.detach().requires_grad_(True)
        y, _ = mod(xg, state)
        y.backward(dy)
    return train_step if train else infer


RUNNERS = {"fastrnn": fastrnn_runner, "reference": reference_runner, "torch": torch_runner}


@pytest.mark.parametrize("impl", list(RUNNERS))
@pytest.mark.parametrize("train", [False, True], ids=["forward", "fwd+bwd"])
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("shape", WORKLOADS, ids=lambda s: "T%d-B%d-I%d-H%d" % s)
def test_kernel(benchmark, shape, cell, train, impl):
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed")
    T, B, I, H = shape
    a = make(cell, T, B, I, H)
    fn = RUNNERS[impl](cell, a, train)
    flops = 2 * T * B * (I + H) * CELLS[cell][1] * H * (3 if train else 1)
    record(benchmark, f"{cell} {'fwd+bwd' if train else 'forward'} {shape}", impl, fn, flops)
