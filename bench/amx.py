"""AMX targets of issue 22 (inference >= 3x and training >= 2x our float32 at batch >= 64, hidden >=
512) and the AMX-INT8 row of issue 23: fastrnn's float32, bf16 and int8 LSTM/GRU at one shape, with
the tile path the run uses named (fastrnn._kernels.amx_info()). Ratios are of one run, same threads.

    python bench/amx.py                          # default: the AMX instructions where the CPU has them
    FASTRNN_ISA=avx512 python bench/amx.py       # the same CPU without the tiles (AVX512-BF16 / VNNI)
    python bench/amx.py --shape 50 64 512 512 --threads 2 --repeat 5

On a CPU without AMX the tile path is off (the default) and the rows time the vector kernels; the
emulated tiles (FASTRNN_ISA=amx-emulated) are plain C for tests and are refused here."""
import argparse
import statistics
import time

import numpy as np

import fastrnn
from fastrnn import _kernels


def _best(fn, repeat):
    fn()                                             # warm-up: packs, buffers
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(shape, threads, repeat, cells=("lstm", "gru")):
    """{(cell, what): seconds} for what in float32/bf16 inference and training, int8 inference."""
    T, B, I, H = shape
    fastrnn.set_num_threads(threads)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    out = {}
    for cell in cells:
        cls = {"lstm": fastrnn.LSTM, "gru": fastrnn.GRU}[cell]
        for precision in ("float32", "bf16"):
            layer = cls(I, H, seed=0, precision=precision)
            out[cell, f"{precision} inference"] = _best(lambda: layer(x, train=False), repeat)

            def train():
                y, _ = layer(x)
                layer.backward(np.ones_like(y))
            out[cell, f"{precision} training"] = _best(train, repeat)
        q = fastrnn.quantize(cls(I, H, seed=0))
        out[cell, "int8 inference"] = _best(lambda: q(x, train=False), repeat)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=4, default=[50, 64, 512, 512], metavar=("T", "B", "I", "H"))
    ap.add_argument("--threads", type=int, default=0, help="0: fastrnn's default team")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    amx = _kernels.amx_info()
    if amx["mode"] == "amx-emulated":
        raise SystemExit("bench/amx.py: FASTRNN_ISA=amx-emulated runs the plain-C emulation of the tiles "
                         "(for tests); time with the instructions (default or FASTRNN_ISA=amx) instead")
    res = run(tuple(args.shape), args.threads, args.repeat)
    print(f"shape (T, B, I, H) = {tuple(args.shape)}; threads {fastrnn.get_num_threads()}; float32 ISA "
          f"{_kernels.engine_info()['isa']}; bf16 kernel {_kernels.bf16_info()['kernel']}; int8 path "
          f"{_kernels.int8_isa()}; AMX tiles: {amx['mode']} (CPU: {amx['cpu']})")
    for cell in ("lstm", "gru"):
        f_inf, f_tr = res[cell, "float32 inference"], res[cell, "float32 training"]
        print(f"{cell}: float32 inference {f_inf * 1e3:.2f} ms, training {f_tr * 1e3:.2f} ms; "
              f"bf16 inference {f_inf / res[cell, 'bf16 inference']:.2f}x (target 3x with AMX), "
              f"training {f_tr / res[cell, 'bf16 training']:.2f}x (target 2x); "
              f"int8 inference {f_inf / res[cell, 'int8 inference']:.2f}x")


if __name__ == "__main__":
    main()
