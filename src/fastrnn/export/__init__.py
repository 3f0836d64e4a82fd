"""Export layers and models to ONNX, so they run where Python does not.

`export_onnx(model, path)` writes a standard ONNX graph (opset 14 or later) that ONNX Runtime
(and any other ONNX backend) runs with fastrnn's numbers. Each layer of a stack becomes one ONNX
`RNN`/`GRU`/`LSTM` operator; between layers the operator's (T, D, B, H) output is reshaped to the
(T, B, D*H) input of the next. What ONNX cannot express (an LSTM projection, the simplified GRU)
raises a ValueError naming the option. graph.py builds the graph, stack.py the recurrent stack
(and a bare layer), models.py the models' inputs, pooling and heads.

Weight mapping (ONNX computes X W^T + H R^T + Wb + Rb, like PyTorch, but orders gates differently):

    LSTM   PyTorch i f g o      ->  ONNX i o f c        peepholes P: [w_ci, w_co, w_cf] (order iof)
    GRU    PyTorch r z n        ->  ONNX z r h          reset_after=True  -> linear_before_reset=1
                                                        reset_after=False -> linear_before_reset=0
    RNN    one gate             ->  activations ["Tanh"] or ["Relu"] per direction

Graph inputs and outputs of a layer (T time, B batch, L layers, D directions, H hidden):
    x (T, B, I) (batch_first: (B, T, I)), float32
    h0 (L*D, B, H) and for an LSTM c0 (L*D, B, H)   with initial_state=True (else zeros)
    lengths (B,) int64                              with lengths=True: packed-sequence semantics
    -> output (T, B, D*H) (batch_first: (B, T, D*H)), h_n (L*D, B, H), c_n (LSTM)
A language model takes ids (B, T) int64 (and h0/c0, lengths) and returns logits (B, T, V),
h_n (and c_n).

The padded-batch models start from zero states (no h0/c0) and take ids (B, T) int64 (through
their embedding) or features (B, T, F) float32, whichever the model reads, plus lengths (B,)
int64 with lengths=True (else every sequence is T long):
    SequenceClassifier  -> logits (B, C), probabilities (B, C): softmax, or sigmoid (multi_label);
                           pooling "last" (each direction's final state: the forward one at the
                           last valid step), "mean" / "max" over the valid steps only
    SequenceTagger      -> logits (B, T, num_tags) at every step
    SequenceRegressor   -> predictions (B, T, O) (zero past each length), or (B, O) with
                           output="last"

With lengths, ONNX Runtime matches fastrnn (and torch's packed sequences): outputs past a
sequence's length are zero, h_n is the state at its last valid step and the reverse direction
starts there. One difference: for a length of 0 ONNX Runtime returns zero final states where
fastrnn returns the initial state, so give lengths >= 1 for identical results.

The graph always holds float32 weights (ONNX Runtime's CPU recurrent kernels are float32); a
float64 model is rounded to float32 on export.
"""
from __future__ import annotations

import numpy as np

from ..atomic import write_bytes
from .graph import Graph
from .models import export_classifier, export_language_model, export_regressor, export_tagger
from .stack import export_layer

MIN_OPSET, DEFAULT_OPSET = 14, 17


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs the 'onnx' package: pip install 'fastrnn[onnx]' "
                          "(or pip install onnx onnxruntime)") from None
    return onnx


def _exporter(model):
    """(the function writing `model`'s graph, whether the graph can have initial-state inputs:
    then the function takes initial_state) or a TypeError."""
    from ..models import LanguageModel, SequenceClassifier, SequenceRegressor, SequenceTagger
    if getattr(model, "onnx_export_error", None):       # a model that says why it has no graph
        raise ValueError(model.onnx_export_error)
    if isinstance(model, LanguageModel):
        return export_language_model, True
    for cls, fn in ((SequenceClassifier, export_classifier), (SequenceTagger, export_tagger),
                    (SequenceRegressor, export_regressor)):
        if isinstance(model, cls):
            return fn, False
    if all(hasattr(model, a) for a in ("cell", "num_layers", "bidirectional", "named_parameters")):
        return export_layer, True
    raise TypeError("model: expected a fastrnn RNN, GRU or LSTM layer, a LanguageModel, "
                    f"SequenceClassifier, SequenceTagger or SequenceRegressor, got {type(model).__name__}")


def export_onnx(model, path, *, opset: int = DEFAULT_OPSET, lengths: bool = False,
                initial_state: bool | None = None, batch_size: int | None = None,
                seq_len: int | None = None):
    """Write `model` (an RNN/GRU/LSTM layer, a LanguageModel, SequenceClassifier, SequenceTagger
    or SequenceRegressor) to `path` as an ONNX graph.

    opset: ONNX opset (>= 14). lengths=True adds a `lengths` (B,) int64 graph input for
    variable-length batches. initial_state: True adds `h0` (and `c0`) inputs, False starts from
    zeros; None (the default) is True for layers and language models, False for the other models
    (which always start from zeros: True raises). batch_size / seq_len: None keeps that axis
    dynamic (named "batch" / "time"), an integer fixes it. The file is written atomically.
    Returns the onnx.ModelProto. See the module docstring for the graph's inputs and outputs.

    Parameters
    ----------
    model : RNN, GRU, LSTM, LanguageModel, SequenceClassifier, SequenceTagger or SequenceRegressor
        The model to export.
    path : str or os.PathLike
        The .onnx file to write.
    opset : int, default DEFAULT_OPSET
        ONNX opset, >= 14.
    lengths : bool, default False
        Add a ``lengths`` (B,) int64 input for variable-length batches.
    initial_state : bool, optional
        Add ``h0`` (and ``c0``) inputs; None: True for layers and language models.
    batch_size, seq_len : int, optional
        Fix that axis; None keeps it dynamic.

    Returns
    -------
    onnx.ModelProto
        The graph written.

    Raises
    ------
    TypeError
        A model that cannot be exported.
    ValueError
        A bad option (named in the message).
    ImportError
        The ``onnx`` extra is not installed.
    """
    onnx = _import_onnx()
    if not isinstance(opset, (int, np.integer)) or isinstance(opset, bool) or opset < MIN_OPSET:
        raise ValueError(f"opset: expected an integer >= {MIN_OPSET}, got {opset!r}")
    if opset > onnx.defs.onnx_opset_version():
        raise ValueError(f"opset: this onnx package supports up to {onnx.defs.onnx_opset_version()}, "
                         f"got {opset}")
    dims = {}
    for name, value, symbol in (("batch_size", batch_size, "batch"), ("seq_len", seq_len, "time")):
        if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                                  or value < 1):
            raise ValueError(f"{name}: expected None (dynamic) or a positive integer, got {value!r}")
        dims[symbol] = symbol if value is None else int(value)
    if lengths not in (True, False):
        raise ValueError(f"lengths: expected True (a lengths input) or False, got {lengths!r}")
    build, has_state = _exporter(model)
    if initial_state is None:
        initial_state = has_state
    elif initial_state not in (True, False):
        raise ValueError(f"initial_state: expected None, True or False, got {initial_state!r}")
    elif initial_state and not has_state:
        raise ValueError(f"initial_state: a {type(model).__name__} always starts from zero states, "
                         "so its graph has no h0/c0 inputs; pass initial_state=None or False")
    g = Graph(onnx, opset)
    build(g, model, dims, bool(lengths), *([initial_state] if has_state else []))
    proto = g.model(f"fastrnn.{type(model).__name__}")
    onnx.checker.check_model(proto)
    write_bytes(path, proto.SerializeToString())    # atomic: a crash leaves the old file or the new
    return proto
