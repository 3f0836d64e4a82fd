"""The fused step's one-hot input copies (csrc/head_impl.h transpose_cols / untranspose_cols, float32
through the engine's 8 x 8 tile transpose): layer 0's W_ih columns gathered into the input rows
and the input gradient scattered back into dW_ih, for gate widths and vocabularies that are no
multiple of 8 (the tiles' tails), with and without the scratch copy (N >= or < the gate width),
split over 1, 2 and 3 members by cache lines (odd column offsets): the same bits on every member
count, and the Python path's loss and gradients."""
import numpy as np
import pytest

from fastrnn.models import LanguageModel
from fastrnn.train.fused import FusedStep
from test_fused_head_rows import _ids, _python_loss as _python_step, fused_step_on_1_2_3_members


@pytest.mark.parametrize("V,H,B,T", [(37, 5, 8, 9),     # gate width 20, N 72 >= 20: scratch copies
                                     (65, 13, 6, 7),    # width 52, V 65: both tails
                                     (11, 16, 5, 16),   # width 64, V 11 < 16
                                     (29, 11, 2, 3)])   # N 6 < width 44: no scratch, column walk
def test_one_hot_copies_match_the_python_step_with_the_same_bits_on_1_2_3_members(V, H, B, T):
    inputs, targets = _ids(V, B, T, seed=V + H)
    ref = LanguageModel(V, hidden_size=H, num_layers=1, dtype="float32", seed=4)
    assert not ref.config["embed_size"]                   # a one-hot input: layer 0's W_ih columns
    want = _python_step(ref, inputs, targets)
    loss, grads = fused_step_on_1_2_3_members(
        lambda: LanguageModel(V, hidden_size=H, num_layers=1, dtype="float32", seed=4), inputs, targets)
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    np.testing.assert_allclose(grads, ref.grads, rtol=1e-4, atol=1e-6)
    assert np.any(grads != 0)


def test_a_token_absent_from_the_batch_keeps_a_zero_gradient_column():
    V, H = 23, 6
    inputs, targets = _ids(V - 3, 7, 8, seed=5)           # tokens V-3 .. V-1 never appear as inputs
    model = LanguageModel(V, hidden_size=H, num_layers=1, dtype="float32", seed=2)
    FusedStep(model).step(inputs, targets)
    dW_ih0 = model.rnn._weights(0, 0)[2]["W_ih"]
    assert dW_ih0.shape == (4 * H, V)
    assert np.all(dW_ih0[:, V - 3:] == 0) and np.any(dW_ih0[:, :V - 3] != 0)
