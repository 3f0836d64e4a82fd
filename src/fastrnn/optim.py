"""Optimisers and gradient clipping working in place on a model's flat buffers.

Each optimiser takes `model` = anything with `.params` and `.grads` (1-D float arrays of the
same shape; a model or a layer) or a (params, grads) tuple, and updates
`params` in one vectorised pass per step, with the formulas of torch.optim (tested against it).
`state_dict()` holds NumPy arrays and JSON-serialisable scalars so a checkpoint needs no pickle.
"""
import math

import numpy as np

from .params import is_real
from .optim_schedulers import LRScheduler


def _buffers(model):
    """(params, grads) of a model-like object or a tuple, checked."""
    # a fastrnn Module's own storage, not its public `params` view: held for the optimiser's life,
    # a public view would make every inference call check the weights for edits (nn/storage.py);
    # the optimiser says when it writes (invalidate) instead
    params, grads = model if isinstance(model, tuple) else (
        getattr(model, "_params", None) if hasattr(model, "_storage") else getattr(model, "params", None),
        getattr(model, "grads", None))
    for name, a in (("params", params), ("grads", grads)):
        if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype not in (np.float32, np.float64):
            raise TypeError(f"model: expected .{name} to be a 1-D float32/float64 numpy array, "
                            f"got {type(a).__name__}")
    if grads.shape != params.shape or grads.dtype != params.dtype:
        raise ValueError(f"model: params {params.dtype}{params.shape} and grads "
                         f"{grads.dtype}{grads.shape} must match")
    return params, grads


class Optimizer:
    """Base class: holds the buffers, the learning rate, the step count and named state arrays."""
    state_names = ()

    def __init__(self, model, lr, **hyper):
        if not lr >= 0:
            raise ValueError(f"lr: expected a non-negative number, got {lr!r}")
        self.params, self.grads = _buffers(model)
        # a fastrnn Module keys weight caches on its param_version: tell it when we write
        self._invalidate = None if isinstance(model, tuple) else getattr(model, "invalidate", None)
        self.lr, self.hyper, self.steps = float(lr), hyper, 0
        self.state = {name: np.zeros_like(self.params) for name in self.state_names}
        self._tmp = np.empty_like(self.params)        # scratch: no allocation per step

    def step(self):
        """Update the parameters from the current gradients."""
        self.steps += 1
        self._update(self.params, self.grads, self._tmp, **self.state)
        if self._invalidate is not None:
            self._invalidate()

    def state_dict(self):
        """{"lr", "steps", hyper-parameters..., state arrays...}."""
        return dict(lr=self.lr, steps=self.steps, **self.hyper,
                    **{name: a.copy() for name, a in self.state.items()})

    def load_state_dict(self, d):
        """Restore a `state_dict` (from the same optimiser type on a same-sized model)."""
        missing = [k for k in ("lr", "steps", *self.state_names) if k not in d]
        if missing:
            raise ValueError(f"state: missing {missing} for {type(self).__name__}")
        for name in self.state_names:
            a = np.asarray(d[name])
            if a.shape != self.params.shape:
                raise ValueError(f"state[{name!r}]: expected shape {self.params.shape}, got {a.shape}")
            self.state[name][...] = a
        self.lr, self.steps = float(d["lr"]), int(d["steps"])
        for k in self.hyper:
            if k in d:
                self.hyper[k] = d[k]

    def __getattr__(self, name):     # hyper-parameters read as attributes: opt.momentum
        hyper = self.__dict__.get("hyper", {})
        if name in hyper:
            return hyper[name]
        raise AttributeError(name)


