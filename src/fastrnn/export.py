"""Export layers and language models to ONNX, so they run where Python does not.

`export_onnx(model, path)` writes a standard ONNX graph (opset 14 or later) that ONNX Runtime
(and any other ONNX backend) runs with fastrnn's numbers. Each layer of a stack becomes one ONNX
`RNN`/`GRU`/`LSTM` operator; between layers the operator's (T, D, B, H) output is reshaped to the
(T, B, D*H) input of the next. What ONNX cannot express (an LSTM projection, the simplified GRU)
raises a ValueError naming the option.

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

With lengths, ONNX Runtime matches fastrnn (and torch's packed sequences): outputs past a
sequence's length are zero, h_n is the state at its last valid step and the reverse direction
starts there. One difference: for a length of 0 ONNX Runtime returns zero final states where
fastrnn returns the initial state, so give lengths >= 1 for identical results.

The graph always holds float32 weights (ONNX Runtime's CPU recurrent kernels are float32); a
float64 model is rounded to float32 on export.
"""
import os
import tempfile

import numpy as np

MIN_OPSET, DEFAULT_OPSET = 14, 17

# row blocks of PyTorch's (G*H, .) weights in ONNX's gate order
_GATE_ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs the 'onnx' package: pip install 'fastrnn[onnx]' "
                          "(or pip install onnx onnxruntime)") from None
    return onnx


