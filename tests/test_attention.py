"""fastrnn.nn.Attention: forward by hand, backward against central differences (float64) for
both scores with masked memories, masking exact, PyTorch parity, and bad input named."""
import numpy as np
import pytest

from fastrnn.nn import Attention

try:
    import torch
except ImportError:          # the parity test skips; CI (FASTRNN_REQUIRE_TORCH=1) fails instead
    torch = None

SCORES = ["general", "additive"]


def inputs(seed=0, B=3, T=4, S=5, Q=3, K=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, Q)), rng.normal(size=(B, S, K)), np.array([5, 2, 1])[:B]


def objective(att, q, k, lengths, R, W, train=False):
    """A scalar that depends on the context and the weights: sum(R * context) + sum(W * weights)."""
    c, a = att.forward(q, k, lengths, train=train)
    return float((R * c).sum() + (W * a).sum())


def numeric(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        g[i] = (up - f()) / (2 * eps)
        x[i] = old
    return g


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("with_dweights", [False, True])
def test_backward_matches_finite_differences(score, with_dweights):
    att = Attention(3, 2, score=score, attn_size=4, dtype="float64", seed=1)
    q, k, lengths = inputs()
    rng = np.random.default_rng(1)
    R = rng.normal(size=(3, 4, 2))
    W = rng.normal(size=(3, 4, 5)) if with_dweights else np.zeros((3, 4, 5))
    att.zero_grad()
    objective(att, q, k, lengths, R, W, train=True)
    dq, dk = att.backward(R, W if with_dweights else None)

    def f():
        att.invalidate()
        return objective(att, q, k, lengths, R, W)
    np.testing.assert_allclose(dq, numeric(f, q), atol=1e-8)
    np.testing.assert_allclose(dk, numeric(f, k), atol=1e-8)
    np.testing.assert_allclose(att.grads, numeric(f, att.params), atol=1e-8)
    # padded memory steps get no gradient
    assert not dk[1, 2:].any() and not dk[2, 1:].any()


@pytest.mark.parametrize("score", SCORES)
def test_masked_steps_have_exactly_zero_weight(score):
    att = Attention(3, 2, score=score, dtype="float64", seed=2)
    q, k, lengths = inputs()
    c, a = att.forward(q, k, lengths, train=False)
    assert not a[1, :, 2:].any() and not a[2, :, 1:].any()
    np.testing.assert_allclose(a.sum(2), 1, atol=1e-15)
    np.testing.assert_allclose(c[2], np.repeat(k[2, :1], 4, axis=0), atol=1e-15)   # one step: itself
    k2 = k.copy()
    k2[1, 2:] = 1e3                                     # whatever lies past a length is ignored
    c2, a2 = att.forward(q, k2, lengths, train=False)
    np.testing.assert_array_equal(c2, c)
    np.testing.assert_array_equal(a2, a)


def test_general_score_by_hand():
    att = Attention(2, 2, dtype="float64", seed=0)
    att.load_state_dict({"weight": np.eye(2)})
    q, k = np.array([[[1.0, 0.0]]]), np.array([[[2.0, 0.0], [0.0, 1.0]]])
    c, a = att.forward(q, k)                               # scores 2 and 0
    p = np.exp(2) / (np.exp(2) + 1)
    np.testing.assert_allclose(a, [[[p, 1 - p]]])
    np.testing.assert_allclose(c, [[[2 * p, 1 - p]]])


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("score", SCORES)
def test_pytorch_parity(score):
    att = Attention(3, 2, score=score, attn_size=4, dtype="float64", seed=3)
    q, k, lengths = inputs(seed=3)
    R = np.random.default_rng(4).normal(size=(3, 4, 2))
    att.zero_grad()
    c, a = att.forward(q, k, lengths)
    dq, dk = att.backward(R)
    P = {n: torch.tensor(v, requires_grad=True) for n, v in att.named_parameters()}
    tq, tk = torch.tensor(q, requires_grad=True), torch.tensor(k, requires_grad=True)
    if score == "general":
        e = tq @ P["weight"] @ tk.transpose(1, 2)
    else:
        e = torch.tanh((tq @ P["query_weight"].T)[:, :, None] + (tk @ P["key_weight"].T)[:, None]) @ P["v"]
    mask = torch.tensor(np.arange(5)[None, None, :] < lengths[:, None, None])
    ta = torch.softmax(e.masked_fill(~mask, -float("inf")), dim=2)
    tc = ta @ tk
    (tc * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(c, tc.detach().numpy(), atol=1e-13)
    np.testing.assert_allclose(a, ta.detach().numpy(), atol=1e-13)
    np.testing.assert_allclose(dq, tq.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(dk, tk.grad.numpy(), atol=1e-12)
    grads = att.named_grads()
    for name, p in P.items():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-12, err_msg=name)


def test_bad_input_names_the_argument():
    att = Attention(3, 2, dtype="float64", seed=0)
    q, k, lengths = inputs()
    cases = [((q[..., :2], k, lengths), ValueError, "query"),
             ((q, k[..., :1], lengths), ValueError, "keys"),
             ((q[:2], k, lengths), ValueError, "query.*3 sequences"),
             ((q.astype(int), k, lengths), TypeError, "query"),
             ((q, k, np.array([5, 0, 1])), ValueError, "lengths"),
             ((q, k, np.array([6, 2, 1])), ValueError, "lengths"),
             ((q, k, lengths[:2]), ValueError, "lengths"),
             ((q, k[:, :0], None), ValueError, "keys")]
    for args, error, match in cases:
        with pytest.raises(error, match=match):
            att.forward(*args)
    for kw, match in [(dict(score="dot"), "score"), (dict(query_size=0), "query_size"),
                      (dict(attn_size=True), "attn_size"), (dict(key_size=2.5), "key_size")]:
        with pytest.raises(ValueError, match=match):
            Attention(**{**dict(query_size=3, key_size=2), **kw})
    with pytest.raises(RuntimeError, match="forward"):
        Attention(3, 2).backward(np.zeros((3, 4, 2)))
    att.forward(q, k, lengths)
    with pytest.raises(ValueError, match="dcontext"):
        att.backward(np.zeros((3, 4, 3)))
