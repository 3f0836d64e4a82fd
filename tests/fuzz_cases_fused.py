"""Fuzz cases of the fused training step (fastrnn.train.fused.FusedStep and the bindings
_kernels.train_step / optim_step behind it): hostile ids, shapes, states, clip values and
optimiser states; an accepted call equals the Python steps."""
import numpy as np
from hypothesis import strategies as st

from fastrnn import optim
from fastrnn.models import LanguageModel
from fastrnn.train.fused import FusedStep

_OPTS = [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad]


def fused_step(draw):
    V = 7
    dtype = draw(st.sampled_from(["float32", "float64"]), "dtype")
    embed = draw(st.sampled_from([None, 3]), "embed")
    cell = draw(st.sampled_from(["lstm", "gru", "rnn"]), "cell")
    make = lambda: LanguageModel(V, cell=cell, hidden_size=4, num_layers=2, embed_size=embed,  # noqa: E731
                                 dtype=dtype, seed=1)
    model, ref = make(), make()
    cls = draw(st.sampled_from(_OPTS), "optimizer")
    opt, ref_opt = cls(model, lr=0.01), cls(ref, lr=0.01)
    clip = draw(st.sampled_from([None, 0.5, 0.5, None, -1.0, float("nan"), "x"]), "clip")
    B, T = draw(st.sampled_from([0, 1, 2, 3, 3, 3]), "B"), draw(st.sampled_from([0, 1, 4, 4, 4]), "T")
    ids = np.random.default_rng(draw(st.integers(0, 9), "seed")).integers(0, V, (B, T))
    kind = draw(st.sampled_from(["ok"] * 6 + ["out_of_range", "float", "shape", "3d"]), "inputs")
    inputs = {"ok": ids, "out_of_range": ids + V, "float": ids.astype(float),
              "shape": ids[:, :1], "3d": ids[None]}[kind]
    state = draw(st.sampled_from([None] * 4 + ["wrong_shape", "x"]), "state")
    state = {"wrong_shape": (np.zeros((2, 9, 4)), np.zeros((2, 9, 4))) if cell == "lstm" else np.zeros((2, 9, 4)),
             "x": "x"}.get(state, state)
    step = FusedStep(model, opt, clip=clip)
    loss, _ = step.step(inputs, ids, state)
    # accepted: the same numbers as forward + backward + clip + step
    ref.zero_grad()
    ref_loss, _ = ref.forward(inputs, ids, state, train=True)
    ref.backward()
    if clip:
        optim.clip_grad_norm(ref, clip)
    ref_opt.step()
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert abs(loss - ref_loss) <= tol * max(1, abs(ref_loss)), (loss, ref_loss)
    np.testing.assert_allclose(model.params, ref.params, rtol=tol, atol=tol)


def fused_seq_step(draw):
    """A tagger's or classifier's fused step (FusedStep.step_batch, _kernels.train_seq_step):
    hostile inputs, targets, lengths and clips; an accepted step equals the Python steps."""
    from fastrnn.models import SequenceClassifier, SequenceTagger
    V, K, F = 6, 3, 2
    dtype = draw(st.sampled_from(["float32", "float64"]), "dtype")
    kind = draw(st.sampled_from(["tagger", "last", "mean", "max"]), "model")
    ids_in = draw(st.booleans(), "ids")
    bi = draw(st.booleans(), "bidirectional")
    inp = dict(vocab_size=V, embed_size=3) if ids_in else dict(input_size=F)
    kw = dict(hidden_size=4, num_layers=draw(st.integers(1, 2), "layers"), bidirectional=bi,
              cell=draw(st.sampled_from(["lstm", "gru", "rnn"]), "cell"), dtype=dtype, seed=1,
              dropout=draw(st.sampled_from([0.0, 0.3]), "dropout"), **inp)
    make = (lambda: SequenceTagger(K, **kw)) if kind == "tagger" else \
        (lambda: SequenceClassifier(K, pooling=kind, **kw))
    model, ref = make(), make()
    cls = draw(st.sampled_from(_OPTS), "optimizer")
    opt, ref_opt = cls(model, lr=0.01), cls(ref, lr=0.01)
    clip = draw(st.sampled_from([None, 0.5] * 4 + [-1.0, float("nan"), "x"]), "clip")
    B, T = draw(st.sampled_from([0, 1, 3, 3, 3]), "B"), draw(st.sampled_from([0, 1, 4, 4, 4]), "T")
    rng = np.random.default_rng(draw(st.integers(0, 9), "seed"))
    x = rng.integers(0, V, (B, T)) if ids_in else rng.standard_normal((B, T, F))
    bad_x = draw(st.sampled_from(["ok"] * 12 + ["out_of_range", "float", "int_features", "wide", "2d"]), "inputs")
    x = {"ok": lambda: x, "out_of_range": lambda: x + V if ids_in else x,
         "float": lambda: x.astype(float) if ids_in else x, "int_features": lambda: x if ids_in else x.astype(int),
         "wide": lambda: x[..., None] if ids_in else np.repeat(x, 2, -1),
         "2d": lambda: x.reshape(-1) if ids_in else x.reshape(B * T, -1)}[bad_x]()
    lengths = rng.integers(1, max(T, 1) + 1, B)
    bad_len = draw(st.sampled_from(["ok"] * 10 + ["none", "zero", "long", "float", "short"]), "lengths")
    lengths = {"none": None, "zero": np.zeros(B, int), "long": lengths + T, "float": lengths + 0.5,
               "short": lengths[:-1]}.get(bad_len, lengths)
    y = rng.integers(0, K, (B, T) if kind == "tagger" else B)
    bad_y = draw(st.sampled_from(["ok"] * 10 + ["out_of_range", "negative", "float", "shape"]), "targets")
    y = {"out_of_range": y + K, "negative": y - K, "float": y + 0.5, "shape": y[:1]}.get(bad_y, y)
    batch = (x, y) if lengths is None else (x, y, lengths)
    step = FusedStep(model, opt, clip=clip)
    loss = step.step_batch(batch)
    _same_as_the_python_steps(loss, model, ref, ref_opt, batch, clip)


