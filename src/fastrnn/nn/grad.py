"""Grad mode, as torch's: whether a forward keeps the tape that `backward` needs.

Mode (dropout on or off) and tape are two separate choices, as in torch: `module.train()` /
`module.eval()` decide dropout, and the grad mode decides whether a forward keeps its tape.
The grad mode is on by default and per thread; inside `with fastrnn.no_grad():` forwards keep no
tape (and run the faster inference kernels), leave any pending tape alone, and `backward` has
nothing new to run through. `no_grad()` also works as a decorator (`@fastrnn.no_grad()`).
"""
import contextlib
import threading

_state = threading.local()


def is_grad_enabled():
    """True when forwards in this thread keep a tape for `backward` (the default)."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def set_grad_enabled(mode):
    """Within this block, forwards in this thread keep a tape iff `mode` (a bool)."""
    if not isinstance(mode, bool):
        raise TypeError(f"mode: expected a bool, got {type(mode).__name__}")
    old = is_grad_enabled()
    _state.enabled = mode
    try:
        yield
    finally:
        _state.enabled = old


def no_grad():
    """Context manager (or decorator): forwards keep no tape; see the module docstring."""
    return set_grad_enabled(False)


def enable_grad():
    """Context manager (or decorator): forwards keep their tape again (inside `no_grad`)."""
    return set_grad_enabled(True)
