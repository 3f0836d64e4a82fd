"""The fused training step: a language model's whole iteration in one native call.

`FusedStep(model, optimizer, clip, clip_value)` runs what `model.zero_grad()`,
`model.forward(inputs, targets, state)`, `model.backward()`, `optim.clip_grad_norm`,
`optim.clip_grad_value` and `optimizer.step()` do, in one C call (csrc/train.h): the input rows
(embedding or one-hot), the recurrent stack, the head, the softmax cross-entropy and its gradient,
the backward, the scatter into the embedding rows (or W_ih_l0's columns), the clip and the update
over the flat buffers on the thread team. The numbers are the unfused ones (float64 to rounding,
float32 within rounding; the same bits for any thread count), the dropout masks are drawn from
the layer's RNG exactly as its forward draws them, and the carried state works as with
`StateCarry`. The Python API is unchanged: forward/backward/opt.step() still work.

Other models with the same head: taggers and classifiers (`step_batch`, fused_seq.py), a
ConditionedGenerator (`step_batch`, fused_cond.py: its condition block in Python around the
language model's native forward and backward, then one native clip and update), and a Seq2Seq
(`step_batch`, fused_s2s.py: its encoder in Python around the decoder side's native step -- a
tagger's, from the bridged state -- then one native clip and update).

The Trainer uses it when `applies` (`trainer_update`); `Trainer(fused=False)` or
FASTRNN_FUSED=0 turns it off (for A/B runs).
"""
import math
import os

import numpy as np

from .. import _kernels, optim
from ..checks import ids as check_ids
from ..nn.grad import is_grad_enabled
from . import fused_cond, fused_s2s, fused_seq
from .divergence import TrainingDiverged

#: the optimisers the native update implements (exact classes: a subclass may change _update)
KINDS = {optim.SGD: "sgd", optim.Adam: "adam", optim.AdamW: "adamw", optim.RMSprop: "rmsprop",
         optim.Adagrad: "adagrad"}


def why_not(model, optimizer=None):
    """None when `FusedStep(model, optimizer)` can run, else the reason it cannot (a str).

    Fused: a LanguageModel, a SequenceTagger, a SequenceClassifier with a softmax (fused_seq.py),
    a ConditionedGenerator whose language model is fused (fused_cond.py: the condition block
    runs in Python), a Seq2Seq (fused_s2s.py: the encoder runs in Python). Not fused (the
    reason says which): a multi-label classifier (binary cross-entropy), the SequenceRegressor
    (MSE), AttentionSeq2Seq, OutputRecurrentNet and GridRNN (their heads read more than a
    stack's outputs or feed back into it), and a subclass of a tagger, a classifier, a
    ConditionedGenerator or a Seq2Seq (its forward may differ)."""
    from ..models import ConditionedGenerator, LanguageModel, Seq2Seq
    from ..nn import Linear, SoftmaxCrossEntropy
    if type(model) is ConditionedGenerator:
        lm = why_not(model.lm)
        reason = fused_cond.why_not_model(model) or (lm and f"its language model: {lm}")
        return reason or _why_not_optimizer(model, optimizer)
    if type(model) is Seq2Seq:
        return fused_s2s.why_not_model(model) or _why_not_optimizer(model, optimizer)
    if not isinstance(model, LanguageModel):
        return fused_seq.why_not_model(model) or _why_not_optimizer(model, optimizer)
    rnn, head = getattr(model, "rnn", None), getattr(model, "head", None)
    if not isinstance(head, Linear) or not isinstance(getattr(model, "loss", None), SoftmaxCrossEntropy):
        return "the head is not a Linear with a softmax cross-entropy"
    if getattr(rnn, "D", None) != 1 or getattr(rnn, "batch_first", True) or not hasattr(rnn, "_stack_params"):
        return "the recurrent stack is not a unidirectional fastrnn layer"
    if model.dtype not in (np.float32, np.float64):
        return f"dtype {model.dtype} is not float32/float64"
    return _why_not_optimizer(model, optimizer)


