"""Composable blocks with forward + explicit backward, all parameters in one flat buffer per model.

`Module` is the parameter facade (names, slices, state dicts, RNG state, parameter version);
`Linear`, `Embedding`, `Dropout`, the recurrent layers and cells are Modules; the losses are small
forward/backward objects over `nn.loss_math`. A block built without `dtype` takes the dtype of
the model being built (`fastrnn.nn.module`: dtype adoption).
"""
from .module import Module  # noqa: I001  (first: the layers build on it)
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import GRU, LSTM, RNN, SimplifiedGRU
from .attention import Attention
from .dropout import Dropout
from .embedding import Embedding
from .grad import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .linear import Linear
from .recurrent import BLOCKS, MGU, block_names, build_block
from .losses import (MSE, BCEWithLogits, SoftmaxCrossEntropy, binary_cross_entropy_with_logits,
                     mse, softmax_cross_entropy)

__all__ = ["Module", "Linear", "Attention", "Embedding", "Dropout", "RNN", "GRU", "LSTM", "SimplifiedGRU", "MGU",
           "BLOCKS", "block_names", "build_block",
           "RNNCell", "GRUCell", "LSTMCell", "SoftmaxCrossEntropy", "BCEWithLogits", "MSE",
           "softmax_cross_entropy", "binary_cross_entropy_with_logits", "mse",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]
