"""Shared by the language-model tests: a model memorises a short text; counting native sampling calls."""
from fastrnn import optim
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel


def memorise(text, iterations, lr, level="char", batch=1, clip=None, **model_kw):
    """(model, vocab, last loss) after training on `text` (the whole text as one window)."""
    vocab = Vocab.build(text, level=level)
    ids = vocab.encode(text)
    model = LanguageModel(len(vocab), **model_kw)
    opt = optim.Adam(model, lr=lr)
    inputs, targets = ids[None, :-1].repeat(batch, 0), ids[None, 1:].repeat(batch, 0)
    for _ in range(iterations):
        model.zero_grad()
        loss, _ = model.forward(inputs, targets)
        model.backward()
        if clip:
            optim.clip_grad_norm(model, clip)
        opt.step()
    return model, vocab, loss


def count_native_calls(monkeypatch):
    """The tokens asked of each native `sample` call the sampling functions make (a list that
    fills as they run): one call per chunk when generating, one per token when streaming."""
    from fastrnn import sample as sample_module
    calls, real = [], sample_module._native

    class Counted:
        def __init__(self, gen):
            self._gen = gen

        def __getattr__(self, name):
            return getattr(self._gen, name)

        def sample(self, steps, u):
            calls.append(steps)
            return self._gen.sample(steps, u)
    monkeypatch.setattr(sample_module, "_native", lambda *a, **k: Counted(real(*a, **k)))
    return calls
