"""`Embedding`: rows of a (V, E) table looked up by integer ids, as torch.nn.Embedding."""
import numpy as np

from .. import checks
from .._kernels import gather_rows, scatter_add_rows
from .linear import _rng
from .module import Module, to_numpy


class Embedding(Module):
    """weight (V, E) initialised N(0, 1) as torch (from `seed`: int, None or a Generator)."""

    def __init__(self, num_embeddings, embedding_dim, dtype=None, seed=None):
        super().__init__(dtype)
        checks.positive_int("num_embeddings", num_embeddings)
        checks.positive_int("embedding_dim", embedding_dim)
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.add_parameter("weight", (num_embeddings, embedding_dim))[...] = \
            _rng(seed).standard_normal((num_embeddings, embedding_dim))
        self._ids = None

    def forward(self, ids, train=None):
        """ids (any shape) -> rows (ids.shape + (E,)); keeps ids for `backward` unless under
        `fastrnn.no_grad()` (or with the older train=False)."""
        ids = checks.ids("ids", ids, self.num_embeddings)
        if self._mode(train)[1]:
            self._ids = ids
        return gather_rows(self._views["weight"], ids)

    __call__ = forward

    def backward(self, dy):
        """Accumulate dy (ids.shape + (E,)) into the rows of the looked-up ids (repeats add)."""
        if self._ids is None:
            raise RuntimeError("backward: nothing kept; call forward first, outside fastrnn.no_grad()")
        ids, self._ids = self._ids, None
        dy = np.ascontiguousarray(to_numpy(dy), dtype=self.dtype)
        if dy.shape != ids.shape + (self.embedding_dim,):
            raise ValueError(f"dy: expected shape {ids.shape + (self.embedding_dim,)}, got {dy.shape}")
        scatter_add_rows(self._grad_views["weight"], ids.reshape(-1), dy.reshape(-1, self.embedding_dim))

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype.name!r})"
