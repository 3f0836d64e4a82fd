"""Single-step cells with torch.nn.RNNCell/GRUCell/LSTMCell names (weight_ih, ...), each a
one-layer stack of `fastrnn.layers` run for one time step, with an explicit `backward`."""
from .layers import GRU, LSTM, RNN, _to_numpy
from .module import Module


class _Cell(Module):
    """A one-layer, one-step layer with torch.nn.*Cell names (weight_ih, ...) and a backward.

    The one-layer stack it runs is its child `layer`; the cell exports that child's parameters
    under torch's cell names (no "layer." prefix, no "_l0" suffix).
    """
    layer_class = None
    _inline_children = ("layer",)       # named_parameters(recurse=False) lists its weights

    def __init__(self, input_size, hidden_size, bias=True, dtype=None, seed=None, **options):
        # options: the layer's (nonlinearity, precision="float32"|"bf16", ...)
        layer = self.layer_class(input_size, hidden_size, bias=bias, dtype=dtype, seed=seed, **options)
        super().__init__(None if dtype is None else layer.dtype)
        self.layer = layer
        self.input_size, self.hidden_size = input_size, hidden_size

    @property
    def _layer(self):
        return self.layer

    def _export_name(self, name):
        return name[len("layer."):-len("_l0")] if name.startswith("layer.") else name

    @classmethod
    def from_torch(cls, module):
        """A cell with the configuration, weights and train/eval mode of a torch.nn.RNNCell/
        GRUCell/LSTMCell."""
        extra = {"nonlinearity": module.nonlinearity} if hasattr(module, "nonlinearity") else {}
        dtype = str(next(module.parameters()).dtype).replace("torch.", "")
        cell = cls(module.input_size, module.hidden_size, bias=module.bias, dtype=dtype, **extra)
        cell.load_state_dict(module.state_dict())
        return cell.train(module.training)

    def __call__(self, x, hx=None, train=None):
        """x (B, I) or (I,) -> h' (B, H) (LSTM: (h', c')); hx as torch's: h (LSTM: (h, c)) or None.

        The tape for `backward` is kept unless under `fastrnn.no_grad()` (or with the older
        train=False); a cell has no dropout, so its mode changes nothing.
        """
        lstm = self._layer.lstm
        if lstm and hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2
                                        or hx[0] is None or hx[1] is None):
            raise TypeError("hx: expected a tuple (h, c) of arrays for an LSTMCell")
        # one time step of the one-layer stack: add the time (and layer) axis torch's cells lack
        state = None if hx is None else ((_to_numpy(hx[0])[None], _to_numpy(hx[1])[None]) if lstm
                                         else _to_numpy(hx)[None])
        _, s = self._layer.forward(_to_numpy(x)[None], state, train=train)
        return (s[0][0], s[1][0]) if lstm else s[0]

    forward = __call__

    def backward(self, dh, dc=None):
        """Gradients of the last training call, given dh = dL/dh' (and for an LSTM dc = dL/dc',
        None for zeros): returns (dx, dh_prev) (LSTM: (dx, (dh_prev, dc_prev))) and accumulates
        the parameter gradients."""
        dh = _to_numpy(dh)
        lstm = self._layer.lstm
        dstate = (None, None if dc is None else _to_numpy(dc)[None]) if lstm else None
        dx, ds = self._layer.backward(dh[None], dstate)
        return (dx[0], (ds[0][0], ds[1][0])) if lstm else (dx[0], ds[0])

    def __repr__(self):
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, dtype={self.dtype.name!r})"


class RNNCell(_Cell):
    """One Elman RNN step, as torch.nn.RNNCell."""
    layer_class = RNN

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=None, seed=None,
                 precision="float32"):
        super().__init__(input_size, hidden_size, bias, dtype, seed, nonlinearity=nonlinearity,
                         precision=precision)


class GRUCell(_Cell):
    """One GRU step, as torch.nn.GRUCell."""
    layer_class = GRU


class LSTMCell(_Cell):
    """One LSTM step, as torch.nn.LSTMCell."""
    layer_class = LSTM
