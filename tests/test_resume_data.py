"""`fastrnn train --resume` and its data: a changed data file is refused (one line naming the file
and --data-changed-ok) for the language model and every --task; --data-changed-ok goes on and is
recorded; checkpoints without a digest still resume; a run trained from stdin says what to give;
--out naming a file is refused before training."""
import io as stdio
import sys

import pytest

from fastrnn import io
from fastrnn.cli import main
from test_cli_tasks import EXTRA, FILES, SMALL, failure

LM = ["--hidden", "8", "--layers", "1", "--batch", "2", "--seq-len", "8", "--quiet"]
KINDS = ["lm", *sorted(FILES)]


def new_run(kind, tmp_path, epochs=1):
    """(data file, run directory) of a finished one-epoch run."""
    out = tmp_path / "run"
    if kind == "lm":
        data = tmp_path / "corpus.txt"
        data.write_text("".join(f"the cat {i} sat on the mat.\n" for i in range(30)))
        args = ["train", str(data), *LM]
    else:
        data = FILES[kind](tmp_path / "data.txt", n=60)
        args = ["train", "--task", kind, str(data), *SMALL, *EXTRA[kind]]
    assert main([*args, "--epochs", str(epochs), "--out", str(out)]) == 0
    return data, out


def change(data):
    """The file doubled and sorted (a CSV keeps its header first), as in the report."""
    lines = data.read_text().splitlines()
    head = lines[:1] if "," in lines[0] and not lines[0][0].isdigit() and lines[0][0] != "-" else []
    body = lines[len(head):]
    if "\t" in body[0] or "," in body[0]:
        body = sorted(body * 2)
    else:                                    # CoNLL or prose: order matters within a block
        body = body * 2
    data.write_text("\n".join(head + body) + "\n")


@pytest.mark.parametrize("kind", KINDS)
def test_resume_refuses_a_changed_data_file_unless_told(kind, tmp_path, capsys):
    data, out = new_run(kind, tmp_path)
    meta = io.load_arrays(out / "last.npz")[1]
    assert meta["data_digest"]["bytes"] == data.stat().st_size
    old_sha, resumed_at = meta["data_digest"]["sha256"], meta["training"]["iteration"]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    change(data)
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", str(out), "--epochs", "2", "--quiet"])
    code, err = failure(e, capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert str(data) in err and "changed" in err and "--data-changed-ok" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before      # nothing touched
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet", "--data-changed-ok"]) == 0
    meta = io.load_arrays(out / "last.npz")[1]
    assert meta["data_digest"]["bytes"] == data.stat().st_size
    assert meta["data_digest"]["sha256"] != old_sha
    assert meta["data_changed_ok"] == [dict(iteration=resumed_at, sha256=old_sha)]
    # the changed file is the run's data from now on: resuming again needs no flag
    assert main(["train", "--resume", str(out), "--epochs", "3", "--quiet"]) == 0


@pytest.mark.parametrize("kind", ["lm", "classify"])
def test_a_checkpoint_without_a_digest_still_resumes_and_then_records_one(kind, tmp_path):
    data, out = new_run(kind, tmp_path)
    for name in ("last.npz", "best.npz"):       # as written before digests existed
        arrays, meta = io.load_arrays(out / name)
        del meta["data_digest"], meta["format"], meta["format_version"]
        io.save_arrays(out / name, arrays, meta)
    change(data)
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert io.load_arrays(out / "last.npz")[1]["data_digest"]["bytes"] == data.stat().st_size


def test_the_same_data_resumes_without_a_word(tmp_path, capsys):
    data, out = new_run("classify", tmp_path)
    data.write_bytes(data.read_bytes())         # rewritten, same bytes
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert "changed" not in "".join(capsys.readouterr())


def test_a_run_trained_from_stdin_says_what_to_give_to_resume(tmp_path, capsys, monkeypatch):
    data = FILES["classify"](tmp_path / "data.tsv", n=60)
    monkeypatch.setattr(sys, "stdin", stdio.TextIOWrapper(stdio.BytesIO(data.read_bytes())))
    out = tmp_path / "run"
    assert main(["train", "--task", "classify", "-", *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    assert io.load_arrays(out / "last.npz")[1]["data_digest"] is None
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", str(out), "--epochs", "2", "--quiet"])
    code, err = failure(e, capsys)
    assert code == 2 and "stdin" in err and f"--resume {out} FILE" in err, err
    assert main(["train", "--resume", str(out), str(data), "--epochs", "2", "--quiet"]) == 0


def test_a_file_run_resumed_from_stdin_needs_the_flag(tmp_path, capsys, monkeypatch):
    data, out = new_run("classify", tmp_path)
    monkeypatch.setattr(sys, "stdin", stdio.TextIOWrapper(stdio.BytesIO(data.read_bytes())))
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", str(out), "-", "--epochs", "2", "--quiet"])
    code, err = failure(e, capsys)
    assert code == 1 and "cannot be checked" in err and "--data-changed-ok" in err, err


@pytest.mark.parametrize("kind", ["lm", "classify"])
def test_out_naming_a_file_is_refused_before_training(kind, tmp_path, capsys):
    data, _ = new_run(kind, tmp_path)
    (tmp_path / "taken").write_text("mine")
    capsys.readouterr()
    args = ["train", str(data), *LM] if kind == "lm" else ["train", "--task", kind, str(data), *SMALL]
    with pytest.raises(SystemExit) as e:
        main([*args, "--out", str(tmp_path / "taken")])
    code, err = failure(e, capsys)
    assert code == 2 and f"--out {tmp_path / 'taken'}: exists and is not a directory" in err
    assert (tmp_path / "taken").read_text() == "mine"
    assert "iter" not in capsys.readouterr().out


def test_data_changed_ok_only_with_resume(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path / "x.txt"), "--data-changed-ok", "--out", str(tmp_path / "o")])
    code, err = failure(e, capsys)
    assert code == 2 and "--data-changed-ok: only with --resume" in err
