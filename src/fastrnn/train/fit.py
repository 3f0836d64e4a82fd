"""`fastrnn.fit`: train any model in one call (a `Trainer` built and run), returning a `History`."""
from __future__ import annotations

from .history import History
from .trainer import Trainer


def fit(model, train, val=None, *lm_val, epochs: int = 1, callbacks=(), scheduler=None,
        progress: bool = False, **trainer_options) -> History:
    """Train `model` on the batches `train` (validating on `val`) and return a `History`.

    Parameters
    ----------
    model : fastrnn model
        Any fastrnn model: SequenceClassifier, SequenceTagger, SequenceRegressor, Seq2Seq,
        ConditionedGenerator, GridRNN, a LanguageModel...
    train : indexable or iterable of batches
        Batches in the model's format, e.g. ``PaddedBatches(inputs, labels)`` or a list of
        (inputs, targets[, lengths]) tuples. A language model may instead be given as
        ``fit(model, vocab, train_ids, val_ids, batch_size=..., seq_len=...)``.
    val : indexable or iterable of batches, optional
        Validation batches in the same format; None: no validation.
    *lm_val
        The language-model form's validation ids (after ``train_ids``).
    epochs : int, default 1
        Epochs to run (>= 1); ``max_time`` or a callback may end the run sooner.
    callbacks : sequence of fastrnn.train.Callback, default ()
        E.g. `EarlyStopping`, `ModelCheckpoint`; a callback may set ``trainer.stop_training``.
    scheduler : callable, optional
        A function of the optimiser returning a `fastrnn.optim` scheduler, e.g.
        ``lambda opt: fastrnn.optim.CosineAnnealingLR(opt, T_max=epochs)``.
    progress : bool, default False
        Show a progress bar.
    **trainer_options
        The `Trainer`'s other options (optimizer, lr, clip, eval_every (default: once per
        epoch), out, ...).

    Returns
    -------
    History
        Per-validation ``records`` (as log.jsonl), per-epoch ``epochs``, ``stopped``,
        ``best_val``.

    Raises
    ------
    TypeError, ValueError
        A bad argument, named in the message, before anything is trained.
    """
    if "eval_every" not in trainer_options and not lm_val and not _is_vocab(train):
        n = len(train) if hasattr(train, "__len__") else None
        if n:
            trainer_options["eval_every"] = n        # validate once per epoch, as Keras does
    trainer = Trainer(model, train, val, *lm_val, epochs=epochs, callbacks=callbacks,
                      scheduler=scheduler, progress=progress, **trainer_options)
    return trainer.fit()


def _is_vocab(x):
    from ..data import Vocab
    return isinstance(x, Vocab)
