"""The fused training step of a `ConditionedGenerator`: the condition's block in Python (a
product and a tanh per batch), the language model's forward and backward from that initial state
in one native call (the language model's own step, `_kernels.train_step` without an optimiser),
the state gradient back through the condition in Python, then the clip and the update over the
whole model's flat buffers in one native call (`_kernels.optim_step`).

`fused.FusedStep` builds it for such a model (`FusedStep(model, ...).step_batch((condition,
tokens))`); this module holds only what differs from a language model's step, and imports
nothing of fused.py (the language model's step is built from the owner's class).
"""
import numpy as np

from . import fused_update


def why_not_model(model):
    """None when the ConditionedGenerator `model`'s own parts allow the fused step (its language
    model is checked as any language model), else the reason. Its condition block runs in Python
    (its own forward and backward), so any block does."""
    cond, lm = model.condition, model.lm
    # the language model's step zeroes and fills its own span of the flat buffers, the condition
    # block's span is zeroed here, the update runs over the whole: the two spans must be the whole
    spans = [(c._params, c.grads) for c in (cond, lm)]
    if sum(p.size for p, _ in spans) != model._params.size or not all(
            np.shares_memory(p, model._params) and np.shares_memory(g, model.grads) for p, g in spans):
        return "the condition block and the language model are not the model's whole parameters"
    return None


class CondStep:
    """The step of a ConditionedGenerator for `owner` (a fused.FusedStep: its model, optimiser
    spec and sums)."""

    def __init__(self, owner):
        self.owner = owner
        self.lm = type(owner)(owner.model.lm)        # loss and gradients only: no optimiser

    def step(self, batch, opt_spec):
        """Train on one batch (condition, tokens): returns (status, loss, grad_sumsq,
        param_sumsq) as fused_seq.SeqStep.step does, and leaves what the unfused calls leave
        (no pending tapes)."""
        m = self.owner.model
        state, inputs, targets = m._lm_batch(batch, train=True)    # the condition's tape kept
        m.condition.zero_grad()                 # the language model's step zeroes its own span
        loss, _ = self.lm.step(inputs, targets, state)
        m.condition.backward(self.lm.dstate)
        return fused_update.update(m, loss, opt_spec)
