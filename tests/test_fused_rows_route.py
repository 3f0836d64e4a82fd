"""The fused step's one-hot layer 0 read and written in place (frnn_stack.rows_ids, csrc/stack.h):
the stack gathers W_ih0's token rows straight into layer 0's gate rows (input_projection with
ids) and adds layer 0's dG rows straight into dW_ih0's token rows (input_grads), instead of
going through acts[0] / grads[0]; the batch split falls back to that route (F(rows_route)).
Both give the Python path's loss and gradients, the same bits on 1, 2 and 3 members, for
repeated tokens and the last token id, at 1-3 layers. The db_ih / db_hh single column sum
(common.h one_colsum) is covered too: both are dG's column sums, so they come out equal."""
import numpy as np
import pytest

from fastrnn.models import LanguageModel
from test_fused_head_rows import _python_loss as _python_step, fused_step_on_1_2_3_members


def _repeated_ids(V, B, T, seed):
    """Inputs where the last token id V - 1 and token 0 repeat (most rows hit two table rows)."""
    rng = np.random.default_rng(seed)
    inputs = rng.choice([0, V - 1, V // 2], size=(B, T), p=[0.4, 0.4, 0.2])
    return inputs, rng.integers(0, V, (B, T))


def _check(cell, L, V, H, B, T):
    inputs, targets = _repeated_ids(V, B, T, seed=L * 7 + H)
    make = lambda: LanguageModel(V, cell=cell, hidden_size=H, num_layers=L, dtype="float32", seed=6)
    ref = make()
    want = _python_step(ref, inputs, targets)
    loss, grads = fused_step_on_1_2_3_members(make, inputs, targets)
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    np.testing.assert_allclose(grads, ref.grads, rtol=1e-4, atol=1e-6)
    model = make()
    model.grads[:] = grads
    dW_ih0 = model.rnn._weights(0, 0)[2]["W_ih"]
    assert np.all(dW_ih0[:, [0, V - 1, V // 2]] != 0)          # the repeated tokens' columns
    others = np.setdiff1d(np.arange(V), [0, V - 1, V // 2])
    assert np.all(dW_ih0[:, others] == 0)                       # tokens absent from the inputs
    return model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mgu"])
@pytest.mark.parametrize("L", [1, 2, 3])
def test_one_hot_rows_in_place_match_the_python_step_on_1_2_3_members(cell, L):
    _check(cell, L, V=29, H=12, B=6, T=9)      # N 54 >= gate width: the in-place route


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_batch_split_fallback_through_acts0_matches_the_python_step(cell, monkeypatch):
    monkeypatch.setenv("FASTRNN_DECOMP", "batch")                 # rows_route: acts[0] / grads[0]
    _check(cell, 2, V=31, H=10, B=12, T=7)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_db_ih_and_db_hh_are_one_column_sum(cell):
    model = _check(cell, 2, V=23, H=9, B=5, T=8)
    for k in (0, 1):
        p = model.rnn._weights(k, 0)[2]
        assert np.array_equal(p["b_ih"], p["b_hh"]) and np.any(p["b_ih"] != 0)
