"""ConditionedGenerator (one-to-many), OutputRecurrentNet (fig. 10.4, teacher forcing) and GridRNN
(four sweeps over a grid): finite-difference gradients, the maths against plain NumPy loops,
synthetic tasks learned through the Trainer, save/load and bad input."""
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_helpers import check_gradients, round_trip, single_thread  # noqa: F401  (fixture)

import fastrnn
from fastrnn import StateFromCondition
from fastrnn.train import Metric, Trainer

# ---- conditioned generation ----------------------------------------------------------------------


@pytest.mark.parametrize("cell,layers,embed", [("lstm", 2, 3), ("gru", 1, None), ("rnn", 2, 3)])
def test_conditioned_gradients_class_and_vector(cell, layers, embed):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 6, (3, 5))
    by_class = fastrnn.ConditionedGenerator(6, num_classes=3, cell=cell, hidden_size=4, num_layers=layers,
                                            embed_size=embed, dtype="float64", seed=0)
    grads = check_gradients(by_class, (np.array([0, 2, 1]), tokens))
    assert np.abs(by_class.condition.named_grads()["proj.weight"]).max() > 0     # the condition learns
    by_vector = fastrnn.ConditionedGenerator(6, condition_size=2, cell=cell, hidden_size=4, num_layers=layers,
                                             embed_size=embed, dtype="float64", seed=0)
    check_gradients(by_vector, (rng.standard_normal((3, 2)), tokens))
    assert grads.shape == by_class.params.shape


def test_a_condition_starts_any_recurrent_layer():
    cond = StateFromCondition(5, num_layers=2, cell="lstm", condition_size=3, dtype="float64", seed=0)
    h, c = cond.forward(np.ones((4, 3)))
    layer = fastrnn.LSTM(2, 5, num_layers=2, dtype="float64", seed=0)
    out, _ = layer.forward(np.zeros((3, 4, 2)), (h, c))
    np.testing.assert_allclose(out[0], layer.step(np.zeros((4, 2)), (h, c))[0])
    _, (dh, dc) = layer.backward(np.ones_like(out))
    cond.backward((dh, dc))
    assert np.abs(cond.grads).max() > 0


PATTERNS = np.array([[1, 2, 3, 4, 1, 2, 3, 4], [5, 5, 4, 4, 3, 3, 2, 2], [2, 4, 2, 4, 5, 1, 5, 1]])


def test_conditioned_generation_reproduces_each_class_pattern(single_thread):
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(150):
        labels = rng.integers(0, 3, 16)
        batches.append((labels, PATTERNS[labels]))
    model = fastrnn.ConditionedGenerator(6, num_classes=3, cell="gru", hidden_size=24, embed_size=8, seed=0)
    t0 = time.perf_counter()
    Trainer(model, batches, lr=0.02, progress=False, epochs=2).fit()
    out = model.generate(np.arange(3), 8, argmax=True)
    sampled = model.generate(np.arange(3), 8, temperature=0.3, seed=1)
    hits = (sampled == PATTERNS).mean()
    print(f"conditioned generation: greedy exact {np.mean((out == PATTERNS).all(1)):.2f}, sampled (T=0.3) "
          f"token accuracy {hits:.3f}, {time.perf_counter() - t0:.1f} s")
    np.testing.assert_array_equal(out, PATTERNS)
    assert hits >= 0.95


# ---- OutputRecurrentNet ----------------------------------------------------------------------------


def orn_reference(model, x, prev):
    """h_t = tanh(b + W prev_t + U x_t), o_t = c + V h_t as a plain loop over steps."""
    p = dict(model.named_parameters())
    U, b, W = p["in_proj.weight"], p["in_proj.bias"], p["out_proj.weight"]
    V, c = p["head.weight"], p["head.bias"]
    out = np.zeros(x.shape[:2] + (V.shape[0],))
    o = np.zeros((x.shape[0], V.shape[0]))
    for t in range(x.shape[1]):
        h = np.tanh(b + (o if prev is None else prev[:, t]) @ W.T + x[:, t] @ U.T)
        o = out[:, t] = c + h @ V.T
    return out


def test_output_recurrent_net_maths_gradients_and_free_running():
    rng = np.random.default_rng(0)
    model = fastrnn.OutputRecurrentNet(3, 2, 5, dtype="float64", seed=0)
    x, y = rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 6, 2))
    lengths = np.array([6, 3, 1, 5])
    check_gradients(model, (x, y, lengths))
    check_gradients(model, (x, y))
    prev = np.concatenate([np.zeros((4, 1, 2)), y[:, :-1]], 1)          # teacher forcing
    o = orn_reference(model, x, prev)
    mask = np.arange(6) < lengths[:, None]
    expected = ((o - y) ** 2 * mask[..., None]).sum() / (mask.sum() * 2)
    assert model.forward((x, y, lengths), train=False) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(model.predict(x), orn_reference(model, x, None), atol=1e-12)


