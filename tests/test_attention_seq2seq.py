"""AttentionSeq2Seq: gradients against finite differences and PyTorch (float64) with ragged
batches, decoding (greedy = beam 1, batching changes nothing), save/load, no ONNX export (a
ValueError saying why), bad input named, learning, and `fastrnn train --task seq2seq --attention`
with predict/evaluate on its checkpoint."""
import json

import numpy as np
import pytest
from model_helpers import check_gradients, round_trip, single_thread  # noqa: F401  (fixture)
from test_seq2seq import (check_padding_is_masked, exact_match, ragged_batch, reversal_batch,
                          torch_target_loss)

import fastrnn
from fastrnn.cli import main

try:
    import torch
except ImportError:          # the parity test skips; CI (FASTRNN_REQUIRE_TORCH=1) fails instead
    torch = None


def tiny(cell="lstm", bidirectional=False, num_layers=1, attention="general", **kw):
    return fastrnn.AttentionSeq2Seq(7, 6, cell=cell, embed_size=4, hidden_size=3, num_layers=num_layers,
                                    bidirectional=bidirectional, bos_id=4, eos_id=5, attention=attention,
                                    dtype="float64", seed=1, **kw)


@pytest.mark.parametrize("cell,bidirectional,layers,attention", [
    ("lstm", True, 2, "general"), ("gru", False, 1, "additive"), ("rnn", True, 1, "additive"),
    ("lstm", False, 1, "general")])
def test_gradients_match_finite_differences_with_masks(cell, bidirectional, layers, attention):
    model = tiny(cell, bidirectional, layers, attention)
    batch = ragged_batch()
    check_gradients(model, batch, n=80)
    check_padding_is_masked(model, batch)     # padding is really masked


def torch_attention_seq2seq(model):
    """The same model in torch (ModuleDict: the parameter names are ours) and its loss function."""
    c = model.config
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[c["cell"]]
    D, H, L, E = model.D, c["hidden_size"], c["num_layers"], c["embed_size"]
    K, A = D * H, model.attention.attn_size
    att = torch.nn.ParameterDict(
        {"weight": torch.nn.Parameter(torch.zeros(K, K))} if c["attention"] == "general" else
        {"query_weight": torch.nn.Parameter(torch.zeros(A, K)),
         "key_weight": torch.nn.Parameter(torch.zeros(A, K)), "v": torch.nn.Parameter(torch.zeros(A))})
    net = torch.nn.ModuleDict(dict(
        src_embed=torch.nn.Embedding(c["src_vocab"], E), encoder=cls(E, H, L, bidirectional=D == 2),
        tgt_embed=torch.nn.Embedding(c["tgt_vocab"], E), decoder=cls(E, K, L),
        head=torch.nn.Linear(K, c["tgt_vocab"]), attention=att,
        combine=torch.nn.Linear(2 * K, K))).double()
    net.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    pack, unpack = torch.nn.utils.rnn.pack_padded_sequence, torch.nn.utils.rnn.pad_packed_sequence

    def bridge(s):
        return s.view(L, D, -1, H).permute(0, 2, 1, 3).reshape(L, -1, D * H)

    def loss(src, sl, tgt, tl):
        B, Ty = tgt.shape
        x = net["src_embed"](torch.tensor(src.T))
        memory, h = net["encoder"](pack(x, torch.tensor(sl), enforce_sorted=False))
        memory, _ = unpack(memory, total_length=src.shape[1])                       # (Tx, B, K)
        h = tuple(bridge(s) for s in h) if isinstance(h, tuple) else bridge(h)
        dec_in = torch.tensor(np.vstack([np.full((1, B), c["bos_id"]), tgt.T]))
        y, _ = net["decoder"](pack(net["tgt_embed"](dec_in), torch.tensor(tl + 1), enforce_sorted=False), h)
        y, _ = unpack(y, total_length=Ty + 1)                                        # (T, B, K)
        q, m = y.transpose(0, 1), memory.transpose(0, 1)
        if c["attention"] == "general":
            e = q @ att["weight"] @ m.transpose(1, 2)
        else:
            e = torch.tanh((q @ att["query_weight"].T)[:, :, None] + (m @ att["key_weight"].T)[:, None]) \
                @ att["v"]
        valid = torch.tensor(np.arange(src.shape[1])[None, None, :] < sl[:, None, None])
        context = torch.softmax(e.masked_fill(~valid, -float("inf")), dim=2) @ m     # (B, T, K)
        o = torch.tanh(net["combine"](torch.cat([context.transpose(0, 1), y], dim=2)))
        logits = net["head"](o)
        return torch_target_loss(logits, tgt, tl, c["eos_id"])
    return net, loss


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("cell,bidirectional,layers,attention", [
    ("lstm", True, 2, "general"), ("gru", False, 1, "additive"), ("gru", True, 1, "general"),
    ("lstm", True, 1, "additive")])
def test_pytorch_parity_loss_and_all_gradients(cell, bidirectional, layers, attention):
    model = fastrnn.AttentionSeq2Seq(7, 6, cell=cell, embed_size=5, hidden_size=4, num_layers=layers,
                                     bidirectional=bidirectional, bos_id=4, eos_id=5, attention=attention,
                                     attn_size=3, dtype="float64", seed=3)
    src, sl, tgt, tl = ragged_batch(seed=2)
    net, torch_loss = torch_attention_seq2seq(model)
    expected = torch_loss(src, sl, tgt, tl)
    expected.backward()
    model.zero_grad()
    assert model.forward((src, sl, tgt, tl)) == pytest.approx(expected.item(), abs=1e-12)
    model.backward()
    grads = model.named_grads()
    assert sorted(grads) == sorted(n for n, _ in net.named_parameters())
    for name, p in net.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell,attention", [("lstm", "general"), ("gru", "additive")])