class SGD(Optimizer):
    """SGD with optional momentum (Nesterov), dampening and L2 weight decay, as torch.optim.SGD.

    Parameters
    ----------
    model : Module, layer or (params, grads) tuple
        Anything with ``params`` and ``grads`` (1-D float arrays of the same shape).
    lr : float, default 1e-2
        Learning rate (>= 0).
    momentum, dampening : float, default 0.0
    nesterov : bool, default False
        Needs momentum > 0 and dampening = 0.
    weight_decay : float, default 0.0
        L2 penalty added to the gradient.
    """
    state_names = ("momentum_buffer",)

    def __init__(self, model, lr=1e-2, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: requires momentum > 0 and dampening = 0")
        super().__init__(model, lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay)

    def _update(self, p, g, d, momentum_buffer):
        h = self.hyper
        np.multiply(p, h["weight_decay"], out=d)
        d += g                                              # d = g + wd * p
        if h["momentum"]:
            buf = momentum_buffer
            if self.steps == 1:
                buf[...] = d
            else:
                buf *= h["momentum"]
                buf += (1 - h["dampening"]) * d
            if h["nesterov"]:
                d += h["momentum"] * buf
            else:
                d[...] = buf
        p -= self.lr * d


class Adagrad(Optimizer):
    """Adagrad as torch.optim.Adagrad: G += g^2; p -= lr * g / (sqrt(G) + eps).

    min-char-rnn's version is `p -= lr * g / sqrt(G + 1e-8)`; the two differ only in where the
    epsilon sits (negligible once G is not tiny).

    Parameters
    ----------
    model : Module, layer or (params, grads) tuple
        Anything with ``params`` and ``grads`` (1-D float arrays of the same shape).
    lr : float, default 1e-1
        Learning rate (>= 0).
    eps : float, default 1e-10
    """
    state_names = ("sum",)

    def __init__(self, model, lr=1e-1, eps=1e-10):
        super().__init__(model, lr, eps=eps)

    def _update(self, p, g, d, sum):
        sum += g * g
        np.sqrt(sum, out=d)
        d += self.hyper["eps"]
        np.divide(g, d, out=d)
        p -= self.lr * d


class RMSprop(Optimizer):
    """RMSprop as char-rnn and torch.optim.RMSprop: m = a*m + (1-a)*g^2; p -= lr*g/(sqrt(m)+eps).

    The default alpha = 0.95 is char-rnn's (torch's default is 0.99).

    Parameters
    ----------
    model : Module, layer or (params, grads) tuple
        Anything with ``params`` and ``grads`` (1-D float arrays of the same shape).
    lr : float, default 2e-3
        Learning rate (>= 0).
    alpha : float, default 0.95
        Smoothing constant of the squared-gradient average.
    eps : float, default 1e-8
    """
    state_names = ("square_avg",)

    def __init__(self, model, lr=2e-3, alpha=0.95, eps=1e-8):
        super().__init__(model, lr, alpha=alpha, eps=eps)

    def _update(self, p, g, d, square_avg):
        a = self.hyper["alpha"]
        square_avg *= a
        np.multiply(g, g, out=d)
        square_avg += (1 - a) * d
        np.sqrt(square_avg, out=d)
        d += self.hyper["eps"]
        np.divide(g, d, out=d)
        p -= self.lr * d


class Adam(Optimizer):
    """Adam as torch.optim.Adam (L2 weight decay added to the gradient).

    Parameters
    ----------
    model : Module, layer or (params, grads) tuple
        Anything with ``params`` and ``grads`` (1-D float arrays of the same shape).
    lr : float, default 1e-3
        Learning rate (>= 0).
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the gradient's first and second moment averages.
    eps : float, default 1e-8
    weight_decay : float, default 0.0
        L2 penalty added to the gradient.
    """
    state_names = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(model, lr, betas=[float(b) for b in betas], eps=eps, weight_decay=weight_decay)

    def _update(self, p, g, d, exp_avg, exp_avg_sq):
        (b1, b2), eps, wd = self.hyper["betas"], self.hyper["eps"], self.hyper["weight_decay"]
        if wd and self.decoupled:
            p *= 1 - self.lr * wd                      # AdamW: decay the weights directly
        if wd and not self.decoupled:
            g = g + wd * p                             # Adam: L2 term in the gradient
        exp_avg *= b1
        exp_avg += (1 - b1) * g
        exp_avg_sq *= b2
        np.multiply(g, g, out=d)
        exp_avg_sq += (1 - b2) * d
        bias1, bias2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        # p -= lr / bias1 * m / (sqrt(v) / sqrt(bias2) + eps), in torch's order of operations
        np.sqrt(exp_avg_sq, out=d)
        d /= math.sqrt(bias2)
        d += eps
        np.divide(exp_avg, d, out=d)
        d *= self.lr / bias1
        p -= d


class AdamW(Adam):
    """AdamW as torch.optim.AdamW: weight decay applied to the weights, not the gradient.

    Parameters as `Adam`'s; weight_decay defaults to 1e-2.
    """
    decoupled = True

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(model, lr, betas, eps, weight_decay)


def clip_grad_norm(model, max_norm: float) -> float:
    """Scale the gradients so their global L2 norm is at most max_norm; returns the norm before.

    Same rule as ``torch.nn.utils.clip_grad_norm_``: scale by max_norm / (norm + 1e-6) when < 1.
    A negative max_norm would flip the gradients (gradient ascent): ValueError.

    Parameters
    ----------
    model : Module, layer or (params, grads) tuple
        Anything with ``params`` and ``grads`` (1-D float arrays of the same shape).
    max_norm : float
        The largest global norm allowed (>= 0).

    Returns
    -------
    float
        The gradients' global L2 norm before clipping.

    Raises
    ------
    ValueError
        A negative or NaN `max_norm`.
    """
    if not max_norm >= 0:
        raise ValueError(f"max_norm: expected a non-negative number, got {max_norm!r}")
    _, grads = _buffers(model)
    # einsum, not np.dot: no call into NumPy's BLAS, whose threads would fight the kernels'
    norm = math.sqrt(float(np.einsum("i,i->", grads, grads, dtype=np.float64)))
    coef = max_norm / (norm + 1e-6)
    if coef < 1:
        grads *= coef
    return norm


def clip_grad_value(model, clip: float) -> None:
    """Clip every gradient to [-clip, clip] in place (min-char-rnn's np.clip).

    Parameters
    ----------
    model : Module, layer or (params, grads) tuple
        Anything with ``params`` and ``grads`` (1-D float arrays of the same shape).
    clip : float
        The bound (>= 0).

    Raises
    ------
    ValueError
        A negative or non-numeric `clip`.
    """
    if not is_real(clip) or not clip >= 0:
        raise ValueError(f"clip: expected a non-negative number, got {clip!r}")
    _, grads = _buffers(model)
    np.clip(grads, -clip, clip, out=grads)


class StepLR(LRScheduler):
    """Multiply the optimiser's lr by gamma every step_size calls of step(), as torch's StepLR.

    Parameters
    ----------
    optimizer : Optimizer
        The optimiser whose ``lr`` is scheduled.
    step_size : int
        Calls of ``step()`` between two decays (>= 1).
    gamma : float, default 0.1
        The decay factor (>= 0).
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        from .optim_schedulers import _int, _optimizer, _real
        self.optimizer, self.step_size = _optimizer(optimizer), _int("step_size", step_size, 1)
        self.gamma = _real("gamma", gamma)
        self.base_lr, self.last_epoch = optimizer.lr, 0

    def step(self):
        """Advance one epoch (or iteration) and set the optimiser's lr."""
        self.last_epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class ExponentialLR(StepLR):
    """Multiply the optimiser's lr by gamma at every step(), as torch's ExponentialLR.

    Parameters
    ----------
    optimizer : Optimizer
        The optimiser whose ``lr`` is scheduled.
    gamma : float
        The decay factor (>= 0).
    """

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer, 1, gamma)


from .optim_schedulers import CosineAnnealingLR, ReduceLROnPlateau  # noqa: E402,F401
