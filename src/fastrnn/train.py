"""Training loop for language models: truncated BPTT, validation, checkpoints, exact resume.

The Trainer walks the char-rnn stream batches in order, carrying the hidden state from one
window to the next, and after every `eval_every` iterations measures the validation loss, writes
`last.npz` (and `best.npz` when validation improved) and appends a line to `log.jsonl`.
A checkpoint holds everything needed to continue exactly where training stopped: parameters,
optimiser state, the carried hidden state, the dropout RNG and the position in the data.
"""
import json
import math
import os
import signal
import time

import numpy as np

from . import io, optim
from .data import StreamBatches

OPTIMIZERS = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
              "sgd": optim.SGD, "adagrad": optim.Adagrad}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Trainer:
    """Train `model` on `train_ids` (1-D token ids), validating on `val_ids`.

    optimizer: one of OPTIMIZERS; clip: global-norm gradient clipping (0/None = off);
    lr_decay: factor applied to the learning rate after every epoch (char-rnn's exponential
    decay), or every `lr_decay_every` iterations when that is given (step decay);
    epochs and/or max_time (seconds) bound the run; each validation reads at most the first
    `val_tokens` tokens of val_ids (None = all); out: directory for best.npz, last.npz and
    log.jsonl (None = keep nothing on disk).
    """

    def __init__(self, model, vocab, train_ids, val_ids=None, *, batch_size=50, seq_len=50,
                 optimizer="adam", lr=2e-3, clip=5.0, lr_decay=1.0, lr_decay_every=None, epochs=1,
                 max_time=None, eval_every=200, val_tokens=200_000, out=None, progress=True,
                 meta=None):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
        for name, value in (("eval_every", eval_every), ("epochs", epochs)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        self.model, self.vocab = model, vocab
        self.batches = StreamBatches(train_ids, batch_size, seq_len)
        self.val_batches = None
        if val_ids is not None and val_tokens:
            val_ids = val_ids[:val_tokens + 1]    # bound the cost of each validation
        if val_ids is not None and len(val_ids) > 1:
            # validation may be short: shrink its batch so at least one window fits
            val_b = max(1, min(batch_size, (len(val_ids) - 1) // seq_len))
            if (len(val_ids) - 1) // val_b >= seq_len:
                self.val_batches = StreamBatches(val_ids, val_b, seq_len)
        self.optimizer = OPTIMIZERS[optimizer](model, lr=lr)
        self.settings = dict(batch_size=batch_size, seq_len=seq_len, optimizer=optimizer, lr=lr,
                             clip=clip, lr_decay=lr_decay, lr_decay_every=lr_decay_every,
                             epochs=epochs, max_time=max_time, eval_every=eval_every,
                             val_tokens=val_tokens)
        self.out, self.progress, self.meta = out, progress, dict(meta or {})
        # where we are: everything here goes into a checkpoint
        self.iteration, self.epoch, self.window = 0, 0, 0
        self.best_val, self.elapsed, self.state = math.inf, 0.0, None
        self._interrupted, self.last_checkpoint = False, None

    # ---- one iteration ---------------------------------------------------------------------
    def train_step(self):
        """Forward + backward + clip + update on the next window; returns its loss."""
        inputs, targets = self.batches[self.window]
        self.model.zero_grad()
        loss, self.state = self.model.forward(inputs, targets, self.state, train=True)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the training loss became {loss} at iteration {self.iteration}")
        self.model.backward()
        if self.settings["clip"]:
            optim.clip_grad_norm(self.model, self.settings["clip"])
        self.optimizer.step()
        self.iteration += 1
        self.window += 1
        every = self.settings["lr_decay_every"]
        if every and self.iteration % every == 0:
            self.optimizer.lr *= self.settings["lr_decay"]
        if self.window == len(self.batches):        # epoch boundary: restart the streams
            self.window, self.state = 0, None
            self.epoch += 1
            if not every:
                self.optimizer.lr *= self.settings["lr_decay"]
        return loss

    def evaluate(self):
        """Mean validation loss (nats/token) over the whole validation stream, or None."""
        if self.val_batches is None:
            return None
        total, state = 0.0, None
        for inputs, targets in self.val_batches:
            loss, state = self.model.forward(inputs, targets, state, train=False)
            total += loss
        return total / len(self.val_batches)

    # ---- the loop ----------------------------------------------------------------------------
    def fit(self, max_iters=None):
        """Train until the epochs, the time budget or `max_iters` (more iterations) run out.

        Returns a summary dict (iterations, epochs, final train loss, best validation loss).
        """
        from tqdm.auto import tqdm     # imported here: only the trainer needs a progress bar
        s = self.settings
        total = s["epochs"] * len(self.batches)
        stop_at = total if max_iters is None else min(total, self.iteration + max_iters)
        tokens_per_iter = s["batch_size"] * s["seq_len"]
        bar = tqdm(total=total, initial=self.iteration, disable=not self.progress, unit="it",
                   dynamic_ncols=True)
        old_handler = self._catch_ctrl_c()
        start, recent = time.perf_counter() - self.elapsed, []
        summary = dict(stopped="done")
        try:
            while self.iteration < stop_at:
                if s["max_time"] and time.perf_counter() - start >= s["max_time"]:
                    summary["stopped"] = "time budget"
                    break
                if self._interrupted:
                    summary["stopped"] = "interrupted"
                    break
                t0 = time.perf_counter()
                try:
                    loss = self.train_step()
                except TrainingDiverged as e:
                    bar.close()
                    keep = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                            else "no checkpoint was written yet")
                    raise TrainingDiverged(f"{e}; {keep}") from None
                recent.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_iter / (time.perf_counter() - t0):.0f}",
                                refresh=False)
                if self.iteration % s["eval_every"] == 0 or self.iteration == stop_at:
                    self.elapsed = time.perf_counter() - start
                    self._checkpoint(np.mean(recent), bar)
                    recent = []
            self.elapsed = time.perf_counter() - start
            if recent or summary["stopped"] != "done":
                self._checkpoint(np.mean(recent) if recent else math.nan, bar)
        finally:
            bar.close()
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
        summary.update(iterations=self.iteration, epochs=self.iteration / len(self.batches),
                       best_val=self.best_val, seconds=self.elapsed)
        return summary

    def _checkpoint(self, train_loss, bar):
        """Validate, log, write last.npz (and best.npz on improvement)."""
        val = self.evaluate()
        improved = val is not None and val < self.best_val
        if improved:
            self.best_val = val
        record = dict(iteration=self.iteration, epoch=round(self.iteration / len(self.batches), 4),
                      train_loss=_finite(train_loss), val_loss=_finite(val),
                      val_ppl=_finite(math.exp(val)) if val is not None and val < 700 else None,
                      lr=self.optimizer.lr, seconds=round(self.elapsed, 3))
        if val is not None:
            bar.write(f"iter {self.iteration}: train {train_loss:.4f}  val {val:.4f}  "
                      f"(ppl {math.exp(min(val, 700)):.2f})" + ("  *best*" if improved else ""))
        if self.out is None:
            return
        os.makedirs(self.out, exist_ok=True)
        last = os.path.join(self.out, "last.npz")
        self.save(last)
        self.last_checkpoint = last
        if improved or val is None:     # without validation, the latest is the best we know
            self.save(os.path.join(self.out, "best.npz"))
        with open(os.path.join(self.out, "log.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")

    def _catch_ctrl_c(self):
        """Turn Ctrl-C into a flag checked between iterations, so a checkpoint is never half-updated."""
        try:
            def handler(signum, frame):
                if self._interrupted:           # a second Ctrl-C stops at once
                    raise KeyboardInterrupt
                self._interrupted = True
            return signal.signal(signal.SIGINT, handler)
        except ValueError:                      # not the main thread: leave signals alone
            return None

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self, path):
        """Write a checkpoint from which `Trainer.resume` continues exactly."""
        training = dict(iteration=self.iteration, epoch=self.epoch, window=self.window,
                        best_val=_finite(self.best_val), elapsed=self.elapsed,
                        settings=self.settings, rng=self.model.rnn.rng_state())
        extra = {}
        if self.state is not None:
            for k, s in enumerate(self.state if isinstance(self.state, tuple) else (self.state,)):
                extra[f"state/{k}"] = s
        io.save(path, self.model, self.vocab, optimizer=self.optimizer, arrays=extra,
                training=training, **self.meta)

    @classmethod
    def resume(cls, path, train_ids, val_ids=None, progress=True, **overrides):
        """A Trainer that continues the run saved at `path` (model, optimiser, RNG, data position).

        `overrides` may change settings such as epochs or max_time; the rest come from the file.
        """
        model, vocab, extra = io.load(path)
        training = extra["meta"].get("training")
        if training is None:
            raise ValueError(f"{path}: holds a model but no training state to resume from")
        settings = dict(training["settings"], **overrides)
        out = settings.pop("out", None)
        trainer = cls(model, vocab, train_ids, val_ids, out=out, progress=progress,
                      meta={k: v for k, v in extra["meta"].items()
                            if k not in io.RESERVED_META and k != "training"},
                      **settings)
        if extra["optimizer"] is None:
            raise ValueError(f"{path}: holds no optimizer state to resume from")
        trainer.optimizer.load_state_dict(extra["optimizer"])
        model.rnn.set_rng_state(training["rng"])
        trainer.iteration, trainer.epoch = training["iteration"], training["epoch"]
        trainer.window, trainer.elapsed = training["window"], training["elapsed"]
        trainer.best_val = math.inf if training["best_val"] is None else training["best_val"]
        states = [extra["arrays"][f"state/{k}"] for k in range(2) if f"state/{k}" in extra["arrays"]]
        trainer.state = None if not states else states[0] if len(states) == 1 else tuple(states)
        if trainer.window >= len(trainer.batches):
            raise ValueError(f"{path}: data position {trainer.window} is past the end of this corpus "
                             f"({len(trainer.batches)} windows); was it trained on another corpus?")
        return trainer


def _finite(v):
    """A JSON-safe float: None for None/NaN/inf."""
    return None if v is None or not math.isfinite(v) else float(v)