def test_greedy_equals_beam_width_one_and_batching_changes_nothing(cell, attention):
    model = tiny(cell, True, 2, attention)
    src, sl, _, _ = ragged_batch(B=4)
    greedy = model.greedy(src, sl, max_len=6)
    beams = model.beam_search(src, sl, beam_width=1, max_len=6)
    assert greedy == [ids for ids, _ in beams]
    for b in range(4):      # each sequence alone, without padding, decodes the same
        assert greedy[b] == model.greedy(src[b:b + 1, :sl[b]], max_len=6)[0]
        assert model.beam_search(src, sl, beam_width=3, max_len=6)[b] == \
            model.beam_search(src[b:b + 1, :sl[b]], beam_width=3, max_len=6)[0]


def test_step_log_probabilities_are_the_teacher_forced_loss():
    model = tiny("lstm", True)
    src, sl, tgt, tl = ragged_batch(B=1)
    ys = list(tgt[0, :tl[0]]) + [5]
    state, ids, total = model.encode(src, sl), np.array([4]), 0.0
    for y in ys:
        logp, state = model.step(ids, state)
        total += logp[0, y]
        ids = np.array([y])
    assert model.forward((src, sl, tgt, tl), train=False) == pytest.approx(-total / len(ys), abs=1e-12)


def test_save_load_round_trip_and_no_onnx_export(tmp_path):
    model = tiny("gru", True, attention="additive", attn_size=5)
    batch = ragged_batch()
    loaded = round_trip(model, tmp_path)
    assert loaded.forward(batch, train=False) == model.forward(batch, train=False)
    assert loaded.beam_search(*batch[:2], beam_width=3, max_len=5) == \
        model.beam_search(*batch[:2], beam_width=3, max_len=5)
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="AttentionSeq2Seq has no ONNX export.*model.encoder"):
        fastrnn.export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_bad_input_names_the_argument():
    model = tiny()
    src, sl, tgt, tl = ragged_batch()
    for batch, error, match in [((src, sl[:3], tgt, tl), ValueError, "src_lengths"),
                                ((src, sl, tgt, tl + 5), ValueError, "tgt_lengths"),
                                ((src + 7, sl, tgt, tl), ValueError, "src"),
                                ((src, sl, tgt - 1, tl), ValueError, "tgt"),
                                ((src, sl), TypeError, "batch")]:
        with pytest.raises(error, match=match):
            model.forward(batch)
    with pytest.raises(ValueError, match="src_lengths"):
        model.greedy(src, sl[:2])
    with pytest.raises(ValueError, match="beam_width"):
        model.beam_search(src, sl, beam_width=0)
    for kw, match in [(dict(attention="dot"), "attention"), (dict(attn_size=0), "attn_size"),
                      (dict(attn_size=2.0), "attn_size"), (dict(cell="tcn"), "cell")]:
        with pytest.raises(ValueError, match=match):
            fastrnn.AttentionSeq2Seq(5, 4, **kw)
    with pytest.raises(RuntimeError, match="forward"):
        tiny().backward()
    other = tiny(bidirectional=True)          # a state from another model (memory width 7, not 4)
    for state in (other.encode(src[:1], sl[:1]), None, (1, 2, 3)):
        with pytest.raises(ValueError, match="state"):
            model.step(np.array([0]), state)


def test_learns_to_reverse_digit_strings(single_thread):
    rng = np.random.default_rng(0)
    val = reversal_batch(np.random.default_rng(1), 500)
    model = fastrnn.AttentionSeq2Seq(10, 12, cell="lstm", embed_size=16, hidden_size=32,
                                     bidirectional=True, bos_id=10, eos_id=11, seed=0)
    opt = fastrnn.optim.Adam(model, lr=0.01)
    for _ in range(300):
        model.zero_grad()
        model.forward(reversal_batch(rng, 32))
        model.backward()
        opt.step()
    assert exact_match(model, val) >= 0.95


def test_cli_train_attention_then_predict_and_evaluate(tmp_path, capsys):
    from test_cli_tasks import SMALL, seq2seq_file
    data = seq2seq_file(tmp_path / "s.tsv", n=60)
    out = tmp_path / "run"
    assert main(["train", "--task", "seq2seq", str(data), *SMALL, "--epochs", "1", "--attention",
                 "additive", "--bidirectional", "--out", str(out)]) == 0
    model, _, extra = fastrnn.load(out / "last.npz")
    meta = extra["meta"]
    assert type(model) is fastrnn.AttentionSeq2Seq and model.config["attention"] == "additive"
    assert meta["task_options"]["attention"] == "additive"
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", str(out), str(data), "--beam", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 60
    assert main(["evaluate", str(out), str(data)]) == 0
    assert "exact_match" in capsys.readouterr().out
    for argv, message in [(["--task", "classify", str(data), "--attention"], "--attention: only for --task seq2seq"),
                          ([str(data), "--attention"], "--attention: only for --task"),
                          (["--task", "seq2seq", str(data), "--attention", "dot"], "--attention")]:
        with pytest.raises(SystemExit) as e:
            main(["train", *argv, "--quiet", "--out", str(tmp_path / "x")])
        assert e.value.code == 2 and message in capsys.readouterr().err
    json.dumps(meta["task_options"])
