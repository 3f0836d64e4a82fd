"""The 2-D extension of a recurrent net (four directional sweeps over a grid) with an image
classifier head.

An (N, H, W, C) batch of grids is swept left->right and right->left along its rows and
top->bottom and bottom->top along its columns. Each pair of opposite sweeps is ONE call of a
bidirectional recurrent layer whose batch is every row (N*H sequences of W steps) or every column
(N*W sequences of H steps), so there is no Python loop over pixels. The four outputs are
concatenated at every (i, j) into (N, H, W, 4*K) features, pooled (mean or max) over the grid and
classified by a Linear head with softmax cross-entropy.

Dimension letters: N images, H rows, W columns, C channels, K hidden size per sweep.
"""
import numpy as np

from .. import checks
from ..nn import Linear, Module, SoftmaxCrossEntropy
from ..nn.module import to_numpy
from .lm import _NO_TAPE, CELLS
from .registry import register

POOLING = ("mean", "max")


@register
class GridRNN(Module):
    """Four-direction grid RNN over (N, H, W, C) inputs -> `num_classes` logits; see above.

    Parameters: rows.* (the left/right sweeps), cols.* (the up/down sweeps), head.*.
    """

    def __init__(self, in_channels, num_classes, hidden_size=16, cell="gru", pooling="mean",
                 dtype="float32", seed=None):
        if cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")
        if pooling not in POOLING:
            raise ValueError(f"pooling: expected one of {POOLING}, got {pooling!r}")
        C, K = checks.positive_int("in_channels", in_channels), checks.positive_int("hidden_size", hidden_size)
        classes = checks.positive_int("num_classes", num_classes)
        super().__init__(dtype)
        self.config = dict(in_channels=C, num_classes=classes, hidden_size=K, cell=cell, pooling=pooling,
                           dtype=checks.float_dtype(dtype).name, seed=seed)
        rng = np.random.default_rng(seed)
        seeds = [int(s) for s in rng.integers(2**63, size=2)]
        self.rows = CELLS[cell](C, K, bidirectional=True, seed=seeds[0])
        self.cols = CELLS[cell](C, K, bidirectional=True, seed=seeds[1])
        self.head = Linear(4 * K, classes, seed=rng)
        self.loss = SoftmaxCrossEntropy()
        self._tape = None

    def features(self, images, train=False):
        """(N, H, W, 4K) outputs of the four sweeps at every pixel: [left->right, right->left,
        top->bottom, bottom->top]."""
        x = to_numpy(images)
        if x.dtype.kind != "f":
            raise TypeError(f"images: expected a float array, got {x.dtype.name}")
        C = self.config["in_channels"]
        if x.ndim != 4 or x.shape[3] != C or 0 in x.shape:
            raise ValueError(f"images: expected a non-empty shape (N, H, W, {C}), got {x.shape}")
        N, H, W, _ = x.shape
        K2 = 2 * self.config["hidden_size"]
        rows, _ = self.rows.forward(x.transpose(2, 0, 1, 3).reshape(W, N * H, C), train=train)
        cols, _ = self.cols.forward(x.transpose(1, 0, 2, 3).reshape(H, N * W, C), train=train)
        out = np.empty((N, H, W, 2 * K2), self.dtype)
        out[..., :K2] = rows.reshape(W, N, H, K2).transpose(1, 2, 0, 3)
        out[..., K2:] = cols.reshape(H, N, W, K2).transpose(1, 0, 2, 3)
        return out

    def logits(self, images, train=False):
        """(N, num_classes) class scores of the pooled features."""
        f = self.features(images, train)
        N, H, W, F = f.shape
        f = f.reshape(N, H * W, F)
        if self.config["pooling"] == "mean":
            pooled, arg = f.mean(1), None
        else:
            arg = f.argmax(1)                                           # (N, F)
            pooled = np.take_along_axis(f, arg[:, None], 1)[:, 0]
        if self._mode(train)[1]:
            self._tape = (f.shape, (N, H, W), arg)
        return self.head.forward(pooled, train)

    def forward(self, batch, train=None):
        """Mean cross-entropy of batch = (images (N, H, W, C), labels (N,)); the tape is kept
        unless under `fastrnn.no_grad()` (or with the older train=False), and a forward without
        one leaves a pending tape (the loss's gradient included) alone."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("batch: expected (images (N, H, W, C), labels (N,))")
        images, labels = batch
        logits = self.logits(images, train)
        labels = checks.ids("labels", labels, self.config["num_classes"], ndim=1)
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(f"labels: expected {logits.shape[0]} labels (one per image), got {labels.shape[0]}")
        return float(self.loss.forward(logits, labels, keep=self._mode(train)[1]))

    def backward(self):
        """Accumulate the gradient of the last training forward's loss."""
        if self._tape is None:
            raise RuntimeError(_NO_TAPE)
        (shape, (N, H, W), arg), self._tape = self._tape, None
        dpooled = self.head.backward(self.loss.backward())             # (N, F)
        if arg is None:
            df = np.broadcast_to(dpooled[:, None] / (H * W), shape)
        else:
            df = np.zeros(shape, self.dtype)
            np.put_along_axis(df, arg[:, None], dpooled[:, None], 1)
        df = df.reshape(N, H, W, -1)
        K2 = 2 * self.config["hidden_size"]
        self.rows.backward(df[..., :K2].transpose(2, 0, 1, 3).reshape(W, N * H, K2))
        self.cols.backward(df[..., K2:].transpose(1, 0, 2, 3).reshape(H, N * W, K2))

    def predict(self, images):
        """The most likely class of each image (N,)."""
        return self.logits(images).argmax(1)
