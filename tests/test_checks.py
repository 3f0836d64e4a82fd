"""fastrnn.checks, the argument checks every entry point shares, and the structure of nn/: models
reach nothing below fastrnn.nn, and the modules that moved under nn/ keep their old import paths."""
import ast
import importlib
import pathlib

import numpy as np
import pytest

import fastrnn
from fastrnn import checks
from fastrnn.checks import ArgumentTypeError

SRC = pathlib.Path(fastrnn.__file__).parent


def test_a_wrong_type_is_both_a_type_error_and_a_value_error():
    for bad in (True, False, 2.0, "3", None, np.float64(1.0), [1]):
        with pytest.raises(TypeError, match="hidden_size: expected a positive integer"):
            checks.positive_int("hidden_size", bad)
        with pytest.raises(ValueError, match="hidden_size"):
            checks.positive_int("hidden_size", bad)
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)


def test_integers():
    assert checks.positive_int("n", np.int64(3)) == 3 and type(checks.positive_int("n", np.int8(3))) is int
    assert checks.positive_int("n", None, none_ok=True) is None
    assert checks.integer("k", -5) == -5 and checks.integer("k", 0, 0) == 0
    with pytest.raises(ValueError, match=r"n: expected a positive integer, got 0") as e:
        checks.positive_int("n", 0)
    assert not isinstance(e.value, TypeError)            # in range or not: a ValueError only
    with pytest.raises(ValueError, match=r"beam: expected an integer in \[1, 4\], got 5"):
        checks.integer("beam", 5, 1, 4)
    with pytest.raises(ValueError, match=r"seed: expected a non-negative integer, got -1"):
        checks.integer("seed", -1, 0)
    with pytest.raises(ValueError, match=r"top_k: expected None or a positive integer"):
        checks.integer("top_k", 0, 1, none_ok=True)
    with pytest.raises(ValueError, match=r"bos_id: expected an id in \[0, 5\), got 5"):
        checks.integer("bos_id", 5, 0, 4, expected="an id in [0, 5)")


def test_reals():
    assert checks.real("lr", 1) == 1.0 and checks.real("lr", np.float32(0.5)) == 0.5
    assert checks.real("p", None, none_ok=True) is None
    assert checks.probability("p", 0) == 0.0
    for bad in (1, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\)"):
            checks.probability("p", bad)
    for bad in (True, "0.5", None, np.bool_(True)):
        with pytest.raises(TypeError, match="p: expected"):
            checks.probability("p", bad)
    for bad in (float("inf"), float("nan"), 10 ** 400, 0):
        with pytest.raises(ValueError, match="temperature"):
            checks.real("temperature", bad, 0, low_open=True)
    with pytest.raises(ValueError, match=r"top_p: expected None or a number in \(0, 1\], got 1.5"):
        checks.real("top_p", 1.5, 0, 1, low_open=True, none_ok=True)


def test_choices():
    assert checks.choice("cell", "gru", ("lstm", "gru")) == "gru"
    for bad in ("GRU", None, 1, ["gru"], np.array(["gru"])):
        with pytest.raises(ValueError, match=r"cell: expected one of \['lstm', 'gru'\]"):
            checks.choice("cell", bad, ("lstm", "gru"))
    with pytest.raises(ValueError, match="mode"):
        checks.choice("mode", True, (0, 1))               # True == 1, but a bool is no number
    assert checks.choice("flag", True, (True, False)) is True


def test_ids():
    got = checks.ids("ids", [[0, 4]], 5, ndim=2)
    assert got.dtype.kind == "i" and got.shape == (1, 2)
    assert checks.ids("ids", np.zeros((0,), np.int64), 1).size == 0
    with pytest.raises(TypeError, match="ids: expected integer ids, got float64"):
        checks.ids("ids", [0.0, 1.0], 5)
    with pytest.raises(ValueError, match=r"targets: ids must be in \[0, 5\), got 0..5"):
        checks.ids("targets", [0, 5], 5)
    with pytest.raises(ValueError, match=r"ids: ids must be in \[0, 5\), got -1..0"):
        checks.ids("ids", [-1, 0], 5)
    with pytest.raises(ValueError, match="ids: expected 2-D ids"):
        checks.ids("ids", [0, 1], 5, ndim=2)


def test_lengths():
    assert checks.lengths(None, 3, 4).tolist() == [4, 4, 4]
    got = checks.lengths(np.array([1, 4], np.int32), 2, 4)
    assert got.dtype == np.int64 and got.tolist() == [1, 4]
    assert checks.lengths([0, 2], 2, 4, allow_empty=True).tolist() == [0, 2]
    cases = [([0, 2], ValueError, r"lengths: expected values in \[1, 4\] \(no empty"),
             ([1, 5], ValueError, r"lengths: expected values in \[1, 4\]"),
             ([1.0, 2.0], TypeError, "lengths: expected integers"),
             ([1, 2, 3], ValueError, r"lengths: expected shape \(2,\)")]
    for value, exc, match in cases:
        with pytest.raises(exc, match=match):
            checks.lengths(value, 2, 4)
    with pytest.raises(ValueError, match="src_lengths: the sequences have no steps"):
        checks.lengths(None, 2, 0, name="src_lengths")


