"""Issue 23's int8 rows of bench/targets.py: fastrnn's int8 inference against fastrnn's own
float32 and torch's `quantize_dynamic` of the same model (same weights, same threads), interleaved
round by round. Printed as a second table by targets.py; run alone with

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/int8_rows.py [--budget 3]

Columns: int8, float32 and torch quantize_dynamic medians, and the ratios the targets name; a
target is "met" or "MISSED" as measured, and "-" where torch is absent.
"""
import os
import re
import sys

import numpy as np

import fastrnn
from fastrnn import _kernels
from fastrnn.benchmarks import runners, timing

# rows of h in the int8 rows (fastrnn.quantize's activations=): auto (static where the cell bounds
# h) by default; FASTRNN_BENCH_INT8_ACTIVATIONS=dynamic times the per-row scales on the same build
ACTIVATIONS = os.environ.get("FASTRNN_BENCH_INT8_ACTIVATIONS", "auto")

torch = runners.torch


def _torch_dynamic(module):
    """torch's dynamic int8 quantization of `module` (nn.LSTM/GRU and nn.Linear parts)."""
    return torch.ao.quantization.quantize_dynamic(module, {torch.nn.LSTM, torch.nn.GRU, torch.nn.Linear},
                                                   dtype=torch.qint8)


def layer(cell, T, B, I, H):
    """{impl: builder} of one layer's inference over (T, B, I): int8, float32, torch dynamic."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    cls = {"lstm": fastrnn.LSTM, "gru": fastrnn.GRU}[cell]

    def build(int8):
        def make():
            m = cls(I, H, seed=0)
            if int8:
                fastrnn.quantize(m, activations=ACTIVATIONS)
            m.forward(x, train=False)              # packs / quantizes once, outside the timing
            return lambda: m.forward(x, train=False)
        return make

    def torch_q():
        ref = cls(I, H, seed=0)
        mod = getattr(torch.nn, cell.upper())(I, H)
        mod.load_state_dict({k: torch.from_numpy(v) for k, v in ref.state_dict().items()})
        q, xt = _torch_dynamic(mod), torch.from_numpy(x)

        def run():
            with torch.inference_mode():
                q(xt)
        return run
    out = {"int8": build(True), "float32": build(False)}
    if torch is not None:
        out["torch"] = torch_q
    return out


def lm_sampling(layers, hidden, tokens=200):
    """{impl: builder} of sampling `tokens` tokens at batch 1 from a char LSTM LM: fastrnn.generate
    on the int8 and float32 models, torch's quantize_dynamic model stepped in a Python loop."""
    from fastrnn.data import EOS, UNK, Vocab
    V = runners.VOCAB
    vocab = Vocab([UNK, EOS] + [chr(0x21 + i) for i in range(V - 2)])

    def build(int8):
        def make():
            model = fastrnn.LanguageModel(V, hidden_size=hidden, num_layers=layers, seed=0)
            model.head._views["bias"][vocab.eos_id] = -1e30     # every run is full length
            model.invalidate()
            if int8:
                fastrnn.quantize(model, activations=ACTIVATIONS)
            return lambda: fastrnn.generate(model, vocab, length=tokens, seed=0)
        return make

    def torch_q():
        model = _torch_dynamic(runners.torch_lm(V, layers, hidden))
        gen = torch.Generator().manual_seed(0)

        def run():
            with torch.inference_mode():
                x, state = torch.zeros((1, 1), dtype=torch.long), None
                for _ in range(tokens):
                    logits, state = model(x, state)
                    x = torch.multinomial(torch.softmax(logits[0], dim=-1), 1, generator=gen).T
        return run
    out = {"int8": build(True), "float32": build(False)}
    if torch is not None:
        out["torch"] = torch_q
    return out


def build():
    """(name, {impl: builder}, [(against, ratio)]): int8 must be `ratio` x faster than `against`."""
    rows = []
    for cell in ("lstm", "gru"):
        for B, vs_torch in ((1, 2.0), (32, 1.5)):
            rows.append((f"int8 {cell} forward (100, {B}, 256, 512)", layer(cell, 100, B, 256, 512),
                         [("torch", vs_torch), ("float32", 1.5 if B == 1 else None)]))
    rows.append(("int8 LM sampling 2x256, batch 1 (generate)", lm_sampling(2, 256), [("torch", 8.0)]))
    return rows


def run(budget=3.0, pattern=""):
    """Measure the rows whose names match `pattern`; print their table."""
    rows = []
    for name, builders, targets in build():
        if pattern and not re.search(pattern, name):
            continue
        fns = {k: b() for k, b in builders.items()}
        samples = timing.time_interleaved(fns, budget, 3, sample_seconds=1.0)
        rows.append((name, targets, {k: float(np.median(v)) for k, v in samples.items()}))
        print(f"measured {name}", file=sys.stderr, flush=True)
    if not rows:
        return
    print(f"\nint8 path {_kernels.int8_isa()} (this CPU runs {', '.join(_kernels.int8_isas())})\n")
    print("| workload | int8 ms | float32 ms | torch quantize_dynamic ms | float32/int8 | torch/int8 | target |")
    print("|---|---|---|---|---|---|---|")
    for name, targets, med in rows:
        q, f, t = med["int8"], med["float32"], med.get("torch")
        verdicts = []
        for against, ratio in targets:
            other = f if against == "float32" else t
            if ratio is None or other is None:
                continue
            verdicts.append(f"{'met' if other / q >= ratio else 'MISSED'} (>= {ratio}x {against})")
        ms = lambda v: "-" if v is None else f"{v * 1e3:.3f}"   # noqa: E731
        print(f"| {name} | {ms(q)} | {ms(f)} | {ms(t)} | {f / q:.2f}x | "
              f"{'-' if t is None else f'{t / q:.2f}x'} | {'; '.join(verdicts) or '-'} |", flush=True)


def main(argv=None):
    import bench_args   # here, not at the top: tests/test_int8.py loads this file by its path,
    #                     without bench/ on sys.path
    args = bench_args.parse(__doc__, argv)
    run(args.budget, args.filter)


if __name__ == "__main__":
    sys.exit(main())
