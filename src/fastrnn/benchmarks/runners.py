"""The code each benchmark implementation runs: fastrnn, fastrnn.reference and PyTorch.

Every `*_runner` builds its inputs and model once and returns a zero-argument callable that does
one unit of work (a kernel call, a training iteration, a sampling step). Inputs are random with a
fixed seed: the timings do not depend on the values. Dimension letters: T time, B batch, I input
features, H hidden units, G gates, L layers, V vocabulary.
"""
import numpy as np

from .. import _kernels, optim, reference
from ..nn.layers import LSTM
from ..models import LanguageModel
from ..nn.recurrent import BLOCKS

try:
    import torch
except ImportError:          # the torch implementations are then simply not run
    torch = None

# block name -> (kernel cell, G), from the one registry of recurrent blocks
CELLS = {name: (kernel, _kernels.gates(kernel)) for name, (_, _, kernel) in BLOCKS.items()}
VOCAB = 65                   # tiny-shakespeare's character vocabulary (the text itself is not needed)
# the products' precision of fastrnn's float32 recurrent layers (and a language model's head) in this
# run (`fastrnn bench --precision bf16`: suite.run sets it; float64 workloads stay float64)
PRECISION = "float32"


def _precision(dtype):
    """The precision a fastrnn kernel call of `dtype` runs in this run."""
    return PRECISION if np.dtype(dtype) == np.float32 else "float32"


# ---- kernels: one layer, one direction ----------------------------------------------------------

def kernel_inputs(cell, T, B, I, H, dtype, seed=0):
    """Random inputs and PyTorch-layout weights of one layer (U(-1/sqrt(H), 1/sqrt(H)) as torch)."""
    rng = np.random.default_rng(seed)
    G, s = CELLS[cell][1], 1 / np.sqrt(H)
    f = lambda *shape: rng.uniform(-s, s, shape).astype(dtype)
    return dict(x=rng.standard_normal((T, B, I)).astype(dtype), W_ih=f(G * H, I), W_hh=f(G * H, H),
                b_ih=f(G * H), b_hh=f(G * H), h0=f(B, H), c0=f(B, H), dy=f(T, B, H))


def kernel_fastrnn(cell, a, train):
    """The C kernels with preallocated tape, work and outputs (what a layer call costs minus Python)."""
    kcell = CELLS[cell][0]
    (T, B, I), H, dtype = a["x"].shape, a["h0"].shape[1], a["x"].dtype
    weights = (a["W_ih"], a["W_hh"], a["b_ih"], a["b_hh"], a["h0"], a["c0"] if cell == "lstm" else None)
    tape = np.empty(_kernels.tape_size(kcell, T, B, I, H), dtype)
    work = np.empty(_kernels.work_size(kcell, T, B, I, H), dtype)
    y, dx = np.empty((T, B, H), dtype), np.empty_like(a["x"])
    grads = {k: np.zeros_like(a[k]) for k in ("W_ih", "W_hh", "b_ih", "b_hh")}

    p = _precision(dtype)
    # inference reads W_hh and W_ih^T packed once, as a layer's forward under no_grad does (its
    # packs are kept while the weights are unchanged: fastrnn._packs); training packs per call
    packed = _kernels.pack_forward(kcell, a["W_hh"], precision=p, W_ih=a["W_ih"]) if dtype == np.float32 else None

    def infer():
        _kernels.forward(kcell, a["x"], *weights, work=work, y=y, packed=packed, precision=p)

    def train_step():
        _kernels.forward(kcell, a["x"], *weights, tape=tape, y=y, precision=p)
        _kernels.backward(kcell, tape, a["x"], *weights, dy=a["dy"], grads=grads, dx=dx, precision=p)
    return train_step if train else infer


def kernel_reference(cell, a, train):
    """The same layer in plain NumPy (fastrnn.reference)."""
    fwd, bwd, kw = reference.CELLS[CELLS[cell][0]]
    state = (a["h0"], a["c0"]) if cell == "lstm" else (a["h0"],)

    def run():
        _, _, cache = fwd(a["x"], *state, a["W_ih"], a["W_hh"], a["b_ih"], a["b_hh"], **kw)
        if train:
            bwd(a["dy"], (None, None) if cell == "lstm" else None, cache)
    return run


#: block name -> the torch module class and options of the same layer (the cells torch has)
TORCH_CELLS = {"rnn": ("RNN", {}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}), "gru": ("GRU", {}),
               "lstm": ("LSTM", {})}


