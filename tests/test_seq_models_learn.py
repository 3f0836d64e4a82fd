"""Synthetic tasks the sequence models must learn, trained through the generic Trainer on
bucketed PaddedBatches (seeded; a few seconds each): the parity of a variable-length bit string,
tagging each token with the next one (needs the reverse direction), and forecasting a noisy sine
better than persistence. Each test prints its measured result (pytest -s shows it)."""
import numpy as np

from fastrnn import PaddedBatches, SequenceClassifier, SequenceRegressor, SequenceTagger
from fastrnn.train import Metric, Trainer


def fit(model, xs, ys, epochs, lr=0.01, val=None, per_step=False, callbacks=()):
    """Train `model` on (xs, ys) through the Trainer; returns the trainer."""
    batches = PaddedBatches(xs, ys, 32, seed=0, targets_per_step=per_step)
    trainer = Trainer(model, batches, val, callbacks=[batches, *callbacks], lr=lr, epochs=epochs,
                      eval_every=len(batches), progress=False)
    trainer.fit()
    return trainer


def parity_data(n, seed, longest=10):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(0, 2, rng.integers(1, longest + 1)) for _ in range(n)]
    return xs, [int(x.sum() % 2) for x in xs]


def classifier_accuracy(model, batches):
    hits = sum((model.predict(x, lengths) == y).sum() for x, y, lengths in batches)
    return hits / sum(len(y) for _, y, _ in batches)


def test_classifier_learns_the_parity_of_variable_length_bit_strings():
    xs, ys = parity_data(2000, 0)
    val = PaddedBatches(*parity_data(500, 1), batch_size=100, shuffle=False)
    model = SequenceClassifier(2, vocab_size=2, embed_size=4, hidden_size=16, cell="gru",
                               dtype="float64", seed=0)
    trainer = fit(model, xs, ys, epochs=5, val=val,
                  callbacks=[Metric("val_acc", lambda t: classifier_accuracy(t.model, val))])
    acc = classifier_accuracy(model, val)
    print(f"parity (lengths 1-10): validation accuracy {acc:.4f}, "
          f"padding {trainer.batches.padding_fraction:.3f} of the steps")
    assert acc >= 0.95


def next_token_data(n, seed, V=4):
    """Tag each token with the token that follows it (V after the last): needs the future."""
    rng = np.random.default_rng(seed)
    xs = [rng.integers(0, V, rng.integers(1, 13)) for _ in range(n)]
    return xs, [np.append(x[1:], V) for x in xs]


def token_accuracy(model, xs, tags):
    batch = PaddedBatches(xs, tags, len(xs), shuffle=False, targets_per_step=True)[0]
    predicted = model.predict(batch[0], batch[2])
    return np.mean(np.concatenate([np.array(p) == t for p, t in zip(predicted, tags)]))


def test_tagger_learns_to_tag_each_token_with_the_next_one():
    xs, tags = next_token_data(2000, 0)
    vx, vtags = next_token_data(500, 1)
    accs = {}
    for bidirectional in (True, False):
        model = SequenceTagger(5, vocab_size=4, embed_size=4, hidden_size=16, cell="gru",
                               bidirectional=bidirectional, dtype="float64", seed=0)
        fit(model, xs, tags, epochs=4, per_step=True)
        accs[bidirectional] = token_accuracy(model, vx, vtags)
    print(f"next-token tagging: token accuracy {accs[True]:.4f} bidirectional, "
          f"{accs[False]:.4f} forward only")
    assert accs[True] >= 0.99
    assert accs[False] < 0.5         # a forward-only tagger cannot see the next token


def sine_data(n, seed, T=24, period=16, noise=0.1):
    """(n, T, 1) noisy sine windows at random phases."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None] + rng.uniform(0, period, (n, 1))
    return (np.sin(2 * np.pi * t / period) + noise * rng.standard_normal((n, T)))[:, :, None]


def test_regressor_forecasts_a_noisy_sine_better_than_persistence():
    windows, steps = sine_data(1000, 0), 8
    cut = np.random.default_rng(2).integers(8, 24, len(windows))     # ragged training windows
    xs = [w[:c - 1] for w, c in zip(windows, cut)]
    ys = [w[1:c] for w, c in zip(windows, cut)]
    model = SequenceRegressor(1, hidden_size=16, cell="gru", dtype="float64", seed=0)
    fit(model, xs, ys, epochs=5, per_step=True)
    test = sine_data(200, 1)
    history, future = test[:, :-steps], test[:, -steps:, 0]
    forecast = model.forecast(history, steps)[:, :, 0]
    ratio = np.mean((forecast - future) ** 2) / np.mean((history[:, -1] - future) ** 2)
    one_step = np.mean((model.predict(test[:, :-1])[:, :, 0] - test[:, 1:, 0]) ** 2)
    one_step_ratio = one_step / np.mean((test[:, :-1, 0] - test[:, 1:, 0]) ** 2)
    print(f"noisy sine: {steps}-step forecast MSE / persistence MSE = {ratio:.4f}; "
          f"one-step = {one_step_ratio:.4f}")
    assert ratio < 0.7 and one_step_ratio < 0.7
