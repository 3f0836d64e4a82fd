"""`fastrnn sample` without --stream runs the native generation loop in one call per 1024 tokens
(issue 21, item 3: prime, steps, head, temperature/top-k/top-p, the draw and the --stop test
without returning to Python per token) -- it went through `stream`, one native call per token --
and prints the text it printed before: `stream`'s pieces joined, which is `generate`'s text."""
import io
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn.cli import main
from fastrnn.sample import generate, stream
from lm_helpers import count_native_calls, memorise

TEXT = "the cat sat on the mat. a dog ate the hat. the cat ran to a tree.\n" * 3


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    model, vocab, _ = memorise(TEXT, 120, lr=2e-2, hidden_size=24, num_layers=2, seed=0)
    model.head._views["bias"][vocab.eos_id] = -1e30     # no <eos>: texts run to --length or --stop
    model.invalidate()
    path = tmp_path_factory.mktemp("sample") / "lm.npz"
    fastrnn.save(path, model, vocab)
    return model, vocab, str(path)


CASES = [dict(argmax=True), dict(seed=3), dict(seed=4, temperature=0.7, top_k=5),
         dict(seed=5, top_p=0.9, temperature=1.3), dict(seed=6, stop="at"), dict(argmax=True, stop="a tree")]


def _flags(kw):
    flags = []
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        flags += [flag] if value is True else [flag, str(value)]
    return flags


@pytest.mark.parametrize("kw", CASES)
def test_cli_sample_is_one_native_call_and_the_streamed_text(lm, kw, monkeypatch):
    model, vocab, path = lm
    length = 1500                                        # two chunks of the native loop
    want = generate(model, vocab, prime="the ", length=length, **kw)
    assert "the " + "".join(stream(model, vocab, prime="the ", length=length, **kw)) == want
    calls = count_native_calls(monkeypatch)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["sample", path, "--prime", "the ", "--length", str(length), *_flags(kw)]) == 0
    assert out.getvalue() == want + "\n"
    assert 1 <= len(calls) <= 2 and sum(calls) <= length, calls       # not one call per token
    if "stop" in kw:
        assert want.endswith(kw["stop"]) and len(want) < len("the ") + length
    else:
        assert len(want) == len("the ") + length


def test_cli_stream_still_yields_token_by_token(lm, monkeypatch):
    """--stream keeps its one call per token (it prints each token as it is drawn)."""
    _, _, path = lm
    calls = count_native_calls(monkeypatch)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert main(["sample", path, "--length", "40", "--seed", "1", "--stream"]) == 0
    assert calls == [1] * 40


def test_same_seed_same_cli_text_on_every_thread_count(lm, monkeypatch):
    _, _, path = lm
    texts = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        try:
            out = io.StringIO()
            monkeypatch.setattr(sys, "stdout", out)
            assert main(["sample", path, "--length", "300", "--seed", "9", "--top-k", "6"]) == 0
            texts.append(out.getvalue())
        finally:
            fastrnn.set_num_threads(0)
    assert texts == [texts[0]] * 3 and len(texts[0]) == 301
    assert np.unique(list(texts[0])).size > 3