def kernel_torch(cell, a, train):
    """torch.nn.RNN/GRU/LSTM with the same weights and dtype."""
    (T, B, I), H = a["x"].shape, a["h0"].shape[1]
    name, options = TORCH_CELLS[cell]
    mod = getattr(torch.nn, name)(I, H, **options)
    mod = mod.to(torch.from_numpy(a["x"]).dtype)
    with torch.no_grad():
        for name, key in (("weight_ih_l0", "W_ih"), ("weight_hh_l0", "W_hh"),
                          ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh")):
            getattr(mod, name).copy_(torch.from_numpy(a[key]))
    h0 = torch.from_numpy(a["h0"])[None]
    state = (h0, torch.from_numpy(a["c0"])[None]) if cell == "lstm" else h0
    x, dy = torch.from_numpy(a["x"]), torch.from_numpy(a["dy"])
    return _torch_step(lambda xt: mod(xt, state)[0], x, dy, train)


def _torch_step(fn, x, dy, train):
    """fn(x) under inference_mode, or fn(x) then backward(dy) with x requiring a gradient."""
    def infer():
        with torch.inference_mode():
            fn(x)

    def train_step():
        fn(x.detach().requires_grad_(True)).backward(dy)
    return train_step if train else infer


def kernel(cell, T, B, I, H, dtype, train):
    """{impl: builder} of a kernel workload."""
    a = lambda: kernel_inputs(cell, T, B, I, H, dtype)
    out = {"fastrnn": lambda: kernel_fastrnn(cell, a(), train),
           "reference": lambda: kernel_reference(cell, a(), train),
           "torch": lambda: kernel_torch(cell, a(), train)}
    if cell not in TORCH_CELLS:             # no such layer in torch (e.g. the MGU)
        del out["torch"]
    return out


# ---- layers: the 2-layer bidirectional LSTM -----------------------------------------------------

def _bilstm_inputs(T, B, I, H, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((T, B, I), dtype=np.float32),
            rng.standard_normal((T, B, 2 * H), dtype=np.float32),
            LSTM(I, H, num_layers=2, bidirectional=True, seed=seed, precision=PRECISION))


def bilstm_fastrnn(T, B, I, H, train):
    x, dy, lstm = _bilstm_inputs(T, B, I, H)

    def run():
        lstm(x, train=train)
        if train:
            lstm.backward(dy)
    return run


def bilstm_reference(T, B, I, H, train):
    """The same stack in plain NumPy: fastrnn.reference per direction, reversal by slicing."""
    x, dy, lstm = _bilstm_inputs(T, B, I, H)
    w = dict(lstm.named_parameters())
    weights = [[tuple(w[f"{n}_l{k}{s}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                for s in ("", "_reverse")] for k in range(2)]

    def run():
        inp, caches = x, []
        for k in range(2):
            yf, _, cf = reference.lstm_forward(inp, None, None, *weights[k][0])
            yb, _, cb = reference.lstm_forward(inp[::-1], None, None, *weights[k][1])
            caches.append((cf, cb))
            inp = np.concatenate([yf, yb[::-1]], axis=2)
        if train:
            d = dy
            for cf, cb in reversed(caches):
                gf = reference.lstm_backward(np.ascontiguousarray(d[:, :, :H]), None, cf)
                gb = reference.lstm_backward(np.ascontiguousarray(d[::-1, :, H:]), None, cb)
                d = gf["x"] + gb["x"][::-1]
    return run


def bilstm_torch(T, B, I, H, train):
    x, dy, _ = _bilstm_inputs(T, B, I, H)
    mod = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    return _torch_step(lambda xt: mod(xt)[0], torch.from_numpy(x), torch.from_numpy(dy), train)


def bilstm(T, B, I, H, train):
    """{impl: builder} of the 2-layer bidirectional LSTM workload."""
    return {impl: (lambda f=f: f(T, B, I, H, train))
            for impl, f in (("fastrnn", bilstm_fastrnn), ("reference", bilstm_reference),
                            ("torch", bilstm_torch))}


# ---- language models: training iteration, sampling step, batch-1 forward ------------------------

def torch_lm(V, layers, hidden):
    """A torch.nn.Module equal in shape to LanguageModel(V, 'lstm', hidden, layers)."""
    class TorchLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(V, hidden, num_layers=layers)
            self.head = torch.nn.Linear(hidden, V)

        def forward(self, ids, state=None):                   # ids (T, B)
            y, state = self.rnn(torch.nn.functional.one_hot(ids, V).float(), state)
            return self.head(y), state
    return TorchLM()


def _ids(B, T, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, VOCAB, (B, T)), rng.integers(0, VOCAB, (B, T))


def lm_train(layers, hidden, B, T):
    """{impl: builder} of one training iteration (forward, backward, clip 5, Adam step)."""
    def fast():
        model = LanguageModel(VOCAB, hidden_size=hidden, num_layers=layers, seed=0)
        model.precision = PRECISION
        opt, (inputs, targets) = optim.Adam(model, lr=2e-3), _ids(B, T)

        def iteration():
            model.zero_grad()
            model.forward(inputs, targets)          # fresh state each time, as torch's below
            model.backward()
            optim.clip_grad_norm(model, 5.0)
            opt.step()
        return iteration

    def slow_torch():
        model = torch_lm(VOCAB, layers, hidden)
        opt, (inputs, targets) = torch.optim.Adam(model.parameters(), lr=2e-3), _ids(B, T)
        x, y = torch.from_numpy(inputs.T.copy()), torch.from_numpy(targets.T.reshape(-1).copy())

        def iteration():
            opt.zero_grad()
            logits, _ = model(x)
            torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        return iteration
    return {"fastrnn": fast, "torch": slow_torch}


def lm_train_fused(layers, hidden, B, T):
    """{impl: builder}: lm_train's iteration (forward, backward, clip 5, Adam) as one FusedStep
    call (the Trainer's path), in PRECISION, fresh state each call; torch's as lm_train's."""
    from ..train.fused import FusedStep

    def fast():
        model = LanguageModel(VOCAB, hidden_size=hidden, num_layers=layers, seed=0)
        model.precision = PRECISION
        step, (inputs, targets) = FusedStep(model, optim.Adam(model, lr=2e-3), clip=5.0), _ids(B, T)
        return lambda: step.step(inputs, targets)
    return {"fastrnn": fast, "torch": lm_train(layers, hidden, B, T)["torch"]}


def lm_infer(layers, hidden, T, precision=None):
    """{impl: builder} of a batch-1 forward over T tokens carrying the state (T=1: a sampling step);
    precision: the model's ("bf16": bf16 mixed precision; None: the run's PRECISION)."""
    ids = _ids(1, T)[0]

    def fast():
        model = LanguageModel(VOCAB, hidden_size=hidden, num_layers=layers, seed=0)
        model.precision = precision or PRECISION          # its layers and its head
        state = model.step(ids[:, 0])[1]
        if T == 1:
            return lambda: model.step(ids[:, 0], state)
        return lambda: model.forward(ids, ids, state, train=False)   # (+ a 100 x V softmax)

    def slow_torch():
        model, x = torch_lm(VOCAB, layers, hidden), torch.from_numpy(ids.T.copy())
        with torch.inference_mode():
            state = model(x[:1])[1]

        def run():
            with torch.inference_mode():
                model(x, state)
        return run
    return {"fastrnn": fast, "torch": slow_torch}


def lm_sample(layers, hidden, B, tokens=200, precision=None):
    """{impl: builder} of generating `tokens` tokens for each of B sequences from a char LSTM LM:
    fastrnn.generate (the native loop), and torch stepping nn.LSTM + Linear + softmax +
    torch.multinomial in a Python loop, as a torch user samples. precision: the model's."""
    from ..data import EOS, UNK, Vocab
    from ..sample import generate
    vocab = Vocab([UNK, EOS] + [chr(0x21 + i) for i in range(VOCAB - 2)])

    def fast():
        model = LanguageModel(VOCAB, hidden_size=hidden, num_layers=layers, seed=0)
        model.precision = precision or PRECISION          # its layers and its head
        model.head._views["bias"][vocab.eos_id] = -1e30   # no early <eos>: every run is full length
        model.invalidate()
        return lambda: generate(model, vocab, length=tokens, seed=0, num_samples=None if B == 1 else B)

    def slow_torch():
        model, gen = torch_lm(VOCAB, layers, hidden), torch.Generator().manual_seed(0)

        def run():
            with torch.inference_mode():
                x, state = torch.zeros((1, B), dtype=torch.long), None
                for _ in range(tokens):
                    logits, state = model(x, state)
                    p = torch.softmax(logits[0], dim=-1)
                    x = torch.multinomial(p, 1, generator=gen).T
        return run
    return {"fastrnn": fast, "torch": slow_torch}


# ---- memory: a forward+backward of a 2-layer LSTM -----------------------------------------------

def memory(T, B, I, H, layers):
    """{impl: builder} whose callable runs one forward+backward on a freshly built stack (so its
    tape and work buffers are allocated inside the measurement)."""
    def fast():
        x, dy = _bilstm_inputs(T, B, I, H)[0], np.ones((T, B, H), np.float32)

        def run():
            lstm = LSTM(I, H, num_layers=layers, seed=0)
            lstm(x)
            lstm.backward(dy)
        return run

    def ref():
        a = kernel_inputs("lstm", T, B, I, H, np.float32)

        def run():
            inp, caches = a["x"], []
            for k in range(layers):
                W = kernel_inputs("lstm", T, B, inp.shape[2], H, np.float32, seed=k)
                inp, _, cache = reference.lstm_forward(inp, None, None, W["W_ih"], W["W_hh"],
                                                       W["b_ih"], W["b_hh"])
                caches.append(cache)
            d = a["dy"]
            for cache in reversed(caches):
                d = reference.lstm_backward(d, None, cache)["x"]
        return run

    def slow_torch():
        x, dy = _bilstm_inputs(T, B, I, H)[0], torch.ones((T, B, H))

        def run():
            mod = torch.nn.LSTM(I, H, num_layers=layers)
            mod(torch.from_numpy(x).requires_grad_(True))[0].backward(dy)
        return run
    return {"fastrnn": fast, "reference": ref, "torch": slow_torch}


def tape_bytes(T, B, I, H, layers, dtype=np.float32):
    """(fastrnn's tape bytes, the bytes the maths needs) of a forward+backward of an LSTM stack.

    Backward needs, per step, sequence and layer: the four post-activation gates, the cell state
    and the hidden state (6H values); everything else can be recomputed from them.
    """
    size = np.dtype(dtype).itemsize
    ours = sum(_kernels.tape_size("lstm", T, B, I if k == 0 else H, H) for k in range(layers))
    return ours * size, layers * T * B * 6 * H * size
