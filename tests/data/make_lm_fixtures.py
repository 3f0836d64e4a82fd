"""Writes tests/data/lm_v1_*.npz: language-model checkpoints made by the pre-`nn` code.

Generated once, from the source of commit 92dbb46 (before LanguageModel was rebuilt on fastrnn.nn), with
    PYTHONPATH=src python tests/data/make_lm_fixtures.py
Each file is a normal checkpoint (`fastrnn.save`) whose extra arrays hold a batch (inputs,
targets), the loss that code computed on it and the gradient of every parameter, all float64.
lm_v1_run_last.npz is a Trainer checkpoint (float32, dropout, carried state) and
lm_v1_run_expected.npz the parameters that code reached after resuming it for 4 iterations.
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



def make_run(name):
    """A training checkpoint (dropout, carried state) after 3 iterations, and the parameters the
    same code reached after resuming it for 4 more (lm_v1_run_expected.npz)."""
    from fastrnn.data import split
    from fastrnn.train import Trainer
    import shutil
    import tempfile
    text = "".join(f"line {i}: the cat sat on the mat, {i * i % 97}\n" for i in range(30))
    vocab = Vocab.build(text)
    train_ids, val_ids, _ = split(vocab.encode(text), 0.1, 0.0)
    model = LanguageModel(len(vocab), hidden_size=8, num_layers=2, dropout=0.3, seed=0)
    out = tempfile.mkdtemp()
    Trainer(model, vocab, train_ids, val_ids, batch_size=4, seq_len=10, eval_every=100, epochs=3,
            out=out, progress=False).fit(max_iters=3)
    shutil.copy(os.path.join(out, "last.npz"), os.path.join(HERE, name))
    resumed = Trainer.resume(os.path.join(out, "last.npz"), train_ids, val_ids, progress=False)
    resumed.fit(max_iters=4)
    np.savez(os.path.join(HERE, "lm_v1_run_expected.npz"), params=resumed.model.params)
    shutil.rmtree(out)


if __name__ == "__main__":
    make("lm_v1_onehot_lstm.npz", cell="lstm", hidden_size=5, num_layers=2)
    make("lm_v1_embed_gru.npz", cell="gru", hidden_size=4, num_layers=1, embed_size=3)
    make_run("lm_v1_run_last.npz")
