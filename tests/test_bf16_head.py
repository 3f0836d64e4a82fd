"""bf16 mixed precision of a model's output head (issue 22: "every product of the hot path ...
the LM head"): `_kernels.gemm(precision='bf16')` is frnn_team_gemm_bf16's product (bit for bit a
NumPy emulation of its definition; within the float32-accumulation bound of a float64 reference
reading bf16-rounded operands); a `Linear` in bf16 runs its three products that way; a model's
precision switches its head with its recurrent layers; the fused training step (language model,
tagger, classifier) equals the Python steps in bf16 and is the same at 1, 2 and 3 threads; native
generation and the native step give the Python loop's bits."""
import numpy as np
import pytest

import fastrnn
from fastrnn import _kernels, optim
from fastrnn.data import Vocab
from fastrnn.models import LanguageModel, SequenceClassifier, SequenceTagger
from fastrnn.nn import Linear
from fastrnn.sample import generate, generate_stepwise
from fastrnn.train.fused import FusedStep
from test_bf16 import _gamma, bf16
from test_fused_step import assert_same_runs

KC = 256    # csrc/engine.h's FRNN_KC: C takes each block of k's dot product in one float32 addition


def emulated_gemm(a, b, c=None):
    """C (+)= a @ b as frnn_team_gemm_bf16 defines it (bf16.h): each element's dot product over
    a block of KC of k in VDPBF16PS order -- pairs (k, k+1), the odd one first, each a float32
    fused multiply-add (exact products of bf16 values, one rounding of the sum) -- then added to
    C in float32. a (M, K), b (K, N) float32."""
    A, B = bf16(a), bf16(b)
    M, K = A.shape
    out = None if c is None else c.astype(np.float32)
    for k0 in range(0, K, KC):
        acc = np.zeros((M, B.shape[1]), np.float32)
        for k in range(k0, min(K, k0 + KC), 2):
            if k + 1 < min(K, k0 + KC):
                acc = (acc + np.outer(A[:, k + 1], B[k + 1])).astype(np.float32)
            acc = (acc + np.outer(A[:, k], B[k])).astype(np.float32)
        out = acc if out is None else (out.astype(np.float64) + acc).astype(np.float32)
    return out


@pytest.mark.parametrize("M, N, K", [(5, 7, 3), (9, 33, 64), (40, 17, 300), (3, 50, 513)])
@pytest.mark.parametrize("ta, tb", [(False, True), (True, False), (False, False)])
def test_gemm_bf16_is_the_team_product_bit_for_bit(M, N, K, ta, tb):
    rng = np.random.default_rng(M * N + K)
    a = rng.uniform(-1, 1, (K, M) if ta else (M, K)).astype(np.float32)
    b = rng.uniform(-1, 1, (N, K) if tb else (K, N)).astype(np.float32)
    c = rng.uniform(-1, 1, (M, N)).astype(np.float32)
    A, B = (a.T if ta else a), (b.T if tb else b)
    got = _kernels.gemm(a, b, trans_b=tb, trans_a=ta, precision="bf16")
    np.testing.assert_array_equal(got, emulated_gemm(A, B))
    out = c.copy()
    _kernels.gemm(a, b, trans_b=tb, trans_a=ta, out=out, accumulate=True, precision="bf16")
    np.testing.assert_array_equal(out, emulated_gemm(A, B, c))