def fused_s2s_step(draw):
    """A Seq2Seq's fused step (FusedStep.step_batch: the encoder in Python around
    _kernels.train_seq_step, then optim_step): hostile ids, lengths, batches and clips; an accepted
    step equals the Python steps."""
    from fastrnn.models import Seq2Seq
    Vs, Vt = 6, 5
    dtype = draw(st.sampled_from(["float32", "float64"]), "dtype")
    kw = dict(cell=draw(st.sampled_from(["lstm", "gru", "rnn"]), "cell"), embed_size=3, hidden_size=4,
              num_layers=draw(st.integers(1, 2), "layers"), bidirectional=draw(st.booleans(), "bidirectional"),
              dtype=dtype, seed=1)
    model, ref = Seq2Seq(Vs, Vt, **kw), Seq2Seq(Vs, Vt, **kw)
    cls = draw(st.sampled_from(_OPTS), "optimizer")
    opt, ref_opt = cls(model, lr=0.01), cls(ref, lr=0.01)
    clip = draw(st.sampled_from([None, 0.5] * 4 + [-1.0, float("nan"), "x"]), "clip")
    B = draw(st.sampled_from([0, 1, 3, 3, 3]), "B")
    Tx, Ty = draw(st.sampled_from([0, 1, 4, 4]), "Tx"), draw(st.sampled_from([0, 1, 3, 3]), "Ty")
    rng = np.random.default_rng(draw(st.integers(0, 9), "seed"))
    src, tgt = rng.integers(0, Vs, (B, Tx)), rng.integers(0, Vt, (B, Ty))
    sl, tl = rng.integers(1, max(Tx, 1) + 1, B), rng.integers(0, Ty + 1, B)
    bad = draw(st.sampled_from(["ok"] * 12 + ["src_range", "tgt_range", "tgt_float", "tgt_rows", "src_1d",
                                               "sl_zero", "sl_long", "tl_long", "tl_float", "none", "short"]), "batch")
    src = {"src_range": src + Vs, "src_1d": src.reshape(-1)}.get(bad, src)
    tgt = {"tgt_range": tgt - Vt, "tgt_float": tgt + 0.5, "tgt_rows": tgt[:1]}.get(bad, tgt)
    sl = {"sl_zero": np.zeros(B, int), "sl_long": sl + Tx, "none": None}.get(bad, sl)
    tl = {"tl_long": tl + Ty + 1, "tl_float": tl + 0.5, "none": None}.get(bad, tl)
    batch = (src, sl, tgt) if bad == "short" else (src, sl, tgt, tl)
    step = FusedStep(model, opt, clip=clip)
    loss = step.step_batch(batch)
    _same_as_the_python_steps(loss, model, ref, ref_opt, batch, clip)


def _same_as_the_python_steps(loss, model, ref, ref_opt, batch, clip):
    """An accepted step_batch of `model` (its `loss`) gives the numbers of ref's forward +
    backward + clip + ref_opt.step() on the same batch."""
    ref.zero_grad()
    ref_loss = ref.forward(batch, train=True)
    ref.backward()
    if clip:
        optim.clip_grad_norm(ref, clip)
    ref_opt.step()
    tol = 1e-10 if model.dtype == np.float64 else 1e-4
    assert abs(loss - ref_loss) <= tol * max(1, abs(ref_loss)), (loss, ref_loss)
    np.testing.assert_allclose(model.params, ref.params, rtol=tol, atol=tol)
