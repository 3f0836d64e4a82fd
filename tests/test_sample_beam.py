"""Streamed sampling and beam search (issue 24, item 3): `fastrnn.sample.stream`,
`fastrnn.beam_search`, and `fastrnn sample --stream / --beam N`."""
import io
import itertools
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn.cli import main
from fastrnn.data import Vocab
from fastrnn.beam import MAX_BEAM, beam_search
from fastrnn.sample import generate, stream
from lm_helpers import memorise

TEXT = "the cat sat on the mat. a dog ate the hat. the cat ran to a tree. one bat can see.\n" * 3


@pytest.fixture(scope="module")
def lm():
    """A small char model, trained a little: its greedy text is not its most likely one."""
    model, vocab, _ = memorise(TEXT, 40, lr=1e-2, hidden_size=32, num_layers=1, seed=0)
    return model, vocab


@pytest.fixture(scope="module")
def word_lm():
    model, vocab, _ = memorise("the cat sat on the mat\n" * 15, 80, lr=3e-2, level="word",
                               hidden_size=24, num_layers=1, embed_size=8, seed=1)
    return model, vocab


def log_prob(model, vocab, prime, text):
    """Total log-probability of the char-level continuation text[len(prime):] after prime."""
    ids = list(vocab.encode(prime)) + list(vocab.encode(text[len(prime):]))
    total, state = 0.0, None
    for a, b in zip(ids[:-1], ids[1:]):
        logits, state = model.step(np.array([a]), state)
        z = logits[0].astype(np.float64) - logits[0].max()
        total += z[b] - np.log(np.exp(z).sum())
    return total


# ---- streaming ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(seed=3), dict(seed=4, temperature=0.7, top_k=5), dict(argmax=True),
                                dict(seed=5, stop="at"), dict(seed=1, length=0)])
def test_stream_is_generate_piece_by_piece(lm, kw):
    model, vocab = lm
    kw = dict(dict(prime="the ", length=60), **kw)
    pieces = list(stream(model, vocab, **kw))
    assert kw["prime"] + "".join(pieces) == generate(model, vocab, **kw)
    assert len(pieces) <= kw["length"] and all(len(p) == 1 for p in pieces)    # one per char token


@pytest.mark.parametrize("prime", ["", "the", "the cat ", "the cat\n"])
def test_stream_of_words_has_the_same_spaces_and_newlines(word_lm, prime):
    model, vocab = word_lm
    for seed in range(3):
        kw = dict(prime=prime, length=12, temperature=2.0, seed=seed)
        assert prime + "".join(stream(model, vocab, **kw)) == generate(model, vocab, **kw)


def test_stream_checks_its_arguments_at_the_call(lm):
    model, vocab = lm
    for bad in (dict(length=-1), dict(top_k=0), dict(temperature=0), dict(top_p=2)):
        with pytest.raises(ValueError, match=list(bad)[0]):
            stream(model, vocab, **bad)          # no next(): raised before the first token
    with pytest.raises(TypeError, match="prime"):
        stream(model, vocab, prime=b"x")


# ---- beam search --------------------------------------------------------------------------------
@pytest.mark.parametrize("prime", ["", "t", "a ", "the c", "one b"])
def test_beam_1_is_argmax(lm, prime):
    model, vocab = lm
    for stop in (None, "at", "."):
        want = generate(model, vocab, prime=prime, length=40, argmax=True, stop=stop)
        assert beam_search(model, vocab, prime=prime, length=40, beam=1, stop=stop) == want


def test_beam_1_is_argmax_for_words_ending_at_eos(word_lm):
    model, vocab = word_lm
    for prime in ("", "the cat", "on"):
        want = generate(model, vocab, prime=prime, length=50, argmax=True)
        assert beam_search(model, vocab, prime=prime, length=50, beam=1) == want
    assert beam_search(model, vocab, length=50, beam=1) == "the cat sat on the mat"    # ended at <eos>


def test_a_wider_beam_finds_text_at_least_as_likely_as_greedy(lm):
    model, vocab = lm
    better = 0
    for prime, beam in itertools.product(["t", "a ", "the c", "o", "the hat"], [2, 4, 8]):
        greedy = generate(model, vocab, prime=prime, length=30, argmax=True)
        found = beam_search(model, vocab, prime=prime, length=30, beam=beam)
        assert len(found) == len(greedy)                  # no <eos> or stop: the same length
        lp_beam, lp_greedy = log_prob(model, vocab, prime, found), log_prob(model, vocab, prime, greedy)
        assert lp_beam >= lp_greedy - 1e-9, (prime, beam, found, greedy)
        better += lp_beam > lp_greedy + 1e-6
    assert better >= 3                                     # and the search does find better text


class Bigram:
    """A stand-in language model whose next-token logits depend on the last token only."""

    def __init__(self, vocab, seed):
        self.config = {"vocab_size": len(vocab)}
        self.table = np.random.default_rng(seed).standard_normal((len(vocab), len(vocab))) * 2

    def step(self, ids, state=None):
        return self.table[ids], np.zeros((1, len(ids), 1))


def best_by_enumeration(model, vocab, start, length, alpha, stop):
    """The continuation with the best sum(log p) / n**alpha over every ended hypothesis."""
    logp = model.table - np.log(np.exp(model.table).sum(1, keepdims=True))
    best = (-np.inf, None)

    def expand(ids, last, total):
        nonlocal best
        for tok in range(len(vocab)):
            seq, score = ids + [tok], total + logp[last, tok]
            text = vocab.decode([i for i in seq if i != vocab.eos_id])
            if tok == vocab.eos_id or (stop and stop in text) or len(seq) == length:
                if score / len(seq) ** alpha > best[0]:
                    best = (score / len(seq) ** alpha, text)
            else:
                expand(seq, tok, score)
    expand([], start, 0.0)
    return best[1]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("stop", [None, "ab"])
