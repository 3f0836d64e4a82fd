"""Seq2Seq: gradients (finite differences, masks), PyTorch parity, exact beam search by
enumeration, greedy == beam 1, digit-string reversal learned through the Trainer, save/load, bad input."""
import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_helpers import check_gradients, round_trip, single_thread  # noqa: F401  (fixture)

import fastrnn
from fastrnn.data import pad_sequences
from fastrnn.train import Metric, Trainer

try:
    import torch
except ImportError:          # the parity tests skip; CI (FASTRNN_REQUIRE_TORCH=1) fails instead
    torch = None


def tiny(cell="lstm", bidirectional=False, num_layers=1, **kw):
    return fastrnn.Seq2Seq(7, 6, cell=cell, embed_size=4, hidden_size=3, num_layers=num_layers,
                           bidirectional=bidirectional, bos_id=4, eos_id=5, dtype="float64", seed=1, **kw)


def ragged_batch(seed=0, B=4):
    """Source and target lengths all different (one empty target): the masks matter."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 7, (B, 5))
    tgt = rng.integers(0, 4, (B, 4))
    return src, np.array([5, 2, 3, 1])[:B], tgt, np.array([4, 0, 2, 3])[:B]


@pytest.mark.parametrize("cell,bidirectional,layers", [("lstm", True, 2), ("gru", False, 1),
                                                       ("rnn", True, 1), ("gru", True, 2)])
def test_gradients_match_finite_differences_with_masks(cell, bidirectional, layers):
    model = tiny(cell, bidirectional, layers)
    batch = ragged_batch()
    check_gradients(model, batch, n=60)
    check_padding_is_masked(model, batch)


def check_padding_is_masked(model, batch):
    """Changing ids past the lengths (`ragged_batch`'s) changes neither loss nor gradient."""
    src, sl, tgt, tl = batch
    src2, tgt2 = src.copy(), tgt.copy()
    src2[1, 2:], tgt2[1, :] = 6, 3
    model.zero_grad()
    a = model.forward(batch)
    model.backward()
    g = model.grads.copy()
    model.zero_grad()
    assert model.forward((src2, sl, tgt2, tl)) == pytest.approx(a, abs=1e-14)
    model.backward()
    np.testing.assert_allclose(model.grads, g, atol=1e-14)


def torch_target_loss(logits, tgt, tl, eos_id):
    """The mean cross-entropy of torch `logits` (Ty + 1, B, V) over each target and its <eos>
    (tgt (B, Ty) padded, tl (B,) lengths): the loss a seq2seq model's forward returns."""
    Ty, B = tgt.shape[1], tgt.shape[0]
    target = np.vstack([tgt.T, np.zeros((1, B), np.int64)])
    target[tl, np.arange(B)] = eos_id
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                            torch.tensor(target.reshape(-1)), reduction="none")
    mask = torch.tensor((np.arange(Ty + 1)[:, None] <= tl).reshape(-1), dtype=torch.float64)
    return (nll * mask).sum() / mask.sum()


def torch_seq2seq(model):
    """The same model in torch (ModuleDict: the parameter names are ours) and its loss function."""
    c = model.config
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[c["cell"]]
    D, H, L, E = model.D, c["hidden_size"], c["num_layers"], c["embed_size"]
    net = torch.nn.ModuleDict(dict(
        src_embed=torch.nn.Embedding(c["src_vocab"], E), encoder=cls(E, H, L, bidirectional=D == 2),
        tgt_embed=torch.nn.Embedding(c["tgt_vocab"], E), decoder=cls(E, D * H, L),
        head=torch.nn.Linear(D * H, c["tgt_vocab"]))).double()
    net.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    pack, unpack = torch.nn.utils.rnn.pack_padded_sequence, torch.nn.utils.rnn.pad_packed_sequence

    def bridge(s):
        return s.view(L, D, -1, H).permute(0, 2, 1, 3).reshape(L, -1, D * H)

    def loss(src, sl, tgt, tl):
        B, Ty = tgt.shape
        x = net["src_embed"](torch.tensor(src.T))
        _, h = net["encoder"](pack(x, torch.tensor(sl), enforce_sorted=False))
        h = tuple(bridge(s) for s in h) if isinstance(h, tuple) else bridge(h)
        dec_in = torch.tensor(np.vstack([np.full((1, B), c["bos_id"]), tgt.T]))
        out, _ = net["decoder"](pack(net["tgt_embed"](dec_in), torch.tensor(tl + 1), enforce_sorted=False), h)
        out, _ = unpack(out, total_length=Ty + 1)
        logits = net["head"](out)                                       # (T, B, V)
        return torch_target_loss(logits, tgt, tl, c["eos_id"])
    return net, loss


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("cell,bidirectional,layers", [("lstm", True, 2), ("gru", False, 1), ("gru", True, 1),
                                                       ("lstm", False, 1)])
