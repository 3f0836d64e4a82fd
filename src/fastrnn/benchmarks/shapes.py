"""One training-iteration workload per model shape (issue 11's models), fastrnn vs the same model
written in PyTorch.

Each `Shape` builds the fastrnn model and a batch at given sizes (`make`), the torch modules at
the model's dotted parameter names (`torch_parts`: the weights are then copied name by name, so
both sides start from the same weights) and the torch loss of a batch (`torch_loss`), computed as
fastrnn's model computes it: same pooling, masks, teacher forcing and mean. One iteration is
zero_grad, forward, backward and an Adam step on both sides. tests/test_bench_cli.py checks in
float64 that the two losses and gradients agree, which is what makes the timings comparable.

fastrnn.reference (single-layer NumPy kernels) has no whole-model counterpart: these workloads
compare fastrnn with torch only.
"""
from dataclasses import dataclass

import numpy as np

from .. import optim
from ..models import (ConditionedGenerator, GridRNN, OutputRecurrentNet, Seq2Seq, SequenceClassifier,
                      SequenceRegressor, SequenceTagger)
from .runners import torch


@dataclass
class Shape:
    """How to build, in both libraries, one model shape's training iteration; see the module doc."""
    title: str          # the workload name's prefix
    make: callable      # (dtype, **sizes) -> (fastrnn model, batch as the model's forward takes it)
    torch_parts: callable   # (model) -> {dotted name: torch module}
    torch_loss: callable    # (torch container, batch of tensors) -> scalar loss tensor
    flops: callable     # (**sizes) -> FLOPs of one iteration: recurrent layers over the valid
                        # steps and the per-step heads, backward counted as twice forward
    sizes: dict         # the benchmark's sizes


def _rng():
    return np.random.default_rng(0)


def _lengths(B, T, seed=1):
    """Ragged lengths in [T/2, T], the longest exactly T (their own generator, so `flops` can
    count the valid steps without building a batch)."""
    lengths = np.random.default_rng(seed).integers(max(1, T // 2), T + 1, B)
    lengths[0] = T
    return lengths


def _rnn_flops(tokens, I, H, G=4, directions=1):
    """Forward + backward (3x forward) FLOPs of one recurrent layer over `tokens` valid steps."""
    return 3 * 2 * tokens * (I + H) * G * H * directions


def _dense_flops(rows, n_in, n_out):
    return 3 * 2 * rows * n_in * n_out


# ---- the shapes ---------------------------------------------------------------------------------

def _classifier(dtype, V, E, H, C, B, T):
    rng = _rng()
    model = SequenceClassifier(C, vocab_size=V, embed_size=E, hidden_size=H, bidirectional=True,
                               pooling="mean", dtype=dtype, seed=0)
    return model, (rng.integers(0, V, (B, T)), rng.integers(0, C, B), _lengths(B, T))


def _tagger(dtype, V, E, H, K, B, T):
    rng = _rng()
    model = SequenceTagger(K, vocab_size=V, embed_size=E, hidden_size=H, dtype=dtype, seed=0)
    return model, (rng.integers(0, V, (B, T)), rng.integers(0, K, (B, T)), _lengths(B, T))


def _regressor(dtype, F, H, B, T):
    rng = _rng()
    x = rng.standard_normal((B, T + 1, F)).astype(dtype)
    return SequenceRegressor(F, hidden_size=H, dtype=dtype, seed=0), (x[:, :-1], x[:, 1:])


def _seq2seq(dtype, V, E, H, B, T):
    rng = _rng()
    model = Seq2Seq(V, V, embed_size=E, hidden_size=H, dtype=dtype, seed=0)
    return model, (rng.integers(2, V, (B, T)), _lengths(B, T), rng.integers(2, V, (B, T)),
                   _lengths(B, T, seed=2))


def _conditioned(dtype, V, C, E, H, B, T):
    rng = _rng()
    model = ConditionedGenerator(V, num_classes=C, hidden_size=H, embed_size=E, dtype=dtype, seed=0)
    return model, (rng.integers(0, C, B), rng.integers(0, V, (B, T)))


def _output_recurrent(dtype, I, O, H, B, T):
    rng = _rng()
    model = OutputRecurrentNet(I, O, hidden_size=H, dtype=dtype, seed=0)
    return model, (rng.standard_normal((B, T, I)).astype(dtype), rng.standard_normal((B, T, O)).astype(dtype))


def _grid(dtype, N, side, C, K, classes):
    rng = _rng()
    model = GridRNN(C, classes, hidden_size=K, cell="gru", dtype=dtype, seed=0)
    return model, (rng.standard_normal((N, side, side, C)).astype(dtype), rng.integers(0, classes, N))


# ---- their torch losses (fastrnn's computation, step by step) ---------------------------------

def _packed_rnn(rnn, x, lengths, state=None):
    """torch's packed-sequence run of `rnn` over x (T, B, I): outputs zero past each length."""
    nn = torch.nn.utils.rnn
    out, state = rnn(nn.pack_padded_sequence(x, lengths, enforce_sorted=False), state)
    return nn.pad_packed_sequence(out, total_length=x.shape[0])[0], state


def _valid(lengths, T):
    return torch.arange(T)[:, None] < lengths[None, :]                           # (T, B)


def _classifier_loss(m, batch):
    ids, labels, lengths = batch
    out, _ = _packed_rnn(m.rnn, m.embed(ids.T), lengths)
    pooled = out.sum(0) / lengths[:, None].to(out.dtype)                         # mean over valid steps
    return torch.nn.functional.cross_entropy(m.head(pooled), labels)


def _tagger_loss(m, batch):
    ids, tags, lengths = batch
    out, _ = _packed_rnn(m.rnn, m.embed(ids.T), lengths)
    valid = _valid(lengths, ids.shape[1])
    return torch.nn.functional.cross_entropy(m.head(out)[valid], tags.T[valid])


def _regressor_loss(m, batch):
    x, y = batch
    out, _ = m.rnn(x.transpose(0, 1))
    return torch.nn.functional.mse_loss(m.head(out), y.transpose(0, 1))


def _seq2seq_loss(m, batch, bos=0, eos=1):
    src, src_lengths, tgt, tgt_lengths = batch
    _, state = _packed_rnn(m.encoder, m.src_embed(src.T), src_lengths)        # at each last valid step
    B, Ty = tgt.shape
    dec_in = torch.cat([torch.full((1, B), bos), tgt.T])                       # [<bos>, y_1 .. y_T]
    dec_out = torch.cat([tgt.T, torch.full((1, B), eos)])
    dec_out[tgt_lengths, torch.arange(B)] = eos                                # [y_1 .. y_n, <eos>, ..]
    out, _ = m.decoder(m.tgt_embed(dec_in), state)        # padded steps are masked out of the loss
    valid = _valid(tgt_lengths + 1, Ty + 1)
    return torch.nn.functional.cross_entropy(m.head(out)[valid], dec_out[valid])


def _conditioned_loss(m, batch, bos=0):
    condition, tokens = batch
    s = torch.tanh(m.condition.proj(condition))                                # (B, 2*L*H)
    B, L, H = tokens.shape[0], m.lm.rnn.num_layers, m.lm.rnn.hidden_size
    h0, c0 = s.reshape(B, 2, L, H).permute(1, 2, 0, 3).contiguous()
    inputs = torch.cat([torch.full((B, 1), bos), tokens[:, :-1]], 1)
    out, _ = m.lm.rnn(m.lm.embed(inputs.T), (h0, c0))
    logits = m.lm.head(out)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.T.reshape(-1))


def _output_recurrent_loss(m, batch):
    x, y = batch
    prev = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], 1)               # teacher forcing
    o = m.head(torch.tanh(m.in_proj(x) + m.out_proj(prev)))
    return torch.nn.functional.mse_loss(o, y)


