"""The fused step's softmax rows (csrc/head_impl.h: the vectorised row maximum and the wide-vector
float32 clone): a NaN or an infinity among the logits gives the loss the Python path gives, a
vocabulary that is no multiple of the vector width and rows whose largest logits are signed zeros
give its numbers, and the pass split over 1, 2 and 3 members gives the same bits."""
import numpy as np
import pytest

import fastrnn
from fastrnn.models import LanguageModel
from fastrnn.train.fused import FusedStep


def _lm(V, dtype, seed=3):
    return LanguageModel(V, hidden_size=8, num_layers=1, dtype=dtype, seed=seed)


def _ids(V, B=8, T=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))


def fused_step_on_1_2_3_members(make_model, inputs, targets):
    """One fused step of a fresh make_model() at 1, 2 and 3 members: asserts the same loss and
    gradient bits on all three and returns (loss, grads) of the first."""
    out = []
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            model = make_model()
            loss, _ = FusedStep(model).step(inputs, targets)
            out.append((loss, model.grads.copy()))
    finally:
        fastrnn.set_num_threads(None)
    for loss, grads in out[1:]:
        assert loss == out[0][0] and np.array_equal(grads, out[0][1])
    return out[0]


def _python_loss(model, inputs, targets):
    model.zero_grad()
    loss, _ = model.forward(inputs, targets, train=True)
    model.backward()
    return loss


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [np.nan, np.inf, -np.inf])
def test_a_nan_or_infinite_logit_gives_the_python_loss(dtype, bias):
    V = 21
    inputs, targets = _ids(V)
    fused, ref = _lm(V, dtype), _lm(V, dtype)
    for m in (fused, ref):
        m.head._views["bias"][V - 3] = bias          # one vocabulary entry's logit in every row
    want = _python_loss(ref, inputs, targets)
    got, _ = FusedStep(fused).step(inputs, targets)
    if np.isnan(want):
        assert np.isnan(got)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12)


def test_signed_zero_maxima_and_an_odd_vocabulary_match_the_python_step():
    V = 37                                            # not a multiple of 8: the maximum's tail
    inputs, targets = _ids(V, seed=1)
    fused, ref = _lm(V, "float32"), _lm(V, "float32")
    for m in (fused, ref):                            # logits at most zero: W = 0, bias <= 0 with -0 and +0
        m.head._views["weight"][...] = 0
        b = m.head._views["bias"]
        b[...] = -np.arange(V, dtype=np.float32) / V
        b[0], b[5] = -0.0, 0.0
    want = _python_loss(ref, inputs, targets)
    got, _ = FusedStep(fused).step(inputs, targets)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(fused.grads, ref.grads, rtol=1e-4, atol=1e-6)


def test_the_softmax_pass_gives_the_same_bits_on_1_2_3_members():
    V = 65                                            # 64 rows x 65 logits: the pass is split
    inputs, targets = _ids(V, B=8, T=8, seed=2)
    fused_step_on_1_2_3_members(lambda: _lm(V, "float32"), inputs, targets)