def _why_not_optimizer(model, optimizer):
    if optimizer is not None:
        if type(optimizer) not in KINDS:
            return f"the optimizer is a {type(optimizer).__name__}, not one of fastrnn.optim's"
        if optimizer.params.shape != model._params.shape or not np.shares_memory(optimizer.params, model._params):
            return "the optimizer does not update this model's parameters"
    return None


def applies(model, optimizer=None):
    """True when `FusedStep(model, optimizer)` can run (see `why_not`)."""
    return why_not(model, optimizer) is None


def enabled(flag=None):
    """The fused path's switch: `flag` False turns it off, as FASTRNN_FUSED=0 does."""
    return flag is not False and os.environ.get("FASTRNN_FUSED", "1") != "0"


class FusedStep:
    """One call per training step for a `LanguageModel` (see the module docstring).

    optimizer: one of fastrnn.optim's SGD, Adam, AdamW, RMSprop, Adagrad over `model`, or None
    (then `step` computes the loss and the gradients only, as forward + backward); clip: global
    norm (0/None: off); clip_value: clamp after that (0/None: off).
    """

    def __init__(self, model, optimizer=None, clip=None, clip_value=None):
        reason = why_not(model, optimizer)
        if reason:
            raise ValueError(f"FusedStep: {reason}")
        for name, v in (("clip", clip or 0), ("clip_value", clip_value or 0)):
            if not (isinstance(v, (int, float, np.floating, np.integer)) and v >= 0):
                raise ValueError(f"{name}: expected a non-negative number, got {v!r}")
        self.model, self.optimizer = model, optimizer
        self.clip, self.clip_value = float(clip or 0), float(clip_value or 0)
        self.status, self.grad_sumsq, self.param_sumsq = None, None, None
        self.dstate = None
        self._scratch = {}
        # a tagger's, classifier's, conditioned generator's or seq2seq's step (step_batch); None
        # for a language model (step)
        from ..models import ConditionedGenerator, LanguageModel, Seq2Seq
        self._seq = None if isinstance(model, LanguageModel) else \
            fused_cond.CondStep(self) if isinstance(model, ConditionedGenerator) else \
            fused_s2s.S2SStep(self) if isinstance(model, Seq2Seq) else fused_seq.SeqStep(self)

    def _buffer(self, key, shape, dtype=None):
        """A cached scratch array for `key` of this shape (the step's sizes rarely change)."""
        dtype = self.model.dtype if dtype is None else dtype
        a = self._scratch.get(key)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._scratch[key] = np.empty(shape, dtype)
        return a

    def _opt_spec(self, max_loss):
        opt = self.optimizer
        spec = dict(opt.hyper, kind=KINDS[type(opt)], steps=opt.steps + 1, lr=opt.lr,
                    state=[opt.state[n] for n in opt.state_names], clip=self.clip,
                    clip_value=self.clip_value, max_loss=max_loss)
        return spec

    def step(self, inputs, targets, state=None, max_loss=math.inf):
        """Train on one batch: returns (loss, state) as `model.forward` does.

        With an optimiser the parameters are updated unless the loss is not finite or above
        `max_loss` (status 1) or the gradients are not finite (status 2); `self.status` says which
        (0: updated), `self.grad_sumsq` / `self.param_sumsq` hold the sums of squares of the
        gradients (before clipping) and of the updated parameters. `self.dstate` holds the
        gradient w.r.t. `state` as `model.backward()` returns it (until the next step).
        """
        if self._seq is not None:
            raise TypeError(f"step: for a LanguageModel; a {type(self.model).__name__} trains with step_batch(batch)")
        m = self.model
        rnn, V = m.rnn, m.config["vocab_size"]
        inputs = check_ids("inputs", inputs, V, ndim=2)
        targets = check_ids("targets", targets, V, ndim=2)
        if targets.shape != inputs.shape:
            raise ValueError(f"targets: expected shape {inputs.shape} (as inputs), got {targets.shape}")
        B, T = inputs.shape
        if T == 0 or B == 0:
            raise ValueError(f"inputs: expected at least one step and one sequence, got {inputs.shape}")
        ids = self._buffer("ids", (T, B), np.int32)
        ids[...] = inputs.T
        tgt = self._buffer("targets", (T, B), np.int32)
        tgt[...] = targets.T
        dt, L, P, H = m.dtype, rnn.num_layers, rnn.P, rnn.hidden_size
        projected = not m.config["embed_size"]
        width = rnn.G * H if projected else m.config["embed_size"]
        acts = [self._buffer(("act", k), (T, B, width if k == 0 else P)) for k in range(L + 1)]
        grads = [self._buffer(("grad", k), (T, B, width if k == 0 else P)) for k in range(L + 1)]
        # rnn.forward(train=True): the same draws from the layer's RNG, in the same order
        masks = [None] * L
        if rnn.dropout:
            keep = 1 - rnn.dropout
            for k in range(1, L):
                masks[k] = (rnn._dropout_rng.random((T, B, P)) < keep).astype(dt) / keep
        tapes = [rnn._buffers.get(("tape", k, 0), _kernels.tape_size(rnn.cell, T, B, acts[k].shape[2], H, P,
                                                                    rnn.peephole)) for k in range(L)]
        h0, c0 = rnn._split_state("state", state)
        h0 = rnn._as_state("h0", h0, B, P, False)
        c0 = rnn._as_state("c0", c0, B, H, False)
        h0s = [None if h0 is None else h0[k] for k in range(L)]
        c0s = [None if c0 is None else c0[k] for k in range(L)]
        h_n = np.empty((L, B, P), dt)
        c_n = np.empty((L, B, H), dt) if rnn.lstm else None
        params = rnn._stack_params(projected)
        fwd = _kernels.stack_forward(rnn.cell, params, acts, train=True, tapes=tapes, h0=h0s, c0=c0s,
                                     h_T=list(h_n), c_T=None if c_n is None else list(c_n),
                                     masks=masks, precision=rnn.precision, _run=False)
        param_grads = []
        for k in range(L):
            g = rnn._weights(k, 0)[2]
            param_grads.append({n: v for n, v in g.items() if not (k == 0 and projected and n == "W_ih")})
        dh0 = self._buffer("dh0", (L, B, P))
        dc0 = self._buffer("dc0", (L, B, H)) if rnn.lstm else None
        self.dstate = (dh0, dc0) if rnn.lstm else dh0
        bwd = _kernels.stack_backward(rnn.cell, params, acts, grads, tapes=tapes, h0=h0s, c0=c0s,
                                      dh0=list(dh0), dc0=None if dc0 is None else list(dc0),
                                      param_grads=param_grads, masks=masks,
                                      precision=rnn.precision, _run=False)
        head_w, head_g = m.head._views, m.head._grad_views
        if projected:
            inp = dict(W_ih0=rnn._weights(0, 0)[0][0], dW_ih0=rnn._weights(0, 0)[2]["W_ih"])
        else:
            inp = dict(table=m.embed._views["weight"], table_grad=m.embed._grad_views["weight"])
        status, loss, self.grad_sumsq, self.param_sumsq = _kernels.train_step(
            fwd, bwd, ids, tgt, W_head=head_w["weight"], b_head=head_w.get("bias"),
            dW_head=head_g["weight"], db_head=head_g.get("bias"),
            logits=self._buffer("logits", (T * B, V)), nll=self._buffer("nll", (T * B,)),
            params=m._params, grads=m.grads, **inp,
            opt=None if self.optimizer is None else self._opt_spec(max_loss), head_precision=m.head.precision)
        # what the unfused calls leave: no pending tapes, the loss block's weight
        m._tape, m.head._x, m.loss._grad, m.loss.total = None, None, None, float(T * B)
        if not projected:
            m.embed._ids = None
        rnn._buffers.tape = None
        rnn._buffers.trim()
        self._stepped(status)
        return loss, ((h_n, c_n) if rnn.lstm else h_n)

    def step_batch(self, batch, max_loss=math.inf):
        """Train a SequenceTagger or SequenceClassifier on one batch (inputs, targets[, lengths]),
        a ConditionedGenerator on one batch (condition, tokens), or a Seq2Seq on one batch (src,
        src_lengths, tgt, tgt_lengths), as `model.zero_grad()` + `model.forward(batch,
        train=True)` + `backward` + the clip and update would; returns the loss. `status`,
        `grad_sumsq`, `param_sumsq` and `max_loss` as for `step`."""
        if self._seq is None:
            raise TypeError("step_batch: for a SequenceTagger, SequenceClassifier, ConditionedGenerator or "
                            "Seq2Seq; a LanguageModel trains with step(inputs, targets, state)")
        spec = None if self.optimizer is None else self._opt_spec(max_loss)
        status, loss, self.grad_sumsq, self.param_sumsq = self._seq.step(batch, spec)
        self._stepped(status)
        return loss

    def _stepped(self, status):
        """The optimiser's bookkeeping after a native step (status 0: updated)."""
        self.status = status
        if self.optimizer is not None and status == 0:
            self.optimizer.steps += 1
            if self.optimizer._invalidate is not None:
                self.optimizer._invalidate()