def filter_data(rng, n, T=12):
    """y_t = 0.8 y_{t-1} + 0.4 x_t: the output carries the whole history."""
    x = rng.uniform(-1, 1, (n, T, 1))
    y = np.zeros_like(x)
    for t in range(T):
        y[:, t] = 0.4 * x[:, t] + (0.8 * y[:, t - 1] if t else 0)
    return x, y


def test_output_recurrent_net_learns_a_sequence_map(single_thread):
    rng = np.random.default_rng(0)
    train = [filter_data(rng, 32) for _ in range(100)]
    x, y = filter_data(np.random.default_rng(1), 500)
    model = fastrnn.OutputRecurrentNet(1, 1, 16, seed=0)
    t0 = time.perf_counter()
    Trainer(model, train, lr=0.01, epochs=6, progress=False).fit()
    free = np.mean((model.predict(x) - y) ** 2)
    no_feedback = np.mean((0.4 * x - y) ** 2)         # the best map that ignores the past
    print(f"OutputRecurrentNet filter: free-running MSE {free:.2e} (variance {y.var():.3f}, "
          f"input-only {no_feedback:.3f}), {time.perf_counter() - t0:.1f} s")
    assert free < 0.02 * y.var() and free < 0.05 * no_feedback


# ---- GridRNN -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,pooling", [("gru", "mean"), ("lstm", "max"), ("rnn", "mean")])
def test_grid_gradients(cell, pooling):
    rng = np.random.default_rng(0)
    model = fastrnn.GridRNN(2, 3, hidden_size=3, cell=cell, pooling=pooling, dtype="float64", seed=0)
    check_gradients(model, (rng.standard_normal((2, 4, 5, 2)), np.array([0, 2])), n=60)


def test_grid_features_are_the_four_directional_sweeps():
    rng = np.random.default_rng(0)
    model = fastrnn.GridRNN(2, 3, hidden_size=3, dtype="float64", seed=0)
    x = rng.standard_normal((2, 4, 5, 2))
    f = model.features(x)
    K = 3

    def sweep(layer, suffix, seq):
        one = fastrnn.GRU(2, K, dtype="float64")
        w = dict(layer.named_parameters())
        one.load_state_dict({k: w[k + suffix] for k, _ in one.named_parameters()})
        return one.forward(seq)[0]
    n, i, j = 1, 2, 3
    np.testing.assert_allclose(f[n, i, :, :K], sweep(model.rows, "", x[n, i]), atol=1e-13)           # L->R
    np.testing.assert_allclose(f[n, i, :, K:2 * K], sweep(model.rows, "_reverse", x[n, i, ::-1])[::-1],
                               atol=1e-13)                                                             # R->L
    np.testing.assert_allclose(f[n, :, j, 2 * K:3 * K], sweep(model.cols, "", x[n, :, j]), atol=1e-13)  # T->B
    np.testing.assert_allclose(f[n, :, j, 3 * K:], sweep(model.cols, "_reverse", x[n, ::-1, j])[::-1],
                               atol=1e-13)                                                             # B->T


def bars(rng, n, size=8):
    """Noisy images of one horizontal (label 0) or vertical (label 1) bar at a random place."""
    labels = rng.integers(0, 2, n)
    x = rng.normal(0, 0.3, (n, size, size, 1))
    where = rng.integers(0, size, n)
    for k in range(n):
        if labels[k]:
            x[k, :, where[k]] += 1
        else:
            x[k, where[k], :] += 1
    return x, labels


def test_grid_rnn_classifies_horizontal_vs_vertical_bars(single_thread):
    rng = np.random.default_rng(0)
    train = [bars(rng, 16) for _ in range(60)]
    x, labels = bars(np.random.default_rng(1), 400)
    model = fastrnn.GridRNN(1, 2, hidden_size=8, cell="gru", pooling="max", seed=0)
    t0 = time.perf_counter()
    Trainer(model, train, [(x, labels)], lr=0.02, epochs=2, eval_every=60, progress=False,
            callbacks=[Metric("acc", lambda t: (t.model.predict(x) == labels).mean())]).fit()
    acc = (model.predict(x) == labels).mean()
    print(f"GridRNN bars: accuracy {acc:.3f} on 400 images, {time.perf_counter() - t0:.1f} s")
    assert acc >= 0.95


# ---- checkpoints and bad input -----------------------------------------------------------------


