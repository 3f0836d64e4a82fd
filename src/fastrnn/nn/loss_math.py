"""Losses with their gradients, computed together (the backward of softmax-CE is fused).

Every function returns (loss, gradient of the loss w.r.t. its first argument).
"""
import numpy as np


def log_softmax(logits):
    """log(softmax(logits)) over the last axis, stable for any magnitude."""
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits, temperature=1.0):
    """softmax(logits / temperature) over the last axis."""
    z = logits / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits, targets, mask=None):
    """Mean cross-entropy (nats) of `logits` (N, V) against int `targets` (N,) and its gradient.

    `mask` (N,) weights the rows (0 drops one); the mean is over the total weight. The gradient
    (softmax - onehot) * weight / total is computed in place of the probabilities, without a
    one-hot matrix.
    """
    logits = np.asarray(logits)
    if logits.dtype not in (np.float32, np.float64):
        raise TypeError(f"logits: expected float32 or float64, got {logits.dtype.name}")
    if logits.ndim != 2:
        raise ValueError(f"logits: expected shape (N, V), got {logits.shape}")
    N, V = logits.shape
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets: expected integer class ids, got {targets.dtype.name}")
    if targets.shape != (N,):
        raise ValueError(f"targets: expected shape ({N},), got {targets.shape}")
    if N and (targets.min() < 0 or targets.max() >= V):
        raise ValueError(f"targets: expected ids in [0, {V}), got {targets.min()}..{targets.max()}")
    weight = np.ones(N, logits.dtype) if mask is None else np.asarray(mask, logits.dtype)
    if weight.shape != (N,):
        raise ValueError(f"mask: expected shape ({N},), got {weight.shape}")
    total = weight.sum()
    if total <= 0:
        raise ValueError("mask: selects no rows")
    rows = np.arange(N)
    grad = logits - logits.max(axis=1, keepdims=True)        # z, shifted: exp cannot overflow
    z_target = grad[rows, targets]
    np.exp(grad, out=grad)
    sums = grad.sum(axis=1)
    nll = np.log(sums) - z_target                             # -log p[target]
    loss = float((nll * weight).sum() / total)
    grad /= sums[:, None]                                     # softmax
    grad[rows, targets] -= 1                                  # minus one-hot
    grad *= (weight / total)[:, None]
    return loss, grad


def _weights(name, mask, shape, dtype):
    """Per-element weights (broadcast to `shape`) and their total: a mask covers the leading axes."""
    if mask is None:
        return None, float(np.prod(shape))
    w = np.asarray(mask, dtype)
    if w.shape != shape[:w.ndim]:
        raise ValueError(f"mask: expected a shape that leads {shape}, got {w.shape}")
    w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    total = float(np.broadcast_to(w, shape).sum())
    if not total > 0:
        raise ValueError("mask: selects no elements")
    return w, total


def mse(pred, target, mask=None):
    """Mean squared error and its gradient w.r.t. `pred`.

    `mask` weights the elements; its shape leads pred's (e.g. (T, B) for pred (T, B, F)); the
    mean is over the total weight.
    """
    pred = np.asarray(pred)
    if pred.dtype.kind != "f":
        raise TypeError(f"pred: expected a float array, got {pred.dtype.name}")
    target = np.asarray(target, dtype=pred.dtype)
    if pred.shape != target.shape:
        raise ValueError(f"target: expected shape {pred.shape} (as pred), got {target.shape}")
    w, total = _weights("mask", mask, pred.shape, pred.dtype)
    diff = pred - target
    if w is not None:
        diff = diff * w                  # zero where masked: both loss and gradient vanish there
        return float((diff * (pred - target)).sum() / total), 2 * diff / total
    return float((diff * diff).sum() / total), 2 * diff / total


def binary_cross_entropy_with_logits(logits, targets, mask=None):
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], and its gradient.

    `mask` as for `mse`.
    """
    logits = np.asarray(logits)
    if logits.dtype.kind != "f":
        raise TypeError(f"logits: expected a float array, got {logits.dtype.name}")
    targets = np.asarray(targets, dtype=logits.dtype)
    if logits.shape != targets.shape:
        raise ValueError(f"targets: expected shape {logits.shape} (as logits), got {targets.shape}")
    w, total = _weights("mask", mask, logits.shape, logits.dtype)
    # log(1 + exp(-|x|)) + max(x, 0) - x*t is stable for any x
    loss = np.logaddexp(0, -np.abs(logits)) + np.maximum(logits, 0) - logits * targets
    e = np.exp(-np.abs(logits))
    grad = np.where(logits >= 0, 1 / (1 + e), e / (1 + e)) - targets     # sigmoid(x) - t
    if w is not None:
        loss, grad = loss * w, grad * w
    return float(loss.sum() / total), grad / total
