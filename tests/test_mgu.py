"""The minimal gated unit, added through the cell table (csrc/cells.h, csrc/mgu.c) and the block
registry (fastrnn.nn.recurrent): the layer against the NumPy reference in float64 and float32 for
every option, identical bits on 1-3 threads, and every model, the CLI and the benchmarks taking
cell="mgu" with no edit of their own. (The reference is checked against finite differences in
test_reference.py, the layer in test_layers.py, the C kernels in csrc/test_kernels.c.)"""
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn import reference
from fastrnn.benchmarks import runners
from fastrnn.data import Vocab
from fastrnn.nn import BLOCKS, MGU, block_names, build_block
from fastrnn.sample import generate, generate_stepwise

T, B, I, H = 6, 5, 4, 7


def _reference_stack(layer, x, lengths):
    """The layer's outputs from fastrnn.reference, layer by layer and direction by direction."""
    inp, finals = x.astype(np.float64), []
    for k in range(layer.num_layers):
        outs = []
        for d, sfx in enumerate(layer._suffixes(k)):
            p = {n: dict(layer.named_parameters())[f"{n}{sfx}"].astype(np.float64)
                 for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            xs = inp
            if d == 1:      # the reverse direction reads each sequence reversed within its length
                xs = np.zeros_like(inp)
                for b, n in enumerate(lengths):
                    xs[:n, b] = inp[:n, b][::-1]
            y, h_T, _ = reference.mgu_forward(xs, None, p["weight_ih"], p["weight_hh"], p["bias_ih"],
                                              p["bias_hh"], lengths=lengths)
            if d == 1:
                y2 = np.zeros_like(y)
                for b, n in enumerate(lengths):
                    y2[:n, b] = y[:n, b][::-1]
                y = y2
            outs.append(y)
            finals.append(h_T)
        inp = np.concatenate(outs, axis=2)
    return inp, np.stack(finals)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (3, False), (2, True)])
def test_layer_matches_the_reference(dtype, tol, layers, bidirectional):
    layer = MGU(I, H, num_layers=layers, bidirectional=bidirectional, dtype=dtype, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    lengths = np.array([6, 1, 4, 0, 6])
    y, h_n = layer(x, lengths=lengths, train=False)
    want_y, want_h = _reference_stack(layer, x, lengths)
    scale = max(1.0, np.abs(want_y).max())
    assert np.abs(y - want_y).max() <= tol * scale
    assert np.abs(h_n - want_h).max() <= tol * scale


def test_threads_give_identical_bits():
    layer = MGU(I, 40, num_layers=2, bidirectional=True, seed=0)   # float32 engine
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, 24, I)).astype(np.float32)
    lengths = rng.integers(0, T + 1, 24)
    results = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        try:
            layer.zero_grad()
            y, h = layer(x, lengths=lengths)
            dx, dh = layer.backward(np.ones_like(y))
            results.append((y, h, dx, dh, layer.grads.copy()))
        finally:
            fastrnn.set_num_threads(0)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


def test_registry_covers_the_c_cell_table():
    from fastrnn import _kernels
    assert "mgu" in block_names() and BLOCKS["mgu"][0] is MGU
    assert _kernels.cell_table()["mgu"] == dict(code=6, gates=2, state_parts=1, barriers=2)
    assert sorted(k for _, _, k in BLOCKS.values()) == sorted(_kernels.CELLS)
    with pytest.raises(ValueError, match="cell: expected one of"):
        build_block("mgru", 3, 4)


@pytest.mark.parametrize("build", [
    lambda: fastrnn.LanguageModel(12, cell="mgu", hidden_size=8, num_layers=2, seed=0),
    lambda: fastrnn.SequenceClassifier(12, 3, cell="mgu", hidden_size=8, seed=0),
    lambda: fastrnn.SequenceTagger(12, 3, cell="mgu", hidden_size=8, seed=0),
    lambda: fastrnn.SequenceRegressor(3, cell="mgu", hidden_size=8, seed=0),
])
def test_models_take_cell_mgu(build):
    model = build()
    assert any(isinstance(m, MGU) for _, m in model.modules())
    assert model.params.size > 0


def test_native_generation_with_mgu_equals_the_stepwise_loop():
    vocab = Vocab.build("abcabd abd\n" * 3)
    model = fastrnn.LanguageModel(len(vocab), cell="mgu", hidden_size=16, num_layers=2, seed=1)
    model.params[:] = np.random.default_rng(1).uniform(-0.7, 0.7, model.params.size)
    model.invalidate()
    assert generate(model, vocab, prime="ab", length=40, argmax=True) == \
        generate_stepwise(model, vocab, prime="ab", length=40, argmax=True)


def test_benchmark_runners_take_mgu():
    builders = runners.kernel("mgu", 4, 3, 5, 6, "float32", True)
    assert "torch" not in builders            # torch has no MGU
    builders["fastrnn"]()()
    builders["reference"]()()


def test_onnx_export_refuses_mgu_clearly():
    with pytest.raises(ValueError, match="mgu"):
        fastrnn.export_onnx(MGU(3, 4), "never-written.onnx")


def test_cli_trains_an_mgu_language_model(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the minimal gated unit has one gate.\n" * 30)
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "fastrnn", "train", str(corpus), "--cell", "mgu",
                        "--hidden", "16", "--layers", "2", "--batch", "4", "--seq-len", "12",
                        "--epochs", "2", "--eval-every", "10", "--quiet", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    model, vocab, _ = fastrnn.load(str(out / "best.npz"))
    assert model.config["cell"] == "mgu" and isinstance(model.rnn, MGU)
    r = subprocess.run([sys.executable, "-m", "fastrnn", "sample", str(out), "--length", "20", "--seed", "0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr     # may end early at <eos>