def test_gemm_bf16_is_within_the_float32_accumulation_bound_of_a_float64_reference():
    """Against float64 products of the bf16-rounded operands: only float32 accumulation differs
    (gamma_(K + blocks) sum |a||b|), and the bound is tight enough to tell bf16 from float32."""
    rng = np.random.default_rng(0)
    M, N, K = 23, 41, 600
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((N, K)).astype(np.float32)
    got = _kernels.gemm(a, b, trans_b=True, precision="bf16")
    want = bf16(a) @ bf16(b).T
    tol = _gamma(K + K // KC + 1) * (np.abs(bf16(a)) @ np.abs(bf16(b)).T)
    assert (np.abs(got - want) <= tol).all()
    effect = np.abs(a.astype(np.float64) @ b.T.astype(np.float64) - want)
    assert effect.max() > 10 * tol.max()


def test_gemm_bf16_bits_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((64, 300)).astype(np.float32), rng.standard_normal((200, 300)).astype(np.float32)
    runs = []
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            runs.append((_kernels.gemm(a, b, trans_b=True, precision="bf16"),
                         _kernels.gemm(a, b[:64].copy(), trans_a=True, precision="bf16")))
    finally:
        fastrnn.set_num_threads(None)
    for r in runs[1:]:
        np.testing.assert_array_equal(r[0], runs[0][0])
        np.testing.assert_array_equal(r[1], runs[0][1])


def test_gemm_bf16_refuses_float64():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="bf16"):
        _kernels.gemm(x, x.T.copy(), precision="bf16")
    with pytest.raises(ValueError, match="precision"):
        _kernels.gemm(x.astype(np.float32), x.T.astype(np.float32), precision="fp16")


def test_a_bf16_linear_runs_its_three_products_in_bf16():
    rng = np.random.default_rng(2)
    lin = Linear(37, 11, seed=0)
    lin.precision = "bf16"
    x = rng.standard_normal((3, 5, 37)).astype(np.float32)
    dy = rng.standard_normal((3, 5, 11)).astype(np.float32)
    W, x2, dy2 = lin._views["weight"], x.reshape(-1, 37), dy.reshape(-1, 11)
    y = lin(x)
    np.testing.assert_array_equal(y.reshape(-1, 11), emulated_gemm(x2, W.T) + lin._views["bias"])
    lin.zero_grad()
    dx = lin.backward(dy)
    np.testing.assert_array_equal(dx.reshape(-1, 37), emulated_gemm(dy2, W))
    np.testing.assert_array_equal(lin._grad_views["weight"], emulated_gemm(dy2.T, x2, np.zeros((11, 37))))
    lin.precision = "float32"                   # and back: float32's bits
    np.testing.assert_array_equal(lin(x), _kernels.gemm(x2, W, trans_b=True).reshape(3, 5, 11) + lin._views["bias"])
    with pytest.raises(ValueError, match="float32"):
        Linear(3, 2, dtype="float64").precision = "bf16"


def test_a_models_precision_switches_its_head_with_its_layers():
    lm = LanguageModel(20, hidden_size=8, seed=0)
    lm.precision = "bf16"
    assert lm.head.precision == "bf16" and lm.rnn.precision == "bf16" and lm.precision == "bf16"
    lm.head.precision = "float32"                # a head set apart: the model says so
    assert lm.precision == "mixed"
    lm.precision = "float32"
    assert lm.head.precision == "float32" and lm.precision == "float32"
    m64 = LanguageModel(20, hidden_size=8, seed=0, dtype="float64")
    with pytest.raises(ValueError, match="float32"):
        m64.precision = "bf16"
    assert m64.head.precision == "float32" and m64.rnn.precision == "float32"


# ---- the fused training step -------------------------------------------------------------------

def _same_step(a, b, step_a, step_b):
    """a by forward + backward, b by the fused step: the same loss and gradients up to the
    float32 rounding the float32 fused tests accept (the softmax's exp differs by rounding)."""
    a.zero_grad()
    loss_a = step_a()
    loss_b = step_b()
    assert abs(loss_a - loss_b) <= 1e-6 * loss_a
    scale = np.abs(a.grads).max()
    np.testing.assert_allclose(b.grads, a.grads, rtol=1e-5, atol=1e-6 * scale)


def _lm(embed):
    m = LanguageModel(13, cell="lstm", hidden_size=40, num_layers=1, embed_size=embed, seed=5)
    m.precision = "bf16"
    return m


