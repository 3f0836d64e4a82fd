"""Data-parallel training over MPI: what `Trainer(..., distributed=...)` adds.

K ranks hold the same model (rank 0's parameters are broadcast at the start). Every global batch
is split by examples: rank r takes rows [r*n//K, (r+1)*n//K) of each array of the batch whose
first axis has the batch's n rows (a language model's K*B streams: streams r*B..(r+1)*B-1;
a padded batch: its slice of the examples). K ranks with a global batch of K*B therefore train
exactly as one process with batch K*B.

Loss normalisation: each rank's loss is a mean over its own items (tokens, examples, or the
mask's weight), so the global gradient is sum_r(w_r * g_r) / sum_r(w_r), with w_r the weight its
mean ran over (the model's loss block records it) -- not the plain mean of the g_r, which is
right only when every shard holds the same number of items. After backward the flat gradient
buffer, scaled by w_r, goes into ONE Allreduce together with a few numbers: w_r, w_r * loss_r,
the items, the ranks' stop requests (Ctrl-C, time budget) and one "non-finite" flag per rank.
So every rank sees the same gradient, loss and flags, clips and steps identically, stops at the
same iteration, and a NaN on one rank stops every rank with a message naming it.

`overlap=True` splits that reduction into buckets (the model's top-level children): a child's
gradient slice starts its non-blocking Iallreduce as soon as its backward has returned, while
the children below it are still in backward.
"""
import contextlib
import os
import time
import traceback

import numpy as np

from .. import distributed as mpi
from ..nn.losses import _Loss

# the numbers that travel after the gradient in the reduction buffer
_WEIGHT, _LOSS, _ITEMS, _INTERRUPT, _TIME = range(5)
_FLAGS = 5          # then one non-finite flag per rank


def communicator(distributed):
    """The communicator for Trainer(distributed=...): None/"auto" -> COMM_WORLD when launched by
    an MPI launcher, else no distribution; True -> COMM_WORLD (mpi4py required); False -> none;
    or an mpi4py communicator."""
    if distributed is None or distributed == "auto":
        return mpi.world() if mpi.launched() else None
    if distributed is False:
        return None
    if distributed is True:
        return mpi.world()
    if not all(hasattr(distributed, a) for a in ("Allreduce", "Get_rank", "Get_size")):
        raise TypeError(f"distributed: expected None, True, False or an mpi4py communicator, "
                        f"got {type(distributed).__name__}")
    return distributed


def bounds(n, rank, size):
    """[lo, hi) of rank's share of n rows (balanced, contiguous, in rank order)."""
    return rank * n // size, (rank + 1) * n // size


def shard_batch(batch, rank, size):
    """Rank's rows of `batch` (an array, or a tuple/list/dict of them and other values), None
    when its share is empty. Arrays whose first axis is the batch's (the first array's) are
    sliced; everything else is passed through."""
    for name, value in (("rank", rank), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}: expected an integer, got {value!r}")
    if not 0 <= rank < size:
        raise ValueError(f"rank: expected 0 <= rank < size, got rank {rank} of size {size}")
    if isinstance(batch, dict):
        keys = list(batch)
        part = shard_batch([batch[k] for k in keys], rank, size)
        return None if part is None else dict(zip(keys, part))
    single = isinstance(batch, np.ndarray)
    items = [batch] if single else batch
    if not isinstance(items, (tuple, list)):
        raise TypeError(f"batch: expected an array or a tuple/list/dict of arrays to split across "
                        f"ranks, got {type(batch).__name__}")
    first = next((a for a in items if isinstance(a, np.ndarray) and a.ndim), None)
    if first is None:
        raise ValueError("batch: has no array whose first axis is the batch to split across ranks")
    lo, hi = bounds(first.shape[0], rank, size)
    if lo == hi:
        return None
    out = [a[lo:hi] if isinstance(a, np.ndarray) and a.ndim and a.shape[0] == first.shape[0] else a
           for a in items]
    return out[0] if single else type(batch)(out) if isinstance(batch, tuple) else out


