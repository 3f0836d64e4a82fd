# The decompositions of a call (csrc/decomp.h, decomp_model.h): which one the cost model picks, and the barrier
# count benchmarks report. Included by _kernels.pyx.

from libc.stdlib cimport malloc, free

# (the C declarations of frnn_decomposition and frnn_sync_count are in _kernels.pxd)

DECOMPOSITIONS = ("units", "batch", "pipeline", "one", "directions")


def decomposition(cell, T, B, I, H, P=None, *, layers=1, directions=1, threads=None, train=True,
                  precision="float32"):
    """The decomposition ("units", "batch", "pipeline", "one" or "directions") a float32 call of `layers` x
    `directions` with these sizes runs at `threads` members (default: the team's), after
    FASTRNN_DECOMP; layers above the first read directions * P features. train=False: an
    inference forward (no tape for a backward); precision 'float32' or 'bf16' (the products')."""
    cdef int code = _cell_code(cell), i, prec = _precision_code(precision, False)
    if not isinstance(layers, int) or layers < 1 or layers > 1024:
        raise ValueError(f"layers: expected an int in [1, 1024], got {layers!r}")
    if directions not in (1, 2):
        raise ValueError(f"directions: expected 1 or 2, got {directions!r}")
    if threads is not None and (not isinstance(threads, int) or not 1 <= threads <= 256):
        raise ValueError(f"threads: expected an int in [1, 256] or None, got {threads!r}")
    P = H if P is None else P
    cdef int L = layers, D = directions, nth = frnn_threads() if threads is None else threads
    first = _dims(code, T, B, I, H, P, False)
    upper = _dims(code, T, B, D * P, H, P, False)
    cdef frnn_dims *dims = <frnn_dims *>malloc(sizeof(frnn_dims) * L * D)
    if dims == NULL:
        raise MemoryError()
    try:
        for i in range(L * D):
            dims[i] = first if i < D else upper
        got = frnn_decomposition(dims, L, D, nth, 1 if train else 0, prec)
    finally:
        free(dims)
    return DECOMPOSITIONS[got - 1]


def sync_count():
    """Barriers the thread team has opened since the process started (for benchmarks)."""
    return frnn_sync_count()