@pytest.mark.parametrize("embed", [None, 4])
def test_a_bf16_lm_fused_step_equals_the_python_steps_with_a_bf16_head(embed):
    rng = np.random.default_rng(0)
    a, b = _lm(embed), _lm(embed)
    for _ in range(2):
        inputs, targets = rng.integers(0, 13, (3, 6)), rng.integers(0, 13, (3, 6))

        def unfused():
            loss = a.forward(inputs, targets, None, train=True)[0]
            a.backward()
            return loss
        _same_step(a, b, unfused, lambda: FusedStep(b).step(inputs, targets, None)[0])
    # the head really ran in bf16 in both: its float32 twin's gradient differs by the bf16 effect
    c = _lm(embed)
    c.head.precision = "float32"
    c.zero_grad()
    c.forward(inputs, targets, None, train=True)
    c.backward()
    dW = c.head._grad_views["weight"]
    assert not np.allclose(b.head._grad_views["weight"], dW, rtol=1e-4, atol=1e-4 * np.abs(dW).max())


def _seq(kind):
    kw = dict(hidden_size=9, cell="gru", num_layers=1, bidirectional=True, vocab_size=11, embed_size=5, seed=3)
    m = SequenceTagger(4, **kw) if kind == "tagger" else SequenceClassifier(4, pooling=kind, **kw)
    m.precision = "bf16"
    assert m.head.precision == "bf16"
    return m


@pytest.mark.parametrize("kind", ["tagger", "last", "mean"])
def test_a_bf16_tagger_or_classifier_fused_step_equals_the_python_steps(kind):
    rng = np.random.default_rng(1)
    a, b = _seq(kind), _seq(kind)
    for _ in range(2):
        B, T = 4, 6
        lengths = rng.integers(1, T + 1, B)
        x = rng.integers(0, 11, (B, T))
        if kind == "tagger":
            y = rng.integers(0, 4, (B, T))
            y[np.arange(T)[None, :] >= lengths[:, None]] = -100
        else:
            y = rng.integers(0, 4, B)
        batch = (x, y, lengths)

        def unfused():
            loss = a.forward(batch, train=True)
            a.backward()
            return loss
        _same_step(a, b, unfused, lambda: FusedStep(b).step_batch(batch))


@pytest.mark.parametrize("kind", ["lm", "classifier"])
def test_a_bf16_fused_step_is_bit_identical_across_thread_counts(kind):
    runs = []
    rng = np.random.default_rng(2)
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            rng = np.random.default_rng(2)
            # big enough that the head's products are shared (frnn_matmul_bf16 uses the team)
            if kind == "lm":
                m = LanguageModel(60, cell="gru", hidden_size=96, num_layers=1, embed_size=8, seed=1)
            else:
                m = SequenceClassifier(40, hidden_size=96, cell="gru", vocab_size=30, embed_size=8, seed=1)
            m.precision = "bf16"
            step = FusedStep(m, optim.Adam(m, lr=0.01), clip=1.0)
            for _ in range(2):
                if kind == "lm":
                    loss = step.step(rng.integers(0, 60, (16, 20)), rng.integers(0, 60, (16, 20)))[0]
                else:
                    loss = step.step_batch((rng.integers(0, 30, (48, 10)), rng.integers(0, 40, 48),
                                            rng.integers(1, 11, 48)))
            runs.append((loss, m.params.copy(), m.grads.copy()))
    finally:
        fastrnn.set_num_threads(None)
    assert_same_runs(runs)


# ---- generation --------------------------------------------------------------------------------

def _gen_model():
    vocab = Vocab.build("abcabd abd\n" * 3)
    model = LanguageModel(len(vocab), hidden_size=40, num_layers=2, seed=1)
    model.params[:] = np.random.default_rng(1).uniform(-0.7, 0.7, model.params.size)
    model.invalidate()
    model.precision = "bf16"
    return model, vocab