def _grid_loss(m, batch):
    images, labels = batch
    N, Hh, W, C = images.shape
    rows, _ = m.rows(images.permute(2, 0, 1, 3).reshape(W, N * Hh, C))
    cols, _ = m.cols(images.permute(1, 0, 2, 3).reshape(Hh, N * W, C))
    K2 = rows.shape[-1]
    f = torch.cat([rows.reshape(W, N, Hh, K2).permute(1, 2, 0, 3),
                   cols.reshape(Hh, N, W, K2).permute(1, 0, 2, 3)], -1)
    return torch.nn.functional.cross_entropy(m.head(f.reshape(N, Hh * W, 2 * K2).mean(1)), labels)


def _encoder_parts(model, head_in, head_out):
    c, nn = model.config, torch.nn
    parts = {"rnn": nn.LSTM(c["embed_size"] if c.get("vocab_size") else c["input_size"], c["hidden_size"],
                            num_layers=c["num_layers"], bidirectional=c.get("bidirectional", False)),
             "head": nn.Linear(head_in, head_out)}
    if c.get("vocab_size"):
        parts["embed"] = nn.Embedding(c["vocab_size"], c["embed_size"])
    return parts


def _seq2seq_parts(model):
    c, nn = model.config, torch.nn
    return {"src_embed": nn.Embedding(c["src_vocab"], c["embed_size"]),
            "encoder": nn.LSTM(c["embed_size"], c["hidden_size"]),
            "tgt_embed": nn.Embedding(c["tgt_vocab"], c["embed_size"]),
            "decoder": nn.LSTM(c["embed_size"], c["hidden_size"]),
            "head": nn.Linear(c["hidden_size"], c["tgt_vocab"])}


def _conditioned_parts(model):
    c, nn = model.config, torch.nn
    L, H = c["num_layers"], c["hidden_size"]
    return {"condition.proj": nn.Embedding(c["num_classes"], 2 * L * H),
            "lm.embed": nn.Embedding(c["vocab_size"], c["embed_size"]),
            "lm.rnn": nn.LSTM(c["embed_size"], H, num_layers=L),
            "lm.head": nn.Linear(c["hidden_size"], c["vocab_size"])}


def _output_recurrent_parts(model):
    c, nn = model.config, torch.nn
    I, O, H = c["input_size"], c["output_size"], c["hidden_size"]
    return {"in_proj": nn.Linear(I, H), "out_proj": nn.Linear(O, H, bias=False), "head": nn.Linear(H, O)}


