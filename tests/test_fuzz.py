"""Fuzzing every public entry point, each batch of cases in a subprocess (crash isolation).

CI runs a fixed (derandomized) slice; FASTRNN_FUZZ_EXAMPLES=N runs N random cases per entry
point (see docs/reliability.md). The cases live in fuzz_entry_points.ENTRY_POINTS.
"""
import numpy as np
import pytest

from fastrnn import _kernels
from fuzz_entry_points import ENTRY_POINTS
from fuzz_helpers import campaign_examples, run_isolated

# CI examples per entry point: the slow ones (a model or layer built per case) get fewer
CI_EXAMPLES = dict.fromkeys(ENTRY_POINTS, 60)
CI_EXAMPLES.update(layer_forward_backward=40, layer_step=40, model=30, sampling=30, optimizers=30, quantize=30,
                   attention_seq2seq=30)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_point_survives_hostile_arguments(entry):
    n = campaign_examples() or CI_EXAMPLES[entry]
    counts = run_isolated(entry, n)
    assert counts["ok"] + counts["rejected"] >= n
    # a fuzzer that only ever sees rejections tests nothing beyond argument checks (damaged
    # checkpoints are rejected by design: only harmless damage, e.g. a timestamp, loads)
    assert counts["ok"] >= (0.02 if entry == "checkpoint_damage" else 0.1) * n, counts


def test_a_crash_fails_with_its_case(monkeypatch, tmp_path):
    """The isolation itself: a case that segfaults is reported with its drawn values."""
    (tmp_path / "crashing_entry.py").write_text(
        "import ctypes\nfrom hypothesis import strategies as st\n\n"
        "def crash(draw):\n    draw(st.just('the fatal case'), 'marker')\n    ctypes.string_at(0)\n\n"
        "ENTRY_POINTS = {'crash': crash}\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("FASTRNN_FUZZ_EXTRA_MODULE", "crashing_entry")
    with pytest.raises(AssertionError, match="(?s)SIGSEGV.*the fatal case"):
        run_isolated("crash", 1)


# ---- defects found by fuzzing in the kernels/layers (issue 13, defects 1 and 14) --------------

def test_kernel_step_rejects_a_multi_step_x_t():
    with pytest.raises(ValueError, match="x_t"):
        _kernels.step("rnn_tanh", np.ones((3, 1, 2), np.float32), np.zeros((1, 3), np.float32),
                      None, np.ones((3, 2), np.float32), np.ones((3, 3), np.float32))


def test_kernel_step_h_out_aliasing_c_is_rejected_or_correct():
    rng = np.random.default_rng(0)
    H, B = 3, 2
    W_ih, W_hh = rng.standard_normal((4 * H, 2)), rng.standard_normal((4 * H, H))
    x, h, c = rng.standard_normal((B, 2)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    want_h, want_c = _kernels.step("lstm", x, h, c, W_ih, W_hh)
    c2 = c.copy()
    try:
        got_h, _ = _kernels.step("lstm", x, h, c2, W_ih, W_hh, h_out=c2)
    except ValueError:
        return
    np.testing.assert_allclose(got_h, want_h, rtol=1e-12)


def test_scatter_add_rows_rejects_float_ids():
    with pytest.raises(TypeError, match="ids"):
        _kernels.scatter_add_rows(np.zeros((3, 2)), np.array([1.7]), np.ones((1, 2)))


def test_tape_size_does_not_wrap_around():
    T = B = H = 2**31 - 1
    try:
        size = _kernels.tape_size("lstm", T, B, 1, H)
    except (ValueError, OverflowError):
        return
    assert size >= T * B * H
