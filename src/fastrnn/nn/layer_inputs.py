"""What a recurrent layer accepts, checked once and put in the kernels' layout: its constructor
options, inputs (features, features already projected by W_ih, or token ids), states and lengths.

The "ids" input mode is the one-hot input trick of a language model without an embedding: a
one-hot x times W_ih^T is column `id` of W_ih, so the layer gathers those columns (no one-hot
matrix) and its backward adds each step's gradient to the column of its id. `_Recurrent`
(fastrnn.nn.layers) inherits these methods; they read only its sizes, dtype and `_weights`.
"""
import os

import numpy as np

from .. import _kernels, checks
from ..checks import to_numpy as _to_numpy

INPUT_MODES = ("features", "projected", "ids")


def check_options(input_size, hidden_size, num_layers, proj_size, dropout):
    """The sizes and dropout of a layer's constructor, or ValueError naming the argument."""
    for name, v, low in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                         ("num_layers", num_layers, 1), ("proj_size", proj_size, 0)):
        checks.integer(name, v, low, expected=f"an integer >= {low}")
    if proj_size and proj_size >= hidden_size:
        raise ValueError(f"proj_size: expected less than hidden_size={hidden_size}, got {proj_size}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")


def check_fits(count, dtype):
    """ValueError when `count` parameters (and their gradients) exceed this machine's memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    need = 2 * count * np.dtype(dtype).itemsize
    if need > memory:
        raise ValueError(f"num_layers, hidden_size: {count:,} parameters need {need / 2**30:,.1f} GiB "
                         f"with their gradients, more than this machine's {memory / 2**30:,.1f} GiB")


class LayerInputs:
    """Argument handling of `_Recurrent` (a mixin: needs G, hidden_size, input_size, P, D,
    num_layers, lstm, batch_first, bidirectional, dtype and `_weights`)."""

    def _input_mode(self, input, input_projected):
        """The input mode: "features" (x has input_size features), "projected" (x is already
        x @ W_ih_l0.T, G*H wide) or "ids" (integer token ids in [0, input_size), one-hot)."""
        if input is None:
            mode, name = ("projected", "input_projected") if input_projected else ("features", "input")
        else:
            mode, name = checks.choice("input", input, INPUT_MODES), f"input={input!r}"
            if input_projected and input != "projected":
                raise ValueError(f"input_projected, input: contradict each other (input={input!r})")
        if mode != "features" and self.bidirectional:
            raise ValueError(f"{name}: supported for unidirectional layers only")
        return mode

    def _as_input(self, name, x, width):
        """x as a time-major (T, B, width) C-contiguous array of our dtype, and whether it was unbatched."""
        x = checks.float_array(name, x)
        layout = "(B, T, F)" if self.batch_first else "(T, B, F)"
        if x.ndim not in (2, 3) or x.shape[-1] != width:
            raise ValueError(f"{name}: expected shape {layout} or unbatched (T, F) with F={width}, got {x.shape}")
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one time step, got {x.shape}")
        return np.ascontiguousarray(x, dtype=self.dtype), unbatched

    def _as_ids(self, name, ids):
        """Token ids (T, B) ((B, T) batch_first, (T,) unbatched) in [0, input_size) as time-major
        (T, B) C-contiguous ids, and whether they were unbatched."""
        ids = _to_numpy(ids)
        if ids.ndim not in (1, 2):
            raise ValueError(f"{name}: expected ids of shape {'(B, T)' if self.batch_first else '(T, B)'} "
                             f"or unbatched (T,), got {ids.shape}")
        ids = checks.ids(name, ids, self.input_size)
        unbatched = ids.ndim == 1
        ids = ids[:, None] if unbatched else ids.T if self.batch_first else ids
        if ids.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one time step, got {ids.shape}")
        return np.ascontiguousarray(ids), unbatched

    def _as_step_input(self, x_t, mode):
        """x_t of `step` as a (B, width) C-contiguous array of our dtype (ids: their W_ih columns),
        and whether it was unbatched."""
        if mode == "ids":
            ids = _to_numpy(x_t)
            if ids.ndim not in (0, 1):
                raise ValueError(f"x_t: expected ids of shape (B,) or one id, got {ids.shape}")
            ids = checks.ids("x_t", ids, self.input_size)
            return self._project_ids(ids.reshape(-1)), ids.ndim == 0
        width = self.G * self.hidden_size if mode == "projected" else self.input_size
        x_t = checks.float_array("x_t", x_t)
        if x_t.ndim not in (1, 2) or x_t.shape[-1] != width:
            raise ValueError(f"x_t: expected shape (B, {width}) or ({width},), got {x_t.shape}")
        return np.ascontiguousarray(x_t.reshape(-1, width), dtype=self.dtype), x_t.ndim == 1

    def _project_ids(self, ids):
        """ids (any shape) -> their one-hot inputs times W_ih_l0^T, ids.shape + (G*H,): columns of
        W_ih gathered. Gathering rows of a transposed copy is faster than strided columns when the
        copy is the smaller."""
        W = self._weights(0, 0)[0][0]                               # (G*H, input_size)
        if W.shape[1] <= ids.size:
            return _kernels.gather_rows(np.ascontiguousarray(W.T), ids)
        return _kernels.gather_rows(W, ids, columns=True)

    def _ids_backward(self, ids, dx):
        """Add the gradient dx (T, B, G*H) w.r.t. the gathered columns to W_ih_l0's gradient, at the
        column of each step's id (the backward of `_project_ids`)."""
        gW = self._weights(0, 0)[2]["W_ih"]
        dx2, flat_ids = dx.reshape(ids.size, -1), ids.reshape(-1)
        if gW.shape[1] <= flat_ids.size:
            rows = np.zeros(gW.shape[::-1], self.dtype)
            gW += _kernels.scatter_add_rows(rows, flat_ids, dx2).T
        else:
            _kernels.scatter_add_rows(gW, flat_ids, dx2, columns=True)

    def _from_time_major(self, y, unbatched):
        """y (T, B, F) back in the caller's layout: (T, F) unbatched, (B, T, F) batch_first."""
        if unbatched:
            return y[:, 0]
        return np.ascontiguousarray(y.transpose(1, 0, 2)) if self.batch_first else y

    def _as_state(self, name, s, B, width, unbatched):
        """A state (L*D, B, width) of our dtype, or None; unbatched states are (L*D, width)."""
        if s is None:
            return None
        s = _to_numpy(s)
        want = (self.num_layers * self.D,) + (() if unbatched else (B,)) + (width,)
        if s.shape != want:
            raise ValueError(f"{name}: expected shape {want}, got {s.shape}")
        if s.dtype.kind != "f":
            raise TypeError(f"{name}: expected a float array, got {s.dtype.name}")
        return np.ascontiguousarray(s.reshape(want[0], B, width), dtype=self.dtype)

    def _split_state(self, name, state):
        """(h, c) from a user's state argument: an LSTM's is a (h, c) tuple, the others' just h."""
        if not self.lstm:
            return state, None
        if state is None:
            return None, None
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"{name}: expected a tuple (h, c) for an LSTM, got {type(state).__name__}")
        return state

    @staticmethod
    def _lengths(lengths, T, B):
        """lengths as an int64 (B,) array with values in [0, T], or None (packed-sequence
        semantics allow an empty sequence here; models check their own, stricter, range)."""
        return None if lengths is None else checks.lengths(lengths, B, T, allow_empty=True)
