"""PaddedBatches: bucketing, padding, determinism per (seed, epoch), exact resume through the
Trainer across an epoch boundary, bad input (named errors, hypothesis fuzz)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastrnn import PaddedBatches, SequenceTagger
from fastrnn.train import Trainer


def data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(0, 5, rng.integers(1, 15)) for _ in range(n)]
    return xs, [(x + 1) % 3 for x in xs]


def test_every_sequence_once_per_epoch_padded_and_bucketed():
    xs, ys = data()
    pb = PaddedBatches(xs, ys, 8, seed=3, targets_per_step=True, pad_id=9, target_pad=-100)
    assert len(pb) == 7
    for epoch in range(3):
        pb.set_epoch(epoch)
        seen = []
        for inputs, tags, lengths in pb:
            assert inputs.shape == tags.shape == (len(lengths), lengths.max())
            for row, tag, n in zip(inputs, tags, lengths):
                k = next(i for i, x in enumerate(xs) if len(x) == n and np.array_equal(x, row[:n])
                         and i not in seen)
                seen.append(k)
                np.testing.assert_array_equal(tag[:n], ys[k])
                assert (row[n:] == 9).all() and (tag[n:] == -100).all()
        assert sorted(seen) == list(range(len(xs)))
    # bucketing: far less padding than batches in the given order
    in_order = PaddedBatches(xs, ys, 8, shuffle=False, targets_per_step=True)
    print(f"padding: {pb.padding_fraction:.3f} bucketed, {in_order.padding_fraction:.3f} in order")
    assert pb.padding_fraction < 0.5 * in_order.padding_fraction


def test_the_layout_is_a_function_of_seed_and_epoch_only():
    xs, ys = data()
    ys = list(range(len(xs)))
    a, b = PaddedBatches(xs, ys, 8, seed=1), PaddedBatches(xs, ys, 8, seed=1)
    b.set_epoch(2)
    b.set_epoch(0)
    layout = [x.tolist() for x, _, _ in a]
    assert layout == [x.tolist() for x, _, _ in b]
    a.set_epoch(1)
    assert layout != [x.tolist() for x, _, _ in a]             # a new order each epoch
    assert layout != [x.tolist() for x, _, _ in PaddedBatches(xs, ys, 8, seed=2)]
    np.testing.assert_array_equal(PaddedBatches(xs, list(range(50)), 8, shuffle=False)[1][1], np.arange(8, 16))


def test_feature_sequences_and_vector_targets():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((n, 3)).astype(np.float32) for n in (3, 1, 4)]
    x, y, lengths = PaddedBatches(xs, [[1.0, 0.0]] * 3, 3, shuffle=False)[0]
    assert x.dtype == np.float32 and x.shape == (3, 4, 3) and y.shape == (3, 2)
    np.testing.assert_array_equal(lengths, [3, 1, 4])
    assert (x[1, 1:] == 0).all()


def test_trainer_resumes_exactly_across_an_epoch_boundary(tmp_path):
    xs, ys = data(60)

    def run(out, iters, resume=False):
        batches = PaddedBatches(xs, ys, 8, seed=5, targets_per_step=True)
        if resume:
            trainer = Trainer.resume(tmp_path / "part" / "last.npz", batches, callbacks=[batches],
                                     progress=False)
        else:
            model = SequenceTagger(3, vocab_size=5, embed_size=3, hidden_size=5, dropout=0.2,
                                   dtype="float64", seed=0)
            trainer = Trainer(model, batches, callbacks=[batches], lr=0.01, epochs=4, eval_every=3,
                              progress=False, out=str(tmp_path / out))
        trainer.fit(max_iters=iters)
        return trainer
    full = run("full", 20)
    run("part", 10)                                    # 8 batches per epoch: stops inside epoch 2
    resumed = run(None, 10, resume=True)
    assert resumed.iteration == 20 and resumed.epoch == full.epoch == 2
    np.testing.assert_array_equal(resumed.model.params, full.model.params)


def test_bad_input_names_the_argument():
    xs, ys = data(5)
    cases = [
        (dict(inputs=[], targets=[]), ValueError, "inputs"),
        (dict(inputs=xs, targets=ys[:4]), ValueError, "targets"),
        (dict(inputs=xs[:1] + [np.array([], int)] + xs[2:]), ValueError, r"inputs\[1\]"),
        (dict(inputs=xs + [np.ones((3, 2))]), ValueError, "inputs"),
        (dict(inputs=[x.astype(str) for x in xs]), TypeError, r"inputs\[0\]"),
        (dict(inputs=xs, targets=[y[:-1] for y in ys], targets_per_step=True), ValueError, r"targets\[0\]"),
        (dict(inputs=xs, targets=[1, 2, 3, [4, 5], 6]), ValueError, "targets"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed="a"), ValueError, "seed"),
    ]
    for kw, exc, name in cases:
        kw = dict(dict(inputs=xs, targets=[0] * len(kw.get("inputs", xs))), **kw)
        with pytest.raises(exc, match=name):
            PaddedBatches(**kw)
    with pytest.raises(IndexError):
        PaddedBatches(xs, ys, 2, targets_per_step=True)[3]


@settings(max_examples=100, deadline=None)
@given(lengths=st.lists(st.integers(-1, 6), min_size=0, max_size=6), batch_size=st.integers(-1, 4),
       kind=st.sampled_from(["i", "f", "b", "U"]), per_step=st.booleans())
def test_fuzz_raises_only_named_errors(lengths, batch_size, kind, per_step):
    seqs = [np.zeros(max(n, 0), {"i": int, "f": float, "b": bool, "U": str}[kind]) for n in lengths]
    if kind == "f":
        seqs = [s[:, None] for s in seqs]
    try:
        pb = PaddedBatches(seqs, [np.zeros(max(n, 0)) for n in lengths], batch_size, targets_per_step=per_step)
        for x, y, n in pb:
            assert x.shape[:2] == (len(n), n.max())
    except (ValueError, TypeError) as e:
        assert any(k in str(e) for k in ("inputs", "targets", "batch_size")), str(e)
