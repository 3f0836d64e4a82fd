"""The packed recurrent weights a layer keeps for inference: packed once, never stale.

On the float32 engine a no-tape forward and `step` multiply by W_hh (and W_hr) packed in panels
and the input projection by W_ih^T packed in blocks (`_kernels.pack_forward` with W_ih; a forward
of T * B >= 8 rows reads it, fewer rows read W_ih in place as before). Packing at every call would
cost as much as a batch-1 step (W_ih^T alone was 6 % of a (20, 1, 256, 512) forward), so a layer
keeps each pack while `param_version` is unchanged. A user may also edit the weights in place
through a public view without calling `invalidate()`; so each pack keeps a copy of the weights it
came from, and `check` compares that copy with the weights (one memcmp) whenever a public view has
been handed out since the last check or one is still alive (`fastrnn.nn.storage`), dropping a
pack that differs. With no public view around (a sampling loop) the check is two attribute reads.
"""
from . import _kernels
from ._kernels import same_bytes


def sources(precision, W_hh, W_hr, W_ih):
    """The weights a pack is made from, in the order `PackCache` copies them: W_hh, W_hr (when
    there is one) and W_ih (None for a layer 0 fed projected inputs or ids). Every precision's
    pack holds W_ih^T (`precision` kept for the callers' signature)."""
    return tuple(w for w in (W_hh, W_hr, W_ih) if w is not None)


class PackCache:
    """{(layer, direction, precision): (version, packed or None, copies of its source weights)}."""

    def __init__(self):
        self.entries, self.checked = {}, -1

    def get(self, key, version, cell, W_hh, W_hr, peephole, W_ih=None):
        """The pack of W_hh (and W_hr, and W_ih^T) for `key` (its last item the precision),
        made now unless one of `version` is kept (None where the kernels run on BLAS)."""
        hit = self.entries.get(key)
        if hit is None or hit[0] != version:
            precision = key[-1]
            packed = _kernels.pack_forward(cell, W_hh, W_hr, peephole=peephole, precision=precision,
                                           W_ih=W_ih)
            copies = () if packed is None else tuple(w.copy() for w in sources(precision, W_hh, W_hr, W_ih))
            hit = self.entries[key] = (version, packed, copies)
        return hit[1]

    def check(self, storage, weights_of):
        """Drop the packs whose source weights (`weights_of(key)`: the current W_hh, W_hr) were
        edited in place; compares only when `storage` says a public view was handed out since the
        last check or one is alive."""
        exposures = storage.exposures
        if exposures == self.checked and not storage.views_alive():
            return
        self.checked = exposures
        for key, (version, packed, sources) in list(self.entries.items()):
            if version != storage.version or packed is None:
                continue                        # re-packed at its next use anyway
            if not all(same_bytes(a, b) for a, b in zip(sources, weights_of(key))):
                self.entries.pop(key, None)
