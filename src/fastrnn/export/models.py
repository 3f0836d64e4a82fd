"""Whole models as ONNX graphs: the language model, and the padded-batch encoder models
(SequenceClassifier, SequenceTagger, SequenceRegressor) with their pooling and heads.

Every model here reads batch-first inputs, as its Python API does; dropout is the identity at
inference and so leaves no node.
"""
import numpy as np

from .stack import cell_family, final_outputs, lengths_input, reorder, stack, state_inputs


def export_language_model(g, model, dims, lengths, initial_state):
    """ids (B, T) -> Gather -> stack -> head MatMul + Add -> logits (B, T, V), h_n [, c_n]."""
    cfg, rnn, p = model.config, model.rnn, dict(model.named_parameters())
    family, _ = cell_family(rnn)
    V, H, T, B = cfg["vocab_size"], rnn.hidden_size, dims["time"], dims["batch"]
    ids = g.op("Transpose", [g.input("ids", g.INT64, [B, T])], perm=[1, 0])          # (T, B)
    first_input = None
    if cfg.get("embed_size"):
        table = g.weight("embed", p["embed.weight"])                                   # (V, E)
    else:
        # one-hot input: x @ W_ih^T is a row of W_ih^T. Small vocabularies gather rows of the
        # identity (the op then multiplies by W_ih: V*G*H per token); large ones gather W_ih^T's
        # rows in ONNX gate order and give the op an identity W (G*H squared per token)
        GH = p["rnn.weight_ih_l0"].shape[0]
        if V <= GH:
            table = g.weight("onehot", np.eye(V))
        else:
            table = g.weight("embed", reorder(p["rnn.weight_ih_l0"], family, H).T)   # (V, G*H)
            first_input = np.eye(GH)[None]
    x = g.op("Gather", [table, ids], axis=0)                                         # (T, B, E)
    states = state_inputs(g, rnn, dims, initial_state)
    y, finals = stack(g, rnn, x, states, lengths_input(g, dims, lengths)[1], first_input)
    logits = g.linear(y, p["head.weight"], p["head.bias"])                           # (T, B, V)
    g.op("Transpose", [logits], out="logits", perm=[1, 0, 2])
    g.output("logits", g.FLOAT, [B, T, V])
    final_outputs(g, rnn, dims, finals)


# ---- the encoder models -----------------------------------------------------------------------

class _Encoded:
    """What the heads of an encoder model read: the stack's output y (T, B, D*H) (zero past each
    length, as fastrnn's), the last layer's final state (D, B, H), and the valid-step mask."""

    def __init__(self, g, model, dims, lengths):
        self.g, self.model = g, model
        cfg, p, T, B = model.config, dict(model.named_parameters()), dims["time"], dims["batch"]
        cell_family(model.rnn)
        if cfg.get("vocab_size"):
            ids = g.op("Transpose", [g.input("ids", g.INT64, [B, T])], perm=[1, 0])
            self.x = g.op("Gather", [g.weight("embed", p["embed.weight"]), ids], axis=0)
        else:
            feats = g.input("features", g.FLOAT, [B, T, cfg["input_size"]])
            self.x = g.op("Transpose", [feats], perm=[1, 0, 2])                     # (T, B, F)
        self.lengths, seq_lens = lengths_input(g, dims, lengths)
        self.y, finals = stack(g, model.rnn, self.x, [], seq_lens)
        self.h_last = finals[0][-1]

    def steps(self):
        """T as an int64 scalar."""
        g = self.g
        return g.op("Gather", [g.op("Shape", [self.x]), g.ints("zero", 0)], axis=0)

    def valid(self):
        """(T, B, 1) bool: step t of sequence b is inside its length (t < lengths[b])."""
        g = self.g
        t = g.op("Range", [g.ints("zero", 0), self.steps(), g.ints("one", 1)])        # (T,)
        valid = g.op("Less", [g.op("Unsqueeze", [t, g.ints("axes", [1])]), self.lengths])
        return g.op("Unsqueeze", [valid, g.ints("axes", [2])])

    def last(self):
        """(B, D*H): each direction's final state side by side (forward's at the last valid step)."""
        g = self.g
        t = g.op("Transpose", [self.h_last], perm=[1, 0, 2])                          # (B, D, H)
        return g.op("Reshape", [t, g.ints("shape", [0, -1])])

    def pool(self, pooling):
        """(B, D*H) features pooled over the valid steps: "last", "mean" or "max"."""
        g, y = self.g, self.y
        if pooling == "last":
            return self.last()
        if pooling == "mean":                       # y is zero past each length: sum / length
            count = g.op("Cast", [self.steps()], to=g.FLOAT) if self.lengths is None else \
                g.op("Unsqueeze", [g.op("Cast", [self.lengths], to=g.FLOAT), g.ints("axes", [1])])
            return g.op("Div", [g.reduce("ReduceSum", y, [0]), count])
        if pooling == "max":
            if self.lengths is not None:            # padding must never win: -inf there
                y = g.op("Where", [self.valid(), y, g.weight("neg_inf", -np.inf)])
            return g.reduce("ReduceMax", y, [0])
        raise ValueError(f"pooling: {pooling!r} has no ONNX export")


def _head(g, model, x, out=None):
    p = dict(model.named_parameters())
    return g.linear(x, p["head.weight"], p["head.bias"], out=out)


def export_classifier(g, model, dims, lengths):
    """ids (B, T) or features (B, T, F) [, lengths] -> logits (B, C), probabilities (B, C)
    (softmax, or sigmoid per label with multi_label)."""
    cfg = model.config
    enc = _Encoded(g, model, dims, lengths)
    _head(g, model, enc.pool(cfg["pooling"]), out="logits")
    g.op("Sigmoid" if cfg["multi_label"] else "Softmax", ["logits"], out="probabilities",
         **({} if cfg["multi_label"] else dict(axis=-1)))
    for name in ("logits", "probabilities"):
        g.output(name, g.FLOAT, [dims["batch"], cfg["num_classes"]])


def export_tagger(g, model, dims, lengths):
    """ids (B, T) or features (B, T, F) [, lengths] -> logits (B, T, num_tags) at every step
    (past a length: the head of a zero state, as fastrnn's `logits`)."""
    enc = _Encoded(g, model, dims, lengths)
    g.op("Transpose", [_head(g, model, enc.y)], out="logits", perm=[1, 0, 2])
    g.output("logits", g.FLOAT, [dims["batch"], dims["time"], model.config["num_tags"]])


def export_regressor(g, model, dims, lengths):
    """features (B, T, F) [, lengths] -> predictions (B, T, O) (0 past each length) with
    output="sequence", or (B, O) from each sequence's last valid step with output="last"."""
    cfg, B = model.config, dims["batch"]
    enc = _Encoded(g, model, dims, lengths)
    if cfg["output"] == "last":
        _head(g, model, enc.last(), out="predictions")
        g.output("predictions", g.FLOAT, [B, cfg["output_size"]])
        return
    y = _head(g, model, enc.y)                                                        # (T, B, O)
    if enc.lengths is not None:
        y = g.op("Where", [enc.valid(), y, g.weight("zero", 0.0)])
    g.op("Transpose", [y], out="predictions", perm=[1, 0, 2])
    g.output("predictions", g.FLOAT, [B, dims["time"], cfg["output_size"]])
