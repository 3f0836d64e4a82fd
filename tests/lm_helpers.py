"""Shared by the language-model tests: a model memorises a short text."""
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
