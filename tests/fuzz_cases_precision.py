"""Fuzz case of `precision` (issue 22): models, cells and the Trainer given drawn (possibly
hostile) precisions and dtypes -- an accepted call runs finite and reports the precision it was
given; a refused one raises ValueError/TypeError and leaves the model's precision as it was."""
import numpy as np
from hypothesis import strategies as st

import fastrnn

GOOD = ["float32", "bf16"]
JUNK = ["fp16", "BF16", "bfloat16", "", None, 16, b"bf16", ["bf16"], 1.5]


def precision_api(draw):
    """One of: model.precision = p, a cell built with precision=p, fastrnn.fit(..., precision=p)."""
    p = draw(st.sampled_from(GOOD + JUNK), "precision")
    dtype = draw(st.sampled_from(["float32", "float64"]), "dtype")
    route = draw(st.sampled_from(["model", "cell", "fit"]), "route")
    ok = p in GOOD and not (p == "bf16" and dtype == "float64")
    if route == "cell":
        cls = draw(st.sampled_from([fastrnn.RNNCell, fastrnn.GRUCell, fastrnn.LSTMCell]), "cell")
        try:
            cell = cls(3, 4, dtype=dtype, seed=0, precision=p)
        except (ValueError, TypeError):
            assert not ok
            return
        assert ok and cell.precision == p
        out = cell(np.ones((2, 3), dtype))
        assert np.isfinite(out[0] if isinstance(out, tuple) else out).all()
        return
    model = fastrnn.SequenceRegressor(1, hidden_size=3, output="last", dtype=dtype, seed=0,
                                      cell=draw(st.sampled_from(["gru", "lstm", "rnn"]), "block"))
    x = np.random.default_rng(0).uniform(-1, 1, (8, 3, 1)).astype(dtype)
    batches = [(x[:4], x[:4].sum(1)), (x[4:], x[4:].sum(1))]
    if route == "fit" and p is None:        # the Trainer's default: keep the model's
        ok, p = True, "float32"
    try:
        if route == "model":
            model.precision = p
        else:
            fastrnn.fit(model, batches, epochs=1, optimizer="sgd", lr=0.01, precision=p)
    except (ValueError, TypeError):
        assert not ok and model.precision == "float32"
        return
    assert ok and model.precision == p
    assert np.isfinite(model.params).all()
