"""The fused training step of a padded-batch model whose head is a Linear + softmax
cross-entropy: `SequenceTagger` (a label per step, padded steps masked out of the loss) and
`SequenceClassifier` (one label per sequence from the last state, or the mean or max over the
valid steps), with token ids (through the embedding) or float features, any cell, layers and
directions.

`SeqStep(owner)` runs what `model.zero_grad()`, `model.forward(batch, train=True)`,
`model.backward()` (and the owner's clip and optimiser) do, in one C call (csrc/train_seq.h).
`fused.FusedStep` builds it for such a model (`FusedStep(model, ...).step_batch(batch)`); this
module holds only what differs from a language model's step, and imports nothing of fused.py.
`native_step` is that one call over given blocks, from given initial states: a Seq2Seq's decoder
side runs on it too (fused_s2s.py).
"""
import numpy as np

from .. import _kernels


def why_not_model(model):
    """None when `model` (a tagger or classifier) can run the fused step, else the reason."""
    from ..models import SequenceClassifier, SequenceTagger
    from ..nn import Linear, SoftmaxCrossEntropy
    if type(model) not in (SequenceTagger, SequenceClassifier):
        return f"the model is a {type(model).__name__}, not a LanguageModel, SequenceTagger, " \
               "SequenceClassifier, ConditionedGenerator or Seq2Seq"
    if not isinstance(getattr(model, "head", None), Linear) or type(model.loss) is not SoftmaxCrossEntropy:
        return "the head is not a Linear with a softmax cross-entropy (a multi-label classifier's " \
               "loss is a binary cross-entropy)"
    rnn = getattr(model, "rnn", None)
    if getattr(rnn, "batch_first", True) or not hasattr(rnn, "_stack_params") or rnn.D != model.D:
        return "the recurrent stack is not a fastrnn layer"
    if model.dtype not in (np.float32, np.float64):
        return f"dtype {model.dtype} is not float32/float64"
    return None


class SeqStep:
    """The step of a tagger or classifier for `owner` (a fused.FusedStep: its model, optimiser,
    clip, scratch buffers and optimiser spec)."""

    def __init__(self, owner):
        from ..models import SequenceTagger
        self.owner, self.tagger = owner, isinstance(owner.model, SequenceTagger)

    def _targets(self, targets, lengths, T, B):
        """The checked targets as int32 rows: (T*B) time-major tags (0 past each length) for a
        tagger, (B) class ids for a classifier; and the loss's weight (its `total`)."""
        m, buf = self.owner.model, self.owner._buffer
        if self.tagger:
            tags_tm, valid = m._check_tags(targets, lengths, T)
            out = buf("targets", (T * B,), np.int32)
            out[...] = tags_tm.reshape(-1)
            return out, float(valid.sum())
        t = np.asarray(m._check_targets(targets, B))
        if t.dtype.kind not in "iu":
            raise TypeError(f"targets: expected integer class ids, got {t.dtype.name}")
        C = m.config["num_classes"]
        if t.min() < 0 or t.max() >= C:
            raise ValueError(f"targets: expected ids in [0, {C}), got {t.min()}..{t.max()}")
        out = buf("targets", (B,), np.int32)
        out[...] = t
        return out, float(B)

    def step(self, batch, opt_spec):
        """Train on one batch (inputs, targets[, lengths]): returns (status, loss, grad_sumsq,
        param_sumsq) as _kernels.train_seq_step, and leaves what the unfused calls leave."""
        owner = self.owner
        m, buf = owner.model, owner._buffer
        inputs, targets, lengths = m._split_batch(batch)
        x, lengths = m._check_inputs(inputs, lengths)
        B, T = x.shape[:2]
        tgt, total = self._targets(targets, lengths, T, B)
        if m.config.get("vocab_size"):
            ids = buf("ids", (T, B), np.int32)
            ids[...] = x.T
            inp = dict(ids=ids, embed=m.embed)
        else:
            x0 = buf(("act", 0), (T, B, x.shape[2]))
            x0[...] = np.swapaxes(x, 0, 1)           # the layer's conversion to its dtype
            inp = dict(x0=x0)
        result, _ = native_step(owner, m.rnn, m.head, tgt, lengths, "steps" if self.tagger else m.config["pooling"],
                                opt_spec, drop=m.drop, **inp)
        # what the unfused calls leave: the loss block's weight, no pending tape
        m.loss._grad, m.loss.total = None, total
        if self.tagger:
            m._shape = None
        else:
            m._tape = None
        return result


