"""Language-model benchmarks: the torch-rnn matrix and batch-1 sampling, fastrnn vs PyTorch.

Training: seconds per iteration (forward + backward + global-norm clip + Adam step) of a char-level
LSTM over the tiny-shakespeare vocabulary, one-hot input, batch 50, seq 50, 1/2/3 layers x hidden
64/128/256/512 -- the table of jcjohnson/torch-rnn's README. Sampling: tokens/s at batch 1 of a
2-layer LSTM (hidden 256), one token per step, fastrnn.generate vs stepping torch.nn.LSTM.

Run: python -m pytest bench/test_models.py -q (with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset).
"""
import os

import pytest

from fastrnn import optim
from fastrnn.data import StreamBatches, Vocab
from fastrnn.models import LanguageModel
from fastrnn.sample import generate
from conftest import record, torch

CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "tinyshakespeare.txt")
MATRIX = [(layers, hidden) for layers in (1, 2, 3) for hidden in (64, 128, 256, 512)]
B, T, SAMPLE_TOKENS = 50, 50, 200


@pytest.fixture(scope="module")
def shakespeare():
    if not os.path.exists(CORPUS):
        pytest.skip(f"{CORPUS} not found")
    with open(CORPUS, encoding="utf-8") as f:
        text = f.read()
    vocab = Vocab.build(text)
    inputs, targets = StreamBatches(vocab.encode(text), B, T)[0]
    return vocab, inputs, targets


def fastrnn_train(V, layers, hidden, inputs, targets):
    model = LanguageModel(V, hidden_size=hidden, num_layers=layers, seed=0)
    opt = optim.Adam(model, lr=2e-3)

    def iteration():
        model.zero_grad()
        model.forward(inputs, targets)      # fresh state each time, as torch below
        model.backward()
        optim.clip_grad_norm(model, 5.0)
        opt.step()
    return iteration


class TorchLM(torch.nn.Module if torch else object):
    """The same model in PyTorch: one-hot input -> nn.LSTM -> nn.Linear."""

    def __init__(self, V, layers, hidden):
        super().__init__()
        self.V = V
        self.rnn = torch.nn.LSTM(V, hidden, num_layers=layers)
        self.head = torch.nn.Linear(hidden, V)

    def forward(self, ids, state=None):                      # ids (T, B)
        y, state = self.rnn(torch.nn.functional.one_hot(ids, self.V).float(), state)
        return self.head(y), state


def torch_train(V, layers, hidden, inputs, targets):
    model = TorchLM(V, layers, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y = torch.from_numpy(inputs.T.copy()), torch.from_numpy(targets.T.reshape(-1).copy())

    def iteration():
        opt.zero_grad()
        logits, _ = model(x)
        torch.nn.functional.cross_entropy(logits.reshape(-1, V), y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    return iteration


@pytest.mark.parametrize("impl", ["fastrnn", "torch"])
@pytest.mark.parametrize("layers,hidden", MATRIX, ids=lambda v: str(v))
def test_train_iteration(benchmark, shakespeare, layers, hidden, impl):
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed")
    vocab, inputs, targets = shakespeare
    make = fastrnn_train if impl == "fastrnn" else torch_train
    record(benchmark, f"LM train iter L={layers} H={hidden}", impl,
           make(len(vocab), layers, hidden, inputs, targets))


@pytest.mark.parametrize("impl", ["fastrnn", "torch"])
def test_sampling_batch1(benchmark, shakespeare, impl):
    """SAMPLE_TOKENS tokens at batch 1 (the table shows time per call; tokens/s = 200 / time)."""
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed")
    vocab, _, _ = shakespeare
    V = len(vocab)
    if impl == "fastrnn":
        model = LanguageModel(V, hidden_size=256, num_layers=2, seed=0)
        # an untrained model would soon sample <eos> and stop; a trained char model never does
        # (the stream has no <eos>), so rule it out to time exactly SAMPLE_TOKENS tokens
        model.named_parameters()["head.bias"][vocab.eos_id] = -1e4
        fn = lambda: generate(model, vocab, prime="ROMEO:", length=SAMPLE_TOKENS, seed=0)
        assert len(fn()) == len("ROMEO:") + SAMPLE_TOKENS
    else:
        model = TorchLM(V, 2, 256)
        prime = torch.from_numpy(vocab.encode("ROMEO:"))
        gen = torch.Generator().manual_seed(0)

        def fn():
            with torch.inference_mode():
                _, state = model(prime[:-1, None])
                token, out = prime[-1:], []
                for _ in range(SAMPLE_TOKENS):
                    logits, state = model(token[:, None], state)
                    token = torch.multinomial(torch.softmax(logits[0, 0], -1), 1, generator=gen)
                    out.append(int(token))
                return out
    record(benchmark, f"sample {SAMPLE_TOKENS} tokens, batch 1, 2x256 LSTM", impl, fn)
