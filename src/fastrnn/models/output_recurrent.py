"""The output->hidden recurrence (Goodfellow et al., fig. 10.4):

    h_t = tanh(b + W o_{t-1} + U x_t),    o_t = c + V h_t,    o_0 = 0 (or a given o_init)

trained with teacher forcing: the TRUE previous target y_{t-1} stands in for o_{t-1}, so the
steps are independent and training has no time loop — three GEMMs over all T*B rows (the Linear
blocks, through `_kernels.gemm`) and an MSE against the targets, masked past each length.
`predict` runs free: it feeds back its own outputs, one step at a time.

Parameters: in_proj.weight U (H, I), in_proj.bias b (H,), out_proj.weight W (H, O),
head.weight V (O, H), head.bias c (O,). Dimension letters: B batch, T time, I input, O output, H hidden.
"""
import numpy as np

from .. import checks
from ..nn import MSE, Linear, Module
from ..nn.module import to_numpy
from .lm import _NO_TAPE
from .registry import register


@register
class OutputRecurrentNet(Module):
    """Real-valued sequence map x (B, T, I) -> o (B, T, O) with the output fed back; see above."""

    def __init__(self, input_size, output_size, hidden_size=32, dtype="float32", seed=None):
        I, O = checks.positive_int("input_size", input_size), checks.positive_int("output_size", output_size)
        H = checks.positive_int("hidden_size", hidden_size)
        super().__init__(dtype)
        self.config = dict(input_size=I, output_size=O, hidden_size=H, dtype=checks.float_dtype(dtype).name,
                           seed=seed)
        rng = np.random.default_rng(seed)
        self.in_proj = Linear(I, H, seed=rng)                  # U, b
        self.out_proj = Linear(O, H, bias=False, seed=rng)     # W
        self.head = Linear(H, O, seed=rng)                     # V, c
        self.loss = MSE()
        self._h = None

    def _float(self, name, a, width):
        a = to_numpy(a)
        if a.dtype.kind != "f":
            raise TypeError(f"{name}: expected a float array, got {a.dtype.name}")
        if a.ndim != 3 or a.shape[2] != width or 0 in a.shape[:2]:
            raise ValueError(f"{name}: expected a non-empty shape (B, T, {width}), got {a.shape}")
        return np.ascontiguousarray(a, dtype=self.dtype)

    def forward(self, batch, train=None):
        """Teacher-forced MSE of batch = (x (B, T, I), y (B, T, O)[, lengths (B,)]); the tape is
        kept unless under `fastrnn.no_grad()` (or with the older train=False)."""
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise TypeError("batch: expected (x (B, T, I), y (B, T, O)) or (x, y, lengths)")
        x = self._float("x", batch[0], self.config["input_size"])
        y = self._float("y", batch[1], self.config["output_size"])
        if y.shape[:2] != x.shape[:2]:
            raise ValueError(f"y: expected {x.shape[:2]} steps (as x), got {y.shape[:2]}")
        B, T = x.shape[:2]
        mask = None
        if len(batch) == 3 and batch[2] is not None:
            lengths = checks.lengths(batch[2], B, T)
            mask = (np.arange(T) < lengths[:, None]).astype(self.dtype)       # (B, T)
        prev = np.zeros_like(y)
        prev[:, 1:] = y[:, :-1]                     # teacher forcing: o_{t-1} := y_{t-1}
        h = np.tanh(self.in_proj.forward(x, train) + self.out_proj.forward(prev, train))   # (B, T, H)
        o = self.head.forward(h, train)
        tape = self._mode(train)[1]
        if tape:
            self._h = h
        return float(self.loss.forward(o, y, mask, keep=tape))

    def backward(self):
        """Accumulate the gradient of the last training forward's loss (no time loop)."""
        if self._h is None:
            raise RuntimeError(_NO_TAPE)
        h, self._h = self._h, None
        da = self.head.backward(self.loss.backward()) * (1 - h * h)
        self.out_proj.backward(da)
        self.in_proj.backward(da)

    def predict(self, x, o_init=None):
        """Free-running outputs o (B, T, O) for x (B, T, I), each step fed its own previous output."""
        x = self._float("x", x, self.config["input_size"])
        B, T = x.shape[:2]
        O = self.config["output_size"]
        o = np.zeros((B, O), self.dtype)
        if o_init is not None:
            o_init = to_numpy(o_init)
            if o_init.shape != (B, O) or o_init.dtype.kind != "f":
                raise ValueError(f"o_init: expected a float array of shape {(B, O)}, got {o_init.shape}")
            o[...] = o_init
        ux = self.in_proj.forward(x, train=False)          # all input terms in one GEMM
        out = np.empty((B, T, O), self.dtype)
        for t in range(T):
            h = np.tanh(ux[:, t] + self.out_proj.forward(o, train=False))
            o = out[:, t] = self.head.forward(h, train=False)
        return out
