"""bf16 (issue 22) from the outside: the kernel forced through the environment at import
(FASTRNN_ISA as for float32, FASTRNN_BF16 for the bf16 kernel alone) gives the same bits as the
default one -- the recurrent layers under any forcing, a language model's training steps (fused
and layer by layer; its head and optimiser are float32, whose bits follow FASTRNN_ISA) under
FASTRNN_BF16 -- and bench/bf16_accuracy.py (the accuracy targets' runs) works end to end."""
import json
import os
import subprocess
import sys

import pytest

from fastrnn import _kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# an LSTM with a projection and a GRU in bf16 (batch 9: the many-rows products; batch 1: the row
# kernel), forward, backward and a no-tape forward, hashed; and the bf16 kernel that ran
PROBE = """
import hashlib, json
import numpy as np
import fastrnn
from fastrnn import _kernels
h = hashlib.sha256()
rng = np.random.default_rng(0)
for layer in (fastrnn.LSTM(7, 30, num_layers=2, proj_size=13, seed=1, precision="bf16"),
              fastrnn.GRU(7, 30, bidirectional=True, seed=2, precision="bf16")):
    for B in (9, 1):
        x = rng.standard_normal((4, B, 7)).astype(np.float32)
        layer.zero_grad()
        y, _ = layer(x)
        dx, _ = layer.backward(np.ones_like(y))
        for a in (y, dx, layer.grads, layer(x, train=False)[0]):
            h.update(np.ascontiguousarray(a).tobytes())
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel
from fastrnn.train import Trainer
text = "To be, or not to be, that is the question. Whether 'tis nobler in the mind\\n" * 40
vocab = Vocab.build(text)
ids = vocab.encode(text)
lm = hashlib.sha256()
for fused in (None, False):
    model = LanguageModel(len(vocab), hidden_size=40, num_layers=2, seed=0)
    trainer = Trainer(model, vocab, ids[:2500], ids[2500:], batch_size=8, seq_len=20, eval_every=1000,
                      progress=False, out=None, precision="bf16", fused=fused)
    for _ in range(3):
        trainer.train_step()
    lm.update(model.params.tobytes())
print(json.dumps(dict(kernel=_kernels.bf16_info()["kernel"], isa=_kernels.engine_info()["isa"],
                      hash=h.hexdigest(), lm=lm.hexdigest())))
"""


def _probe(**env):
    full = {k: v for k, v in os.environ.items() if k not in ("FASTRNN_ISA", "FASTRNN_BF16")}
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                       env=dict(full, **env))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_the_environment_forces_the_bf16_kernel_and_the_bits_stay():
    supported = _kernels.bf16_info()["supported"]
    default = _probe()
    assert default["kernel"] == _kernels.bf16_info()["kernel"]
    cases = [(dict(FASTRNN_ISA="none"), "emulated"), (dict(FASTRNN_BF16="emulated"), "emulated")]
    if "avx2" in supported:
        cases.append((dict(FASTRNN_ISA="avx2"), "avx2"))          # on an AVX-512 CPU: not vdpbf16ps
        cases.append((dict(FASTRNN_BF16="avx2"), "avx2"))
    for env, kernel in cases:
        got = _probe(**env)
        assert got["kernel"] == kernel, (env, got)
        assert got["hash"] == default["hash"], (env, got, default)
        if "FASTRNN_BF16" in env:
            assert got["lm"] == default["lm"], (env, got, default)


def test_the_accuracy_script_prints_both_runs_and_their_difference(tmp_path):
    script = os.path.join(ROOT, "bench", "bf16_accuracy.py")
    if not os.path.exists(script):
        pytest.skip("no bench/ (installed without sources)")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 1400)   # its 5 %: one 50 x 50 window
    r = subprocess.run([sys.executable, script, "lm", "--iterations", "2", "--val-tokens", "3000",
                        "--corpus", str(corpus)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    records = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert [rec["precision"] for rec in records] == ["float32", "bf16"]
    assert all(rec["iterations"] == 2 and rec["val_loss"] > 0 for rec in records)
    assert "relative difference" in r.stdout.splitlines()[-1]


def test_the_accuracy_script_averages_the_classifier_over_seeds():
    script = os.path.join(ROOT, "bench", "bf16_accuracy.py")
    if not os.path.exists(script):
        pytest.skip("no bench/ (installed without sources)")
    pytest.importorskip("sklearn")
    r = subprocess.run([sys.executable, script, "gru", "--epochs", "1", "--seeds", "2"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    last = r.stdout.splitlines()[-1]
    assert last.startswith("gru classifier over seeds 0-1: per seed bf16 - float32 "), last
    per_seed = [float(v) for v in last.split("points;")[0].split("float32 ")[1].split(", ")]
    means = [float(v) for v in last.split("mean float32 ")[1].replace(" %, bf16 ", " ").split(" %")[0].split()]
    assert len(per_seed) == 2 and abs((means[1] - means[0]) - sum(per_seed) / 2) < 0.01, last
