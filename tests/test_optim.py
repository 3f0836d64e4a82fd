"""Optimisers, clipping and learning-rate decay == torch.optim (float64 trajectories)."""
import numpy as np
import pytest

from fastrnn import optim

CASES = [
    ("SGD", dict(lr=0.1), {}),
    ("SGD", dict(lr=0.1, momentum=0.9), {}),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), {}),
    ("SGD", dict(lr=0.1, momentum=0.5, dampening=0.3), {}),
    ("Adagrad", dict(lr=0.1), dict(eps=1e-10)),
    ("RMSprop", dict(lr=0.01, alpha=0.95, eps=1e-8), {}),
    ("Adam", dict(lr=0.01), {}),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1), {}),
    ("AdamW", dict(lr=0.01, weight_decay=0.1), {}),
]


def grad_at(p):
    """The gradient of a fixed non-quadratic function, so trajectories differ between methods."""
    return np.sin(3 * p) + 0.5 * p ** 3 - 1


@pytest.mark.parametrize("name,kw,extra", CASES)
def test_trajectory_matches_torch(name, kw, extra):
    torch = pytest.importorskip("torch")
    p0 = np.random.default_rng(0).standard_normal(10)
    params, grads = p0.copy(), np.zeros(10)
    opt = getattr(optim, name)((params, grads), **kw, **extra)
    tp = torch.tensor(p0, requires_grad=True)
    topt = getattr(torch.optim, name)([tp], **kw, **extra)
    for _ in range(20):
        grads[...] = grad_at(params)
        opt.step()
        tp.grad = torch.tensor(grad_at(tp.detach().numpy()))
        topt.step()
        np.testing.assert_allclose(params, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,kw,extra", CASES)
def test_state_dict_continues_the_same_trajectory(name, kw, extra):
    p0 = np.random.default_rng(1).standard_normal(8)
    a = (p0.copy(), np.zeros(8))
    opt_a = getattr(optim, name)(a, **kw, **extra)
    for _ in range(5):
        a[1][...] = grad_at(a[0])
        opt_a.step()
    b = (a[0].copy(), np.zeros(8))
    opt_b = getattr(optim, name)(b, **kw, **extra)
    opt_b.load_state_dict(opt_a.state_dict())
    for _ in range(5):
        for params, grads, opt in (a + (opt_a,), b + (opt_b,)):
            grads[...] = grad_at(params)
            opt.step()
    np.testing.assert_array_equal(a[0], b[0])


def test_clipping_matches_torch():
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(2).standard_normal(50) * 3
    params, grads = np.zeros(50), g.copy()
    norm = optim.clip_grad_norm((params, grads), 2.0)
    tp = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    tp.grad = torch.tensor(g)
    tnorm = torch.nn.utils.clip_grad_norm_([tp], 2.0)
    assert abs(norm - tnorm.item()) < 1e-12
    np.testing.assert_allclose(grads, tp.grad.numpy(), rtol=1e-12)
    small = g / 100
    grads[...] = small
    optim.clip_grad_norm((params, grads), 2.0)
    np.testing.assert_array_equal(grads, small)                  # under the limit: untouched
    grads[...] = g
    optim.clip_grad_value((params, grads), 1.5)
    np.testing.assert_array_equal(grads, np.clip(g, -1.5, 1.5))


def test_lr_schedules_match_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs, kw in ((optim.StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=3, gamma=0.5)),
                             (optim.ExponentialLR, torch.optim.lr_scheduler.ExponentialLR, dict(gamma=0.9))):
        opt = optim.SGD((np.zeros(2), np.zeros(2)), lr=0.1)
        topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
        s, ts = ours(opt, **kw), theirs(topt, **kw)
        for _ in range(10):
            topt.step()
            s.step()
            ts.step()
            assert abs(opt.lr - topt.param_groups[0]["lr"]) < 1e-15


def test_bad_arguments():
    with pytest.raises(TypeError, match="params"):
        optim.Adam(object())
    with pytest.raises(ValueError, match="lr"):
        optim.SGD((np.zeros(2), np.zeros(2)), lr=-1)
    with pytest.raises(ValueError, match="match"):
        optim.SGD((np.zeros(2), np.zeros(3)))
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD((np.zeros(2), np.zeros(2)), nesterov=True)
    opt = optim.Adam((np.zeros(2), np.zeros(2)))
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state_dict(dict(lr=0.1, steps=1))
