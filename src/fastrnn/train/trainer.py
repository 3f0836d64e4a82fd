"""One training loop for every model: validation, checkpoints, JSONL log, exact resume, Ctrl-C,
learning-rate decay and divergence detection.

A model is anything with `params`/`grads` (a `fastrnn.nn.Module`), `zero_grad()`, `backward()`
and a forward that gives the loss of a batch: by default `model.forward(batch, train=...)`, or
any `forward(batch, train) -> loss` function (e.g. `StateCarry` for truncated BPTT). Batches come
from any indexable (len + [i]) source; a plain iterable is read once into a list.

After every `eval_every` iterations the Trainer measures the validation loss, writes `best.npz`
(when validation improved), appends a line to `log.jsonl`, then writes `last.npz`: in that order,
so that a crash at any instant leaves files that a resume reconciles (`run_files`). A checkpoint holds
everything needed to continue exactly: parameters, optimiser state, the RNG states of the whole
model, the callbacks' state (e.g. the carried hidden state) and the position in the data.

Divergence (a non-finite loss, gradient or parameter, or an exploding loss) stops training with
`TrainingDiverged` before anything is written (`fastrnn.train.divergence`).

Data-parallel over MPI (`distributed=`, detected by default under `mpiexec`): every rank takes
its share of each global batch and the gradients are averaged by one all-reduce
(`fastrnn.train.distributed`); only rank 0 prints and writes files, every rank can resume.
"""
import math
import os
import signal
import time

import numpy as np

from .. import io, optim
from ..params import is_real
from . import fused, run_files
from .callbacks import Callback, ModelForward
from .divergence import TrainingDiverged, check_loss
from .divergence import finite as _finite
from .hooks import call, check_callbacks
from .update import python_update
from .precision import apply_precision

OPTIMIZERS = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
              "sgd": optim.SGD, "adagrad": optim.Adagrad}


