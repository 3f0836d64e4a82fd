"""The fused training step of a padded-batch model whose head is a Linear + softmax
cross-entropy: `SequenceTagger` (a label per step, padded steps masked out of the loss) and
`SequenceClassifier` (one label per sequence from the last state, or the mean or max over the
valid steps), with token ids (through the embedding) or float features, any cell, layers and
directions.

`SeqStep(owner)` runs what `model.zero_grad()`, `model.forward(batch, train=True)`,
`model.backward()` (and the owner's clip and optimiser) do, in one C call (csrc/train_seq.h).
`fused.FusedStep` builds it for such a model (`FusedStep(model, ...).step_batch(batch)`); this
module holds only what differs from a language model's step, and imports nothing of fused.py.
"""
import numpy as np

from .. import _kernels


def why_not_model(model):
    """None when `model` (a tagger or classifier) can run the fused step, else the reason."""
    from ..models import SequenceClassifier, SequenceTagger
    from ..nn import Linear, SoftmaxCrossEntropy
    if type(model) not in (SequenceTagger, SequenceClassifier):
        return f"the model is a {type(model).__name__}, not a LanguageModel, SequenceTagger, " \
               "SequenceClassifier or ConditionedGenerator"
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
        rnn, dt = m.rnn, m.dtype
        inputs, targets, lengths = m._split_batch(batch)
        x, lengths = m._check_inputs(inputs, lengths)
        B, T = x.shape[:2]
        tgt, total = self._targets(targets, lengths, T, B)
        L, D, P, H = rnn.num_layers, rnn.D, rnn.P, rnn.hidden_size
        DP, ids = D * P, None
        if m.config.get("vocab_size"):
            ids = buf("ids", (T, B), np.int32)
            ids[...] = x.T
            x0 = buf(("act", 0), (T, B, m.config["embed_size"]))
        else:
            x0 = buf(("act", 0), (T, B, x.shape[2]))
            x0[...] = np.swapaxes(x, 0, 1)           # the layer's conversion to its dtype
        acts = [x0] + [buf(("act", k), (T, B, DP)) for k in range(1, L + 1)]
        # rnn.forward(train=True), then the model's Dropout: the same draws in the same order
        masks = [None] * L
        if rnn.dropout:
            keep = 1 - rnn.dropout
            for k in range(1, L):
                masks[k] = (rnn._dropout_rng.random((T, B, DP)) < keep).astype(dt) / keep
        N = T * B if self.tagger else B
        drop = None
        if m.drop.training and m.drop.p:
            keep = 1 - m.drop.p
            drop = (m.drop._rng.random((T, B, DP) if self.tagger else (B, DP)) < keep).astype(dt) / keep
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
        fwd = _kernels.stack_forward(rnn.cell, params, acts, directions=D, train=True, tapes=tapes,
                                     h_T=list(h_n), c_T=None if c_n is None else list(c_n), lengths=lengths,
                                     masks=masks, xs=xs, ys=ys, precision=rnn.precision, _run=False)
        grads = [None if ids is None else buf(("grad", 0), x0.shape)] + \
            [buf(("grad", k), (T, B, DP)) for k in range(1, L + 1)]
        pool = "steps" if self.tagger else m.config["pooling"]
        dh_last = [buf(("dh_last", d), (B, P)) for d in range(D)] if pool == "last" else None
        dh_T = None if dh_last is None else [None] * ((L - 1) * D) + dh_last
        dh0 = [buf(("dh0", i), (B, P)) for i in range(L * D)]
        dc0 = [buf(("dc0", i), (B, H)) for i in range(L * D)] if rnn.lstm else None
        bwd = _kernels.stack_backward(rnn.cell, params, acts, grads, directions=D, tapes=tapes, dh_T=dh_T,
                                      dh0=dh0, dc0=dc0, param_grads=[rnn._weights(k, d)[2] for k, d in runs],
                                      lengths=lengths, masks=masks, xs=xs, dys=dys, dxs=dxs,
                                      precision=rnn.precision, _run=False)
        need_feat = pool != "steps" or drop is not None
        hw, hg = m.head._views, m.head._grad_views
        emb = {} if ids is None else dict(ids=ids, table=m.embed._views["weight"],
                                          table_grad=m.embed._grad_views["weight"])
        K = hw["weight"].shape[0]
        result = _kernels.train_seq_step(
            fwd, bwd, pool, tgt, drop=None if drop is None else drop.reshape(N, DP),
            feat=buf("feat", (N, DP)) if need_feat else None,
            dfeat=None if pool == "steps" else buf("dfeat", (B, DP)),
            arg=buf("arg", (B, DP), np.int32) if pool == "max" else None, dh_last=dh_last,
            W_head=hw["weight"], b_head=hw.get("bias"), dW_head=hg["weight"], db_head=hg.get("bias"),
            logits=buf("logits", (N, K)), nll=buf("nll", (N,)), params=m._params, grads=m.grads,
            opt=opt_spec, head_precision=m.head.precision, **emb)
        # what the unfused calls leave: no pending tapes, the loss block's weight, the last mask
        m.head._x, m.loss._grad, m.loss.total, m.drop._mask = None, None, total, drop
        if self.tagger:
            m._shape = None
        else:
            m._tape = None
        if ids is not None:
            m.embed._ids = None
        rnn._buffers.tape = None
        rnn._buffers.trim()
        return result
