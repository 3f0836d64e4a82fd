"""The fused LM step reads its layers' outputs from the training tapes (csrc/acts_on_tapes.h): with
no dropout and no lengths, layer k's output -- layer k + 1's input, the head's for the last layer --
is the tape's h_1..h_T itself, not a per-step copy. The same values either way: the step still
equals the Python forward + backward within float32 rounding (float64 to 1e-12), under every
decomposition of the stack, and gives the same bits on 1, 2 and 3 threads."""
import numpy as np
import pytest

import fastrnn
from fastrnn.models import LanguageModel
from fastrnn.train.fused import FusedStep

V = 17


def _model(dtype, cell, layers, embed, hidden=40, dropout=0.0):
    return LanguageModel(V, cell=cell, hidden_size=hidden, num_layers=layers, embed_size=embed,
                         dropout=dropout, dtype=dtype, seed=3)


def _batches(steps=2, B=12, T=15, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))) for _ in range(steps)]


def _python_and_fused(dtype, cell, layers, embed, dropout=0.0):
    """Losses and gradients of two equal models over two windows (state carried): by forward +
    backward, and by the fused step."""
    a, b = _model(dtype, cell, layers, embed, dropout=dropout), _model(dtype, cell, layers, embed, dropout=dropout)
    step = FusedStep(b)
    state_a = state_b = None
    out = []
    for inputs, targets in _batches():
        a.zero_grad()
        loss_a, state_a = a.forward(inputs, targets, state_a, train=True)
        a.backward()
        loss_b, state_b = step.step(inputs, targets, state_b)
        out.append((loss_a, loss_b, a.grads.copy(), b.grads.copy()))
    return out


@pytest.mark.parametrize("decomp", ["auto", "units", "batch", "pipeline"])
@pytest.mark.parametrize("cell, layers, embed", [("lstm", 3, None), ("gru", 2, 6), ("rnn", 3, None),
                                                 ("lstm", 1, 5)])
def test_float32_step_without_dropout_equals_the_python_steps(monkeypatch, decomp, cell, layers, embed):
    monkeypatch.setenv("FASTRNN_DECOMP", decomp)
    fastrnn.set_num_threads(2)
    try:
        runs = _python_and_fused("float32", cell, layers, embed)
    finally:
        fastrnn.set_num_threads(None)
    for loss_a, loss_b, ga, gb in runs:
        assert abs(loss_a - loss_b) <= 1e-6 * loss_a
        np.testing.assert_allclose(gb, ga, rtol=1e-5, atol=1e-6 * np.abs(ga).max())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float64_step_without_dropout_equals_the_python_steps(cell):
    for loss_a, loss_b, ga, gb in _python_and_fused("float64", cell, 3, None):
        assert abs(loss_a - loss_b) <= 1e-12 * loss_a
        np.testing.assert_allclose(gb, ga, rtol=1e-10, atol=1e-12)


def test_dropout_on_some_layers_still_equals_the_python_steps():
    """With dropout the masked layers keep their own output buffers (the mask is multiplied into
    them in place); the last layer's output is still read from its tape."""
    for loss_a, loss_b, ga, gb in _python_and_fused("float64", "lstm", 3, None, dropout=0.3):
        assert abs(loss_a - loss_b) <= 1e-12 * loss_a
        np.testing.assert_allclose(gb, ga, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_same_bits_on_1_2_3_threads_without_dropout(cell):
    runs = []
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            model = _model("float32", cell, 3, None, hidden=64)
            step = FusedStep(model)
            state = None
            for inputs, targets in _batches(2, B=16, T=20):
                loss, state = step.step(inputs, targets, state)
            runs.append((loss, model.grads.copy()))
    finally:
        fastrnn.set_num_threads(None)
    for loss, g in runs[1:]:
        assert loss == runs[0][0] and np.array_equal(g, runs[0][1])