def test_pytorch_parity_teacher_forced_loss_and_gradients(cell, bidirectional, layers):
    model = fastrnn.Seq2Seq(7, 6, cell=cell, embed_size=5, hidden_size=4, num_layers=layers,
                            bidirectional=bidirectional, bos_id=4, eos_id=5, dtype="float64", seed=3)
    src, sl, tgt, tl = ragged_batch(seed=2)
    net, torch_loss = torch_seq2seq(model)
    expected = torch_loss(src, sl, tgt, tl)
    expected.backward()
    model.zero_grad()
    assert model.forward((src, sl, tgt, tl)) == pytest.approx(expected.item(), abs=1e-8)
    model.backward()
    grads = model.named_grads()
    for name, p in net.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-8, err_msg=name)


def log_prob(model, src, sl, ys):
    """log P(ys | src) by stepping the decoder over the whole sequence (independent of the beam)."""
    state = model.encode(src, sl)
    ids, total = np.array([model.config["bos_id"]]), 0.0
    for y in ys:
        logp, state = model.step(ids, state)
        total += logp[0, y]
        ids = np.array([y])
    return total


@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_beam_as_wide_as_all_sequences_finds_the_exact_best(alpha):
    model = fastrnn.Seq2Seq(5, 4, cell="gru", embed_size=3, hidden_size=4, bos_id=2, eos_id=3,
                            dtype="float64", seed=5)
    V, max_len, eos = 4, 3, 3
    src, sl = np.array([[1, 4, 0, 2]]), np.array([4])
    candidates = []          # every hypothesis: ends in <eos> (none before it), or max_len tokens
    for n in range(1, max_len + 1):
        for ys in itertools.product(range(V), repeat=n):
            if eos in ys[:-1] or (ys[-1] != eos and n < max_len):
                continue
            lp = log_prob(model, src, sl, ys)
            candidates.append((lp / fastrnn.models.seq2seq.gnmt_penalty(n, alpha), list(ys)))
    best_score, best = max(candidates)
    (ids, score), = model.beam_search(src, sl, beam_width=V ** max_len, max_len=max_len, alpha=alpha)
    assert ids == (best[:-1] if best[-1] == eos else best)
    assert score == pytest.approx(best_score, abs=1e-12)
    # the teacher-forced loss agrees with the step path on a sequence ending in <eos>
    ys = [0, 1]
    loss = model.forward((src, sl, np.array([ys]), None), train=False)
    assert -loss * 3 == pytest.approx(log_prob(model, src, sl, ys + [eos]), abs=1e-12)


def test_greedy_equals_beam_width_one_batched():
    model = tiny("lstm", True, 2)
    src, sl, _, _ = ragged_batch(B=4)
    greedy = model.greedy(src, sl, max_len=6)
    beams = model.beam_search(src, sl, beam_width=1, max_len=6)
    assert greedy == [ids for ids, _ in beams]
    # batching does not change a sequence's decoding
    assert greedy[1] == model.greedy(src[1:2, :sl[1]], max_len=6)[0]


def reversal_batch(rng, B):
    seqs = [rng.integers(0, 10, n) for n in rng.integers(3, 7, B)]
    src, sl = pad_sequences(seqs)
    tgt, tl = pad_sequences([s[::-1] for s in seqs])
    return src, sl, tgt, tl


def exact_match(model, batch):
    src, sl, tgt, tl = batch
    out = model.greedy(src, sl, max_len=8)
    return np.mean([ids == list(tgt[b, :tl[b]]) for b, ids in enumerate(out)])