def native_step(owner, rnn, head, tgt, lengths, pool, opt_spec, *, ids=None, embed=None, x0=None, drop=None,
                h0=None, c0=None):
    """`_kernels.train_seq_step` over `owner`'s model: the padded batch's ids (T, B) int32 through
    the Embedding `embed` (or the features x0 (T, B, F)), the fastrnn layer `rnn` (lengths (B,)
    or None; initial states h0, c0: one (B, P) / (B, H) array per layer and direction, or None
    for zeros), the Dropout block `drop` (or None), the Linear `head` against `tgt` with
    `pool`, zeroing and filling the model's whole gradient buffer; opt_spec: the optimiser's or
    None. Returns (status, loss, grad_sumsq, param_sumsq) and the initial states' gradients
    (dh0 (L*D, B, P), dc0 (L*D, B, H) or None); leaves no pending tape in rnn, embed, head."""
    m, buf = owner.model, owner._buffer
    dt = m.dtype
    T, B = ids.shape if ids is not None else x0.shape[:2]
    L, D, P, H = rnn.num_layers, rnn.D, rnn.P, rnn.hidden_size
    DP = D * P
    if ids is not None:
        x0 = buf(("act", 0), (T, B, embed._views["weight"].shape[1]))
    acts = [x0] + [buf(("act", k), (T, B, DP)) for k in range(1, L + 1)]
    # rnn.forward(train=True), then the model's Dropout: the same draws in the same order
    masks = [None] * L
    if rnn.dropout:
        keep = 1 - rnn.dropout
        for k in range(1, L):
            masks[k] = (rnn._dropout_rng.random((T, B, DP)) < keep).astype(dt) / keep
    steps = pool == "steps"
    N = T * B if steps else B
    mask = None
    if drop is not None and drop.training and drop.p:
        keep = 1 - drop.p
        mask = (drop._rng.random((T, B, DP) if steps else (B, DP)) < keep).astype(dt) / keep
    runs = [(k, d) for k in range(L) for d in range(D)]
    tapes = [rnn._buffers.get(("tape", k, d), _kernels.tape_size(rnn.cell, T, B, acts[k].shape[2], H, P,
                                                                rnn.peephole)) for k, d in runs]
    xs = ys = dys = dxs = None
    if D == 2:
        xs = [acts[k] if d == 0 else buf(("xs", k), acts[k].shape) for k, d in runs]
        ys = [buf(("ys", i), (T, B, P)) for i in range(L * D)]
        dys = [buf(("dys", i), (T, B, P)) for i in range(L * D)]
        dxs = [None if k == 0 and ids is None else buf(("dxs", k, d), acts[k].shape) for k, d in runs]
    h_n = np.empty((L * D, B, P), dt)
    c_n = np.empty((L * D, B, H), dt) if rnn.lstm else None
    params = rnn._stack_params(False)
    fwd = _kernels.stack_forward(rnn.cell, params, acts, directions=D, train=True, tapes=tapes, h0=h0, c0=c0,
                                 h_T=list(h_n), c_T=None if c_n is None else list(c_n), lengths=lengths,
                                 masks=masks, xs=xs, ys=ys, precision=rnn.precision, _run=False)
    grads = [None if ids is None else buf(("grad", 0), x0.shape)] + \
        [buf(("grad", k), (T, B, DP)) for k in range(1, L + 1)]
    dh_last = [buf(("dh_last", d), (B, P)) for d in range(D)] if pool == "last" else None
    dh_T = None if dh_last is None else [None] * ((L - 1) * D) + dh_last
    dh0 = buf("dh0", (L * D, B, P))
    dc0 = buf("dc0", (L * D, B, H)) if rnn.lstm else None
    bwd = _kernels.stack_backward(rnn.cell, params, acts, grads, directions=D, tapes=tapes, h0=h0, c0=c0,
                                  dh_T=dh_T, dh0=list(dh0), dc0=None if dc0 is None else list(dc0),
                                  param_grads=[rnn._weights(k, d)[2] for k, d in runs], lengths=lengths,
                                  masks=masks, xs=xs, dys=dys, dxs=dxs, precision=rnn.precision, _run=False)
    hw, hg = head._views, head._grad_views
    emb = {} if ids is None else dict(ids=ids, table=embed._views["weight"], table_grad=embed._grad_views["weight"])
    K = hw["weight"].shape[0]
    result = _kernels.train_seq_step(
        fwd, bwd, pool, tgt, drop=None if mask is None else mask.reshape(N, DP),
        feat=buf("feat", (N, DP)) if not steps or mask is not None else None,
        dfeat=None if steps else buf("dfeat", (B, DP)),
        arg=buf("arg", (B, DP), np.int32) if pool == "max" else None, dh_last=dh_last,
        W_head=hw["weight"], b_head=hw.get("bias"), dW_head=hg["weight"], db_head=hg.get("bias"),
        logits=buf("logits", (N, K)), nll=buf("nll", (N,)), params=m._params, grads=m.grads,
        opt=opt_spec, head_precision=head.precision, **emb)
    # what the unfused calls leave: no pending tapes, the Dropout's last mask
    head._x = None
    if drop is not None:
        drop._mask = mask
    if embed is not None:
        embed._ids = None
    rnn._buffers.tape = None
    rnn._buffers.trim()
    return result, (dh0, dc0)
