"""char-rnn's initialisation, for any model: every parameter uniform in [-R, R], then the forget
gates' input biases of every LSTM set to 1 (`fastrnn train --init-range R`).

char-rnn (model_utils / train.lua) draws every weight and bias from U(-0.08, 0.08) and then fills
the forget-gate block of each layer's input-to-hidden bias with 1, so that the cells start out
remembering; the hidden-to-hidden bias keeps its uniform draw. fastrnn's LSTMs hold their gates
in PyTorch's order (input, forget, cell, output), so the forget block is the second quarter of
`bias_ih_l{k}` (and of `bias_ih_l{k}_reverse` in a bidirectional layer).
"""
import re

import numpy as np

from ..params import is_real

_INPUT_BIAS = re.compile(r"bias_ih_l\d+(_reverse)?")


def init_uniform(model, init_range, seed=None, forget_bias=1.0):
    """Draw every parameter of `model` from U(-init_range, init_range) with one draw over the flat
    buffer (numpy's default_rng(seed)), then set the LSTM forget-gate input biases to
    `forget_bias` (None: leave them uniform). Returns the model."""
    from ..nn.layers import LSTM
    if not is_real(init_range) or not 0 < init_range < float("inf"):
        raise ValueError(f"init_range: expected a positive finite number, got {init_range!r}")
    if forget_bias is not None and (not is_real(forget_bias) or not np.isfinite(forget_bias)):
        raise ValueError(f"forget_bias: expected None or a finite number, got {forget_bias!r}")
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise ValueError(f"seed: expected None or a non-negative integer, got {seed!r} ({e})") from None
    model.params[:] = rng.uniform(-init_range, init_range, model.params.size)
    if forget_bias is not None:
        for _, module in model.modules():
            if not isinstance(module, LSTM):
                continue
            for name, p in module.named_parameters():
                if _INPUT_BIAS.fullmatch(name):
                    H = p.size // 4
                    p[H:2 * H] = forget_bias
    model.invalidate()          # weight caches are keyed on the parameters' version
    return model
