"""fastrnn: fast CPU recurrent networks (RNN, GRU, LSTM) with C kernels and a NumPy API.

Layers mirror torch.nn (`fastrnn.LSTM`, ...), models train and sample char/word language
models, `fastrnn.reference` holds the same maths in plain NumPy.
"""
__version__ = "0.1.0"

from . import optim, reference
from .data import StreamBatches, Vocab, pad_sequences, split
from .io import CheckpointError, load, save
from .layers import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, SimplifiedGRU
from .models import LanguageModel
from .sample import generate

__all__ = ["RNN", "GRU", "LSTM", "SimplifiedGRU", "RNNCell", "GRUCell", "LSTMCell", "LanguageModel", "Vocab",
           "StreamBatches", "split", "pad_sequences", "generate", "save", "load", "CheckpointError", "optim",
           "reference", "__version__"]
