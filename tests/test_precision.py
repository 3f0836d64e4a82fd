"""precision="bf16" beyond the layers (issue 22 item 1): models and cells adopt it, packs are
never stale across precisions and weight edits, the Trainer records it in checkpoints (which stay
float32) and a resume may change it, and the CLI's --precision on train/sample/predict/bench."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels, io
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel, SequenceClassifier
from fastrnn.nn import MGU
from fastrnn.train import Trainer


def fastrnn_cli(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "fastrnn", *map(str, args)], capture_output=True,
                       text=True, timeout=300)
    if check and r.returncode:
        raise AssertionError(f"fastrnn {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


# ---- models and cells --------------------------------------------------------------------------

def test_models_and_cells_adopt_the_precision_of_their_recurrent_layers_and_head():
    lm = LanguageModel(20, hidden_size=8, num_layers=2, seed=0)
    assert lm.precision == "float32" and lm.rnn.precision == "float32"
    lm.precision = "bf16"
    assert lm.precision == "bf16" and lm.rnn.precision == "bf16"
    clf = SequenceClassifier(4, vocab_size=30, embed_size=6, hidden_size=8, seed=0)
    clf.rnn.precision = "bf16"              # the layers alone: the head is float32 still
    assert clf.precision == "mixed" and clf.head.precision == "float32"
    clf.precision = "bf16"                  # the model's precision: its layers and its head
    assert clf.precision == "bf16" and clf.head.precision == "bf16"
    for cell in (fastrnn.RNNCell(3, 5, precision="bf16"), fastrnn.GRUCell(3, 5, precision="bf16"),
                 fastrnn.LSTMCell(3, 5, precision="bf16")):
        assert cell.precision == "bf16" and cell.layer.precision == "bf16"
    assert MGU(3, 4, precision="bf16").precision == "bf16"


def test_a_model_in_bf16_differs_from_float32_by_the_bf16_effect_only():
    lm = LanguageModel(20, hidden_size=32, num_layers=2, seed=0)
    ids = np.random.default_rng(0).integers(0, 20, (12, 3))
    f32 = lm.forward(ids[:-1], ids[1:])[0]
    lm.precision = "bf16"
    b16 = lm.forward(ids[:-1], ids[1:])[0]
    lm.precision = "float32"
    assert lm.forward(ids[:-1], ids[1:])[0] == f32           # switching back: float32's bits again
    assert b16 != f32 and abs(b16 - f32) < 1e-2 * abs(f32)


def test_bad_precisions_are_refused_before_anything_changes():
    with pytest.raises(ValueError, match="precision"):
        LanguageModel(20, hidden_size=8, seed=0).precision = "fp16"
    m64 = LanguageModel(20, hidden_size=8, seed=0, dtype="float64")
    with pytest.raises(ValueError, match="float32"):
        m64.precision = "bf16"
    assert m64.precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        fastrnn.GRUCell(3, 5, precision=16)
    # a model without a fastrnn recurrent layer: bf16 would change nothing, so it is refused
    from fastrnn.models import OutputRecurrentNet
    orn = OutputRecurrentNet(3, 2, hidden_size=4, seed=0)
    with pytest.raises(ValueError, match="OutputRecurrentNet has none"):
        orn.precision = "bf16"
    orn.precision = "float32"
    assert orn.precision == "float32"


# ---- packs: per precision, never stale ---------------------------------------------------------

def test_bf16_packs_are_never_stale_after_in_place_edits_of_any_weight():
    lstm = fastrnn.LSTM(6, 8, num_layers=2, seed=0, precision="bf16")
    x = np.random.default_rng(1).standard_normal((5, 2, 6)).astype(np.float32)
    with fastrnn.no_grad():
        lstm(x)                                           # packs W_hh, W_hr and W_ih in bf16
        for name in ("weight_ih_l0", "weight_hh_l1"):     # W_ih lives in the bf16 pack too
            dict(lstm.named_parameters())[name][...] *= 0.5
            fresh = fastrnn.LSTM(6, 8, num_layers=2, seed=0, precision="bf16")
            fresh.load_state_dict(lstm.state_dict())
            np.testing.assert_array_equal(lstm(x)[0], fresh(x)[0])
        y_bf16 = lstm(x)[0]
        lstm.precision = "float32"                        # its own pack, keyed by precision
        fresh.precision = "float32"
        np.testing.assert_array_equal(lstm(x)[0], fresh(x)[0])
        assert not np.array_equal(lstm(x)[0], y_bf16)
    assert {key[2] for key in lstm._packs.entries} == {"float32", "bf16"}


def test_a_bf16_step_after_an_edit_of_w_ih_sees_the_edit():
    gru = fastrnn.GRU(4, 16, seed=0, precision="bf16")
    x = np.random.default_rng(2).standard_normal((1, 4)).astype(np.float32)
    h = gru.step(x)[0]
    gru.params[:16 * 3 * 4] = 0                           # W_ih_l0, through the public view
    fresh = fastrnn.GRU(4, 16, seed=0, precision="bf16")
    fresh.params[...] = gru.params
    np.testing.assert_array_equal(gru.step(x)[0], fresh.step(x)[0])
    assert not np.array_equal(gru.step(x)[0], h)


# ---- Trainer -----------------------------------------------------------------------------------

def _lm_run(tmp_path, **kw):
    text = "the cat sat on the mat. " * 30
    vocab = Vocab.build(text)
    ids = vocab.encode(text)
    model = LanguageModel(len(vocab), hidden_size=16, num_layers=1, seed=0)
    trainer = Trainer(model, vocab, ids[:600], ids[600:], batch_size=4, seq_len=10, eval_every=5,
                      epochs=1, progress=False, out=tmp_path, **kw)
    return trainer, ids


def test_trainer_runs_bf16_records_it_and_a_resume_may_change_it(tmp_path):
    trainer, ids = _lm_run(tmp_path, precision="bf16")
    assert trainer.model.precision == "bf16"
    trainer.fit(max_iters=5)
    _, _, extra = io.load(tmp_path / "last.npz")
    assert extra["meta"]["training"]["settings"]["precision"] == "bf16"
    model, _, _ = io.load(tmp_path / "last.npz")
    assert model.params.dtype == np.float32 and model.precision == "float32"  # the file: float32
    again = Trainer.resume(tmp_path / "last.npz", ids[:600], ids[600:], progress=False)
    assert again.model.precision == "bf16"                # the recorded choice
    switched = Trainer.resume(tmp_path / "last.npz", ids[:600], ids[600:], progress=False,
                              precision="float32", out=tmp_path)
    assert switched.model.precision == "float32" and switched.settings["precision"] == "float32"
    switched.fit(max_iters=5)
    assert io.load(tmp_path / "last.npz")[2]["meta"]["training"]["settings"]["precision"] == "float32"


def test_bf16_training_tracks_float32_training(tmp_path):
    losses = {}
    for p in ("float32", "bf16"):
        trainer, _ = _lm_run(tmp_path / p, precision=p)
        losses[p] = [trainer.train_step() for _ in range(8)]
    assert losses["bf16"] != losses["float32"]
    np.testing.assert_allclose(losses["bf16"], losses["float32"], rtol=1e-2)


def test_trainer_precision_errors(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        _lm_run(tmp_path, precision="half")
    text = "abcabc" * 50
    vocab = Vocab.build(text)
    m64 = LanguageModel(len(vocab), hidden_size=8, seed=0, dtype="float64")
    with pytest.raises(ValueError, match="float32"):
        Trainer(m64, vocab, vocab.encode(text), None, batch_size=2, seq_len=5, precision="bf16",
                progress=False)
    with pytest.raises(TypeError, match="precision"):
        Trainer(object(), [1, 2], precision="bf16", progress=False)


def test_a_checkpoint_with_a_bad_recorded_precision_is_a_checkpoint_error(tmp_path):
    trainer, _ = _lm_run(tmp_path, precision="bf16")
    trainer.fit(max_iters=5)
    import fuzz_cases_ckpt_meta as F
    F.write_mutated(str(tmp_path / "last.npz"), str(tmp_path / "bad.npz"),
                    ("training", "settings", "precision"), "fp8")
    with pytest.raises(io.CheckpointError, match="precision"):
        io.load(tmp_path / "bad.npz")


# ---- CLI ---------------------------------------------------------------------------------------

def test_cli_train_sample_and_resume_with_precision(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 30)
    out = tmp_path / "run"
    small = ["--hidden", 16, "--layers", 1, "--batch", 4, "--seq-len", 12, "--eval-every", 5, "--quiet"]
    fastrnn_cli("train", corpus, *small, "--epochs", 1, "--max-time", "20s", "--out", out, "--precision", "bf16")
    settings = io.load(out / "last.npz")[2]["meta"]["training"]["settings"]
    assert settings["precision"] == "bf16"
    r = fastrnn_cli("sample", out, "--prime", "To", "--length", 20, "--seed", 1, "--argmax")
    r32 = fastrnn_cli("sample", out, "--prime", "To", "--length", 20, "--seed", 1, "--argmax",
                      "--precision", "float32")
    assert r.stdout.startswith("To") and r32.stdout.startswith("To")
    fastrnn_cli("train", corpus, "--resume", out, "--epochs", 2, "--precision", "float32", "--quiet")
    assert io.load(out / "last.npz")[2]["meta"]["training"]["settings"]["precision"] == "float32"
    r = fastrnn_cli("train", corpus, *small, "--dtype", "float64", "--precision", "bf16", check=False)
    assert r.returncode == 2 and "--precision bf16" in r.stderr and "Traceback" not in r.stderr
    r = fastrnn_cli("sample", out, "--precision", "fp16", check=False)
    assert r.returncode == 2 and "precision" in r.stderr


def test_cli_task_train_and_predict_with_precision(tmp_path):
    data = tmp_path / "data.tsv"
    rng = np.random.default_rng(0)
    lines = [f"{'good' if k % 2 else 'bad'} {''.join(rng.choice(list('abc'), 4))}\t{'pos' if k % 2 else 'neg'}"
             for k in range(40)]
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "clf"
    fastrnn_cli("train", "--task", "classify", data, "--hidden", 8, "--embed", 4, "--epochs", 1,
                "--quiet", "--out", out, "--precision", "bf16")
    assert io.load(out / "last.npz")[2]["meta"]["training"]["settings"]["precision"] == "bf16"
    inputs = tmp_path / "in.txt"
    inputs.write_text("good abc\nbad cab\n")
    a = fastrnn_cli("predict", out, inputs).stdout.splitlines()
    b = fastrnn_cli("predict", out, inputs, "--precision", "float32").stdout.splitlines()
    assert len(a) == len(b) == 2
    fastrnn_cli("train", "--task", "classify", data, "--resume", out, "--epochs", 2, "--quiet",
                "--precision", "float32")
    assert io.load(out / "last.npz")[2]["meta"]["training"]["settings"]["precision"] == "float32"


def test_cli_bench_and_info_report_the_bf16_path(tmp_path):
    kernel = _kernels.bf16_info()["kernel"]
    assert f"bf16 kernels (precision='bf16'): {kernel}" in fastrnn_cli("info").stdout
    report = tmp_path / "r.json"
    r = fastrnn_cli("bench", "--quick", "--filter", "^kernel gru forward", "--precision", "bf16", "--json", report)
    assert f"bf16 kernel: {kernel}" in r.stdout and "layers: bf16" in r.stdout
    j = json.loads(report.read_text())
    assert j["precision"] == "bf16" and j["machine"]["engine"]["bf16"] == kernel


def test_bf16_training_benchmark_builds_its_table_and_measures_the_bf16_peak():
    """bench/bf16_training.py's workloads (built, not timed: the fused LM rows with their flops)
    and timing.measure_peak_bf16 on a small product (both sources when torch is here)."""
    import importlib.util
    from fastrnn.benchmarks import runners, timing
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "bf16_training.py")
    if not os.path.exists(script):
        pytest.skip("no bench/ (installed without sources)")
    sys.path.insert(0, os.path.dirname(script))
    try:
        spec = importlib.util.spec_from_file_location("bf16_training", script)
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        work = bench.workloads()
    finally:
        sys.path.remove(os.path.dirname(script))
    for name in ("LM train iteration fused 2x256 (50x50)", "LM train iteration fused 3x512 (50x50)"):
        impls, flops = work[name]
        assert flops > 0 and {"float32", "bf16"} <= set(impls)
    peak = timing.measure_peak_bf16(repeats=1, n=64)
    assert peak["fastrnn_gemm_gflops"] > 0 and peak["gflops"] >= peak["fastrnn_gemm_gflops"]
    assert (peak["torch_mm_gflops"] is None) == (runners.torch is None)
    assert peak["kernel"] == _kernels.bf16_info()["kernel"]
