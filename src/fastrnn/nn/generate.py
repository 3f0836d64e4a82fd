"""The native generation loop (`fastrnn._kernels.Generator`) over nn blocks: token ids -> an
`Embedding` (or the stack's one-hot input="ids") -> a recurrent stack -> a `Linear` head."""
import numpy as np

from .. import _kernels, checks


def native_generator(rnn, head, embed=None, *, batch, max_len, **sampling):
    """A generation loop over the blocks' current weights for `batch` sequences of at most
    `max_len` tokens; `sampling` as `_kernels.Generator`'s keywords. It runs the same products as
    `rnn.step` + `head` (in their precisions), so greedy decoding gives the same tokens; the
    weights must not change while it is used. embed=None: the stack reads one-hot ids (its
    W_ih_l0 columns)."""
    layers = rnn.step_operands()
    if embed is not None:
        table = embed._views["weight"]                                  # (V, E) rows
    else:   # one-hot: token v's input projection is column v of W_ih_l0
        table = np.ascontiguousarray(layers[0][0].T)                     # (V, G*H)
        layers[0] = (None,) + layers[0][1:]
    from ..quant import head_matrix         # (lazy: fastrnn.quant builds on nn)
    return _kernels.Generator(rnn.cell, layers, table, head._views["weight"], head._views.get("bias"),
                              batch=batch, max_len=max_len, head_int8=head_matrix(head),
                              precision=rnn.precision, head_precision=head.precision, **sampling)


class NativeStep:
    """`LanguageModel.step` as one native call: a cached `native_generator` (argmax, max_len 1)
    over the model's blocks steps every layer and the head for B rows at once, with no per-call
    weight checks, pack look-ups or team hand-offs per layer. The same products in the same
    order as `rnn.step` + `head`, so the same bits. It is rebuilt when the weights may have
    changed under it (a new parameter version, a rebind, a public view handed out since, a
    precision switch), and it declines (returns None: the caller takes the layer path) while a
    public view of the weights is alive, for int8 layers, and for a quantized head. bf16 layers
    run it too (the generator's per-step path: the same frnn_forward calls as `rnn.step`). The
    ids' range, the state in and out and the step are one call (`Generator.step_state`)."""

    def __init__(self):
        self.key, self.gen = None, None

    def __reduce__(self):           # pickle / deepcopy: an empty cache (a Generator holds pointers)
        return NativeStep, ()

    def __call__(self, rnn, head, embed, ids, state):
        """(logits (B, V), state) for integer ids (B,) (a 1-D integer ndarray: its range is checked
        here, or before the state when the state needs converting), or None when the layer path
        must run (the caller then checks the ids itself)."""
        storage = rnn._storage
        if (rnn.__dict__.get("_int8") is not None or head.__dict__.get("_int8") is not None
                or storage.views_alive() or not ids.shape[0]):
            return None
        precision = rnn.precision
        if precision not in ("float32", "bf16"):
            return None
        B = ids.shape[0]
        key = (B, storage.version, storage.exposures, id(storage.base), rnn.dtype, precision, head.precision)
        if key != self.key or self.gen is None:
            self.gen = native_generator(rnn, head, embed, batch=B, max_len=1, argmax=True)
            self.key = key
        h, c = rnn._split_state("state", state)
        lstm, dt, L, H, P = rnn.lstm, rnn.dtype, rnn.num_layers, rnn.hidden_size, rnn.P
        if not (_plain(h, dt, (L, B, P)) and (not lstm or _plain(c, dt, (L, B, H)))):
            # a state to convert (a tensor, another dtype, a view) or to refuse: the layers' own
            # checks and messages, after the ids' (as the layer path orders them)
            ids = checks.ids("ids", ids, head._views["weight"].shape[0], ndim=1)
            h = rnn._as_state("state h", h, B, P, False)
            c = rnn._as_state("state c", c, B, H, False) if lstm else None
        logits, h_new, c_new = self.gen.step_state(ids, h, c)
        return logits, ((h_new, c_new) if lstm else h_new)


def _plain(s, dtype, shape):
    """None, or a C-contiguous ndarray of `dtype` and `shape`: step_state takes it as it is."""
    return s is None or (type(s) is np.ndarray and s.shape == shape and s.dtype == dtype
                         and s.flags.c_contiguous)
