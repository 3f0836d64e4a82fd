"""THE registry of recurrent blocks, and the minimal gated unit.

`BLOCKS` maps the names that models' `cell=` arguments, `fastrnn train --cell`, export and the
benchmarks accept to (layer class, constructor options, kernel cell). Every cell of the C cell
table (csrc/cells.h) has an entry; adding a cell adds its row there and a line here.
"""
from .. import _kernels
from .layers import GRU, LSTM, RNN, SimplifiedGRU, _Recurrent


class MGU(_Recurrent):
    """Minimal gated unit (Zhou et al. 2016): one forget gate f does the work of the GRU's two.

    f = σ(W_if x + b_if + W_hf h + b_hf), n = tanh(W_in x + b_in + W_hn (f * h) + b_hn),
    h' = (1 - f) * h + f * n; weights (2H, ·) in gate order f n, named as torch's GRU's
    (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ...). Arguments as `GRU`.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None, seed=None, precision="float32"):
        super().__init__("mgu", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype, seed=seed, precision=precision)


#: name -> (layer class, constructor options, kernel cell of csrc/cells.h)
BLOCKS = {
    "lstm": (LSTM, {}, "lstm"),
    "gru": (GRU, {}, "gru"),
    "rnn": (RNN, {}, "rnn_tanh"),
    "rnn_relu": (RNN, {"nonlinearity": "relu"}, "rnn_relu"),
    "gru_reset_before": (GRU, {"reset_after": False}, "gru_reset_before"),
    "gru_simplified": (SimplifiedGRU, {}, "gru_simplified"),
    "mgu": (MGU, {}, "mgu"),
}
assert sorted(kernel for _, _, kernel in BLOCKS.values()) == sorted(_kernels.CELLS), \
    "every cell of the C table has a block, and every block a cell"


def block_names():
    """The names `build_block` (and every model's cell=) accepts, sorted."""
    return sorted(BLOCKS)


def build_block(name, input_size, hidden_size, **kw):
    """The recurrent layer `name` (see BLOCKS) with torch.nn.RNN-style arguments."""
    if name not in BLOCKS:
        raise ValueError(f"cell: expected one of {block_names()}, got {name!r}")
    cls, options, _ = BLOCKS[name]
    return cls(input_size, hidden_size, **options, **kw)


def gates(name):
    """Gates G of block `name` (its weights have G * hidden_size rows)."""
    return _kernels.gates(BLOCKS[name][2])
