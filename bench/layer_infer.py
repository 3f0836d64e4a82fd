"""A served layer's inference forward: `layer(x)` under fastrnn.no_grad() on an eval() layer,
the same weights every call (the layer keeps W_hh and W_ih^T packed between calls), vs torch's
nn.LSTM/GRU/RNN under inference_mode on the same weights. Shapes (T, B, I, H): the batch-1 row
(100, 1, 64, 128) and short serving requests (20, 1, 256, 512), (10, 1, 512, 512).

    python bench/layer_infer.py --threads 2 --rounds 7          # timing table (quiet machine)
    python bench/layer_infer.py --calls N --shape 20,1,256,512  # callgrind driver, 1 thread:
    for n in 2 12; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \\
        python bench/layer_infer.py --calls $n --shape 20,1,256,512; done   # per call = diff / 10

A/B: run it with PYTHONPATH=<before checkout>/src too (that build repacks W_ih^T per call).
"""
import argparse
import time

import numpy as np

import fastrnn

SHAPES = [(100, 1, 64, 128), (20, 1, 256, 512), (10, 1, 512, 512)]


def _layer(cell, I, H):
    return getattr(fastrnn, cell)(I, H, seed=0).eval()


def _best(fn, rounds, budget=0.2):
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < budget:
        fn()
        n += 1
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def table(cells, threads, rounds):
    fastrnn.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    print(f"{'cell':5} {'shape':20} {'fastrnn us':>11} {'torch us':>9} {'ratio':>6}")
    for cell in cells:
        for T, B, I, H in SHAPES:
            layer = _layer(cell, I, H)
            x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)

            def ours():
                with fastrnn.no_grad():
                    layer(x)
            ours_t, theirs_t = _best(ours, rounds), float("nan")
            if torch is not None:
                m = getattr(torch.nn, cell)(I, H)
                m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.state_dict().items()})
                xt = torch.from_numpy(x)

                def theirs():
                    with torch.inference_mode():
                        m(xt)
                theirs_t = _best(theirs, rounds)
            print(f"{cell:5} {str((T, B, I, H)):20} {ours_t * 1e6:11.1f} {theirs_t * 1e6:9.1f} "
                  f"{theirs_t / ours_t:6.2f}")


def calls(n, shape, cell):
    """n inference forwards on one thread (the callgrind driver)."""
    fastrnn.set_num_threads(1)
    T, B, I, H = shape
    layer = _layer(cell, I, H)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    with fastrnn.no_grad():
        for _ in range(n):
            layer(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--cells", default="LSTM,GRU")
    ap.add_argument("--calls", type=int, help="callgrind driver: this many calls, no timing")
    ap.add_argument("--shape", default="100,1,64,128", help="T,B,I,H for --calls")
    args = ap.parse_args()
    if args.calls is not None:
        calls(args.calls, tuple(int(v) for v in args.shape.split(",")), args.cells.split(",")[0])
    else:
        table(args.cells.split(","), args.threads, args.rounds)


if __name__ == "__main__":
    main()