class Shard:
    """Rank's view of an indexable batch source: len() as the source, [k] its share of batch k
    (None when empty). Callbacks keep acting on the source itself (e.g. PaddedBatches epochs)."""

    def __init__(self, source, rank, size):
        self.source, self.rank, self.size = source, rank, size

    def __len__(self):
        return len(self.source)

    def __getitem__(self, k):
        return shard_batch(self.source[k], self.rank, self.size)


class DataParallel:
    """The per-rank side of data-parallel training for one model (see the module docstring)."""

    def __init__(self, comm, model, items, overlap=False):
        MPI = mpi.import_mpi()
        self.MPI, self.comm, self.model, self.items = MPI, comm, model, items
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        # no collective before `start`: a rank whose setup fails must find the others at the
        # agreement point (the CLI's Setup block), not in a broadcast they wait in forever
        setup = mpi.current_setup(comm)
        self.facts, self.agreed, self.started = (setup.facts if setup else {}), setup is not None, False
        self.batch_counts = []
        self.facts["model"] = mpi.fact(
            (type(model).__name__, getattr(model, "config", None), model.params.size, str(model.dtype)),
            f"{type(model).__name__} of {model.params.size} {model.dtype} parameters")
        self.decorrelate_rngs()
        P = model.params.size
        self.buf = np.zeros(P + _FLAGS + self.size, model.dtype)
        self.losses = [v for _, m in model.modules() for v in vars(m).values() if isinstance(v, _Loss)]
        self.stop_request, self.agreed_stop = None, None
        self.reduce_seconds = 0.0       # time spent in (waiting for) the reductions, for benchmarks
        self.buckets = _Buckets(self, model) if overlap else None

    # ---- setup -------------------------------------------------------------------------------
    def start(self):
        """The run's first collectives (once; every collective method calls it): the agreement
        on the facts (unless the Setup block the Trainer was built in held it), the kernel
        threads of this host's share of cores, and rank 0's weights on every rank."""
        if self.started:
            return
        self.started = True
        if not self.agreed:
            mpi.agree(self.comm, self.facts)
            self.agreed = True
        if "FASTRNN_NUM_THREADS" not in os.environ:     # the ranks on a host share its cores
            from .._kernels import set_num_threads
            set_num_threads(mpi.default_threads(self.comm))
        self.comm.Bcast(self.model.params, root=0)      # every rank starts from rank 0's weights
        self.model.invalidate()

    def decorrelate_rngs(self):
        """Give every rank its own dropout stream (as DDP: different masks on different data),
        derived from rank 0's state: rank r jumps r times ahead."""
        if self.rank == 0:
            return
        for rng in self.model._rngs().values():
            bg = rng.bit_generator
            try:
                bg.state = bg.jumped(self.rank).state
            except AttributeError:       # a bit generator without jumps: reseed from its state
                seed = np.frombuffer(repr(bg.state).encode(), np.uint8).astype(np.uint32)
                bg.state = type(bg)(np.random.SeedSequence([self.rank, *seed])).state

    def shard(self, batches):
        """This rank's view of an indexable batch source (None stays None); its number of
        batches joins the facts the ranks agree on."""
        self.batch_counts.append(None if batches is None else len(batches))
        self.facts["batches (training, validation)"] = mpi.fact(self.batch_counts)
        return None if batches is None else Shard(batches, self.rank, self.size)

    # ---- one training step -------------------------------------------------------------------
    def _weight(self, batch):
        """What this rank's mean loss was taken over (see the module docstring)."""
        if hasattr(self.model, "loss_weight"):
            return float(self.model.loss_weight())
        used = [loss.total for loss in self.losses if loss.total is not None]
        if len(used) == 1:
            return float(used[0])
        return float(self.items(batch))         # no single loss block: weigh by examples

    def _local_loss(self, forward, batch, train):
        """(loss, weight) of this rank's share of a batch; (0, 0) for an empty share."""
        if batch is None:
            return 0.0, 0.0
        for loss in self.losses:
            loss.total = None
        return float(forward(batch, train)), self._weight(batch)

    def gradients(self, forward, batch):
        """Forward and backward on this rank's share, then the one reduction: afterwards
        model.grads holds the gradient of the global batch's mean loss on every rank. Returns the
        global mean loss; raises TrainingDiverged on every rank if any rank's loss or gradient
        was not finite."""
        self.start()
        loss, w = self._local_loss(forward, batch, True)
        bad = not np.isfinite(loss)
        if self.buckets is not None and batch is not None and not bad:
            self.buckets.start(w)
        if batch is not None and not bad:
            self.model.backward()
        g, P = self.model.grads, self.model.grads.size
        bad = bad or not np.isfinite(float(np.dot(g, g)))
        tail = self.buf[P:]
        tail[:] = 0
        tail[_WEIGHT], tail[_LOSS] = w, (loss * w if not bad else 0.0)
        tail[_ITEMS] = self.items(batch) if batch is not None else 0
        tail[_INTERRUPT] = self.stop_request == "interrupted"
        tail[_TIME] = self.stop_request == "time budget"
        tail[_FLAGS + self.rank] = bad
        self._reduce(w)
        if tail[_FLAGS:].any():
            from .divergence import TrainingDiverged
            ranks = ", ".join(str(r) for r in np.flatnonzero(tail[_FLAGS:]))
            raise TrainingDiverged(f"the training loss or gradients became non-finite on rank(s) {ranks}")
        np.divide(self.buf[:P], tail[_WEIGHT], out=g)
        self.agreed_stop = ("interrupted" if tail[_INTERRUPT] else
                            "time budget" if tail[_TIME] else None)
        self.global_items = int(tail[_ITEMS])
        return float(tail[_LOSS] / tail[_WEIGHT])

    def _reduce(self, w):
        """Sum self.buf over the ranks (gradient part scaled by w first), timing the wait."""
        t0 = time.perf_counter()
        P = self.model.grads.size
        if self.buckets is not None:
            self.buckets.finish(w)
        else:
            np.multiply(self.model.grads, w, out=self.buf[:P])
            self.comm.Allreduce(self.MPI.IN_PLACE, self.buf, op=self.MPI.SUM)
        self.reduce_seconds += time.perf_counter() - t0

    # ---- validation, checkpoints -------------------------------------------------------------
    def mean_loss(self, forward, batches):
        """Mean over the global batches of each one's mean loss (as one process computes it)."""
        self.start()
        sums = np.zeros((2, len(batches)))
        for k in range(len(batches)):
            loss, w = self._local_loss(forward, batches[k], False)
            sums[:, k] = loss * w, w
        self.comm.Allreduce(self.MPI.IN_PLACE, sums, op=self.MPI.SUM)
        with np.errstate(invalid="ignore"):
            return float(np.mean(sums[0] / sums[1]))

    def sum_over_ranks(self, values):
        """The element-wise sum over the ranks of a vector of numbers, as float64 on every rank
        (e.g. the task metrics' sufficient statistics of each rank's validation share)."""
        self.start()
        out = np.array(values, np.float64).ravel()
        self.comm.Allreduce(self.MPI.IN_PLACE, out, op=self.MPI.SUM)
        return out

    def gather_arrays(self, callback, arrays):
        """On rank 0, a callback's per-rank arrays joined along its `sharded_axis` in rank order
        (e.g. the carried LM state of every stream); other ranks get None."""
        axis = getattr(callback, "sharded_axis", None)
        if axis is None:
            return arrays
        self.start()
        parts = self.comm.gather(arrays, root=0)
        if self.rank != 0:
            return None
        names = list(dict.fromkeys(n for p in parts for n in p))    # a rank without data has none
        return {n: np.concatenate([p[n] for p in parts if n in p], axis=axis) for n in names}

    def local_arrays(self, callback, arrays):
        """Inverse of `gather_arrays` on resume: this rank's slice of each sharded array."""
        axis = getattr(callback, "sharded_axis", None)
        if axis is None:
            return arrays
        out = dict(arrays)      # holds every callback's arrays: the callback reads only its own
        for name, a in arrays.items():
            if a.ndim > axis:
                lo, hi = bounds(a.shape[axis], self.rank, self.size)
                out[name] = np.take(a, np.arange(lo, hi), axis=axis)
        return out

    @contextlib.contextmanager
    def abort_on_error(self):
        """An exception on one rank ends every rank (they would wait for it forever in the next
        collective). TrainingDiverged is decided on reduced numbers, and SetupFailed by the
        agreement at the start, so every rank raises them together: they propagate normally."""
        from .divergence import TrainingDiverged
        try:
            self.start()
            yield
        except (TrainingDiverged, mpi.SetupFailed):
            raise
        except BaseException as e:      # noqa: B036 (KeyboardInterrupt too: the others would hang)
            mpi.abort(self.comm, f"{type(e).__name__}: {e}", detail=traceback.format_exc())


