"""LanguageModel: whole-model gradient check, overfitting, step == forward, torch training parity,
save/load round trip."""
import numpy as np
import pytest

from fastrnn import io, optim
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel
from lm_helpers import memorise


def batch(V, B=2, T=5, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, (B, T + 1))
    return ids[:, :-1], ids[:, 1:]


@pytest.mark.parametrize("cell,embed", [("lstm", None), ("gru", 3), ("rnn", None), ("lstm", 4)])
def test_gradients_match_finite_differences(cell, embed):
    V = 6
    model = LanguageModel(V, cell=cell, hidden_size=4, num_layers=2, embed_size=embed,
                          dtype="float64", seed=1)
    inputs, targets = batch(V)
    state0 = model.forward(inputs, targets, train=False)[1]    # a non-zero carried state
    model.zero_grad()
    model.forward(inputs, targets, state0, train=True)
    model.backward()
    analytic = model.grads.copy()
    eps, numeric = 1e-6, np.zeros_like(analytic)
    for k in range(model.params.size):
        old = model.params[k]
        model.params[k] = old + eps
        plus = model.forward(inputs, targets, state0, train=False)[0]
        model.params[k] = old - eps
        minus = model.forward(inputs, targets, state0, train=False)[0]
        model.params[k] = old
        numeric[k] = (plus - minus) / (2 * eps)
    for name, g in model.named_grads().items():
        lo = g.ctypes.data - model.grads.ctypes.data
        n = numeric[lo // 8: lo // 8 + g.size].reshape(g.shape)
        err = np.abs(g - n).max() / max(np.abs(n).max(), 1e-8)
        assert err < 1e-6, f"{name}: relative error {err:.2e}"
    np.testing.assert_array_equal(model.grads, analytic)


def test_two_layer_lstm_overfits_a_tiny_corpus():
    _, _, loss = memorise("the quick brown fox jumps over the lazy dog. " * 8, 150, lr=1e-2, batch=2,
                          clip=5.0, hidden_size=48, num_layers=2, seed=0)
    assert loss < 0.05, f"final training loss {loss:.3f}"


@pytest.mark.parametrize("cell,embed", [("lstm", None), ("gru", 5)])
def test_step_by_step_logits_equal_the_sequence_loss(cell, embed):
    V = 9
    model = LanguageModel(V, cell=cell, hidden_size=7, num_layers=2, embed_size=embed,
                          dtype="float64", seed=3)
    inputs, targets = batch(V, B=3, T=6, seed=4)
    loss, state = model.forward(inputs, targets, train=False)
    total, s = 0.0, None
    for t in range(inputs.shape[1]):
        logits, s = model.step(inputs[:, t], s)
        z = logits - logits.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        total -= logp[np.arange(3), targets[:, t]].sum()
    assert abs(total / inputs.size - loss) < 1e-12
    for a, b in zip(s if isinstance(s, tuple) else (s,), state if isinstance(state, tuple) else (state,)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_parameter_names_are_torch_style():
    names = list(dict(LanguageModel(5, cell="gru", hidden_size=3, num_layers=2, embed_size=4).named_parameters()))
    assert names[0] == "embed.weight" and names[1] == "rnn.weight_ih_l0"
    assert names[-2:] == ["head.weight", "head.bias"] and "rnn.bias_hh_l1" in names


def test_bad_ids_are_rejected():
    model = LanguageModel(5, hidden_size=3, num_layers=1)
    with pytest.raises(ValueError, match="inputs"):
        model.forward(np.full((2, 3), 5), np.zeros((2, 3), int))
    with pytest.raises(TypeError, match="targets"):
        model.forward(np.zeros((2, 3), int), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="targets"):
        model.forward(np.zeros((2, 3), int), np.zeros((2, 4), int))
    with pytest.raises(RuntimeError, match="forward"):
        model.backward()
    with pytest.raises(ValueError, match="cell"):
        LanguageModel(5, cell="transformer")


def test_save_and_load_round_trip(tmp_path):
    text = "abcabcabd\n" * 5
    vocab = Vocab.build(text)
    model = LanguageModel(len(vocab), cell="gru", hidden_size=6, num_layers=2, embed_size=3, seed=2)
    opt = optim.Adam(model, lr=1e-3)
    inputs, targets = batch(len(vocab))
    model.forward(inputs, targets)
    model.backward()
    opt.step()
    path = tmp_path / "m.npz"
    io.save(path, model, vocab, optimizer=opt, note="hello")
    model2, vocab2, extra = io.load(path)
    assert vocab2 == vocab and model2.config == model.config
    np.testing.assert_array_equal(model2.params, model.params)
    assert extra["meta"]["note"] == "hello"
    opt2 = optim.Adam(model2, lr=1e-3)
    opt2.load_state_dict(extra["optimizer"])
    for m, o in ((model, opt), (model2, opt2)):
        m.zero_grad()
        m.forward(inputs, targets)
        m.backward()
        o.step()
    np.testing.assert_array_equal(model2.params, model.params)


def test_load_rejects_a_checkpoint_of_something_else(tmp_path):
    path = tmp_path / "other.npz"
    io.save_arrays(path, {"w": np.ones(3)}, {"what": "not a model"})
    with pytest.raises(ValueError, match="other.npz"):
        io.load(path)


# ---- PyTorch parity of whole training runs -----------------------------------------------------

@pytest.mark.parametrize("cell,embed", [("lstm", None), ("gru", 6)])
def test_training_losses_match_torch(cell, embed):
    torch = pytest.importorskip("torch")
    V, H, L, B, T = 11, 8, 2, 3, 7
    model = LanguageModel(V, cell=cell, hidden_size=H, num_layers=L, embed_size=embed,
                          dtype="float64", seed=5)

    class TorchLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            if embed:
                self.embed = torch.nn.Embedding(V, embed)
            rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
            self.rnn = rnn(embed or V, H, num_layers=L)
            self.head = torch.nn.Linear(H, V)

        def forward(self, ids, state):          # ids (T, B)
            x = self.embed(ids) if embed else torch.nn.functional.one_hot(ids, V).double()
            y, state = self.rnn(x, state)
            return self.head(y), state

    tm = TorchLM().double()
    tm.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    opt = optim.Adam(model, lr=1e-2)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    stream = rng.integers(0, V, B * (20 * T + 1)).reshape(B, -1)
    state, tstate = None, None
    for it in range(20):
        inputs, targets = stream[:, it * T:(it + 1) * T], stream[:, it * T + 1:(it + 1) * T + 1]
        model.zero_grad()
        loss, state = model.forward(inputs, targets, state)
        model.backward()
        optim.clip_grad_norm(model, 0.5)
        opt.step()

        topt.zero_grad()
        logits, tstate = tm(torch.from_numpy(inputs.T.copy()), tstate)
        tloss = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                                  torch.from_numpy(targets.T.reshape(-1).copy()))
        tloss.backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 0.5)
        topt.step()
        tstate = tuple(s.detach() for s in tstate) if isinstance(tstate, tuple) else tstate.detach()
        assert abs(loss - tloss.item()) < 1e-8 * max(1, abs(loss)), f"iteration {it}: {loss} vs {tloss.item()}"
