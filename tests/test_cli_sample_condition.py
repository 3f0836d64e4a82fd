"""`fastrnn sample --condition LABEL`: a ConditionedGenerator checkpoint takes every sampling flag of
`fastrnn sample` as a language model does (the same native loop, `fastrnn.generate` /
`fastrnn.sample.stream` with condition=, started from the condition's state): --stream prints
the same text as without it, --prime, --stop, --length 0, --seed, --argmax, --top-k, --top-p,
--temperature and --precision take effect, and bad values are errors naming the flag."""
import io
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn.cli import main
from fastrnn.sample import generate, stream
from lm_helpers import count_native_calls

LABELS = ["x", "y"]


def _model(vocab, **kw):
    model = fastrnn.ConditionedGenerator(len(vocab), hidden_size=16, seed=0, **kw)
    model.params[:] = np.random.default_rng(0).uniform(-2, 2, model.params.size)
    model.lm.head._views["bias"][vocab.eos_id] = -1e30     # no <eos>: texts run to --length or --stop
    model.invalidate()
    return model


@pytest.fixture(scope="module")
def cond(tmp_path_factory):
    vocab = fastrnn.Vocab.build("abcdefgh")
    model = _model(vocab, num_classes=2)
    path = tmp_path_factory.mktemp("cond") / "cond.npz"
    fastrnn.save(path, model, vocab, labels=LABELS)
    return model, vocab, str(path)


def _run(monkeypatch, *argv):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["sample", *map(str, argv)]) in (0, None)
    return out.getvalue()


def _greedy(model, vocab, cid, prime, n):
    """The greedy text from the condition's state, fed <bos> then the prime: a plain `step` loop."""
    state = model.condition.forward(np.array([cid]), train=False)
    ids = [model.config["bos_id"]] + list(vocab.encode(prime))
    for token in ids[:-1]:
        _, state = model.lm.step(np.array([token]), state)
    out, token = [], ids[-1]
    for _ in range(n):
        logits, state = model.lm.step(np.array([token]), state)
        token = int(logits[0].argmax())
        out.append(token)
    return prime + vocab.decode(out)


FLAGS = [[], ["--top-k", "3"], ["--top-p", "0.8", "--temperature", "1.3"], ["--temperature", "0.6"],
         ["--argmax"], ["--prime", "bad"], ["--prime", "ch", "--top-k", "4", "--stop", "ga"]]


@pytest.mark.parametrize("flags", FLAGS)
def test_streamed_text_is_the_unstreamed_text(cond, flags, monkeypatch):
    _, _, path = cond
    calls = count_native_calls(monkeypatch)
    argv = [path, "--condition", "y", "--length", 60, "--seed", 7, *flags]
    plain = _run(monkeypatch, *argv)
    assert calls == [60]
    calls.clear()
    assert _run(monkeypatch, *argv, "--stream") == plain
    assert calls == [1] * len(calls) and 0 < len(calls) <= 60
    kw = dict(zip(flags[::2], flags[1::2])) if len(flags) % 2 == 0 else {}
    prime, stop = kw.get("--prime", ""), kw.get("--stop")
    assert plain.startswith(prime)
    if stop is None or not plain.endswith(stop + "\n"):      # (no <eos>: the whole --length)
        assert len(plain) == len(prime) + 60 + 1


def test_prime_starts_from_the_conditions_state_then_the_prime(cond, monkeypatch):
    model, vocab, path = cond
    for cid, label in enumerate(LABELS):
        for prime in ("", "h", "fade"):
            want = _greedy(model, vocab, cid, prime, 25)
            for stream_flag in ([], ["--stream"]):
                got = _run(monkeypatch, path, "--condition", label, "--argmax", "--prime", prime,
                           "--length", 25, *stream_flag)
                assert got == want + "\n"
    assert _greedy(model, vocab, 0, "", 25) != _greedy(model, vocab, 1, "", 25)   # the condition counts


def test_stop_length_and_seed_take_effect(cond, monkeypatch):
    _, _, path = cond
    full = _run(monkeypatch, path, "--condition", "x", "--length", 80, "--seed", 3)[:-1]
    assert len(full) == 80
    stop = full[30:32]
    cut = full[:full.index(stop) + len(stop)]
    for stream_flag in ([], ["--stream"]):
        argv = [path, "--condition", "x", "--length", 80, "--seed", 3, "--stop", stop, *stream_flag]
        assert _run(monkeypatch, *argv) == cut + "\n"
        assert _run(monkeypatch, path, "--condition", "x", "--length", 0, *stream_flag) == "\n"
        assert _run(monkeypatch, path, "--condition", "x", "--length", 0, "--prime", "ab",
                    *stream_flag) == "ab\n"
    assert _run(monkeypatch, path, "--condition", "x", "--length", 80, "--seed", 4)[:-1] != full


