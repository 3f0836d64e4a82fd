"""The native generation loop (`fastrnn._kernels.Generator`) over nn blocks: token ids -> an
`Embedding` (or the stack's one-hot input="ids") -> a recurrent stack -> a `Linear` head."""
import numpy as np

from .. import _kernels


def native_generator(rnn, head, embed=None, *, batch, max_len, **sampling):
    """A generation loop over the blocks' current weights for `batch` sequences of at most
    `max_len` tokens; `sampling` as `_kernels.Generator`'s keywords. It runs the same products as
    `rnn.step` + `head`, so greedy decoding gives the same tokens; the weights must not change
    while it is used. embed=None: the stack reads one-hot ids (its W_ih_l0 columns)."""
    layers = rnn.step_operands()
    if embed is not None:
        table = embed._views["weight"]                                  # (V, E) rows
    else:   # one-hot: token v's input projection is column v of W_ih_l0
        table = np.ascontiguousarray(layers[0][0].T)                     # (V, G*H)
        layers[0] = (None,) + layers[0][1:]
    from ..quant import head_matrix         # (lazy: fastrnn.quant builds on nn)
    return _kernels.Generator(rnn.cell, layers, table, head._views["weight"], head._views.get("bias"),
                              batch=batch, max_len=max_len, head_int8=head_matrix(head),
                              precision=rnn.precision, **sampling)