def test_save_load_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    gen = fastrnn.ConditionedGenerator(6, condition_size=2, cell="lstm", hidden_size=4, seed=0)
    cond = rng.standard_normal((2, 2))
    np.testing.assert_array_equal(round_trip(gen, tmp_path).generate(cond, 5, seed=3), gen.generate(cond, 5, seed=3))
    orn = fastrnn.OutputRecurrentNet(3, 2, 5, seed=0)
    x = rng.standard_normal((2, 4, 3))
    np.testing.assert_array_equal(round_trip(orn, tmp_path).predict(x), orn.predict(x))
    grid = fastrnn.GridRNN(2, 3, hidden_size=3, cell="lstm", pooling="max", seed=0)
    img = rng.standard_normal((2, 3, 4, 2))
    np.testing.assert_array_equal(round_trip(grid, tmp_path).logits(img), grid.logits(img))


def test_bad_input_names_the_argument():
    gen = fastrnn.ConditionedGenerator(6, num_classes=3, hidden_size=4, seed=0)
    tokens = np.zeros((2, 4), np.int64)
    for batch, error, match in [((np.array([0, 3]), tokens), ValueError, "condition"),       # out of range
                                ((np.array([0.0, 1.0]), tokens), TypeError, "condition"),  # wrong dtype
                                ((np.array([0, 1, 2]), tokens), ValueError, "tokens"),     # mismatched count
                                ((np.array([0, 1]), tokens[:, :0]), ValueError, "tokens"),  # empty
                                ((np.array([0, 1]), tokens + 6), ValueError, "tokens"),
                                ((np.array([0, 1]),), TypeError, "batch")]:
        with pytest.raises(error, match=match):
            gen.forward(batch)
    with pytest.raises(ValueError, match="length"):
        gen.generate(np.array([0]), 0)
    with pytest.raises(ValueError, match="temperature"):
        gen.generate(np.array([0]), 3, temperature=0)
    with pytest.raises(ValueError, match="num_classes, condition_size"):
        fastrnn.ConditionedGenerator(6, num_classes=3, condition_size=2)
    vec = fastrnn.ConditionedGenerator(6, condition_size=2, hidden_size=4, seed=0)
    with pytest.raises(ValueError, match="condition"):
        vec.generate(np.zeros((2, 3)), 3)
    other = fastrnn.ConditionedGenerator(6, num_classes=3, hidden_size=5, seed=0)   # a state from another model
    with pytest.raises(ValueError, match="state"):
        gen.lm.step(np.array([0]), other.condition.forward(np.array([0]), train=False))
    orn = fastrnn.OutputRecurrentNet(3, 2, 5, seed=0)
    x, y = np.zeros((2, 4, 3)), np.zeros((2, 4, 2))
    for batch, error, match in [((x, y[:, :3]), ValueError, "y"), ((x, y, np.array([4, 5])), ValueError, "lengths"),
                                ((x, y, np.array([4, 0])), ValueError, "lengths"),
                                ((x.astype(np.int64), y), TypeError, "x"), ((x[:, :0], y[:, :0]), ValueError, "x"),
                                ((x, y, np.array([4.0, 2.0])), TypeError, "lengths")]:
        with pytest.raises(error, match=match):
            orn.forward(batch)
    with pytest.raises(ValueError, match="o_init"):
        orn.predict(x, o_init=np.zeros((3, 2)))
    grid = fastrnn.GridRNN(2, 3, hidden_size=3, seed=0)
    img = np.zeros((2, 3, 4, 2))
    for batch, error, match in [((img, np.array([0, 3])), ValueError, "labels"),
                                ((img, np.array([0])), ValueError, "labels"),
                                ((img[..., :1], np.array([0, 1])), ValueError, "images"),
                                ((img[:, :0], np.array([0, 1])), ValueError, "images"),
                                ((img.astype(np.int32), np.array([0, 1])), TypeError, "images")]:
        with pytest.raises(error, match=match):
            grid.forward(batch)
    with pytest.raises(ValueError, match="pooling"):
        fastrnn.GridRNN(2, 3, pooling="sum")


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 3), H=st.integers(1, 4), W=st.integers(1, 4), T=st.integers(1, 5), seed=st.integers(0, 999))
def test_fuzz_shapes(N, H, W, T, seed):
    rng = np.random.default_rng(seed)
    models = [(fastrnn.GridRNN(2, 3, hidden_size=2, pooling=("mean", "max")[seed % 2], dtype="float64", seed=seed),
               (rng.standard_normal((N, H, W, 2)), rng.integers(0, 3, N))),
              (fastrnn.OutputRecurrentNet(2, 1, 3, dtype="float64", seed=seed),
               (rng.standard_normal((N, T, 2)), rng.standard_normal((N, T, 1)), rng.integers(1, T + 1, N))),
              (fastrnn.ConditionedGenerator(4, num_classes=2, hidden_size=3, dtype="float64", seed=seed),
               (rng.integers(0, 2, N), rng.integers(0, 4, (N, T))))]
    for model, batch in models:
        model.zero_grad()
        assert np.isfinite(model.forward(batch))
        model.backward()
        assert np.isfinite(model.grads).all()