def trainer_update(trainer, batch):
    """The Trainer's zero_grad + forward + backward + clip + step on `batch` in one native call,
    with its checks (TrainingDiverged) in its order; returns the loss, or None when the fused
    path does not apply to this trainer (then the Trainer runs its own steps)."""
    fused = trainer.__dict__.get("_fused_step", False)
    if fused is False:              # decided once per trainer
        fused = trainer._fused_step = _for_trainer(trainer)
    if fused is None or not trainer.model.training or not is_grad_enabled():
        return None
    trainer.last_items = trainer.items(batch)
    factor, level = trainer.settings["explode_factor"], trainer.loss_level
    max_loss = factor * abs(level) + 1 if factor and level is not None and math.isfinite(level) else math.inf
    if fused._seq is not None:          # model.forward(batch, True): a tagger, classifier, ...
        loss = fused.step_batch(trainer.forward.model_batch(batch), max_loss=max_loss)
    else:                               # a language model under StateCarry
        carry = trainer.forward
        inputs, targets = batch
        loss, state = fused.step(inputs, targets, carry.state, max_loss=max_loss)
        carry.state = state
    trainer._check_loss("training loss", loss, trainer.loss_level)     # raises for status 1
    if fused.status == 2:
        raise TrainingDiverged(f"the gradients became non-finite at iteration {trainer.iteration}")
    if not fused.param_sumsq <= np.finfo(trainer.model.dtype).max:
        raise TrainingDiverged(f"the parameters became non-finite at iteration {trainer.iteration}")
    return loss


def _for_trainer(trainer):
    """A FusedStep for this trainer's model, optimiser and clipping, or None when its step is
    not the plain one (disabled, distributed, a forward other than StateCarry for a language
    model or other than model.forward (of the batch as a ModelForward gives it) for the other
    models, ...)."""
    from ..models import LanguageModel
    from .callbacks import StateCarry
    if not enabled(getattr(trainer, "fused", None)) or trainer.dist is not None:
        return None
    carry = trainer.forward
    if isinstance(trainer.model, LanguageModel):
        if type(carry) is not StateCarry or carry.model is not trainer.model:
            return None
    elif not _default_forward(trainer):
        return None
    if not applies(trainer.model, trainer.optimizer):
        return None
    s = trainer.settings
    return FusedStep(trainer.model, trainer.optimizer, s["clip"], s.get("clip_value"))


def _default_forward(trainer):
    """True when the trainer's forward is `model.forward(forward.model_batch(batch),
    train=train)` of its model: its default, or a task's ModelForward that only reshapes the
    batch (the seq2seq task's)."""
    from .callbacks import ModelForward
    f = trainer.forward
    return isinstance(f, ModelForward) and type(f).__call__ is ModelForward.__call__ and f.model is trainer.model
