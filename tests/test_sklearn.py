"""fastrnn.sklearn: scikit-learn's own estimator checks (check_estimator, through
parametrize_with_checks), seeded reproducibility, (n, T, F) input, partial_fit, pickling,
bad hyper-parameters, and the README's GridSearchCV."""
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")        # the "sklearn" extra; CI installs it

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastrnn.sklearn import RNNSequenceClassifier, RNNSequenceRegressor, RNNTextClassifier  # noqa: E402

# small models keep the ~55 checks each to seconds; the regressor must reach R^2 > 0.5 on
# scikit-learn's regression data, which 30 epochs of 16 units do (0.80). The text classifier's
# tags declare string input: scikit-learn runs its clone check and skips the numeric suite by
# that tag (a SkipTestWarning); test_text_classifier below checks it by hand.
CHECKED = [RNNSequenceClassifier(hidden_size=8, epochs=5),
           RNNSequenceRegressor(hidden_size=16, epochs=30, lr=0.02),
           RNNTextClassifier(epochs=2)]


@parametrize_with_checks(CHECKED)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def sign_data(n=120, T=6, F=2, seed=0):
    """(n, T, F) sequences labelled by the sign of their first feature's sum."""
    x = np.random.default_rng(seed).normal(size=(n, T, F))
    return x, np.where(x[:, :, 0].sum(1) > 0, "pos", "neg")


def test_seeded_fits_are_identical_and_seeds_differ():
    X, y = sign_data()
    a = RNNSequenceClassifier(hidden_size=6, epochs=3, random_state=3).fit(X, y)
    b = RNNSequenceClassifier(hidden_size=6, epochs=3, random_state=3).fit(X, y)
    c = RNNSequenceClassifier(hidden_size=6, epochs=3, random_state=4).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_classifier_on_3d_sequences_learns_and_pickles():
    X, y = sign_data()
    clf = RNNSequenceClassifier(hidden_size=12, epochs=25, random_state=0).fit(X[:90], y[:90])
    assert list(clf.classes_) == ["neg", "pos"] and clf.n_features_in_ == 6 and clf.n_step_features_ == 2
    assert clf.score(X[90:], y[90:]) >= 0.8
    p = clf.predict_proba(X[90:])
    assert p.shape == (30, 2) and np.allclose(p.sum(1), 1)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X[90:]), p)
    with pytest.raises(ValueError, match="features per step"):
        clf.predict(X[:, :, :1])
    with pytest.raises(ValueError, match="6 features"):
        clf.predict(X[:, :4])


def test_partial_fit_is_one_epoch_and_continues():
    X, y = sign_data()
    whole = RNNSequenceClassifier(hidden_size=6, epochs=3, random_state=1).fit(X, y)
    parts = RNNSequenceClassifier(hidden_size=6, epochs=3, random_state=1)
    for _ in range(3):
        parts.partial_fit(X, y, classes=["neg", "pos"])
    assert parts.n_iter_ == whole.n_iter_ == 3
    # one fit of 3 epochs draws its batch order once, the partial fits once each: close, not equal
    assert np.abs(parts.predict_proba(X) - whole.predict_proba(X)).max() < 0.5
    with pytest.raises(ValueError, match="labels not in classes_"):
        parts.partial_fit(X, np.where(y == "pos", "other", y))
    reg = RNNSequenceRegressor(hidden_size=6, random_state=0)
    reg.partial_fit(X, X[:, :, 0].sum(1)).partial_fit(X, X[:, :, 0].sum(1))
    assert reg.n_iter_ == 2 and reg.predict(X).shape == (120,)


def test_regressor_multi_output_and_target_scale():
    X, _ = sign_data(seed=2)
    y = np.stack([1000 + 50 * X[:, :, 0].sum(1), -X[:, :, 1].mean(1)], axis=1)
    reg = RNNSequenceRegressor(hidden_size=16, epochs=40, lr=0.02, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (120, 2) and reg.score(X, y) > 0.8


@pytest.mark.parametrize("params, match", [
    (dict(hidden_size=0), "hidden_size"), (dict(hidden_size=2.5), "hidden_size"),
    (dict(cell="transformer"), "cell"), (dict(dropout=1.0), "dropout"), (dict(epochs=True), "epochs"),
    (dict(lr=0), "lr"), (dict(lr=float("nan")), "lr"), (dict(optimizer="lbfgs"), "optimizer"),
    (dict(dtype="float16"), "dtype"), (dict(random_state="seed"), "random_state"),
    (dict(batch_size=-1), "batch_size"), (dict(pooling="sum"), "pooling"), (dict(bidirectional="no"), "bidirectional"),
])
def test_bad_hyper_parameters_fail_in_fit_naming_them(params, match):
    X, y = sign_data(20)
    clf = RNNSequenceClassifier(**params)           # scikit-learn: __init__ and set_params never raise
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    if "pooling" not in params and "bidirectional" not in params:
        with pytest.raises(ValueError, match=match):
            RNNSequenceRegressor(**params).fit(X, X[:, 0, 0])


def test_readme_grid_search():
    # the README's example, smaller: 2 x 2 settings, 3-fold, on (n, T) arrays
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 8))
    y = (X[:, :4].sum(1) > X[:, 4:].sum(1)).astype(int)
    search = GridSearchCV(RNNSequenceClassifier(epochs=10, random_state=0),
                          {"hidden_size": [4, 16], "lr": [0.001, 0.02]}, cv=3)
    search.fit(X, y)
    assert set(search.best_params_) == {"hidden_size", "lr"}
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert search.best_score_ == max(search.cv_results_["mean_test_score"]) > 0.6
    assert cross_val_score(clone(search.best_estimator_), X, y, cv=3).mean() > 0.6


def test_text_classifier():
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("abcdefg")) for _ in range(rng.integers(0, 10))) for _ in range(150)]
    y = np.array(["has a" if "a" in t else "no a" for t in texts])
    clf = RNNTextClassifier(epochs=15, random_state=0)
    assert cross_val_score(clf, texts, y, cv=3).mean() > 0.9
    clf.fit(texts, y)
    assert list(clf.predict(["bcd", "aaa", ""])) == ["no a", "has a", "no a"]
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(texts), clf.predict_proba(texts))
    twin = clone(clf).fit(texts, y)             # seeded: the same model
    np.testing.assert_array_equal(twin.predict_proba(texts), clf.predict_proba(texts))
    assert clone(clf).set_params(level="word").get_params()["level"] == "word"
    words = RNNTextClassifier(level="word", epochs=2, random_state=0).fit(["a b", "c d e", "a"], [0, 1, 0])
    assert words.vocab_.level == "word" and words.predict(["a b", "zzz"]).shape == (2,)
    for X, err in (("one string", ValueError), (np.array([["a"], ["b"]]), ValueError), ([1, 2], TypeError), ([], ValueError)):
        with pytest.raises(err, match="X"):
            RNNTextClassifier(epochs=1).fit(X, [0] * max(len(X), 1) if not isinstance(X, str) else [0])
    with pytest.raises(ValueError, match="level"):
        RNNTextClassifier(level="byte").fit(texts, y)
    with pytest.raises(ValueError, match="y"):
        RNNTextClassifier(epochs=1).fit(texts, y[:-1])
