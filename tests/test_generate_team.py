"""The generation loop as one team task per call (csrc/generate_team.h) against the per-step path
it replaces (FASTRNN_GENERATE=steps: frnn_forward per layer and the head product per step): the
same tokens, lengths and end flags -- the same bits of every product -- for few rows (W read in
place) and many (packed panels), one-hot and embedding inputs, K blocks (hidden > 256), every
thread count; fewer barriers per step; and bad logits still raise."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel
from fastrnn.sample import generate

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 4


def _model(cell, layers, embed, hidden=24, seed=0):
    vocab = Vocab.build(TEXT)
    model = LanguageModel(len(vocab), cell=cell, hidden_size=hidden, num_layers=layers, embed_size=embed,
                          seed=seed)
    # weights large enough for chaotic dynamics: one differing bit soon changes a token
    model.params[:] = np.random.default_rng(seed).uniform(-0.6, 0.6, model.params.size)
    model.head._views["bias"][vocab.eos_id] = -1e30     # no early <eos>: full-length texts
    model.invalidate()
    return model, vocab


def _run(model, vocab, B, steps, seed, feed=3, **sampling):
    """(out, n_out, done) of a primed generator after `steps` rounds of draws from `seed`."""
    gen = model.generator(B, steps, eos=vocab.eos_id, **sampling)
    rng = np.random.default_rng(seed)
    gen.feed(rng.integers(0, len(vocab), (feed, B)))
    gen.start(rng.integers(0, len(vocab), B))
    u = None if sampling.get("argmax") else rng.random((steps, B))
    ran = gen.sample(steps, u)
    return ran, gen.out.copy(), gen.n_out.copy(), gen.done.copy()


def _both(monkeypatch, fn):
    monkeypatch.setenv("FASTRNN_GENERATE", "steps")
    want = fn()
    monkeypatch.delenv("FASTRNN_GENERATE")
    return fn(), want


@pytest.mark.parametrize("cell, layers, embed, hidden", [("lstm", 2, None, 24), ("lstm", 2, 7, 40),
                                                         ("gru", 2, None, 24), ("rnn", 3, 5, 20),
                                                         ("lstm", 2, None, 300)])
@pytest.mark.parametrize("B", [1, 3, 8, 13])
def test_team_task_gives_the_per_step_paths_tokens(monkeypatch, cell, layers, embed, hidden, B):
    model, vocab = _model(cell, layers, embed, hidden)
    steps = 25 if hidden > 256 else 60
    for threads in (1, 2, 3):
        fastrnn.set_num_threads(threads)
        try:
            for sampling in (dict(argmax=True), dict(temperature=1.4, top_k=6), dict(top_p=0.9)):
                got, want = _both(monkeypatch, lambda: _run(model, vocab, B, steps, 7, **sampling))
                assert got[0] == want[0] == steps
                for g, w in zip(got[1:], want[1:]):
                    np.testing.assert_array_equal(g, w)
        finally:
            fastrnn.set_num_threads(0)


def test_stop_strings_and_eos_in_the_team_task(monkeypatch):
    model, vocab = _model("lstm", 2, None)
    model.head._views["bias"][vocab.eos_id] = 1.5      # some sequences end early at <eos>
    model.invalidate()
    for stop in (None, "a", "at"):
        got, want = _both(monkeypatch, lambda: generate(model, vocab, prime="the", length=80, seed=3,
                                                         stop=stop, num_samples=16))
        assert got == want
    assert any(len(t) < 83 for t in got)


def test_one_barrier_per_layer_and_one_for_the_head(monkeypatch):
    model, vocab = _model("lstm", 2, None, hidden=64)
    fastrnn.set_num_threads(2)
    try:
        counts = []
        for env in ("steps", None):
            if env:
                monkeypatch.setenv("FASTRNN_GENERATE", env)
            else:
                monkeypatch.delenv("FASTRNN_GENERATE")
            gen = model.generator(16, 50, argmax=True)
            before = _kernels.sync_count()
            assert gen.sample(50) == 50
            counts.append(_kernels.sync_count() - before)
    finally:
        fastrnn.set_num_threads(0)
    # the team task: one barrier after packing, then per step one per layer and one after the draws
    assert counts[1] == 1 + 50 * (2 + 1)
    # the per-step path: 5 a step here (6 before layer 1's W_ih^T was kept packed with the
    # layer: its input projection packed it itself, one barrier more), team hand-offs included
    assert counts[0] >= 5 * 50
    assert counts[1] - 1 <= 0.6 * counts[0]


def test_non_finite_logits_raise_in_the_team_task():
    model, vocab = _model("lstm", 1, None)
    model.head._views["weight"][5] = np.nan
    model.invalidate()
    with pytest.raises(ValueError, match="NaN or all -inf"):
        generate(model, vocab, length=10, seed=0, num_samples=12)
