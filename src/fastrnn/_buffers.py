"""Scratch buffers of a recurrent layer: per thread, bounded, reused between calls.

A training loop reuses its tapes and a sampling loop its step workspaces instead of allocating
them at every call; two threads using one layer get separate buffers (so concurrent inference on
one model is safe); and what is kept is bounded: the most recent keys only, and nothing larger
than `KEEP_BYTES` outlives the call that needed it (a T = 20,000 forward does not leave gigabytes
attached to the layer).
"""
import threading
from collections import OrderedDict

import numpy as np

KEEP_BYTES = 64 << 20     # buffers above this size are dropped once their call is over


class LayerBuffers:
    """{key: 1-D buffer} per thread, least recently used first out past `max_keys` entries."""

    def __init__(self, dtype, max_keys):
        self.dtype, self.max_keys = np.dtype(dtype), int(max_keys)
        self._local = threading.local()

    def _store(self):
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = OrderedDict()
        return store

    def get(self, key, size):
        """A buffer of at least `size` elements for `key` in this thread (its head is used)."""
        store = self._store()
        buf = store.pop(key, None)
        if buf is None or buf.size < size:
            buf = np.empty(size, self.dtype)
        store[key] = buf
        while len(store) > self.max_keys:
            store.popitem(last=False)
        return buf

    def trim(self):
        """Drop this thread's buffers larger than KEEP_BYTES (called when a call is over)."""
        store = self._store()
        for key in [k for k, b in store.items() if b.nbytes > KEEP_BYTES]:
            del store[key]

    def clear(self):
        """Drop every buffer of this thread."""
        self._store().clear()

    @property
    def tape(self):
        """This thread's pending training tape (None when there is none)."""
        return getattr(self._local, "tape", None)

    @tape.setter
    def tape(self, value):
        self._local.tape = value

    def nbytes(self):
        """Bytes held by this thread's buffers."""
        return sum(b.nbytes for b in self._store().values())