def test_learns_to_reverse_digit_strings(tmp_path, single_thread):
    rng = np.random.default_rng(0)
    train = [reversal_batch(rng, 64) for _ in range(600)]
    val = reversal_batch(np.random.default_rng(1), 1000)
    model = fastrnn.Seq2Seq(10, 12, cell="lstm", embed_size=16, hidden_size=48, bidirectional=True,
                            bos_id=10, eos_id=11, seed=0)
    t0 = time.perf_counter()
    trainer = Trainer(model, train, [val], lr=0.02, lr_decay=0.6, lr_decay_every=150, eval_every=300,
                      progress=False, out=str(tmp_path),
                      items=lambda b: b[0].shape[0], callbacks=[Metric("exact", lambda t: exact_match(t.model, val))])
    trainer.fit()
    acc = exact_match(model, val)
    print(f"digit reversal: exact match {acc:.4f} on 1000 strings in {time.perf_counter() - t0:.1f} s")
    assert acc >= 0.99
    best, _, _ = fastrnn.load(tmp_path / "best.npz")
    assert exact_match(best, val) >= 0.99


def test_save_load_round_trip(tmp_path):
    model = tiny("lstm", True, 2)
    batch = ragged_batch()
    loaded = round_trip(model, tmp_path)
    assert loaded.forward(batch, train=False) == model.forward(batch, train=False)
    assert loaded.beam_search(*batch[:2], beam_width=3, max_len=5) == \
        model.beam_search(*batch[:2], beam_width=3, max_len=5)


def test_bad_input_names_the_argument():
    model = tiny()
    src, sl, tgt, tl = ragged_batch()
    cases = [((src, sl[:3], tgt, tl), ValueError, "src_lengths"),        # mismatched lengths
             ((src, sl, tgt, tl + 5), ValueError, "tgt_lengths"),
             ((src, np.array([5, 0, 3, 1]), tgt, tl), ValueError, "src_lengths.*empty"),
             ((src + 7, sl, tgt, tl), ValueError, "src"),                # ids out of range
             ((src, sl, tgt - 1, tl), ValueError, "tgt"),
             ((src.astype(float), sl, tgt, tl), TypeError, "src"),       # wrong dtypes
             ((src, sl.astype(float), tgt, tl), TypeError, "src_lengths"),
             ((src, sl, tgt[:2], tl[:2]), ValueError, "tgt"),
             ((src[:, :0], None, tgt, tl), ValueError, "src_lengths"),
             ((src, sl), TypeError, "batch")]
    for batch, error, match in cases:
        with pytest.raises(error, match=match):
            model.forward(batch)
    with pytest.raises(ValueError, match="beam_width"):
        model.beam_search(src, sl, beam_width=0)
    with pytest.raises(ValueError, match="alpha"):
        model.beam_search(src, sl, alpha=-1)
    with pytest.raises(ValueError, match="max_len"):
        model.greedy(src, sl, max_len=0)
    with pytest.raises(ValueError, match="eos_id"):
        fastrnn.Seq2Seq(5, 4, bos_id=1, eos_id=1)
    with pytest.raises(ValueError, match="bos_id"):
        fastrnn.Seq2Seq(5, 4, bos_id=4)
    with pytest.raises(ValueError, match="cell"):
        fastrnn.Seq2Seq(5, 4, cell="tcn")
    other = tiny(bidirectional=True)          # a state from another model (decoder width 6, not 3)
    with pytest.raises(ValueError, match="state"):
        model.step(np.array([0]), other.encode(src[:1], sl[:1]))


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 4), Tx=st.integers(1, 5), Ty=st.integers(0, 4), seed=st.integers(0, 2**16))
def test_fuzz_random_batches_train_and_decode(B, Tx, Ty, seed):
    rng = np.random.default_rng(seed)
    model = tiny("gru", bool(seed % 2))
    src = rng.integers(0, 7, (B, Tx))
    tgt = rng.integers(0, 6, (B, max(Ty, 1)))
    sl, tl = rng.integers(1, Tx + 1, B), rng.integers(0, Ty + 1, B)
    model.zero_grad()
    assert np.isfinite(model.forward((src, sl, tgt, tl)))
    model.backward()
    assert np.isfinite(model.grads).all()
    for ids, score in model.beam_search(src, sl, beam_width=2, max_len=4):
        assert len(ids) <= 4 and np.isfinite(score) and all(0 <= i < 6 and i != 5 for i in ids)
