"""`fastrnn quantize CHECKPOINT OUT [--eval FILE]`: the int8 checkpoint, the size and accuracy
report (language model and task checkpoints), and one-line errors."""
import numpy as np
import pytest

import fastrnn
from fastrnn import quant
from fastrnn.cli import main
from test_cli_tasks import SMALL, classify_file


def _table(out):
    return {line.split("\t")[0]: line.split("\t")[1:] for line in out.splitlines() if "\t" in line}


def test_language_model(tmp_path, capsys):
    vocab = fastrnn.Vocab.build("abcdefgh \n")
    model = fastrnn.LanguageModel(len(vocab), hidden_size=24, num_layers=2, seed=0)
    carried = {"state/0": np.ones((2, 1, 24), np.float32), "early_stop/best_params": model.params.copy()}
    fastrnn.save(tmp_path / "f.npz", model, vocab, optimizer=fastrnn.optim.Adam(model), arrays=carried)
    (tmp_path / "valid.txt").write_text("abc defg hab\n" * 20)
    assert main(["quantize", str(tmp_path / "f.npz"), str(tmp_path / "q.npz"), "--eval", str(tmp_path / "valid.txt")]) == 0
    rows = _table(capsys.readouterr().out)
    int8, _, _ = fastrnn.load(tmp_path / "q.npz")
    assert quant.is_quantized(int8) and not quant.is_quantized(model)
    # the sizes compare the float model saved the same way (no optimizer state), and the losses
    # are the two models' on the file
    before, after, ratio = rows["model file"]
    assert int(after) == (tmp_path / "q.npz").stat().st_size and float(ratio) == pytest.approx(int(before) / int(after), abs=0.01)
    # nor the training-resume arrays (carried state, early stopping's best parameters)
    stored = fastrnn.io.load_arrays(tmp_path / "q.npz")[0]
    assert not [k for k in stored if k in carried] and any(k.startswith("int8/") for k in stored)
    ids = vocab.encode((tmp_path / "valid.txt").read_text())
    want = [m.forward(ids[None, :-1], ids[None, 1:], train=False)[0] for m in (model, int8)]
    assert [float(v) for v in rows["loss"]] == pytest.approx(want, rel=1e-4)
    assert float(rows["loss"][1]) == pytest.approx(float(rows["loss"][0]), rel=0.02)


def test_task_checkpoint_reports_its_metrics(tmp_path, capsys):
    data = classify_file(tmp_path / "c.tsv", n=60)
    assert main(["train", "--task", "classify", str(data), *SMALL, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["quantize", str(tmp_path / "run"), str(tmp_path / "q.npz"), "--eval", str(data)]) == 0
    rows = _table(capsys.readouterr().out)
    assert 0 <= float(rows["accuracy"][0]) <= 1 and 0 <= float(rows["accuracy"][1]) <= 1
    assert main(["evaluate", str(tmp_path / "q.npz"), str(data)]) == 0      # the task metadata is kept
    assert float(_table(capsys.readouterr().out)["accuracy"][0]) == float(rows["accuracy"][1])


def test_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit, match="No such file"):
        main(["quantize", str(tmp_path / "none.npz"), str(tmp_path / "q.npz")])
    model = fastrnn.LanguageModel(5, hidden_size=4, num_layers=1, dtype="float64", seed=0)
    fastrnn.save(tmp_path / "f64.npz", model)
    with pytest.raises(SystemExit, match="cannot quantize .*float32"):
        main(["quantize", str(tmp_path / "f64.npz"), str(tmp_path / "q.npz")])
    assert not (tmp_path / "q.npz").exists()
    fastrnn.save(tmp_path / "f.npz", fastrnn.LanguageModel(5, hidden_size=4, num_layers=1, seed=0))
    with pytest.raises(SystemExit, match="nothing to evaluate"):
        main(["quantize", str(tmp_path / "f.npz"), str(tmp_path / "q.npz"), "--eval", str(tmp_path / "f.npz")])
    with pytest.raises(SystemExit) as e:
        main(["quantize", str(tmp_path / "f.npz")])
    assert e.value.code == 2


def test_info_names_the_int8_path():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "fastrnn", "info"], capture_output=True, text=True, timeout=120).stdout
    line = next(x for x in out.splitlines() if x.startswith("int8 inference"))
    assert fastrnn._kernels.int8_isa() in line and "ref" in line


@pytest.mark.parametrize("activations,static", [(None, True), ("dynamic", False), ("static", True)])
def test_activations_option_reaches_the_file(tmp_path, activations, static):
    fastrnn.save(tmp_path / "f.npz", fastrnn.LanguageModel(5, hidden_size=4, num_layers=1, seed=0))
    extra = [] if activations is None else ["--activations", activations]
    assert main(["quantize", str(tmp_path / "f.npz"), str(tmp_path / "q.npz"), *extra]) == 0
    assert fastrnn.load(tmp_path / "q.npz")[0].rnn._int8["static"] is static


def test_static_activations_of_a_relu_model_are_one_line(tmp_path):
    fastrnn.save(tmp_path / "f.npz", fastrnn.LanguageModel(5, cell="rnn_relu", hidden_size=4, num_layers=1, seed=0))
    with pytest.raises(SystemExit, match="cannot quantize .*static activations need"):
        main(["quantize", str(tmp_path / "f.npz"), str(tmp_path / "q.npz"), "--activations", "static"])
    with pytest.raises(SystemExit) as e:
        main(["quantize", str(tmp_path / "f.npz"), str(tmp_path / "q.npz"), "--activations", "u8"])
    assert e.value.code == 2
