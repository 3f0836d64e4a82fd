"""scikit-learn estimators over fastrnn's sequence models: `RNNSequenceClassifier` and
`RNNSequenceRegressor` (needs scikit-learn: `pip install "fastrnn[sklearn]"`).

X is (n, T) -- n sequences of T scalar steps -- or (n, T, F) -- T steps of F features; every
sequence has the same length (pad beforehand; pass `lengths` to the fastrnn models for ragged
data). They follow scikit-learn's conventions and pass `check_estimator`: hyper-parameters are
stored as given and checked in `fit`, `random_state` seeds the weights and the batch order (an
int gives the same model every time), `partial_fit` trains one more epoch, fitted estimators
pickle and clone, and they work in `Pipeline`, `cross_val_score` and `GridSearchCV`.
"""
import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as e:            # an optional extra
    raise ImportError('fastrnn.sklearn needs scikit-learn: pip install "fastrnn[sklearn]"') from e

from . import checks
from .data_batches import PaddedBatches
from .models.registry import build
from .train import Trainer

CELLS, OPTIMIZERS, DTYPES = ("lstm", "gru", "rnn"), ("adam", "adamw", "rmsprop", "sgd", "adagrad"), ("float32", "float64")


def _int(name, value, low):
    checks.integer(name, value, low, expected=f"an integer >= {low}")


def _real(name, value, low, high=None, low_open=False, high_open=False):
    checks.real(name, value, low, high, low_open=low_open, high_open=high_open)


def _choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")


def _check_pooling(est):
    if not isinstance(est.bidirectional, (bool, np.bool_)):
        raise ValueError(f"bidirectional: expected True or False, got {est.bidirectional!r}")
    _choice("pooling", est.pooling, ("last", "mean", "max"))


class _SequenceEstimator(BaseEstimator):
    """Shared hyper-parameters, input checks, training and pickling (see the module doc)."""

    def __init__(self, hidden_size=32, cell="gru", num_layers=1, dropout=0.0, epochs=20,
                 batch_size=32, lr=0.01, optimizer="adam", clip=5.0, dtype="float64", random_state=None):
        self.hidden_size, self.cell, self.num_layers, self.dropout = hidden_size, cell, num_layers, dropout
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.clip, self.dtype, self.random_state = clip, dtype, random_state

    def _check_params(self):
        """ValueError naming the first bad hyper-parameter (scikit-learn checks in fit, not __init__)."""
        _int("hidden_size", self.hidden_size, 1)
        _choice("cell", self.cell, CELLS)
        _int("num_layers", self.num_layers, 1)
        _real("dropout", self.dropout, 0, 1, high_open=True)
        _int("epochs", self.epochs, 1)
        _int("batch_size", self.batch_size, 1)
        _real("lr", self.lr, 0, low_open=True)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _real("clip", self.clip, 0)
        _choice("dtype", self.dtype, DTYPES)
        if self.random_state is not None and not isinstance(self.random_state, (numbers.Integral, np.random.RandomState)):
            raise ValueError(f"random_state: expected None, an int or a RandomState, got {self.random_state!r}")

    # ---- input -----------------------------------------------------------------------------------
    def _inputs(self, X, y="no_validation", reset=True):
        """X as a C-ordered (n, T, F) array of the model's dtype (and y checked), setting or
        checking n_features_in_ (= T) and the steps' feature count."""
        kw = dict(allow_nd=True, dtype=[np.float64, np.float32], ensure_min_samples=1)
        if isinstance(y, str) and y == "no_validation":      # predicting: no y
            X = validate_data(self, X, reset=reset, **kw)
        else:
            X, y = validate_data(self, X, y, reset=reset, multi_output=self._multi_output, **kw)
        if X.ndim not in (2, 3):
            raise ValueError(f"X: expected a 2-D (n, T) or 3-D (n, T, F) array, got {X.ndim} dimensions")
        F = 1 if X.ndim == 2 else X.shape[2]
        if X.ndim == 3 and F < 1:
            raise ValueError("X: expected at least one feature per step, got 0")
        if reset:
            self.n_step_features_ = F
        elif F != self.n_step_features_:
            raise ValueError(f"X has {F} features per step, but {type(self).__name__} is expecting "
                             f"{self.n_step_features_} features per step as input")
        X = np.ascontiguousarray(X.reshape(X.shape[0], X.shape[1], F), dtype=self.dtype)
        return X if isinstance(y, str) and y == "no_validation" else (X, y)

    # ---- training --------------------------------------------------------------------------------
    def _train(self, X, targets, epochs):
        """`epochs` epochs of the fastrnn Trainer over (X, targets), continuing the optimiser."""
        seed = int(self._rng.randint(2**31 - 1))
        batches = PaddedBatches(list(X), targets, batch_size=min(self.batch_size, len(X)), seed=seed)
        trainer = Trainer(self.model_, batches, callbacks=[batches], epochs=epochs, optimizer=self.optimizer,
                          lr=self.lr, clip=self.clip or None, eval_every=len(batches), progress=False)
        if self._optimizer_state is not None:
            trainer.optimizer.load_state_dict(self._optimizer_state)
        trainer.fit()
        self._optimizer_state = trainer.optimizer.state_dict()
        self.n_iter_ = getattr(self, "n_iter_", 0) + epochs

    def _start(self, model_class, **config):
        """A new model (seeded from random_state) and a fresh optimiser."""
        self._rng = check_random_state(self.random_state)
        self._optimizer_state, self.n_iter_ = None, 0
        self.model_ = build(model_class, dict(config, hidden_size=self.hidden_size, cell=self.cell,
                                              num_layers=self.num_layers, dropout=self.dropout,
                                              dtype=self.dtype, seed=int(self._rng.randint(2**31 - 1))))

    def _batched(self, fn, X):
        """fn over X in chunks (bounded memory), concatenated as float64."""
        return np.concatenate([np.asarray(fn(X[i:i + 1024]), np.float64) for i in range(0, len(X), 1024)])

    # ---- pickling: the model's type, config and parameters (its buffers do not pickle) ------------
    def __getstate__(self):
        state = dict(self.__dict__)
        model = state.pop("model_", None)
        if model is not None:
            state["_model_saved"] = (type(model).__name__, model.config, model.params.copy())
        return state

    def __setstate__(self, state):
        saved = state.pop("_model_saved", None)
        self.__dict__.update(state)
        if saved is not None:
            name, config, params = saved
            self.model_ = build(name, config)
            self.model_.params[...] = params
            self.model_.invalidate()


