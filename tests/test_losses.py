"""Losses: values and fused gradients vs finite differences and torch; extreme inputs stay finite."""
import numpy as np
import pytest

from fastrnn.losses import binary_cross_entropy_with_logits, log_softmax, mse, softmax, softmax_cross_entropy


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = f(x)
        x[i] = old - eps
        minus = f(x)
        x[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return g


@pytest.mark.parametrize("mask", [None, np.array([1, 0, 1, 0.5, 1])])
def test_softmax_cross_entropy_gradient(mask):
    rng = np.random.default_rng(0)
    logits, targets = rng.standard_normal((5, 7)), rng.integers(0, 7, 5)
    loss, grad = softmax_cross_entropy(logits, targets, mask)
    num = numeric_grad(lambda z: softmax_cross_entropy(z, targets, mask)[0], logits.copy())
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)
    w = np.ones(5) if mask is None else mask
    want = -(log_softmax(logits)[np.arange(5), targets] * w).sum() / w.sum()
    assert abs(loss - want) < 1e-12


def test_softmax_cross_entropy_matches_torch_and_survives_extremes():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((6, 4)) * 50
    logits[0] = [1e4, -1e4, 0, 3]
    targets = np.array([1, 0, 2, 3, 1, 0])
    loss, grad = softmax_cross_entropy(logits, targets)
    t = torch.tensor(logits, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(t, torch.tensor(targets))
    tl.backward()
    assert np.isfinite(loss) and abs(loss - tl.item()) < 1e-9 * abs(loss)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-10, atol=1e-14)
    l32, g32 = softmax_cross_entropy(logits.astype(np.float32), targets)
    assert np.isfinite(l32) and g32.dtype == np.float32 and np.isfinite(g32).all()


def test_softmax_and_log_softmax():
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    np.testing.assert_allclose(softmax(z).sum(1), 1)
    np.testing.assert_allclose(np.exp(log_softmax(z)), softmax(z), atol=1e-300)
    assert softmax(z, temperature=0.01)[0, 2] > 0.999


def test_bad_targets():
    with pytest.raises(ValueError, match="targets"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="targets"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="logits"):
        softmax_cross_entropy(np.zeros((2, 3), int), np.array([0, 1]))
    with pytest.raises(ValueError, match="mask"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), mask=np.zeros(2))


def test_mse_and_bce_gradients():
    rng = np.random.default_rng(2)
    p, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    _, g = mse(p, t)
    np.testing.assert_allclose(g, numeric_grad(lambda x: mse(x, t)[0], p.copy()), rtol=1e-6, atol=1e-9)
    z, y = rng.standard_normal(6) * 5, rng.uniform(0, 1, 6)
    loss, g = binary_cross_entropy_with_logits(z, y)
    np.testing.assert_allclose(g, numeric_grad(lambda x: binary_cross_entropy_with_logits(x, y)[0], z.copy()),
                               rtol=1e-6, atol=1e-9)
    big, _ = binary_cross_entropy_with_logits(np.array([1e4, -1e4]), np.array([0.0, 1.0]))
    assert big == pytest.approx(1e4)
