"""One contiguous buffer for a module's parameters and a second for its gradients, with named views.

An optimiser step, a global-norm clip or a checkpoint is then one operation on `params`/`grads`,
and a model made of several modules can gather theirs into one bigger buffer with `rebind`.
"""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_dtype(dtype):
    """Return `dtype` as a NumPy float32/float64 dtype, or raise TypeError naming it."""
    if dtype is None:       # np.dtype(None) is float64: never pick a precision silently
        raise TypeError("dtype: expected 'float32' or 'float64', got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dt.name}")
    return dt


class FlatParams:
    """Named, shaped views into one flat parameter buffer and one flat gradient buffer.

    `specs` is an ordered list of (name, shape). Views share memory with `params`/`grads`,
    so writing a view writes the buffer and vice versa.
    """

    def __init__(self, specs, dtype="float32"):
        self.dtype = as_float_dtype(dtype)
        self.specs = [(name, tuple(int(s) for s in shape)) for name, shape in specs]
        self.size = sum(int(np.prod(shape)) for _, shape in self.specs)
        self.rebind(np.zeros(self.size, self.dtype), np.zeros(self.size, self.dtype), copy=False)

    def rebind(self, params, grads, copy=True):
        """Move storage to the given 1-D buffers (e.g. slices of a model's buffer).

        With copy=True the current values are copied into the new storage first.
        """
        for arg, buf in (("params", params), ("grads", grads)):
            if buf.ndim != 1 or buf.shape[0] != self.size or buf.dtype != self.dtype:
                raise ValueError(f"{arg}: expected a 1-D {self.dtype.name} buffer of "
                                 f"{self.size} elements, got {buf.dtype.name} {buf.shape}")
        if copy:
            params[...] = self.params
            grads[...] = self.grads
        self.params, self.grads = params, grads
        self._views, self._grad_views = {}, {}
        offset = 0
        for name, shape in self.specs:
            n = int(np.prod(shape))
            self._views[name] = params[offset:offset + n].reshape(shape)
            self._grad_views[name] = grads[offset:offset + n].reshape(shape)
            offset += n

    def __getitem__(self, name):
        return self._views[name]

    def grad(self, name):
        """Gradient view of parameter `name`."""
        return self._grad_views[name]

    def named_parameters(self):
        """{name: view} in declaration order."""
        return dict(self._views)

    def named_grads(self):
        """{name: gradient view} in declaration order."""
        return dict(self._grad_views)

    def zero_grad(self):
        """Set every gradient to zero."""
        self.grads[...] = 0
