"""Issue 21's fused-step checks on every combination they name, on every run (the hypothesis sweeps
of test_fused_step.py and test_fused_seq.py draw 25-30 random cases, so a run may miss one):
every optimiser x embedding / one-hot input x the norm and the value clip, float64 to 1e-12
against the Python steps for the language model and the sequence heads; float32 with every
optimiser and both clips bit-identical at 1, 2 and 3 threads; and `fastrnn train` on a text
running every iteration on the fused step (FASTRNN_FUSED=0: none)."""
import io
import json
import sys

import numpy as np
import pytest

import fastrnn
import test_fused_seq as seq
import test_fused_step as lm
from fastrnn.train import fused

OPTS = sorted(lm.OPTIMIZERS)


@pytest.mark.parametrize("opt", OPTS)
@pytest.mark.parametrize("embed", [None, 4], ids=["one-hot", "embedding"])
def test_lm_every_optimiser_with_both_clips_float64(opt, embed):
    kw = dict(cell="gru", layers=2, embed=embed, dropout=0.3)
    a = lm._train(False, "float64", opt, 0.3, 0.01, **kw)
    b = lm._train(True, "float64", opt, 0.3, 0.01, **kw)
    lm._close(a, b, 1e-12)
    for name in a[4].state_names:
        np.testing.assert_allclose(a[4].state[name], b[4].state[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("opt", OPTS)
@pytest.mark.parametrize("model", [("tagger", "last"), ("classifier", "mean")])
def test_sequence_heads_every_optimiser_with_both_clips_float64(opt, model):
    kind, pooling = model
    kw = dict(cell="lstm", layers=2, bidirectional=True, ids=True, dropout=0.3, pooling=pooling)
    a = seq._train(False, kind, "float64", opt, 0.3, 0.01, **kw)
    b = seq._train(True, kind, "float64", opt, 0.3, 0.01, **kw)
    seq.close_runs(a, b, 1e-12)
    seq.same_optimiser(a, b, 3)


@pytest.mark.parametrize("opt", OPTS)
def test_lm_every_optimiser_bit_identical_on_1_2_3_threads(opt):
    runs = []
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            model = lm._model("float32", cell="lstm", layers=2, embed=None, dropout=0.2, hidden=48)
            cls, kw = lm.OPTIMIZERS[opt]
            step = fused.FusedStep(model, cls(model, lr=0.01, **kw), clip=0.5, clip_value=0.02)
            state = None
            for inputs, targets in lm._batches(2, B=16, T=20):
                loss, state = step.step(inputs, targets, state)
                assert step.status == 0
            runs.append((loss, model.params.copy(), model.grads.copy()))
    finally:
        fastrnn.set_num_threads(None)
    lm.assert_same_runs(runs)


def test_fastrnn_train_on_a_text_runs_every_iteration_fused(tmp_path, monkeypatch):
    """`fastrnn train TEXT` (a language model): every iteration is one FusedStep.step call."""
    from fastrnn.cli import main
    rng = np.random.default_rng(0)
    text = tmp_path / "t.txt"
    text.write_text("".join(rng.choice(list("abcde fgh\n"), 3000)))
    calls = []
    real = fused.FusedStep.step
    monkeypatch.setattr(fused.FusedStep, "step", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    args = ["train", str(text), "--hidden", "16", "--layers", "2", "--batch", "4", "--seq-len", "16",
            "--epochs", "1", "--optimizer", "rmsprop", "--clip", "1", "--clip-value", "0.5", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    iters = max(r["iteration"] for r in log)
    assert iters > 10 and len(calls) == iters
    monkeypatch.setenv("FASTRNN_FUSED", "0")
    calls.clear()
    assert main([*args, "--out", str(tmp_path / "run0")]) == 0
    assert not calls
