"""fastrnn: fast CPU recurrent networks (RNN, GRU, LSTM) with C kernels and a NumPy API.

Layers mirror torch.nn (`fastrnn.LSTM`, ...), models train and sample char/word language
models, `fastrnn.reference` holds the same maths in plain NumPy.
"""
__version__ = "0.1.0"

from . import nn, optim, reference  # noqa: I001  (nn before layers: the layers are nn Modules)
from ._kernels import get_num_threads, set_num_threads
from .data import StreamBatches, Vocab, pad_sequences, split
from .export import export_onnx
from .io import CheckpointError, load, save
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import GRU, LSTM, RNN, SimplifiedGRU
from .data_batches import PaddedBatches
from .models import (AttentionSeq2Seq, ConditionedGenerator, GridRNN, LanguageModel, OutputRecurrentNet, Seq2Seq,
                     SequenceClassifier, SequenceRegressor, SequenceTagger, StateFromCondition)
from .sample import generate

__all__ = ["RNN", "GRU", "LSTM", "SimplifiedGRU", "RNNCell", "GRUCell", "LSTMCell", "LanguageModel", "Vocab",
           "StreamBatches", "split", "pad_sequences", "generate", "save", "load", "CheckpointError",
           "export_onnx", "optim", "nn", "reference", "set_num_threads", "get_num_threads", "__version__",
           "SequenceClassifier", "SequenceTagger", "SequenceRegressor", "PaddedBatches",
           "Seq2Seq", "AttentionSeq2Seq", "ConditionedGenerator", "StateFromCondition", "OutputRecurrentNet",
           "GridRNN"]
