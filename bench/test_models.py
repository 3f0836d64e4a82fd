"""Model benchmarks: the torch-rnn matrix, one training iteration per model shape, and batch-1
sampling, fastrnn vs PyTorch.

Training: the shared `models` workloads of fastrnn.benchmarks.workloads -- seconds per iteration
(forward + backward + global-norm clip + Adam step) of a char-level LSTM, one-hot input over 65
characters, batch 50, seq 50, 1/2/3 layers x hidden 64/128/256/512 (the table of
jcjohnson/torch-rnn's README) -- and one training iteration (Adam) of each model shape
(classifier, tagger, regressor, seq2seq, conditioned generator, output->hidden net, GridRNN;
fastrnn.benchmarks.shapes) against the same model in torch. Sampling (pytest-only, needs the tiny-shakespeare file): tokens/s at
batch 1 of a 2-layer LSTM (hidden 256), fastrnn.generate vs stepping torch.nn.LSTM.

Run: python -m pytest bench/test_models.py -q (with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset).
"""
import os

import pytest

from fastrnn.benchmarks.runners import torch_lm
from fastrnn.benchmarks.workloads import IMPLS, select
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel
from fastrnn.sample import generate
from conftest import record, run_workload, torch

CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "tinyshakespeare.txt")
SAMPLE_TOKENS = 200


@pytest.fixture(scope="module")
def shakespeare():
    if not os.path.exists(CORPUS):
        pytest.skip(f"{CORPUS} not found")
    with open(CORPUS, encoding="utf-8") as f:
        text = f.read()
    return Vocab.build(text)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("workload", select(group="models"), ids=lambda w: w.name)
def test_train_iteration(benchmark, workload, impl):
    """The shared `models` workloads: the torch-rnn matrix and the model shapes (no reference)."""
    run_workload(benchmark, workload, impl)


@pytest.mark.parametrize("impl", ["fastrnn", "torch"])
def test_sampling_batch1(benchmark, shakespeare, impl):
    """SAMPLE_TOKENS tokens at batch 1 (the table shows time per call; tokens/s = 200 / time)."""
    if impl == "torch" and torch is None:
        pytest.skip("torch is not installed")
    vocab = shakespeare
    V = len(vocab)
    if impl == "fastrnn":
        model = LanguageModel(V, hidden_size=256, num_layers=2, seed=0)
        # an untrained model would soon sample <eos> and stop; a trained char model never does
        # (the stream has no <eos>), so rule it out to time exactly SAMPLE_TOKENS tokens
        dict(model.named_parameters())["head.bias"][vocab.eos_id] = -1e4
        fn = lambda: generate(model, vocab, prime="ROMEO:", length=SAMPLE_TOKENS, seed=0)
        assert len(fn()) == len("ROMEO:") + SAMPLE_TOKENS
    else:
        model = torch_lm(V, 2, 256)
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