def test_dtypes_and_float_arrays():
    assert checks.float_dtype("float32") == np.float32 and checks.float_dtype(np.float64) == np.float64
    for bad in (None, "int32", "nonsense", np.float16):
        with pytest.raises(TypeError, match="dtype: expected 'float32' or 'float64'"):
            checks.float_dtype(bad)
    assert checks.float_array("x", [1.0]).dtype == np.float64
    with pytest.raises(TypeError, match="x: expected a float array, got int64"):
        checks.float_array("x", np.zeros(2, np.int64))


def test_models_and_layers_raise_as_before():
    """The entry points that moved to fastrnn.checks keep their exception types: a bool size was a
    ValueError in the layers and models, a bool length a TypeError in generate."""
    for make in (lambda: fastrnn.LSTM(3, True), lambda: fastrnn.LanguageModel(5, hidden_size=True),
                 lambda: fastrnn.nn.Linear(2, False), lambda: fastrnn.nn.Dropout(True)):
        with pytest.raises(ValueError):
            make()
    with pytest.raises(TypeError, match="length"):
        fastrnn.generate(fastrnn.LanguageModel(3, hidden_size=4, num_layers=1),
                         fastrnn.Vocab.build("abc"), length=True)


# ---- the structure of nn/ ---------------------------------------------------------------------
def _imports(path):
    """Every module name an `import` / `from ... import` in `path` names, relative ones resolved
    against the fastrnn package (levels counted from path's directory)."""
    tree = ast.parse(path.read_text())
    package = list(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return out


def test_models_import_nothing_below_nn():
    """models/ builds on fastrnn.nn (and fastrnn.checks): no fastrnn._kernels, and no private
    attribute of a block (_views, _weights, _grad_views)."""
    files = sorted((SRC / "models").glob("*.py"))
    assert len(files) > 5
    for path in files:
        names = _imports(path)
        assert not [n for n in names if "_kernels" in n.split(".")], f"{path.name} imports fastrnn._kernels"
        assert not [n for n in names if n.startswith("fastrnn.") and n.split(".")[1] in
                    ("layers", "cells", "losses", "_buffers")], f"{path.name} imports an old nn path"
        tree = ast.parse(path.read_text())
        private = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                   and node.attr in ("_views", "_grad_views", "_weights", "_weight_views")}
        assert not private, f"{path.name} reaches into a block's {sorted(private)}"


def test_nn_imports_no_module_that_imports_nn():
    """Arrows run one way: nn/ may use fastrnn's leaves (checks, params, _kernels, _packs) at import
    time, never the modules built on it (models, train, io, ...)."""
    allowed = {"fastrnn", "fastrnn.nn", "fastrnn.checks", "fastrnn.params", "fastrnn._kernels",
               "fastrnn._packs", "fastrnn.precision",       # precision: a leaf (numpy only)
               "fastrnn.quant"}                             # quant: lazily, inside functions
    for path in sorted((SRC / "nn").glob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "fastrnn" or name.startswith("fastrnn.nn"):
                continue
            top = ".".join(parts[:2])
            assert top in allowed or ".".join(parts[:-1]) in allowed, f"nn/{path.name} imports {name}"


def test_the_old_import_paths_still_work():
    """fastrnn.layers, .cells, ._buffers and .losses are the nn modules themselves (alias for one
    release): names, isinstance and monkeypatching a module attribute all carry over."""
    from fastrnn._buffers import LayerBuffers
    from fastrnn.cells import GRUCell
    from fastrnn.layers import LSTM, _Recurrent
    from fastrnn.losses import log_softmax, softmax_cross_entropy
    assert LSTM is fastrnn.LSTM is fastrnn.nn.LSTM and GRUCell is fastrnn.GRUCell
    assert issubclass(fastrnn.nn.MGU, _Recurrent) and LayerBuffers is fastrnn.nn.buffers.LayerBuffers
    assert log_softmax is fastrnn.nn.loss_math.log_softmax
    assert softmax_cross_entropy is fastrnn.nn.softmax_cross_entropy
    for old, new in (("layers", "nn.layers"), ("cells", "nn.cells"), ("_buffers", "nn.buffers"),
                     ("losses", "nn.loss_math")):
        module = importlib.import_module(f"fastrnn.{old}")
        assert module is importlib.import_module(f"fastrnn.{new}") is getattr(fastrnn, old)
    for old in ("layers.py", "cells.py", "_buffers.py", "losses.py"):
        assert not (SRC / old).exists()      # no copy to drift: git follows the moves


def test_no_nn_file_over_500_lines():
    for path in sorted((SRC / "nn").glob("*.py")) + [SRC / "checks.py"]:
        assert len(path.read_text().splitlines()) <= 500, path.name