def _grid_parts(model):
    c, nn = model.config, torch.nn
    C, K = c["in_channels"], c["hidden_size"]
    return {"rows": nn.GRU(C, K, bidirectional=True), "cols": nn.GRU(C, K, bidirectional=True),
            "head": nn.Linear(4 * K, c["num_classes"])}


SHAPES = {
    "classifier": Shape(
        "classifier train iteration bi-LSTM mean-pool", _classifier,
        lambda m: _encoder_parts(m, 2 * m.config["hidden_size"], m.config["num_classes"]), _classifier_loss,
        lambda V, E, H, C, B, T: _rnn_flops(_lengths(B, T).sum(), E, H, directions=2),
        dict(V=10000, E=128, H=128, C=5, B=32, T=100)),
    "tagger": Shape(
        "tagger train iteration bi-LSTM", _tagger,
        lambda m: _encoder_parts(m, 2 * m.config["hidden_size"], m.config["num_tags"]), _tagger_loss,
        lambda V, E, H, K, B, T: _rnn_flops(_lengths(B, T).sum(), E, H, directions=2)
        + _dense_flops(B * T, 2 * H, K),
        dict(V=10000, E=128, H=128, K=17, B=32, T=50)),
    "regressor": Shape(
        "regressor train iteration LSTM", _regressor,
        lambda m: _encoder_parts(m, m.config["hidden_size"], m.config["output_size"]), _regressor_loss,
        lambda F, H, B, T: _rnn_flops(B * T, F, H) + _dense_flops(B * T, H, F),
        dict(F=8, H=128, B=64, T=100)),
    "seq2seq": Shape(
        "seq2seq teacher-forced train iteration LSTM", _seq2seq, _seq2seq_parts, _seq2seq_loss,
        lambda V, E, H, B, T: _rnn_flops(_lengths(B, T).sum(), E, H)
        + _rnn_flops(_lengths(B, T, seed=2).sum() + B, E, H)
        + _dense_flops(B * (T + 1), H, V),
        dict(V=2000, E=128, H=256, B=32, T=30)),
    "conditioned": Shape(
        "conditioned generator train iteration LSTM", _conditioned, _conditioned_parts, _conditioned_loss,
        lambda V, C, E, H, B, T: _rnn_flops(B * T, E, H) + _dense_flops(B * T, H, V),
        dict(V=65, C=10, E=32, H=256, B=32, T=100)),
    "output_recurrent": Shape(
        "output->hidden net teacher-forced train iteration", _output_recurrent, _output_recurrent_parts,
        _output_recurrent_loss,
        lambda I, O, H, B, T: _dense_flops(B * T, I, H) + 2 * _dense_flops(B * T, O, H),
        dict(I=16, O=16, H=256, B=64, T=100)),
    "grid": Shape(
        "GridRNN train iteration GRU", _grid, _grid_parts, _grid_loss,
        lambda N, side, C, K, classes: 2 * _rnn_flops(N * side * side, C, K, G=3, directions=2),
        dict(N=64, side=28, C=1, K=32, classes=10)),
}


def torch_model(shape, model):
    """A torch container with `shape.torch_parts(model)` at their dotted names and model's weights
    copied in (same dtype); ValueError if the parameter names differ."""
    root = torch.nn.Module()
    for dotted, module in shape.torch_parts(model).items():
        *path, leaf = dotted.split(".")
        node = root
        for part in path:
            if not hasattr(node, part):
                setattr(node, part, torch.nn.Module())
            node = getattr(node, part)
        setattr(node, leaf, module)
    ours, theirs = dict(model.named_parameters()), dict(root.named_parameters())
    if set(ours) != set(theirs):
        raise ValueError(f"torch_parts: parameter names differ: {sorted(set(ours) ^ set(theirs))}")
    root.to(torch.float64 if model.dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for name, p in theirs.items():
            p.copy_(torch.from_numpy(np.ascontiguousarray(ours[name])))
    return root


def torch_batch(batch):
    """The batch's arrays as tensors (sharing memory)."""
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a for a in batch)


def train(name, dtype="float32", **sizes):
    """{impl: builder} of one training iteration (zero_grad, forward, backward, Adam step) of the
    shape `name` at `sizes` (default: the benchmark's)."""
    shape = SHAPES[name]
    sizes = dict(shape.sizes, **sizes)

    def fast():
        model, batch = shape.make(dtype, **sizes)
        if model.dtype == "float32":
            from .runners import PRECISION
            model.precision = PRECISION         # `fastrnn bench --precision`
        opt = optim.Adam(model, lr=1e-3)

        def iteration():
            model.zero_grad()
            model.forward(batch)
            model.backward()
            opt.step()
        return iteration

    def slow_torch():
        model, batch = shape.make(dtype, **sizes)
        m, tb = torch_model(shape, model), torch_batch(batch)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)

        def iteration():
            opt.zero_grad()
            shape.torch_loss(m, tb).backward()
            opt.step()
        return iteration
    return {"fastrnn": fast, "torch": slow_torch}
