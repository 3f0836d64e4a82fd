"""The end of a fused step whose model has blocks in Python around a native step run without its
optimiser (a ConditionedGenerator's condition, a Seq2Seq's encoder): after those blocks'
backward, the clip and the update over the model's whole flat buffers in one native call
(`_kernels.optim_step`), with `_kernels.train_step`'s rule for a bad loss.
"""
from .. import _kernels


def update(model, loss, opt_spec):
    """After a native step without its optimiser and the model's Python blocks' backward: the
    clip and the update over `model`'s whole flat buffers in one native call, unless the loss is
    bad (train_step's max_loss rule). Returns (status, loss, grad_sumsq, param_sumsq) as
    `_kernels.train_step` does (the sums None when nothing was updated or opt_spec is None)."""
    if opt_spec is None:
        return 0, loss, None, None
    if not loss <= opt_spec["max_loss"]:        # NaN too: no update, as train_step's status 1
        return 1, loss, None, None
    status, grad_sumsq, param_sumsq = _kernels.optim_step(model._params, model.grads, opt_spec)
    return status, loss, grad_sumsq, param_sumsq