class RNNSequenceClassifier(ClassifierMixin, _SequenceEstimator):
    """A recurrent sequence classifier (fastrnn.SequenceClassifier) for (n, T[, F]) arrays.

    Parameters
    ----------
    hidden_size : int, default 32
        Hidden units of each recurrent layer.
    cell : {"gru", "lstm", "rnn"}, default "gru"
        The recurrent cell.
    num_layers : int, default 1
        Stacked recurrent layers.
    bidirectional : bool, default False
        Run the encoder in both directions.
    pooling : {"last", "mean", "max"}, default "last"
        How the steps' outputs become one vector per sequence.
    dropout : float, default 0.0
        Dropout between the layers during training.
    epochs : int, default 20
        Epochs run by `fit` (`partial_fit` runs one).
    batch_size : int, default 32
        Sequences per training step.
    lr : float, default 0.01
        Learning rate.
    optimizer : str, default "adam"
        One of fastrnn.train.OPTIMIZERS.
    clip : float, default 5.0
        Global-norm gradient clipping (0 = off).
    dtype : {"float64", "float32"}, default "float64"
        float64: a sequence's prediction does not depend on the other sequences predicted with
        it; float32 is faster, and predictions may then move by ~1e-7 with the batch.
    random_state : int, numpy.random.RandomState or None, default None
        Seeds the weights and the batch order.

    Attributes
    ----------
    classes_ : numpy.ndarray
        The labels seen in `fit`, sorted.
    model_ : fastrnn.SequenceClassifier
        The trained model.
    n_features_in_ : int
        T, the steps of each sequence.
    n_step_features_ : int
        F, the features of each step (1 for (n, T) input).
    n_iter_ : int
        Epochs run.
    """
    _multi_output = False

    def __init__(self, hidden_size=32, cell="gru", num_layers=1, bidirectional=False, pooling="last",
                 dropout=0.0, epochs=20, batch_size=32, lr=0.01, optimizer="adam", clip=5.0,
                 dtype="float64", random_state=None):
        super().__init__(hidden_size, cell, num_layers, dropout, epochs, batch_size, lr, optimizer, clip,
                         dtype, random_state)
        self.bidirectional, self.pooling = bidirectional, pooling

    def _check_params(self):
        super()._check_params()
        _check_pooling(self)

    def fit(self, X, y):
        """Train a new model on sequences X (n, T[, F]) with labels y (n,); returns self.

        Parameters
        ----------
        X : array_like
            (n, T) scalar steps or (n, T, F) feature steps.
        y : array_like
            (n,) labels.

        Returns
        -------
        self
        """
        self._check_params()
        X, y = self._inputs(X, y, reset=True)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self._new_model()
        self._train(X, codes.astype(np.int64), self.epochs)
        return self

    def partial_fit(self, X, y, classes=None):
        """One more epoch on (X, y); the first call starts a model and needs `classes` (all the
        labels there will be) unless y already holds them all.

        Parameters
        ----------
        X : array_like
            (n, T) scalar steps or (n, T, F) feature steps.
        y : array_like
            (n,) labels, all in `classes`.
        classes : array_like, optional
            Every label there will be (first call).

        Returns
        -------
        self
        """
        first = not hasattr(self, "model_")
        if first:
            self._check_params()
        X, y = self._inputs(X, y, reset=first)
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
            self._new_model()
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"classes: expected {self.classes_.tolist()} as in the first partial_fit call")
        codes = np.searchsorted(self.classes_, y)
        if (codes >= len(self.classes_)).any() or not np.array_equal(self.classes_[np.minimum(codes, len(self.classes_) - 1)], y):
            raise ValueError(f"y: holds labels not in classes_ {self.classes_.tolist()}")
        self._train(X, codes.astype(np.int64), 1)
        return self

    def _new_model(self):
        self._start("SequenceClassifier", num_classes=len(self.classes_), input_size=self.n_step_features_,
                    bidirectional=bool(self.bidirectional), pooling=self.pooling)

    def predict_proba(self, X):
        """(n, n_classes) class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array_like
            (n, T) scalar steps or (n, T, F) feature steps.

        Returns
        -------
        numpy.ndarray
            (n, n_classes) probabilities.
        """
        check_is_fitted(self)
        X = self._inputs(X, reset=False)
        return self._batched(self.model_.predict_proba, X)

    def predict(self, X):
        """(n,) the most probable label of each sequence.

        Parameters
        ----------
        X : array_like
            (n, T) scalar steps or (n, T, F) feature steps.

        Returns
        -------
        numpy.ndarray
            (n,) labels.
        """
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class RNNSequenceRegressor(RegressorMixin, _SequenceEstimator):
    """A recurrent sequence regressor (fastrnn.SequenceRegressor at the last step) for
    (n, T[, F]) arrays and targets y (n,) or (n, k).

    The targets are standardised for training (mean and scale from `fit` or the first
    `partial_fit`) and mapped back in `predict`. Parameters as `RNNSequenceClassifier`'s.

    Attributes
    ----------
    model_ : fastrnn.SequenceRegressor
        The trained model.
    n_features_in_ : int
        T, the steps of each sequence.
    n_step_features_ : int
        F, the features of each step.
    n_iter_ : int
        Epochs run.
    y_mean_, y_scale_ : numpy.ndarray
        The targets' standardisation, (k,).
    """
    _multi_output = True

    def __init__(self, hidden_size=32, cell="gru", num_layers=1, dropout=0.0, epochs=20, batch_size=32,
                 lr=0.01, optimizer="adam", clip=5.0, dtype="float64", random_state=None):
        super().__init__(hidden_size, cell, num_layers, dropout, epochs, batch_size, lr, optimizer, clip,
                         dtype, random_state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True        # y may be (n, k): k outputs of one model
        return tags

    def _targets(self, y, first):
        y = np.asarray(y, np.float64)
        y2 = y.reshape(len(y), -1)
        if first:
            self._y_1d = y.ndim == 1
            self.y_mean_ = y2.mean(axis=0)
            self.y_scale_ = np.where(y2.std(axis=0) > 0, y2.std(axis=0), 1.0)
        elif y2.shape[1] != len(self.y_mean_):
            raise ValueError(f"y: expected {len(self.y_mean_)} outputs as in the first call, got {y2.shape[1]}")
        return np.ascontiguousarray((y2 - self.y_mean_) / self.y_scale_, dtype=self.dtype)

    def fit(self, X, y):
        """Train a new model on sequences X (n, T[, F]) with targets y (n,) or (n, k); returns self.

        Parameters
        ----------
        X : array_like
            (n, T) scalar steps or (n, T, F) feature steps.
        y : array_like
            (n,) or (n, k) real targets.

        Returns
        -------
        self
        """
        self._check_params()
        X, y = self._inputs(X, y, reset=True)
        targets = self._targets(y, True)
        self._new_model(targets.shape[1])
        self._train(X, targets, self.epochs)
        return self

    def partial_fit(self, X, y):
        """One more epoch on (X, y) (the first call starts a model)."""
        first = not hasattr(self, "model_")
        if first:
            self._check_params()
        X, y = self._inputs(X, y, reset=first)
        targets = self._targets(y, first)
        if first:
            self._new_model(targets.shape[1])
        self._train(X, targets, 1)
        return self

    def _new_model(self, outputs):
        self._start("SequenceRegressor", input_size=self.n_step_features_, output_size=outputs, output="last")

    def predict(self, X):
        """(n,) predictions, or (n, k) when fitted on (n, k) targets.

        Parameters
        ----------
        X : array_like
            (n, T) scalar steps or (n, T, F) feature steps.

        Returns
        -------
        numpy.ndarray
            (n,) or (n, k) predictions.
        """
        check_is_fitted(self)
        X = self._inputs(X, reset=False)
        y = self._batched(self.model_.predict, X) * self.y_scale_ + self.y_mean_
        return y[:, 0] if self._y_1d else y


class RNNTextClassifier(ClassifierMixin, _SequenceEstimator):
    """A recurrent text classifier on a list (or 1-D array) of strings: characters or words
    (`level`, tokens seen fewer than `min_count` times become <unk>) -> embedding (`embed_size`)
    -> the recurrent encoder -> softmax. Other parameters as RNNSequenceClassifier's.

    Its tags declare string input (`input_tags.string`, no 2-D arrays), for which scikit-learn's
    `check_estimator` has no checks; tests/test_sklearn.py checks it by hand (clone, parameters,
    pickling, seeded fits, cross-validation).

    Attributes
    ----------
    classes_ : numpy.ndarray
        The labels seen in `fit`, sorted.
    vocab_ : fastrnn.Vocab
        The vocabulary built from the training texts.
    model_ : fastrnn.SequenceClassifier
        The trained model.
    """

    def __init__(self, level="char", min_count=1, embed_size=16, hidden_size=32, cell="gru", num_layers=1,
                 bidirectional=False, pooling="last", dropout=0.0, epochs=20, batch_size=32, lr=0.01,
                 optimizer="adam", clip=5.0, dtype="float64", random_state=None):
        super().__init__(hidden_size, cell, num_layers, dropout, epochs, batch_size, lr, optimizer, clip,
                         dtype, random_state)
        self.level, self.min_count, self.embed_size = level, min_count, embed_size
        self.bidirectional, self.pooling = bidirectional, pooling

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array, tags.input_tags.string = False, True
        return tags

    def _check_params(self):
        super()._check_params()
        _check_pooling(self)
        _choice("level", self.level, ("char", "word"))
        _int("min_count", self.min_count, 1)
        _int("embed_size", self.embed_size, 1)

    @staticmethod
    def _texts(X):
        """X as a list of str (TypeError/ValueError naming what is wrong)."""
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__") or getattr(X, "ndim", 1) != 1:
            raise ValueError(f"X: expected a list or 1-D array of strings, got {type(X).__name__}"
                             + (f" with {X.ndim} dimensions" if hasattr(X, "ndim") else ""))
        texts = list(X)
        bad = next((k for k, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"X[{bad}]: expected a string, got {type(texts[bad]).__name__}")
        if not texts:
            raise ValueError("X: expected at least one text, got 0")
        return texts

    def _ids(self, texts):
        """Each text's token ids (an empty text is one <unk>: every sequence needs a step)."""
        unk = np.array([self.vocab_.unk_id], np.int64)
        return [ids if len(ids) else unk for ids in map(self.vocab_.encode, texts)]

    def fit(self, X, y):
        """Build the vocabulary and train a new model on texts X with labels y; returns self."""
        from .data import Vocab
        self._check_params()
        texts = self._texts(X)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(texts):
            raise ValueError(f"y: expected a 1-D array of {len(texts)} labels (one per text), got shape {y.shape}")
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.vocab_ = Vocab.build("\n".join(texts), level=self.level, min_count=self.min_count)
        self._start("SequenceClassifier", num_classes=len(self.classes_), vocab_size=len(self.vocab_),
                    embed_size=self.embed_size, bidirectional=bool(self.bidirectional), pooling=self.pooling)
        self._train(self._ids(texts), codes.astype(np.int64), self.epochs)
        return self

    def predict_proba(self, X):
        """(n, n_classes) class probabilities, columns in the order of ``classes_``."""
        from .data import pad_sequences
        check_is_fitted(self)
        ids = self._ids(self._texts(X))
        return np.concatenate([np.asarray(self.model_.predict_proba(*pad_sequences(ids[i:i + 1024])), np.float64)
                               for i in range(0, len(ids), 1024)])

    def predict(self, X):
        """(n,) the most probable label of each text."""
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
