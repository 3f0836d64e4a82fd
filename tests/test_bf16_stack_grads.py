"""bf16 (issue 22, Checks): the gradients of whole stacks -- several layers, both directions, lengths,
an LSTM projection -- against the float64 reference whose every product reads bf16-rounded operands
(tests/test_bf16.py checks the stacks' outputs and one layer's gradients that way; this adds dx and
every weight gradient of every layer and direction of a stack)."""
import numpy as np
import pytest
from test_bf16 import CELLS, _plain, _rel, bf16_reference, bf16_stack  # noqa: F401  (a fixture)

from fastrnn import reference


def _rev(a, lengths):
    """Each sequence's first n steps reversed, the rest zero (a backward direction's view)."""
    out = np.zeros_like(a)
    for b, n in enumerate(lengths):
        out[:n, b] = a[:n, b][::-1]
    return out


def _reference_grads(ref, layer, x, lengths, dy):
    """dx and {(layer, direction): gradients} of `layer`'s stack from `ref`, for loss sum(y * dy)."""
    fwd, bwd, kw = ref.CELLS[layer.cell]
    inp, caches = x.astype(np.float64), {}
    for k in range(layer.num_layers):
        outs = []
        for d in range(layer.D):
            args, lkw, _ = layer._weights(k, d)
            W_ih, W_hh, b_ih, b_hh = (v.astype(np.float64) for v in args)
            xs = _rev(inp, lengths) if d else inp
            if layer.cell == "lstm":
                W_hr = None if lkw["W_hr"] is None else lkw["W_hr"].astype(np.float64)
                y, _, caches[k, d] = fwd(xs, None, None, W_ih, W_hh, b_ih, b_hh, W_hr=W_hr, lengths=lengths)
            else:
                y, _, caches[k, d] = fwd(xs, None, W_ih, W_hh, b_ih, b_hh, lengths=lengths, **kw)
            outs.append(_rev(y, lengths) if d else y)
        inp = np.concatenate(outs, axis=2)
    dout, grads = dy.astype(np.float64), {}
    for k in reversed(range(layer.num_layers)):
        width, dinp = dout.shape[2] // layer.D, 0.0
        for d in range(layer.D):
            part = dout[:, :, d * width:(d + 1) * width]
            g = bwd(_rev(part, lengths) if d else part, None, caches[k, d])
            dinp = dinp + (_rev(g["x"], lengths) if d else g["x"])
            grads[k, d] = g
        dout = dinp
    return dout, grads


def _kernel_grads(layer, x, lengths, dy):
    layer.zero_grad()
    layer(x, lengths=lengths)
    dx, _ = layer.backward(dy)
    grads = {}
    for k in range(layer.num_layers):
        for d in range(layer.D):
            grads[k, d] = {n: np.array(v, np.float64) for n, v in layer._weights(k, d)[2].items()}
    return np.asarray(dx, np.float64), grads


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers, bidirectional", [(3, False), (2, True)])
def test_stack_gradients_track_the_bf16_reference(cell, layers, bidirectional, bf16_reference):  # noqa: F811
    rng = np.random.default_rng(7)
    layer, x, lengths = bf16_stack(cell, layers, bidirectional, rng)
    dy = rng.standard_normal((8, 4, layer.D * (12 if cell == "lstm" else 20))).astype(np.float32)
    dy[np.arange(8)[:, None] >= lengths[None, :]] = 0        # nothing past a sequence's end
    want = _reference_grads(bf16_reference, layer, x, lengths, dy)
    exact = _plain(bf16_reference, _reference_grads, reference, layer, x, lengths, dy)
    got = _kernel_grads(layer, x, lengths, dy)
    layer.precision = "float32"
    f32 = _kernel_grads(layer, x, lengths, dy)
    pairs = [("dx", got[0], want[0], exact[0], f32[0])]
    for key, g in got[1].items():
        pairs += [(f"{key} {n}", v, want[1][key][n].reshape(v.shape), exact[1][key][n].reshape(v.shape),
                   f32[1][key][n]) for n, v in g.items()]
    for name, g, w, e, f in pairs:
        effect = _rel(e, w)                    # how far bf16 products move it from float64
        assert effect > 1e-5, name             # bf16 changes every gradient here
        assert _rel(g, w) <= 0.01 * effect, (name, _rel(g, w), effect)
        assert _rel(f, w) > 0.3 * effect, name   # float32 products would fail