def test_a_beam_wide_enough_to_keep_everything_finds_the_best_ending(seed, alpha, stop):
    vocab = Vocab(["<unk>", "<eos>", "a", "b"])          # no newline: an empty prime starts at <eos>
    model = Bigram(vocab, seed)
    model.table[:, 1] += seed % 2                        # odd seeds: <eos> likelier, endings of every length
    want = best_by_enumeration(model, vocab, vocab.eos_id, 4, alpha, stop)
    assert beam_search(model, vocab, length=4, beam=4**4, alpha=alpha, stop=stop) == want   # all kept


def test_length_normalisation_prefers_a_confident_ending():
    vocab = Vocab(["<unk>", "<eos>", "a", "b", "\n"])
    model = Bigram(vocab, 0)
    model.table[:] = 0.0
    model.table[4, 1] = 1.5           # after the start: <eos> is the single most likely token
    model.table[2:4, 2] = 3.0         # but "a" (or "b") leads to more "a"s, each near certain
    assert beam_search(model, vocab, length=6, beam=4, alpha=1.0) == "aaaaaa"
    assert beam_search(model, vocab, length=6, beam=4, alpha=0.0) == ""     # total log p: stop at once


def test_bad_beam_arguments_name_the_argument(lm):
    model, vocab = lm
    for bad in (0, -1, MAX_BEAM + 1, 10**9):
        with pytest.raises(ValueError, match="beam"):
            beam_search(model, vocab, beam=bad)
    for bad in (1.5, True, "3", None, np.float64(2)):
        with pytest.raises(TypeError, match="beam"):
            beam_search(model, vocab, beam=bad)
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha"):
            beam_search(model, vocab, alpha=bad)
    with pytest.raises(TypeError, match="alpha"):
        beam_search(model, vocab, alpha="1")
    with pytest.raises(ValueError, match="length"):
        beam_search(model, vocab, length=-2)
    assert beam_search(model, vocab, prime="the", length=0, beam=3) == "the"
    assert beam_search(model, vocab, beam=np.int64(2), length=5) == fastrnn.beam_search(
        model, vocab, beam=2, length=5)


def test_nan_model_raises_instead_of_searching(lm):
    model, vocab = lm
    broken = fastrnn.LanguageModel(len(vocab), hidden_size=8, num_layers=1, seed=0)
    broken.params[:] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        beam_search(broken, vocab, length=5, beam=3)


# ---- the command line ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(lm, tmp_path_factory):
    path = tmp_path_factory.mktemp("beam") / "lm.npz"
    fastrnn.save(path, lm[0], lm[1])
    return str(path)


class Recorder(io.StringIO):
    """stdout that remembers how much text had been written at each flush."""

    def __init__(self):
        super().__init__()
        self.flushed = []

    def flush(self):
        self.flushed.append(len(self.getvalue()))


def run(monkeypatch, *args):
    out = Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["sample", *map(str, args)]) == 0
    return out


def test_cli_stream_prints_as_it_goes_the_same_text(checkpoint, monkeypatch):
    common = ("--prime", "the ", "--length", 80, "--seed", 7, "--temperature", 0.8)
    plain = run(monkeypatch, checkpoint, *common).getvalue()
    out = run(monkeypatch, checkpoint, *common, "--stream")
    assert out.getvalue() == plain
    lengths = sorted(set(out.flushed))
    assert len(lengths) >= 80 and lengths[0] == len("the ")    # the prime, then every token


def test_cli_stream_into_a_closed_pipe_stops_quietly(checkpoint):
    """`fastrnn sample --stream ... | head -c 20`: the reader leaves, fastrnn stops, no traceback."""
    p = subprocess.Popen([sys.executable, "-m", "fastrnn", "sample", checkpoint, "--stream",
                          "--length", "1000000", "--seed", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert len(p.stdout.read(20)) == 20
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 1 and err == ""


def test_cli_beam(checkpoint, monkeypatch, lm):
    argmax = run(monkeypatch, checkpoint, "--prime", "a ", "--length", 30, "--argmax").getvalue()
    assert run(monkeypatch, checkpoint, "--prime", "a ", "--length", 30, "--beam", 1).getvalue() == argmax
    beam = run(monkeypatch, checkpoint, "--prime", "a ", "--length", 30, "--beam", 4).getvalue()
    assert beam == beam_search(*lm, prime="a ", length=30, beam=4) + "\n"


@pytest.mark.parametrize("args, message", [
    (["--beam", "0"], "--beam: expected an integer >= 1, got 0"),
    (["--beam", str(MAX_BEAM + 1)], f"--beam: expected an integer in [1, {MAX_BEAM}], got {MAX_BEAM + 1}"),
    (["--beam", "3", "--stream"], "--beam: cannot be combined with --stream"),
    (["--beam", "3", "--top-k", "2", "--argmax"], "--beam: cannot be combined with --argmax, --top-k"),
    (["--beam", "3", "--temperature", "0.5"], "--beam: cannot be combined with --temperature"),
])
def test_cli_beam_usage_errors_are_one_line(checkpoint, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["sample", checkpoint, *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err
