"""The recurrent stack as ONNX `RNN`/`GRU`/`LSTM` operators (one per layer), and the export of a
bare layer. Gate reordering and attributes are described in the package docstring."""
import numpy as np

# row blocks of PyTorch's (G*H, .) weights in ONNX's gate order
GATE_ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}


def cell_family(layer):
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


def reorder(w, family, H):
    """PyTorch's gate blocks (rows of (G*H, .) or (G*H,)) in ONNX's order."""
    return np.concatenate([w[g * H:(g + 1) * H] for g in GATE_ORDER[family]])


def _onnx_weights(g, layer, family, k, first_input=None):
    """Initializer names (W, R, B, P) of layer k, all directions stacked as ONNX wants.

    first_input: an input-side weight (D=1, G*H, I') to use instead of weight_ih_l0 (the language
    model's identity after a W_ih row gather).
    """
    p, H = dict(layer.named_parameters()), layer.hidden_size
    sfx = [f"_l{k}", f"_l{k}_reverse"][:2 if layer.bidirectional else 1]
    W = [reorder(p["weight_ih" + s], family, H) for s in sfx]
    W = first_input if first_input is not None else np.stack(W)
    R = np.stack([reorder(p["weight_hh" + s], family, H) for s in sfx])
    B = P = ""
    if layer.bias:
        B = g.weight(f"B_l{k}", np.stack([np.concatenate([reorder(p["bias_ih" + s], family, H),
                                                          reorder(p["bias_hh" + s], family, H)])
                                          for s in sfx]))
    if getattr(layer, "peephole", False):        # ONNX's peephole order is i o f
        P = g.weight(f"P_l{k}", np.stack([np.concatenate([p[f"weight_c{gate}{s}"] for gate in "iof"])
                                          for s in sfx]))
    return g.weight(f"W_l{k}", W), g.weight(f"R_l{k}", R), B, P


def stack(g, layer, x, state_names, seq_lens, first_input=None):
    """Add one ONNX op per layer over x (T, B, I); returns (y (T, B, D*H), [[h_n parts], [c_n
    parts]]), one (D, B, H) part per layer."""
    family, attrs = cell_family(layer)
    L, D = layer.num_layers, 2 if layer.bidirectional else 1
    # the (L*D, B, H) initial states, split into each layer's (D, B, H)
    init = [g.op("Split", [s, g.ints("split", np.full(L, D))], n_out=L, axis=0)
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
            x = g.op("Squeeze", [y, g.ints("axes", [1])])
        else:
            t = g.op("Transpose", [y], perm=[0, 2, 1, 3])                        # (T, B, D, H)
            x = g.op("Reshape", [t, g.ints("shape", [0, 0, -1])])
    return x, finals


def state_inputs(g, layer, dims, initial_state):
    """Graph inputs h0 (and c0) when asked for; their names."""
    if not initial_state:
        return []
    shape = [layer.num_layers * (2 if layer.bidirectional else 1), dims["batch"], layer.hidden_size]
    names = ["h0", "c0"] if layer.cell == "lstm" else ["h0"]
    return [g.input(n, g.FLOAT, shape) for n in names]


def final_outputs(g, layer, dims, finals):
    """Concatenate each layer's final states into the h_n (and c_n) graph outputs."""
    shape = [layer.num_layers * (2 if layer.bidirectional else 1), dims["batch"], layer.hidden_size]
    for name, parts in zip(["h_n", "c_n"], finals):
        g.op("Concat", parts, out=name, axis=0)
        g.output(name, g.FLOAT, shape)


def lengths_input(g, dims, lengths):
    """The optional `lengths` (B,) int64 graph input; returns (its name, its int32 cast for the
    recurrent ops), or (None, None)."""
    if not lengths:
        return None, None
    name = g.input("lengths", g.INT64, [dims["batch"]])
    return name, g.op("Cast", [name], to=g.onnx.TensorProto.INT32)


def export_layer(g, layer, dims, lengths, initial_state):
    """x (T, B, I) (batch_first: (B, T, I)) [h0, c0, lengths] -> output, h_n [, c_n]."""
    cell_family(layer)                       # the clear errors before any graph is built
    T, B, D = dims["time"], dims["batch"], 2 if layer.bidirectional else 1
    if layer.batch_first:
        x = g.op("Transpose", [g.input("x", g.FLOAT, [B, T, layer.input_size])], perm=[1, 0, 2])
    else:
        x = g.input("x", g.FLOAT, [T, B, layer.input_size])
    states = state_inputs(g, layer, dims, initial_state)
    y, finals = stack(g, layer, x, states, lengths_input(g, dims, lengths)[1])
    width = D * layer.hidden_size
    if layer.batch_first:
        g.op("Transpose", [y], out="output", perm=[1, 0, 2])
        g.output("output", g.FLOAT, [B, T, width])
    else:
        g.op("Identity", [y], out="output")
        g.output("output", g.FLOAT, [T, B, width])
    final_outputs(g, layer, dims, finals)
