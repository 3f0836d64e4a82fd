"""Writes tests/data/lm_v1_*.npz: language-model checkpoints made by the pre-`nn` code.

Generated once, at commit 92dbb46 (before LanguageModel was rebuilt on fastrnn.nn), with
    PYTHONPATH=src python tests/data/make_lm_fixtures.py
Each file is a normal checkpoint (`fastrnn.save`) whose extra arrays hold a batch (inputs,
targets), the loss that code computed on it and the gradient of every parameter, all float64.
tests/test_lm_compat.py checks that today's code loads them and reproduces those numbers.
Do not regenerate them with newer code: their point is to pin the old numbers.
"""
import os

import numpy as np

import fastrnn
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel

TEXT = "the cat sat on the mat. a dog ate my hat!\n"
HERE = os.path.dirname(os.path.abspath(__file__))


def make(name, **kw):
    vocab = Vocab.build(TEXT)
    model = LanguageModel(len(vocab), dtype="float64", seed=7, **kw)
    rng = np.random.default_rng(3)
    ids = rng.integers(0, len(vocab), (3, 6))
    inputs, targets = ids, np.roll(ids, -1, axis=1)
    model.zero_grad()
    loss, state = model.forward(inputs, targets, train=True)
    model.backward()
    arrays = dict(inputs=inputs, targets=targets, loss=np.array(loss))
    arrays.update({f"grad/{k}": v.copy() for k, v in model.named_grads().items()})
    fastrnn.save(os.path.join(HERE, name), model, vocab, arrays=arrays)


if __name__ == "__main__":
    make("lm_v1_onehot_lstm.npz", cell="lstm", hidden_size=5, num_layers=2)
    make("lm_v1_embed_gru.npz", cell="gru", hidden_size=4, num_layers=1, embed_size=3)
