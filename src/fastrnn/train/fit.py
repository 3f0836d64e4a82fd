"""`fastrnn.fit`: train any model in one call (a `Trainer` built and run), returning a `History`."""
from .trainer import Trainer


def fit(model, train, val=None, *lm_val, epochs=1, callbacks=(), scheduler=None, progress=False,
        **trainer_options):
    """Train `model` on the batches `train` (validating on `val`) and return a `History`.

    model: any fastrnn model (SequenceClassifier, SequenceTagger, SequenceRegressor, Seq2Seq,
    ConditionedGenerator, GridRNN, a LanguageModel...); train/val: indexable or iterable sources
    of batches in the model's format, e.g. `PaddedBatches(inputs, labels)` or a list of
    (inputs, targets[, lengths]) tuples; a language model may instead be given as
    `fit(model, vocab, train_ids, val_ids, batch_size=..., seq_len=...)`.
    callbacks: `fastrnn.train.Callback`s such as `EarlyStopping`, `ModelCheckpoint`;
    scheduler: a function of the optimiser returning a `fastrnn.optim` scheduler, e.g.
    `lambda opt: fastrnn.optim.CosineAnnealingLR(opt, T_max=epochs)`; the other options are
    the `Trainer`'s (optimizer, lr, clip, eval_every (default: once per epoch), out, ...).
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
