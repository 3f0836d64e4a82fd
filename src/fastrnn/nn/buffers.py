"""Scratch buffers of a recurrent layer: per thread, bounded, reused between calls.

A training loop reuses its tapes and a sampling loop its step workspaces instead of allocating
them at every call; two threads using one layer get separate buffers (so concurrent inference on
one model is safe); and what is kept is bounded: the most recent keys only, and nothing larger
than `KEEP_BYTES` outlives the call that needed it (a T = 20,000 forward does not leave gigabytes
attached to the layer). A call never reuses a buffer much larger than it needs either (see
`oversized`): after a T = 20,000 training forward, a T = 10 one gets a T = 10 tape and the large
one is freed with the tape it belonged to.
"""
import threading
import weakref
from collections import OrderedDict

import numpy as np

KEEP_BYTES = 64 << 20     # buffers above this size are dropped once their call is over
_OWNERS = weakref.WeakSet()   # every object with a LayerBuffers, for release_buffers()


def oversized(held, need):
    """True when a buffer of `held` bytes is too large to serve a request of `need` bytes:
    less than half of it would be used and the unused part is over KEEP_BYTES. Such a buffer is
    replaced by one of the requested size, so what a store holds beyond the current call's need
    is bounded (at most max(need, KEEP_BYTES) per key)."""
    return 2 * need < held and held - need > KEEP_BYTES


def release_buffers():
    """Free the cached buffers of every layer for the calling thread, now.

    Drops, for every live layer, this thread's cached tapes and workspaces and its pending
    training tape (a `backward` then needs a new training forward), and the layer's packed
    inference weights (shared by its threads; re-packed at the next call). Other threads' buffers
    are left alone (they are freed when those threads end or call this themselves). Everything
    is re-created on demand: nothing but speed changes for the next call.
    """
    for owner in list(_OWNERS):
        owner.release_buffers()


class LayerBuffers:
    """{key: 1-D buffer} per thread, least recently used first out past `max_keys` entries."""

    def __init__(self, dtype, max_keys, owner=None):
        self.dtype, self.max_keys = np.dtype(dtype), int(max_keys)
        self._local = threading.local()
        if owner is not None:             # owner.release_buffers() is called by release_buffers()
            _OWNERS.add(owner)

    def _store(self):
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = OrderedDict()
        return store

    def get(self, key, size):
        """A buffer of at least `size` elements for `key` in this thread (its head is used); one
        much larger than `size` is not reused (see `oversized`)."""
        store = self._store()
        buf = store.pop(key, None)
        if buf is None or buf.size < size or oversized(buf.nbytes, size * self.dtype.itemsize):
            buf = None                    # let go of the old one before allocating
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
