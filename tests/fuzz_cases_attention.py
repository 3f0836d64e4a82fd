"""Fuzz cases of the attention block (fastrnn.nn.Attention) and AttentionSeq2Seq."""
import numpy as np
from hypothesis import strategies as st

import fastrnn
from fuzz_cases_nn import _ids
from fuzz_mutations import SAME_VALUES, SIZES, clean, copies, mutate, pick, same

_JUNK_LENGTHS = st.sampled_from([[0.5], "x", 2, [None], np.array([2**63 - 1]), [-1]])


def _lengths(draw, B, S, label):
    return draw(st.one_of(st.lists(st.integers(-1, S + 1), min_size=B, max_size=B + 1), _JUNK_LENGTHS,
                          st.none()), label)


def attention(draw):
    """Attention.forward/backward with one of query, keys, lengths or the gradients broken."""
    score = draw(st.sampled_from(["general", "additive"]), "score")
    Q, K, B, T, S = (draw(SIZES, n) for n in ("Q", "K", "B", "T", "S"))
    dtype = draw(st.sampled_from(["float32", "float64"]), "dtype")
    att = fastrnn.nn.Attention(Q, K, score=score, attn_size=draw(st.sampled_from([None, 1, 3]), "A"),
                               dtype=dtype, seed=0)
    rng = np.random.default_rng(6)
    q, k = rng.standard_normal((B, T, Q)).astype(dtype), rng.standard_normal((B, S, K)).astype(dtype)
    lengths = rng.integers(1, S + 1, B)
    want = copies(clean(att.forward, q, k, lengths, train=False))
    target = draw(st.sampled_from(["query", "keys", "lengths", "none"]), "target")
    kind = "none"
    if target == "query":
        q, kind = mutate(draw, q, "query")
    elif target == "keys":
        k, kind = mutate(draw, k, "keys")
    elif target == "lengths":
        lengths, kind = _lengths(draw, B, S, "lengths value"), "junk"
    context, weights = att.forward(q, k, lengths, train=True)
    if kind in SAME_VALUES + ("none",):
        same([context, weights], want, dtype)
    assert np.allclose(np.nan_to_num(weights, nan=1.0).sum(2), 1) or not np.isfinite(weights).all()
    dc = rng.standard_normal(np.shape(context))
    if draw(st.booleans(), "break dcontext"):
        dc, _ = mutate(draw, dc, "dcontext")
    dq, dk = att.backward(dc, weights if draw(st.booleans(), "dweights") else None)
    assert dq.shape == np.shape(context)[:2] + (Q,) and dk.shape == np.shape(weights)[:1] + (np.shape(weights)[2], K)


def attention_seq2seq(draw):
    """AttentionSeq2Seq forward/backward, greedy and beam search on hostile ids, lengths and sizes."""
    model = fastrnn.AttentionSeq2Seq(
        draw(st.integers(2, 6), "Vs"), 5, cell=draw(st.sampled_from(["lstm", "gru", "rnn"]), "cell"),
        embed_size=draw(SIZES, "E"), hidden_size=draw(st.integers(1, 4), "H"),
        num_layers=draw(st.integers(1, 2), "L"), bidirectional=draw(st.booleans(), "bidirectional"),
        attention=draw(st.sampled_from(["general", "additive"]), "attention"), bos_id=3, eos_id=4,
        dtype=draw(st.sampled_from(["float32", "float64"]), "dtype"), seed=0)
    Vs, rng = model.config["src_vocab"], np.random.default_rng(7)
    B, Tx, Ty = draw(st.integers(1, 4), "B"), draw(st.integers(1, 5), "Tx"), draw(st.integers(1, 4), "Ty")
    broken = draw(st.sampled_from(["none", "src", "tgt", "src_lengths", "tgt_lengths", "beam_width",
                                   "max_len"]), "broken")       # one argument broken, the rest valid
    src = _ids(draw, Vs, (B, Tx), "src") if broken == "src" else rng.integers(0, Vs, (B, Tx))
    tgt = _ids(draw, 3, (B, Ty), "tgt") if broken == "tgt" else rng.integers(0, 3, (B, Ty))
    sl = pick(draw, st.one_of(st.just(rng.integers(1, Tx + 1, B)), st.none()),
              st.one_of(st.lists(st.integers(-1, Tx + 1), min_size=B, max_size=B + 1), _JUNK_LENGTHS),
              broken, "src_lengths")
    tl = pick(draw, st.one_of(st.just(rng.integers(0, Ty + 1, B)), st.none()), _JUNK_LENGTHS, broken,
              "tgt_lengths")
    width = pick(draw, st.integers(1, 3), st.sampled_from([0, 2.5, True, "2"]), broken, "beam_width")
    max_len = pick(draw, st.integers(1, 4), st.sampled_from([0, -1, None, 1.0]), broken, "max_len")
    loss = model.forward((src, sl, tgt, tl), train=True)
    assert np.isfinite(loss) and loss >= 0
    model.backward()
    assert np.isfinite(model.grads).all()
    for ids in model.greedy(src, sl, max_len=max_len):
        assert len(ids) <= max_len and all(0 <= i < 5 and i != 4 for i in ids)
    for ids, score in model.beam_search(src, sl, beam_width=width, max_len=max_len):
        assert len(ids) <= max_len and np.isfinite(score)
