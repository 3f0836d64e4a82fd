"""Grad mode, as torch's: whether a forward keeps the tape that `backward` needs.

Mode (dropout on or off) and tape are two separate choices, as in torch: `module.train()` /
`module.eval()` decide dropout, and the grad mode decides whether a forward keeps its tape.
The grad mode is on by default and per thread; inside `with fastrnn.no_grad():` forwards keep no
tape (and run the faster inference kernels), leave any pending tape alone, and `backward` has
nothing new to run through. `no_grad()` and `enable_grad()` also work as decorators;
`set_grad_enabled(mode)` works as a context manager or as a plain call, as torch's.
"""
import contextlib
import threading

_state = threading.local()


def is_grad_enabled():
    """True when forwards in this thread keep a tape for `backward` (the default)."""
    return getattr(_state, "enabled", True)


def _set(mode):
    _state.enabled = mode


class _Switch(contextlib.ContextDecorator):
    """Set the grad mode to `mode` for a block (or each call of a decorated function)."""
    mode = None

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set(self.mode)
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        return False

    def _recreate_cm(self):             # a decorated function: a fresh switch per call (threads)
        return type(self)()


class no_grad(_Switch):
    """Context manager (or decorator): forwards keep no tape; see the module docstring."""
    mode = False


class enable_grad(_Switch):
    """Context manager (or decorator): forwards keep their tape again (inside `no_grad`)."""
    mode = True


class set_grad_enabled:
    """Set this thread's grad mode to `mode` (a bool) now; used as a context manager, the mode
    it replaced comes back at the end of the block."""

    def __init__(self, mode):
        if not isinstance(mode, bool):
            raise TypeError(f"mode: expected a bool, got {type(mode).__name__}")
        self._prev = is_grad_enabled()
        _set(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        return False