class _Buckets:
    """Non-blocking reduction in buckets, one per top-level child of the model (its contiguous
    span of the flat gradient), plus a final one for the rest (the root's own parameters, the
    children whose backward was not seen, and the numbers after the gradient).

    The first step is reduced in one call while it records the order in which the children's
    backward starts; the ranks agree on it (allgather). From then on, when child k's backward
    starts, the buckets of the children before it in that order are started (the model has
    moved on to lower layers: their gradients are final); the rest starts when backward has
    returned. Every rank starts the same reductions in the same order (a rank without data starts
    them all at the end). A child whose backward runs twice per step (a shared block), or a
    backward order that changes, turns overlap off (first step) or is an error (later)."""

    def __init__(self, dp, model):
        self.dp, self.model, self.w = dp, model, 1.0
        base = model.params.__array_interface__["data"][0]
        self.spans = {}
        for name, child in model._children.items():
            if child.params.size:
                lo = (child.params.__array_interface__["data"][0] - base) // model.params.itemsize
                self.spans[name] = (lo, lo + child.params.size)
                self._wrap(name, child)
        self.order, self.learning, self.enabled = [], True, True
        self.start(1.0)

    def _wrap(self, name, child):
        original = child.backward

        def backward(*args, **kwargs):
            self._entered(name)
            return original(*args, **kwargs)
        object.__setattr__(child, "backward", backward)       # on this instance only

    def start(self, w):
        """A new step whose gradients get weight w."""
        self.requests, self.seen, self.issued, self.w = [], [], 0, w

    def _entered(self, name):
        if self.learning or not self.enabled:
            self.seen.append(name)
            return
        if name not in self.order or self.order.index(name) < self.issued:
            raise RuntimeError(f"overlap: module {name!r} ran backward out of the order of the "
                               f"first step ({self.order}); train without overlap")
        while self.order[self.issued] != name:     # the children before it are done
            self._issue(self.order[self.issued])

    def _issue(self, name):
        lo, hi = self.spans[name]
        part = self.dp.buf[lo:hi]
        np.multiply(self.dp.model.grads[lo:hi], self.w, out=part)
        MPI = self.dp.MPI
        self.requests.append(self.dp.comm.Iallreduce(MPI.IN_PLACE, part, op=MPI.SUM))
        self.issued += 1

    def finish(self, w):
        """Reduce what has not been started (the whole buffer while learning) and wait."""
        MPI, buf, g = self.dp.MPI, self.dp.buf, self.dp.model.grads
        self.w = w
        if self.learning or not self.enabled:
            np.multiply(g, w, out=buf[:g.size])
            self.dp.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            if self.learning:
                self._agree()
            return self.start(1.0)
        while self.issued < len(self.order):
            self._issue(self.order[self.issued])
        rest = np.ones(buf.size, bool)
        for name in self.order:
            lo, hi = self.spans[name]
            rest[lo:hi] = False
        idx = np.flatnonzero(rest)
        own = idx[idx < g.size]
        packed = np.concatenate([g[own] * w, buf[g.size:]]).astype(buf.dtype, copy=False)
        MPI.Request.Waitall(self.requests + [self.dp.comm.Iallreduce(MPI.IN_PLACE, packed, op=MPI.SUM)])
        buf[idx] = packed
        self.start(1.0)

    def _agree(self):
        """After the first step: every rank takes the same order, or turns overlap off."""
        orders = [o for o in self.dp.comm.allgather(self.seen) if o]
        self.learning = False
        self.order = orders[0] if orders else []
        self.enabled = bool(self.order) and all(o == self.order for o in orders) \
            and len(set(self.order)) == len(self.order)