def test_the_native_step_gives_the_python_layer_path_bits_with_a_bf16_head():
    model, _ = _gen_model()
    ids = np.array([1, 3, 0])
    native, state_n = model.step(ids)                   # NativeStep: one call, head in C
    assert model.__dict__["_native_step"].gen is not None
    y, state_p = model.rnn.step(model._input(ids, train=False)[0], None, input="ids")
    python = model.head.forward(y, train=False)         # the layer path's head: Linear in bf16
    np.testing.assert_array_equal(native, python)
    model.head.precision = "float32"                    # the native step follows the head
    native32 = model.step(ids)[0]
    assert not np.array_equal(native32, native)
    np.testing.assert_array_equal(native32, model.head.forward(y, train=False))


def test_native_generation_equals_the_stepwise_loop_with_a_bf16_head():
    model, vocab = _gen_model()
    got = generate(model, vocab, prime="ab", length=60, argmax=True)
    assert got == generate_stepwise(model, vocab, prime="ab", length=60, argmax=True)
    # the generator itself (3 rows) against the Python layer path (rnn.step + the Linear head)
    gen = model.generator(3, 8, argmax=True)
    gen.start([1, 2, 3])
    gen.sample(8)
    state, tok = None, np.array([1, 2, 3])
    for s in range(8):
        y, state = model.rnn.step(tok, state, input="ids")
        logits = model.head.forward(y, train=False)
        tok = logits.argmax(1)
        np.testing.assert_array_equal(gen.out[s], tok)
    np.testing.assert_array_equal(gen.logits, logits)       # the last round's, bit for bit


@pytest.mark.parametrize("B, H, V", [(1, 40, 9), (10, 300, 50)])
def test_the_generators_prepacked_head_gives_the_python_heads_bits(B, H, V):
    """The generator packs W_head once (bf16 panels for the ISA of the moment); its logits are
    the Linear's, at 1-3 threads and -- after an ISA switch made that pack stale -- via the
    per-step product."""
    model = LanguageModel(V, cell="gru", hidden_size=H, num_layers=1, seed=2)
    model.params[:] = np.random.default_rng(3).uniform(-0.3, 0.3, model.params.size)
    model.invalidate()
    model.precision = "bf16"
    ids = np.arange(B) % V
    y, _ = model.rnn.step(ids, None, input="ids")
    want = model.head.forward(y, train=False)
    isa = _kernels.engine_info()["isa"]
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            gen = model.generator(B, 1, argmax=True)
            np.testing.assert_array_equal(gen.step_state(ids)[0], want)     # from a zero state
        for other in [i for i in _kernels.supported_isas() if i != isa]:   # the pack: another width
            _kernels.set_isa(other)
            np.testing.assert_array_equal(gen.step_state(ids)[0], want)
    finally:
        fastrnn.set_num_threads(None)
        _kernels.set_isa(isa)


def test_a_bf16_linears_inference_pack_is_never_stale():
    """A no-tape forward reads W packed once; it gives the training forward's bits (packed per
    call), and an in-place edit through a public view, an optimiser step or an ISA switch is seen."""
    rng = np.random.default_rng(4)
    lm = LanguageModel(30, hidden_size=20, num_layers=1, seed=0)
    lm.precision = "bf16"
    head, x = lm.head, rng.standard_normal((2, 20)).astype(np.float32)
    isa = _kernels.engine_info()["isa"]
    try:
        for rows in (x[:1], x):
            with fastrnn.no_grad():
                got = head(rows)
            np.testing.assert_array_equal(got, head(rows, train=True))
        dict(lm.named_parameters())["head.weight"][3] *= -2      # a public view, in place
        with fastrnn.no_grad():
            got = head(x)
        np.testing.assert_array_equal(got, head(x, train=True))
        for other in [i for i in _kernels.supported_isas() if i != isa]:
            _kernels.set_isa(other)
            with fastrnn.no_grad():
                np.testing.assert_array_equal(head(x), got)
    finally:
        _kernels.set_isa(isa)
    with pytest.raises(ValueError, match="packed"):
        _kernels.gemm(x, x, trans_b=True, packed=_kernels.head_pack_bf16(x))
