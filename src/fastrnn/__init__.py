"""fastrnn: fast CPU recurrent networks (RNN, GRU, LSTM) with C kernels and a NumPy API.

Layers mirror torch.nn (`fastrnn.LSTM`, ...), models train and sample char/word language
models, `fastrnn.reference` holds the same maths in plain NumPy.
"""
from ._version import __version__  # noqa: I001  (first: io writes it into checkpoints)

from . import nn, optim, reference  # noqa: I001  (nn before layers: the layers are nn Modules)
from . import _aliases  # noqa: F401  (fastrnn.layers, .cells, ._buffers, .losses: alias for one release)
from .nn.buffers import release_buffers
from ._kernels import get_num_threads, set_num_threads
from ._kernels import check_amx_request as _check_amx_request
from .data import StreamBatches, Vocab, pad_sequences, split
from .export import export_onnx
from .io import CheckpointError, load, save
from .nn.cells import GRUCell, LSTMCell, RNNCell
from .nn.layers import GRU, LSTM, RNN, SimplifiedGRU
from .nn.recurrent import MGU
from .data_batches import PaddedBatches
from .models import (AttentionSeq2Seq, ConditionedGenerator, GridRNN, LanguageModel, OutputRecurrentNet, Seq2Seq,
                     SequenceClassifier, SequenceRegressor, SequenceTagger, StateFromCondition)
from .beam import beam_search
from .sample import generate
from .nn.grad import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .quant import quantize

__all__ = ["RNN", "GRU", "LSTM", "SimplifiedGRU", "MGU", "RNNCell", "GRUCell", "LSTMCell", "LanguageModel", "Vocab",
           "StreamBatches", "split", "pad_sequences", "generate", "beam_search", "save", "load", "CheckpointError",
           "export_onnx", "optim", "nn", "reference", "set_num_threads", "get_num_threads", "__version__",
           "release_buffers",
           "SequenceClassifier", "SequenceTagger", "SequenceRegressor", "PaddedBatches",
           "Seq2Seq", "AttentionSeq2Seq", "ConditionedGenerator", "StateFromCondition", "OutputRecurrentNet", "GridRNN",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "quantize"]

from .train import EarlyStopping, History, ModelCheckpoint, Trainer, fit  # noqa: E402  (the training API)
__all__ += ["Trainer", "fit", "History", "EarlyStopping", "ModelCheckpoint"]

_check_amx_request()  # FASTRNN_ISA=amx on a CPU without AMX: a clear error, not another path
