"""The parameter storage a module tree shares: its version number and its public views.

`version` changes whenever fastrnn writes the parameters (load_state_dict, rebind, re-layout,
every fastrnn.optim step, `invalidate()`). Caches derived from the weights (the layers' packed
W_hh panels for inference) key on it.

A user may also edit the weights in place through a public view -- `model.params[...] = ...`, an
array from `named_parameters()`/`parameters()`/`state_dict()`, or `torch.from_numpy(view)` --
without calling `invalidate()`, as a torch user would. To see those edits without paying for a
check at every call, every public view is derived from one array, `public`, that shares the
storage's memory but is a separate Python object (NumPy makes every view of it, and every view
of those, point at it as their `.base`, and torch.from_numpy keeps its array alive), while
fastrnn's own code works on views of the storage itself. So:

- `exposures` counts the public views handed out (each could be written right away), and
- `views_alive()` is True while any public view (or a tensor made from one) still exists,
  read from the reference count of `public` in O(1).

A cache checks its source weights (a memcmp against a saved copy) only when a view was handed
out since its last check or one is still alive; a batch-1 sampling loop with no public view
around pays nothing. Storage that the user supplied (`rebind`) is always checked.
"""
import itertools
import sys

import numpy as np

_versions = itertools.count(1)      # process-wide: a version number is never reused


class Storage:
    """Version and public-view bookkeeping of one tree (children adopt their root's on attach)."""
    __slots__ = ("version", "exposures", "base", "public", "external", "_refs")

    def __init__(self):
        self.version, self.exposures, self.external = next(_versions), 0, False
        self.bind(np.zeros(0))

    def bind(self, params, external=False):
        """Make the 1-D C-contiguous `params` the storage (`external`: the user holds it)."""
        self.base, self.external = params, external
        self.public = np.frombuffer(memoryview(params), params.dtype) if params.size else params[:0].copy()
        self._refs = sys.getrefcount(self.public)       # ours alone: no public view out yet

    def bump(self):
        """A new version: every cache keyed on the old one is stale."""
        self.version = next(_versions)

    def view(self, internal):
        """The public twin of `internal` (a view into `base`): same memory, counted as handed out."""
        self.exposures += 1
        if not internal.size:
            return self.public[:0].reshape(internal.shape)
        start = (internal.__array_interface__["data"][0] - self.base.__array_interface__["data"][0]) \
            // self.base.itemsize
        return self.public[start:start + internal.size].reshape(internal.shape)

    def views_alive(self):
        """True while a public view (or anything made from one) may still write the weights."""
        return self.external or sys.getrefcount(self.public) > self._refs