def test_filters_that_leave_one_token_are_greedy(cond, monkeypatch):
    _, _, path = cond
    greedy = _run(monkeypatch, path, "--condition", "y", "--length", 40, "--argmax")
    for flags in (["--top-k", "1"], ["--top-p", "1e-9"], ["--temperature", "1e-6"]):
        assert _run(monkeypatch, path, "--condition", "y", "--length", 40, "--seed", 1, *flags) == greedy
    assert _run(monkeypatch, path, "--condition", "y", "--length", 40, "--seed", 1) != greedy


def test_precision_takes_effect(cond, monkeypatch):
    model, vocab, path = cond
    argv = [path, "--condition", "y", "--length", 200, "--seed", 5]
    f32 = _run(monkeypatch, *argv)
    bf16 = _run(monkeypatch, *argv, "--precision", "bf16")
    copy = fastrnn.load(path)[0]
    copy.precision = "bf16"
    assert bf16 == generate(copy, vocab, length=200, seed=5, condition=1) + "\n" != f32


def test_a_vector_condition_streams_its_text(tmp_path, monkeypatch):
    vocab = fastrnn.Vocab.build("abcdefgh")
    model = _model(vocab, condition_size=3, cell="gru", num_layers=2)
    path = tmp_path / "vec.npz"
    fastrnn.save(path, model, vocab)
    argv = [path, "--condition", "0.5,-1,2", "--length", 30, "--seed", 2, "--prime", "ab"]
    want = generate(model, vocab, prime="ab", length=30, seed=2, condition=[0.5, -1, 2])
    assert _run(monkeypatch, *argv) == _run(monkeypatch, *argv, "--stream") == want + "\n"
    with pytest.raises(SystemExit) as e:
        main(["sample", str(path), "--condition", "1,2"])
    assert e.value.code == 2


@pytest.mark.parametrize("flags, says", [
    (["--top-k", "0"], "--top-k"), (["--top-p", "1.5"], "--top-p"), (["--top-p", "0"], "--top-p"),
    (["--temperature", "0"], "--temperature"), (["--length", "-1"], "--length"),
    (["--seed", "-2"], "--seed"), (["--precision", "fp8"], "--precision"),
    (["--beam", "2"], "--beam: cannot be combined with --condition"),
    (["--condition", "z"], "--condition: expected one of x, y or a class id in [0, 2), got 'z'"),
    (["--condition", "2"], "--condition: expected one of x, y or a class id"),
])
def test_bad_values_name_their_flag(cond, flags, says, capsys):
    _, _, path = cond
    flags = flags if flags[0] == "--condition" else ["--condition", "x", *flags]
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["sample", path, *flags])
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_bf16_on_a_float64_model_and_a_vector_of_the_wrong_size_say_why(tmp_path, capsys):
    vocab = fastrnn.Vocab.build("abcdefgh")
    fastrnn.save(tmp_path / "f64.npz", _model(vocab, num_classes=2, dtype="float64"), vocab)
    fastrnn.save(tmp_path / "vec.npz", _model(vocab, condition_size=3), vocab)
    for argv, says in [(["f64.npz", "--condition", "1", "--precision", "bf16"], "--precision bf16:"),
                       (["vec.npz", "--condition", "1,2"], "--condition: expected 3 comma-separated")]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(["sample", str(tmp_path / argv[0]), *argv[1:]])
        assert e.value.code == 2 and says in capsys.readouterr().err


def test_stream_and_generate_refuse_a_missing_or_unwanted_condition(cond):
    model, vocab, _ = cond
    with pytest.raises(ValueError, match="condition: required by a ConditionedGenerator"):
        generate(model, vocab, length=3)
    with pytest.raises(ValueError, match="condition: required"):
        stream(model, vocab, length=3)
    with pytest.raises(TypeError, match="condition: not taken by a LanguageModel"):
        stream(model.lm, vocab, length=3, condition=1)
    with pytest.raises(ValueError, match="condition: expected one class id"):
        generate(model, vocab, length=3, condition=[0, 1])


def test_num_samples_all_start_from_the_condition_and_bad_inputs_name_themselves(cond):
    """generate(condition=, num_samples=n): every sequence starts from the one condition's state
    (argmax: n copies of the single text); a vector of the wrong length is reported as given; beam
    search refuses a ConditionedGenerator by name."""
    from fastrnn.beam import beam_search
    model, vocab, _ = cond
    one = generate(model, vocab, prime="ab", length=20, argmax=True, condition=1)
    assert generate(model, vocab, prime="ab", length=20, argmax=True, condition=1, num_samples=3) == [one] * 3
    assert one == _greedy(model, vocab, 1, "ab", 20)
    vec = _model(vocab, condition_size=3)
    with pytest.raises(ValueError, match=r"condition: expected one vector of 3 numbers, got shape \(2,\)"):
        generate(vec, vocab, length=3, condition=[1.0, 2.0])
    with pytest.raises(TypeError, match="model: beam search takes a language model, not a ConditionedGenerator"):
        beam_search(model, vocab, length=3)
