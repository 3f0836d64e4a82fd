"""The LanguageModel rebuilt on fastrnn.nn against checkpoints written by the code before it
(tests/data/lm_v1_*.npz, made by tests/data/make_lm_fixtures.py at commit 92dbb46): same names,
same loss and gradients to 1e-12 in float64, and `fastrnn sample` still reads them."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn.models import LanguageModel

DATA = os.path.join(os.path.dirname(__file__), "data")
FILES = ["lm_v1_onehot_lstm.npz", "lm_v1_embed_gru.npz"]


@pytest.mark.parametrize("name", FILES)
def test_old_checkpoint_gives_the_same_loss_and_gradients(name):
    model, vocab, extra = fastrnn.load(os.path.join(DATA, name))
    assert isinstance(model, LanguageModel) and model.dtype == np.float64
    a = extra["arrays"]
    grads = {k[len("grad/"):]: v for k, v in a.items() if k.startswith("grad/")}
    assert list(grads) == list(dict(model.named_parameters()))       # names and order unchanged
    assert list(grads)[-2:] == ["head.weight", "head.bias"]
    model.zero_grad()
    loss, _ = model.forward(a["inputs"], a["targets"], train=True)
    model.backward()
    assert abs(loss - float(a["loss"])) <= 1e-12 * max(1.0, abs(float(a["loss"])))
    for k, g in model.named_grads().items():
        np.testing.assert_allclose(g, grads[k], rtol=0, atol=1e-12, err_msg=k)


def test_sample_command_reads_an_old_checkpoint():
    path = os.path.join(DATA, FILES[0])
    # the fastrnn this test imported (installed, or a source tree with the extension built)
    here = os.path.dirname(os.path.dirname(os.path.abspath(fastrnn.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [here, os.environ.get("PYTHONPATH", "")] if p))
    out = subprocess.run([sys.executable, "-m", "fastrnn", "sample", path, "--length", "20", "--seed", "1"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout) > 0


def test_same_seed_same_initial_weights_and_bools_are_not_sizes():
    a, b = LanguageModel(11, hidden_size=6, embed_size=4, seed=3), LanguageModel(11, hidden_size=6, embed_size=4, seed=3)
    np.testing.assert_array_equal(a.params, b.params)
    for bad in (dict(vocab_size=True), dict(vocab_size=5, hidden_size=False), dict(vocab_size=5, embed_size=True),
                dict(vocab_size=5, num_layers=0), dict(vocab_size=5, cell="tcn")):
        with pytest.raises(ValueError):
            LanguageModel(**bad)
    with pytest.raises(TypeError, match="dtype"):
        LanguageModel(5, dtype=None)


@pytest.mark.parametrize("V,kw", [(6, dict(cell="gru", embed_size=3)), (6, dict(cell="lstm")),
                                  (20, dict(cell="lstm")), (6, dict(cell="rnn", embed_size=2))])
def test_lm_gradients_match_finite_differences(V, kw):
    """Embedding and one-hot inputs (V <= B*T: rows of W_ih^T; V > B*T: columns of W_ih), every cell."""
    model = LanguageModel(V, hidden_size=4, num_layers=2, dtype="float64", seed=1, **kw)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, (2, 5))
    tg = np.roll(ids, -1, 1)
    model.zero_grad()
    model.forward(ids, tg)
    model.backward()
    p, g = model.params, model.grads.copy()
    for i in rng.choice(p.size, 40, replace=False):
        old = p[i]
        p[i] = old + 1e-6
        model.invalidate()                  # we edit params in place: say so
        up = model.forward(ids, tg, train=False)[0]
        p[i] = old - 1e-6
        model.invalidate()
        down = model.forward(ids, tg, train=False)[0]
        p[i] = old
        model.invalidate()
        assert abs((up - down) / 2e-6 - g[i]) < 1e-7, i


@pytest.mark.parametrize("engine", [False, True], ids=["blas", "engine"])
def test_an_old_training_run_resumes_to_the_same_parameters(engine):
    """The old run continues to the parameters it reached when it was written: on the BLAS path to
    float32 rounding only (OpenBLAS picks its kernels by CPU -- the fixture was written with its
    Haswell kernels on a Zen 3; on an AVX-512 CPU its SkylakeX kernels sum in another order: 3e-8
    apart), on the float32 engine, which sums in its own order, within a looser bound. That a
    resume is bit-identical to an uninterrupted run on one machine is tested in test_train.py."""
    from fastrnn import _kernels
    from fastrnn.data import Vocab, split
    from fastrnn.train import Trainer
    text = "".join(f"line {i}: the cat sat on the mat, {i * i % 97}\n" for i in range(30))
    vocab = Vocab.build(text)
    train_ids, val_ids, _ = split(vocab.encode(text), 0.1, 0.0)
    _kernels.set_engine(engine)
    try:
        trainer = Trainer.resume(os.path.join(DATA, "lm_v1_run_last.npz"), train_ids, val_ids, progress=False)
        assert trainer.iteration == 3 and trainer.forward.state is not None
        trainer.fit(max_iters=4)
    finally:
        _kernels.set_engine(True)
    expected = np.load(os.path.join(DATA, "lm_v1_run_expected.npz"))["params"]
    if engine and _kernels.engine_info()["path"] == "engine":
        np.testing.assert_allclose(trainer.model.params, expected, rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_allclose(trainer.model.params, expected, rtol=1e-5, atol=1e-7)


def test_lm_load_state_dict_is_all_or_nothing():
    model = LanguageModel(7, hidden_size=4, num_layers=1, seed=0)
    before = model.params.copy()
    state = {k: v + 1 for k, v in model.state_dict().items()}
    state["head.bias"] = np.zeros(8)
    with pytest.raises(ValueError, match="head.bias"):
        model.load_state_dict(state)
    state["head.bias"] = np.zeros(7, complex)
    with pytest.raises(TypeError, match="head.bias"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.params, before)