def export_onnx(model, path, *, opset=DEFAULT_OPSET, lengths=False, initial_state=True,
                batch_size=None, seq_len=None):
    """Write `model` (an RNN/GRU/LSTM layer or a LanguageModel) to `path` as an ONNX graph.

    opset: ONNX opset (>= 14). lengths=True adds a `lengths` (B,) int64 graph input for
    variable-length batches; initial_state=True adds `h0` (and `c0`) inputs, else the graph
    starts from zeros. batch_size / seq_len: None keeps that axis dynamic (named "batch" /
    "time"), an integer fixes it. The file is written atomically. Returns the onnx.ModelProto.
    See the module docstring for the graph's inputs and outputs.
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
    g = _Graph(onnx)
    if _is_language_model(model):
        _language_model(g, model, dims, lengths, initial_state)
    elif _is_layer(model):
        _layer(g, model, dims, lengths, initial_state)
    else:
        raise TypeError("model: expected a fastrnn RNN, GRU or LSTM layer or a LanguageModel, "
                        f"got {type(model).__name__}")
    proto = g.model(f"fastrnn.{type(model).__name__}", int(opset))
    onnx.checker.check_model(proto)
    _save_atomic(onnx, proto, path)
    return proto


def _is_layer(model):
    return all(hasattr(model, a) for a in ("cell", "num_layers", "bidirectional", "named_parameters"))


def _is_language_model(model):
    return hasattr(model, "rnn") and isinstance(getattr(model, "config", None), dict)


def _save_atomic(onnx, proto, path):
    """Write next to the destination, then rename: an existing file is never left half-written."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-",
                               suffix=".onnx")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(proto.SerializeToString())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class _Graph:
    """Collects nodes, initializers, inputs and outputs; hands out unique tensor names."""

    def __init__(self, onnx):
        self.onnx, self.h = onnx, onnx.helper
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def name(self, base):
        self._count += 1
        return f"{base}_{self._count}"

    def const(self, base, array):
        name = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, base, array):
        return self.const(base, np.ascontiguousarray(array, dtype=np.float32))

    def op(self, op_type, inputs, n_out=1, out=None, **attrs):
        """Add a node; returns its output name (a list of names when n_out > 1). `out` names a
        single output (a graph output)."""
        outs = [out] if out else [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.h.make_node(op_type, list(inputs), outs, name=self.name(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def input(self, name, elem, shape):
        self.inputs.append(self.h.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, name, elem, shape):
        self.outputs.append(self.h.make_tensor_value_info(name, elem, shape))

    def model(self, graph_name, opset):
        graph = self.h.make_graph(self.nodes, graph_name, self.inputs, self.outputs, self.inits)
        opsets = [self.h.make_opsetid("", opset)]
        # the oldest IR version that carries this opset, so older runtimes open the file too
        return self.h.make_model(graph, opset_imports=opsets, producer_name="fastrnn",
                                 ir_version=self.h.find_min_ir_version_for(opsets))


# ---- the recurrent stack ----------------------------------------------------------------------

def _cell_family(layer):
    """'lstm' / 'gru' / 'rnn' and the ONNX attributes for this layer, or a ValueError."""
    cell = layer.cell
    if cell == "gru_simplified":
        raise ValueError("model: the simplified GRU (SimplifiedGRU, no reset gate) has no ONNX "
                         "equivalent; export a GRU or LSTM instead")
    if getattr(layer, "proj_size", 0):
        raise ValueError(f"proj_size: ONNX's LSTM operator has no output projection, so an LSTM "
                         f"with proj_size={layer.proj_size} cannot be exported")
    D = 2 if layer.bidirectional else 1
    attrs = dict(hidden_size=layer.hidden_size, direction="bidirectional" if D == 2 else "forward")
    if cell in ("rnn_tanh", "rnn_relu"):
        return "rnn", dict(attrs, activations=["Relu" if cell == "rnn_relu" else "Tanh"] * D)
    if cell in ("gru", "gru_reset_before"):
        return "gru", dict(attrs, linear_before_reset=int(cell == "gru"))
    if cell == "lstm":
        return "lstm", attrs
    raise ValueError(f"model: cell {cell!r} has no ONNX export")


def _reorder(w, family, H):
    """PyTorch's gate blocks (rows of (G*H, .) or (G*H,)) in ONNX's order."""
    return np.concatenate([w[g * H:(g + 1) * H] for g in _GATE_ORDER[family]])


def _onnx_weights(g, layer, family, k, first_input=None):
    """Initializer names (W, R, B, P) of layer k, all directions stacked as ONNX wants.

    first_input: an input-side weight (D=1, G*H, I') to use instead of weight_ih_l0 (the language
    model's identity after a W_ih row gather).
    """
    p, H = layer.named_parameters(), layer.hidden_size
    sfx = [f"_l{k}", f"_l{k}_reverse"][:2 if layer.bidirectional else 1]
    W = [_reorder(p["weight_ih" + s], family, H) for s in sfx]
    W = first_input if first_input is not None else np.stack(W)
    R = np.stack([_reorder(p["weight_hh" + s], family, H) for s in sfx])
    B = P = ""
    if layer.bias:
        B = g.weight(f"B_l{k}", np.stack([np.concatenate([_reorder(p["bias_ih" + s], family, H),
                                                          _reorder(p["bias_hh" + s], family, H)])
                                          for s in sfx]))
    if getattr(layer, "peephole", False):        # ONNX's peephole order is i o f
        P = g.weight(f"P_l{k}", np.stack([np.concatenate([p[f"weight_c{gate}{s}"] for gate in "iof"])
                                          for s in sfx]))
    return g.weight(f"W_l{k}", W), g.weight(f"R_l{k}", R), B, P


def _stack(g, layer, x, state_names, seq_lens, first_input=None):
    """Add one ONNX op per layer over x (T, B, I); returns (y (T, B, D*H), [h_n, c_n parts])."""
    family, attrs = _cell_family(layer)
    L, D = layer.num_layers, 2 if layer.bidirectional else 1
    # the (L*D, B, H) initial states, split into each layer's (D, B, H)
    init = [g.op("Split", [s, g.const("split", np.full(L, D, np.int64))], n_out=L, axis=0)
            if L > 1 else [s] for s in state_names]
    finals = [[] for _ in range(2 if family == "lstm" else 1)]
    for k in range(L):
        W, R, B, P = _onnx_weights(g, layer, family, k, first_input if k == 0 else None)
        ins = [x, W, R, B, seq_lens or ""] + [parts[k] for parts in init]
        if not init:
            ins += [""] * (2 if family == "lstm" else 1)
        if family == "lstm":
            ins.append(P)
        while ins[-1] == "":                      # trailing optional inputs are simply left out
            ins.pop()
        y, *states = g.op(family.upper(), ins, n_out=1 + len(finals), **attrs)   # y (T, D, B, H)
        for parts, s in zip(finals, states):
            parts.append(s)
        if D == 1:
            x = g.op("Squeeze", [y, g.const("axes", np.array([1], np.int64))])
        else:
            t = g.op("Transpose", [y], perm=[0, 2, 1, 3])                        # (T, B, D, H)
            x = g.op("Reshape", [t, g.const("shape", np.array([0, 0, -1], np.int64))])
    return x, finals


def _state_io(g, layer, dims, initial_state):
    """Graph inputs h0 (and c0) when asked for; their names."""
    if not initial_state:
        return []
    shape = [layer.num_layers * (2 if layer.bidirectional else 1), dims["batch"], layer.hidden_size]
    names = ["h0", "c0"] if layer.cell == "lstm" else ["h0"]
    return [g.input(n, g.onnx.TensorProto.FLOAT, shape) for n in names]


def _finish(g, layer, dims, finals):
    """Concatenate each layer's final states into the h_n (and c_n) graph outputs."""
    shape = [layer.num_layers * (2 if layer.bidirectional else 1), dims["batch"], layer.hidden_size]
    for name, parts in zip(["h_n", "c_n"], finals):
        g.op("Concat", parts, out=name, axis=0)
        g.output(name, g.onnx.TensorProto.FLOAT, shape)


def _lengths_input(g, dims, lengths):
    """The optional `lengths` (B,) int64 graph input, cast to the int32 ONNX's ops take."""
    if not lengths:
        return None
    g.input("lengths", g.onnx.TensorProto.INT64, [dims["batch"]])
    return g.op("Cast", ["lengths"], to=g.onnx.TensorProto.INT32)


def _layer(g, layer, dims, lengths, initial_state):
    _cell_family(layer)                      # the clear errors before any graph is built
    FLOAT = g.onnx.TensorProto.FLOAT
    T, B, D = dims["time"], dims["batch"], 2 if layer.bidirectional else 1
    if layer.batch_first:
        x = g.op("Transpose", [g.input("x", FLOAT, [B, T, layer.input_size])], perm=[1, 0, 2])
    else:
        x = g.input("x", FLOAT, [T, B, layer.input_size])
    states = _state_io(g, layer, dims, initial_state)
    y, finals = _stack(g, layer, x, states, _lengths_input(g, dims, lengths))
    width = D * layer.hidden_size
    if layer.batch_first:
        g.op("Transpose", [y], out="output", perm=[1, 0, 2])
        g.output("output", FLOAT, [B, T, width])
    else:
        g.op("Identity", [y], out="output")
        g.output("output", FLOAT, [T, B, width])
    _finish(g, layer, dims, finals)


def _language_model(g, model, dims, lengths, initial_state):
    """ids (B, T) -> Gather -> stack -> head MatMul + Add -> logits (B, T, V)."""
    cfg, rnn, p = model.config, model.rnn, model.named_parameters()
    family, _ = _cell_family(rnn)
    FLOAT, V, H = g.onnx.TensorProto.FLOAT, cfg["vocab_size"], rnn.hidden_size
    T, B = dims["time"], dims["batch"]
    ids = g.op("Transpose", [g.input("ids", g.onnx.TensorProto.INT64, [B, T])], perm=[1, 0])   # (T, B)
    first_input = None
    if cfg.get("embed_size"):
        table = g.weight("embed", p["embed.weight"])                                         # (V, E)
    else:
        # one-hot input: x @ W_ih^T is a row of W_ih^T. Small vocabularies gather rows of the
        # identity (the op then multiplies by W_ih: V*G*H per token); large ones gather W_ih^T's
        # rows in ONNX gate order and give the op an identity W (G*H squared per token)
        GH = p["rnn.weight_ih_l0"].shape[0]
        if V <= GH:
            table = g.weight("onehot", np.eye(V))
        else:
            table = g.weight("embed", _reorder(p["rnn.weight_ih_l0"], family, H).T)        # (V, G*H)
            first_input = np.eye(GH)[None]
    x = g.op("Gather", [table, ids], axis=0)                                               # (T, B, E)
    states = _state_io(g, rnn, dims, initial_state)
    y, finals = _stack(g, rnn, x, states, _lengths_input(g, dims, lengths), first_input)  # (T, B, H)
    logits = g.op("Add", [g.op("MatMul", [y, g.weight("head_wT", p["head.weight"].T)]),
                          g.weight("head_b", p["head.bias"])])                              # (T, B, V)
    g.op("Transpose", [logits], out="logits", perm=[1, 0, 2])
    g.output("logits", FLOAT, [B, T, V])
    _finish(g, rnn, dims, finals)