class Trainer:
    """Train `model` on the batches `train`, validating on `val` (see the module docstring).

    optimizer: one of OPTIMIZERS; clip: global-norm gradient clipping (0/None = off);
    clip_value: clamp every gradient element to [-clip_value, clip_value] after that (char-rnn's
    grad_clip; 0/None = off); lr_decay: factor applied to the learning rate after every epoch
    (char-rnn's exponential decay), or every `lr_decay_every` iterations when that is given (step
    decay), in both cases only once `lr_decay_after` epochs are complete (char-rnn's
    learning_rate_decay_after; None/0 = from the start); epochs and/or
    max_time (seconds) bound the run; explode_factor: a loss above explode_factor times its
    running level (plus 1) counts as divergence (0/None = only non-finite values do);
    out: directory for best.npz, last.npz and log.jsonl (None = keep nothing on disk);
    forward(batch, train) -> loss (default model.forward(batch, train=train)); callbacks: see
    `fastrnn.train.callbacks`; items(batch) -> items counted for the items/s display.
    distributed: None (detect an MPI launch), True, False or an mpi4py communicator; batches
    are global (each rank trains on its share of every batch, see fastrnn.train.distributed);
    overlap=True reduces gradients in buckets while backward still runs.

    What a model or task adds comes through hooks: `forward` (e.g. a language model's
    `StateCarry`), `callbacks` (a task's metrics), `items` (its `unit` names the rate, tok/s for
    `fastrnn.tasks.lm.tokens`), `vocab` (saved with every checkpoint); the validation line shows a
    perplexity when `model.token_loss` says the loss is a mean token cross-entropy. A language
    model's first form, `Trainer(model, vocab, train_ids, val_ids, batch_size=50, seq_len=50,
    val_tokens=200_000, ...)`, is kept for one release (`fastrnn.tasks.lm.stream_batches`).

    Parameters
    ----------
    model : fastrnn model
        Anything with ``params``/``grads``, ``zero_grad()``, ``backward()`` and a forward.
    train : indexable or iterable of batches
        Training batches in the model's format (or the `Vocab` of the language-model form).
    val : indexable or iterable of batches, optional
        Validation batches; None: no validation.
    *lm_val
        The language-model form's validation ids.
    forward : callable, optional
        ``forward(batch, train) -> loss``; default ``model.forward(batch, train=train)``.
    callbacks : sequence of Callback, default ()
        See `fastrnn.train.callbacks`; `EarlyStopping`, `ModelCheckpoint`, ...
    items : callable, optional
        ``items(batch)`` -> items counted for the items/s display.
    vocab : Vocab, optional
        Saved with every checkpoint.
    batch_size, seq_len : int, default 50
        The language-model form's stream batches.
    optimizer : str, default "adam"
        One of ``OPTIMIZERS`` (adam, adamw, rmsprop, sgd, adagrad).
    lr : float, default 2e-3
        Learning rate.
    clip : float, default 5.0
        Global-norm gradient clipping (0/None = off).
    clip_value : float, optional
        Clamp every gradient element to [-clip_value, clip_value] after that.
    lr_decay : float, default 1.0
        Learning-rate factor applied after every epoch (or every `lr_decay_every` iterations).
    lr_decay_every : int, optional
        Step decay every that many iterations.
    lr_decay_after : int, optional
        Epochs to complete before decaying.
    epochs : int, default 1
        Epochs to run (>= 1).
    max_time : float, optional
        Time budget in seconds.
    eval_every : int, default 200
        Iterations between validations.
    val_tokens : int, default 200_000
        The language-model form's validation size.
    explode_factor : float, default 10.0
        Divergence threshold over the running loss level (0/None: only non-finite values).
    out : str or os.PathLike, optional
        Run directory for best.npz, last.npz and log.jsonl; None keeps nothing on disk.
    progress : bool, default True
        Show a progress bar.
    meta : dict, optional
        JSON-serialisable metadata saved with every checkpoint.
    distributed : bool or mpi4py communicator, optional
        Data-parallel training over MPI; None detects an MPI launch.
    overlap : bool, default False
        Reduce gradients in buckets while backward still runs.
    scheduler : callable, optional
        A function of the optimiser returning a `fastrnn.optim` scheduler.
    scheduler_every : {"epoch", "iteration", "validation"}, optional
        When the scheduler steps (default: validation for ReduceLROnPlateau, else epoch).
    early_stop : int, optional
        Patience of an ``EarlyStopping("val_loss")`` callback added to `callbacks`.
    precision : {"float32", "bf16"}, optional
        The products' precision of the model's recurrent layers (``model.precision``; bf16 mixed
        precision: float32 weights, gradients, optimiser state and checkpoints). None keeps the
        model's. Recorded in the checkpoints' settings; `resume(..., precision=...)` changes it.
    fused : bool, optional
        False: never the fused native step (`fastrnn.train.fused`; FASTRNN_FUSED=0 does the same);
        None (default): use it where it applies (one process; a language model with StateCarry,
        a tagger, softmax classifier, ConditionedGenerator or Seq2Seq with the default forward or
        a task's ModelForward).

    Raises
    ------
    TypeError, ValueError
        A bad argument, named in the message, before anything is trained.
    """

    def __init__(self, model, train, val=None, *lm_val, forward=None, callbacks=(), items=None,
                 vocab=None, batch_size=50, seq_len=50, optimizer="adam", lr=2e-3, clip=5.0,
                 clip_value=None, lr_decay=1.0, lr_decay_every=None, lr_decay_after=None, epochs=1,
                 max_time=None, eval_every=200,
                 val_tokens=200_000, explode_factor=10.0, out=None, progress=True, meta=None,
                 distributed=None, overlap=False, scheduler=None, scheduler_every=None, early_stop=None,
                 precision=None, fused=None):
        from ..data import Vocab
        if isinstance(train, Vocab):       # the language model's first form (see the docstring)
            from ..tasks.lm import carry, stream_batches
            vocab, (train, val) = train, stream_batches(val, lm_val[0] if lm_val else None,
                                                        batch_size, seq_len, val_tokens)
            hooks = carry(model)
            forward, items = forward or hooks["forward"], items or hooks["items"]
        elif lm_val:
            raise TypeError("Trainer: expected (model, train, val=None) or (model, vocab, train_ids, val_ids)")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
        for name, value in (("eval_every", eval_every), ("epochs", epochs)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if lr_decay_after is not None and (not isinstance(lr_decay_after, (int, np.integer))
                                           or isinstance(lr_decay_after, bool) or lr_decay_after < 0):
            raise ValueError(f"lr_decay_after: expected None or an integer >= 0, got {lr_decay_after!r}")
        for name, value in (("clip", clip or 0), ("clip_value", clip_value or 0),
                            ("explode_factor", explode_factor or 0),
                            ("lr_decay", lr_decay), ("max_time", max_time or 0)):
            if not is_real(value) or not value >= 0:
                raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
        run_files.check_out(out)
        io.check_meta(meta or {})     # NaN/inf or non-JSON metadata: refused before training, not at the first save
        self.model, self.vocab = model, vocab
        self.callbacks = check_callbacks(callbacks)
        if early_stop is not None and (isinstance(early_stop, bool) or not isinstance(early_stop, (int, np.integer))
                                       or early_stop < 1):
            raise ValueError(f"early_stop: expected None or a positive integer, got {early_stop!r}")
        self.batches, self.val_batches = _indexable(train, "train"), _indexable(val, "val")
        if not len(self.batches):
            raise ValueError("train: expected at least one batch")
        self.forward = forward or ModelForward(model)
        if isinstance(self.forward, Callback) and self.forward not in self.callbacks:
            self.callbacks.insert(0, self.forward)
        self.items = items or _count_items
        self.dist = _data_parallel(distributed, model, self.items, overlap)
        self.is_root = self.dist is None or self.dist.rank == 0
        if self.dist is not None:
            self.batches, self.val_batches = self.dist.shard(self.batches), self.dist.shard(self.val_batches)
            progress = progress and self.is_root
        precision = apply_precision(model, precision)
        self.optimizer = OPTIMIZERS[optimizer](model, lr=lr)
        self._add_schedule(scheduler, scheduler_every, early_stop)
        self.settings = dict(batch_size=batch_size, seq_len=seq_len, optimizer=optimizer, lr=lr,
                             clip=clip, clip_value=clip_value, lr_decay=lr_decay,
                             lr_decay_every=lr_decay_every, lr_decay_after=lr_decay_after,
                             epochs=epochs, max_time=max_time, eval_every=eval_every,
                             val_tokens=val_tokens, explode_factor=explode_factor, early_stop=early_stop,
                             precision=precision)
        self.out, self.progress, self.meta = out, progress, dict(meta or {})
        # perplexity means something only for a mean token cross-entropy (not for MSE, ...)
        self.perplexity = bool(getattr(model, "token_loss", False))
        self._postfix = {}          # the callbacks' headline metrics, shown in the progress bar
        # where we are: everything here goes into a checkpoint
        self.iteration, self.epoch, self.window = 0, 0, 0
        self.best_val, self.elapsed, self.loss_level = math.inf, 0.0, None
        self._interrupted, self._saving, self._deferred = False, False, 0
        self.last_checkpoint = None
        # the iteration of the latest checkpoint on disk; a new run starts its log.jsonl afresh
        self._saved_at, self._fresh_log = None, True
        self.stop_training, self.stop_reason = False, None     # a callback may ask to stop
        self.fused = fused

    # ---- one iteration ---------------------------------------------------------------------
    def train_step(self):
        """Forward + backward + clip + update on the next batch; returns its loss.

        Raises TrainingDiverged (leaving the parameters as they were before the update when the
        loss or the gradients are bad) instead of taking a step that would corrupt them.
        """
        if self.window == 0:
            call(self.callbacks, "on_epoch_begin", self)
        batch = self.batches[self.window]
        _set_mode(self.model, True)                 # torch's model.train(): dropout on
        loss = fused.trainer_update(self, batch)    # the same step in one native call, or None
        if loss is None:
            loss = python_update(self, batch)
        self.loss_level = loss if self.loss_level is None else 0.9 * self.loss_level + 0.1 * loss
        self.iteration += 1
        self.window += 1
        every = self.settings["lr_decay_every"]
        if every and self.iteration % every == 0:
            self._decay_lr()
        for cb in self.callbacks:
            cb.on_step_end(self, loss)
        if self.window == len(self.batches):        # epoch boundary
            self.window = 0
            self.epoch += 1
            for cb in self.callbacks:
                cb.on_epoch_end(self)
            if not every:
                self._decay_lr()
        return loss

    def _decay_lr(self):
        """One step of learning-rate decay, once `lr_decay_after` epochs are complete (a
        checkpoint from before that setting has none: decay from the start)."""
        if self.epoch >= (self.settings.get("lr_decay_after") or 0):
            self.optimizer.lr *= self.settings["lr_decay"]

    def _check_loss(self, what, loss, level):
        """Raise TrainingDiverged for a non-finite loss or one far above `level`."""
        check_loss(what, loss, level, self.settings["explode_factor"], self.iteration)

    def evaluate(self):
        """Mean validation loss over the validation batches, or None without any."""
        if not self.val_batches:
            return None
        for cb in self.callbacks:
            cb.on_validation_start(self)
        was = _set_mode(self.model, False)          # torch's model.eval() while validating
        try:
            if self.dist is not None:
                return self.dist.mean_loss(self.forward, self.val_batches)
            return sum(float(self.forward(b, False)) for b in self.val_batches) / len(self.val_batches)
        finally:
            if was is not None:
                _set_mode(self.model, was)

    # ---- the loop ----------------------------------------------------------------------------
    def fit(self, max_iters=None):
        """Train until the epochs, the time budget or `max_iters` (more iterations) run out.

        Returns a `History` (per-validation and per-epoch records; its dict access to the old
        summary -- stopped, iterations, epochs, best_val, seconds -- is deprecated).
        Distributed, an exception on one rank ends the whole job (MPI_Abort) after printing it.
        """
        from .history import History
        history = History()
        self.callbacks.insert(0, history)
        try:
            if self.dist is None:
                return history.finish(self._fit(max_iters))
            with self.dist.abort_on_error():
                return history.finish(self._fit(max_iters))
        finally:
            self.callbacks.remove(history)

    def _add_schedule(self, scheduler, every, early_stop):
        """The callbacks behind `scheduler=` and `early_stop=` (see fastrnn.train.scheduling)."""
        from .early_stopping import EarlyStopping
        from .scheduling import SchedulerStep, build_scheduler
        if scheduler is not None:
            self.callbacks.append(SchedulerStep(build_scheduler(scheduler, self.optimizer), every))
        elif every is not None:
            raise ValueError("scheduler_every: given without a scheduler")
        if early_stop:
            self.callbacks.append(EarlyStopping("val_loss", patience=early_stop))

    def _fit(self, max_iters):
        from tqdm.auto import tqdm     # imported here: only the trainer needs a progress bar
        s = self.settings
        total = s["epochs"] * len(self.batches)
        stop_at = total if max_iters is None else min(total, self.iteration + max_iters)
        rate = getattr(self.items, "unit", "items") + "_s"
        bar = tqdm(total=total, initial=self.iteration, disable=not self.progress, unit="it",
                   dynamic_ncols=True)
        old_handler = self._catch_ctrl_c()
        start, recent = time.perf_counter() - self.elapsed, []
        summary = dict(stopped="done")
        self.stop_training, self.stop_reason = False, None
        try:
            call(self.callbacks, "on_train_begin", self)    # inside: an error restores Ctrl-C too
            while self.iteration < stop_at:
                stop = ("time budget" if s["max_time"] and time.perf_counter() - start >= s["max_time"]
                        else "interrupted" if self._interrupted else None)
                if self.dist is not None:   # the ranks stop together, at the first step any asked
                    self.dist.stop_request, stop = stop, self.dist.agreed_stop
                if not stop and self.stop_training:     # a callback: distributed, every rank decides
                    stop = self.stop_reason or "stopped by a callback"   # alike (from global records)
                if stop:
                    summary["stopped"] = stop
                    break
                t0 = time.perf_counter()
                try:
                    loss = self.train_step()
                except TrainingDiverged as e:
                    raise self._diverged(e) from None
                recent.append(loss)
                bar.update(1)
                speed = self.last_items / (time.perf_counter() - t0)
                if self.iteration % s["eval_every"] == 0 or self.iteration == stop_at:
                    self.elapsed = time.perf_counter() - start
                    self._checkpoint(np.mean(recent), bar)
                    recent = []
                # after the checkpoint: the bar shows its metrics from this step on
                bar.set_postfix({"loss": f"{loss:.3f}", **self._postfix, rate: f"{speed:.0f}"},
                                refresh=False)
            self.elapsed = time.perf_counter() - start
            # a stop right after a checkpoint has nothing new to save (no second line for it)
            if recent or (summary["stopped"] in ("time budget", "interrupted")
                          and self._saved_at != self.iteration):
                self._checkpoint(np.mean(recent) if recent else math.nan, bar)
            call(self.callbacks, "on_train_end", self)
        finally:
            bar.close()
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
        summary.update(iterations=self.iteration, epochs=self.iteration / len(self.batches),
                       best_val=self.best_val, seconds=self.elapsed)
        return summary

    def _diverged(self, e):
        keep = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                else "no checkpoint was written")
        return TrainingDiverged(f"{e}; {keep}")

    def _checkpoint(self, train_loss, bar):
        """Validate, log, write last.npz (and best.npz on improvement); never a diverged model.

        Ctrl-C waits until the checkpoint is complete (validation included): an interrupt that
        arrives meanwhile is handled once the files are written.
        """
        self._saving = True
        try:
            self._validate_and_write(train_loss, bar)
        finally:
            self._saving = False
            deferred, self._deferred = self._deferred, 0
        for _ in range(deferred):       # the interrupts that arrived meanwhile, in order
            self._on_interrupt()

    def _validate_and_write(self, train_loss, bar):
        val = self.evaluate()
        if val is not None:
            try:
                self._check_loss("validation loss", val, None if math.isinf(self.best_val) else self.best_val)
            except TrainingDiverged as e:
                raise self._diverged(e) from None
        improved = val is not None and val < self.best_val
        if improved:
            self.best_val = val
        record = dict(iteration=self.iteration, epoch=round(self.iteration / len(self.batches), 4),
                      train_loss=_finite(train_loss), val_loss=_finite(val),
                      val_ppl=(_finite(math.exp(val)) if self.perplexity and val is not None
                               and val < 700 else None),
                      lr=self.optimizer.lr, seconds=round(self.elapsed, 3))
        self._postfix, extra = {}, {}
        for cb in self.callbacks:
            extra.update(cb.metrics(self))
            if hasattr(cb, "postfix"):      # a hook newer than some duck-typed callbacks
                self._postfix.update(cb.postfix(self))
        record.update(extra)
        call(self.callbacks, "on_validation_end", self, record)
        if val is not None and self.is_root:    # one line per validation, the callbacks' metrics in it
            ppl = f"  (ppl {math.exp(min(val, 700)):.2f})" if self.perplexity else ""
            shown = "".join(f"  {k} {v:.4f}" for k, v in extra.items() if isinstance(v, (int, float)))
            train = f"{train_loss:.4f}" if math.isfinite(train_loss) else "-"    # no step since resuming
            bar.write(f"iter {self.iteration}: train {train}  val {val:.4f}{ppl}{shown}"
                      + ("  *best*" if improved else ""))
        if self.out is None:
            return
        # best, log line, last: last.npz changes last, and a resume reconciles the others with
        # it (train/run_files.py); a first save that fails removes the directories it created
        created = run_files.make_out(self.out) if self.is_root else []
        try:
            if improved or val is None:     # without validation, the latest is the best we know
                self.save(os.path.join(self.out, run_files.BEST))
            if self.is_root:
                run_files.append_log(self.out, record, fresh=self._fresh_log)
            self.save(os.path.join(self.out, run_files.LAST))
        except BaseException:
            run_files.remove_created(created)
            raise
        self.last_checkpoint = os.path.join(self.out, run_files.LAST)
        self._saved_at, self._fresh_log = self.iteration, False
        if self.dist is not None:       # when any rank goes on, the files are there
            self.dist.comm.Barrier()

    def _on_interrupt(self):
        if self._interrupted:           # a second Ctrl-C stops at once (never inside a save)
            raise KeyboardInterrupt
        self._interrupted = True

    def _catch_ctrl_c(self):
        """Turn Ctrl-C into a flag checked between iterations; during a save, defer it."""
        def handler(signum, frame):
            if self._saving:
                self._deferred += 1
            else:
                self._on_interrupt()
        try:
            return signal.signal(signal.SIGINT, handler)
        except ValueError:                      # not the main thread: leave signals alone
            return None

    # ---- checkpoints (fastrnn.train.checkpointing) -------------------------------------------
    def save(self, path):
        """Write a checkpoint from which `Trainer.resume` continues exactly (distributed: every
        rank calls it, rank 0 writes the file with every rank's share of the callbacks' state)."""
        from .checkpointing import save
        save(self, path)

    @classmethod
    def resume(cls, path, train, val=None, progress=True, forward=None, callbacks=(), items=None,
               distributed=None, overlap=False, **overrides):
        """A Trainer that continues the run saved at `path` (model, optimiser, RNGs, callbacks'
        state, data position) on the same `train`/`val` data (token ids for a language model
        checkpoint resumed without a `forward`).

        `overrides` may change settings such as epochs or max_time; the rest come from the file.
        Distributed, every rank reads `path` and takes its share of the saved state.
        """
        from .checkpointing import resume
        return resume(cls, path, train, val, progress=progress, forward=forward, callbacks=callbacks,
                      items=items, distributed=distributed, overlap=overlap, **overrides)


def _data_parallel(distributed, model, items, overlap):
    """A DataParallel helper when `distributed` asks for (or detects) MPI, else None."""
    from . import distributed as dp
    comm = dp.communicator(distributed)
    return None if comm is None else dp.DataParallel(comm, model, items, overlap=overlap)


def _indexable(batches, name):
    """`batches` if it supports len() and [i], else a list of it (None stays None)."""
    if batches is None or (hasattr(batches, "__len__") and hasattr(batches, "__getitem__")):
        return batches
    try:
        return list(batches)
    except TypeError:
        raise TypeError(f"{name}: expected an indexable or iterable source of batches, "
                        f"got {type(batches).__name__}") from None


def _count_items(batch):
    """Items in a batch for the rate display: the first axis of its first array."""
    first = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    shape = np.shape(first)
    return shape[0] if shape else 1


def _set_mode(model, training):
    """model.train(training) for a fastrnn Module (other model-like objects are left alone);
    returns the mode it had (None for those others)."""
    from ..nn import Module
    if not isinstance(model, Module):
        return None
    was = model.training
    if was != training:
        model.train(training)
    return was
