"""`Attention`: a soft alignment of queries over a memory of keys (which are also the values),
with an explicit backward, masked past each memory's length.

    score "general" (Luong et al. 2015):   e[b,t,s] = q[b,t] . (W k[b,s])            W (Q, K)
    score "additive" (Bahdanau et al. 2015): e[b,t,s] = v . tanh(W_q q[b,t] + W_k k[b,s])
                                                       W_q (A, Q), W_k (A, K), v (A,)
    a[b,t,:] = softmax over the valid steps s < lengths[b] of e[b,t,:] (exactly 0 past them)
    context[b,t] = sum_s a[b,t,s] k[b,s]

Parameter names: `weight` (general); `query_weight`, `key_weight`, `v` (additive); the same
numbers in PyTorch are `q @ W @ k^T` and `tanh(q W_q^T + k W_k^T) @ v`.

Dimension letters: B batch, T query steps, S memory steps, Q query size, K key size, A the
additive score's hidden size.
"""
import numpy as np

from .. import checks
from .._kernels import gemm
from .linear import _rng
from .module import Module, to_numpy

SCORES = ("general", "additive")


class Attention(Module):
    """Attention of queries (B, T, Q) over keys (B, S, K); see the module docstring.

    score: "general" or "additive"; attn_size: A of the additive score (default K). Weights are
    drawn as torch's Linear draws them, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from `seed`.
    """

    def __init__(self, query_size, key_size, score="general", attn_size=None, dtype=None, seed=None):
        super().__init__(dtype)
        checks.positive_int("query_size", query_size)
        checks.positive_int("key_size", key_size)
        if score not in SCORES:
            raise ValueError(f"score: expected one of {list(SCORES)}, got {score!r}")
        Q, K = int(query_size), int(key_size)
        A = K if attn_size is None else attn_size
        checks.positive_int("attn_size", A)
        self.query_size, self.key_size, self.score, self.attn_size = Q, K, score, int(A)
        rng = _rng(seed)
        if score == "general":
            self.add_parameter("weight", (Q, K))[...] = rng.uniform(-1 / np.sqrt(K), 1 / np.sqrt(K), (Q, K))
        else:
            wq, wk, v = self.add_parameters([("query_weight", (A, Q)), ("key_weight", (A, K)), ("v", (A,))])
            wq[...] = rng.uniform(-1 / np.sqrt(Q), 1 / np.sqrt(Q), (A, Q))
            wk[...] = rng.uniform(-1 / np.sqrt(K), 1 / np.sqrt(K), (A, K))
            v[...] = rng.uniform(-1 / np.sqrt(A), 1 / np.sqrt(A), A)
        self._tape = None

    def _check(self, query, keys, lengths):
        q, k = to_numpy(query), to_numpy(keys)
        for name, x, size in (("query", q, self.query_size), ("keys", k, self.key_size)):
            if x.dtype.kind != "f":
                raise TypeError(f"{name}: expected a float array, got {x.dtype.name}")
            if x.ndim != 3 or x.shape[2] != size:
                raise ValueError(f"{name}: expected shape (B, {'T' if name == 'query' else 'S'}, {size}), "
                                 f"got {x.shape}")
        B, S = k.shape[:2]
        if q.shape[0] != B:
            raise ValueError(f"query: expected {B} sequences (as keys), got {q.shape[0]}")
        if B == 0 or S == 0:
            raise ValueError(f"keys: expected at least one sequence of at least one step, got {k.shape}")
        if lengths is None:
            lengths = np.full(B, S, np.int64)
        else:
            lengths = to_numpy(lengths)
            if lengths.dtype.kind not in "iu" or lengths.shape != (B,):
                raise ValueError(f"lengths: expected ({B},) integers, got {lengths.dtype.name} {lengths.shape}")
            if B and (lengths.min() < 1 or lengths.max() > S):
                raise ValueError(f"lengths: expected values in [1, {S}], got {lengths.min()}..{lengths.max()}")
        return (np.ascontiguousarray(q, self.dtype), np.ascontiguousarray(k, self.dtype),
                np.arange(S)[None, :] < lengths[:, None])                     # mask (B, S)

    def forward(self, query, keys, lengths=None, train=True):
        """(context (B, T, K), weights (B, T, S)) for query (B, T, Q), keys (B, S, K) and the
        memory lengths (B,) in [1, S] (None: all S steps). train=True keeps the tape."""
        q, k, mask = self._check(query, keys, lengths)
        (B, T, Q), (_, S, K) = q.shape, k.shape
        if self.score == "general":
            kw = gemm(k.reshape(-1, K), self._views["weight"], trans_b=True).reshape(B, S, Q)
            e, extra = np.einsum("btq,bsq->bts", q, kw), kw                        # (B, T, S)
        else:
            A = self.attn_size
            pq = gemm(q.reshape(-1, Q), self._views["query_weight"], trans_b=True).reshape(B, T, 1, A)
            pk = gemm(k.reshape(-1, K), self._views["key_weight"], trans_b=True).reshape(B, 1, S, A)
            extra = np.tanh(pq + pk)                                                # (B, T, S, A)
            e = gemm(extra.reshape(-1, A), self._views["v"].reshape(A, 1)).reshape(B, T, S)
        e = np.where(mask[:, None, :], e, -np.inf)
        a = np.exp(e - e.max(axis=2, keepdims=True))
        a /= a.sum(axis=2, keepdims=True)
        context = np.einsum("bts,bsk->btk", a, k)
        self._tape = (q, k, a, extra) if train else None
        return context, a

    __call__ = forward

    def backward(self, dcontext, dweights=None):
        """dcontext (B, T, K) [, dweights (B, T, S)] -> (dquery, dkeys); accumulates the
        parameters' gradients."""
        if self._tape is None:
            raise RuntimeError("backward: call forward(..., train=True) first")
        q, k, a, extra = self._tape
        dc = _gradient("dcontext", dcontext, a.shape[:2] + (self.key_size,), self.dtype)
        da = np.einsum("btk,bsk->bts", dc, k)                                      # (B, T, S)
        if dweights is not None:
            da += _gradient("dweights", dweights, a.shape, self.dtype)
        self._tape = None
        dk = np.einsum("bts,btk->bsk", a, dc)                                      # (B, S, K)
        de = a * (da - (da * a).sum(axis=2, keepdims=True))                       # 0 where masked
        (B, T, Q), (_, S, K), g = q.shape, k.shape, self._grad_views
        q2, k2 = q.reshape(-1, Q), k.reshape(-1, K)
        if self.score == "general":
            W, kw = self._views["weight"], extra
            dq = np.einsum("bts,bsq->btq", de, kw)                                 # (B, T, Q)
            dkw = np.einsum("bts,btq->bsq", de, q).reshape(-1, Q)                  # (B*S, Q)
            dk += gemm(dkw, W).reshape(B, S, K)
            gemm(dkw, k2, trans_a=True, out=g["weight"], accumulate=True)
        else:
            th, A = extra, self.attn_size
            gemm(th.reshape(-1, A), de.reshape(-1, 1), trans_a=True, out=g["v"].reshape(A, 1),
                 accumulate=True)
            dpre = de[..., None] * self._views["v"] * (1 - th * th)               # (B, T, S, A)
            dpq = np.ascontiguousarray(dpre.sum(axis=2)).reshape(-1, A)            # (B*T, A)
            dpk = np.ascontiguousarray(dpre.sum(axis=1)).reshape(-1, A)            # (B*S, A)
            dq = gemm(dpq, self._views["query_weight"]).reshape(B, T, Q)
            dk += gemm(dpk, self._views["key_weight"]).reshape(B, S, K)
            gemm(dpq, q2, trans_a=True, out=g["query_weight"], accumulate=True)
            gemm(dpk, k2, trans_a=True, out=g["key_weight"], accumulate=True)
        return dq, dk

    def __repr__(self):
        extra = f", attn_size={self.attn_size}" if self.score == "additive" else ""
        return (f"Attention({self.query_size}, {self.key_size}, score={self.score!r}{extra}, "
                f"dtype={self.dtype.name!r})")


def _gradient(name, value, shape, dtype):
    """`value` as a `dtype` array of `shape`, or TypeError/ValueError naming `name`."""
    g = to_numpy(value)
    if g.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real array, got {g.dtype.name}")
    if g.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {g.shape}")
    return np.asarray(g, dtype)
