"""The one definition of the benchmark workloads, read by `fastrnn bench` and by `bench/`.

Groups:
  kernels  each cell x forward / forward+backward x float32 / float64 over a DeepBench-style grid
           (hidden 128..1024, batch 1..64, steps 25..150; input size = hidden as in DeepBench),
           plus DeepBench's LSTM training rows that fall in that range (float32)
  layers   a 2-layer bidirectional LSTM (T=50, B=50, I=128, H=256)
  models   the torch-rnn char-LM matrix: LSTM 1/2/3 layers x hidden 64/128/256/512, one training
           iteration at batch 50, seq 50 (one-hot input over 65 characters, clip 5, Adam); and one
           training iteration (Adam) per model shape: classifier, tagger, regressor, seq2seq,
           conditioned generator, output->hidden net, GridRNN (shapes.py; fastrnn vs torch)
  latency  a 2x256 LSTM language model at batch 1: one sampling step, and a 100-step forward
  memory   peak RSS growth of a 2-layer LSTM forward+backward against the tape the maths needs

FLOPs per step and sequence: 2 (I + H) G H per layer and direction forward (G = 1, 3, 4 for RNN,
GRU, LSTM), backward counted as twice forward; a language model adds its head (2 H V) and counts
its one-hot input as a gather (I = 0 for layer 0).
"""
import re
from dataclasses import dataclass, field

from . import runners, shapes

IMPLS = ("fastrnn", "reference", "torch")
KERNEL_GRID = [(100, 1, 128), (150, 16, 256), (25, 64, 512), (25, 32, 1024)]     # (T, B, H)
#: the cells of the default kernel grid: the three torch has (any name of fastrnn.nn.BLOCKS runs too)
KERNEL_CELLS = ("rnn", "gru", "lstm")
# Baidu DeepBench's LSTM training problems (hidden, batch, steps) within the grid's range
DEEPBENCH_LSTM = [(512, 16, 25), (512, 32, 25), (512, 64, 25), (1024, 16, 25), (1024, 32, 25), (1024, 64, 25),
                  (256, 16, 150), (256, 32, 150), (256, 64, 150)]
LM_MATRIX = [(layers, hidden) for layers in (1, 2, 3) for hidden in (64, 128, 256, 512)]
QUICK = {"kernel lstm fwd+bwd float32 T=100 B=1 I=128 H=128", "kernel gru forward float32 T=100 B=1 I=128 H=128",
         "kernel rnn fwd+bwd float64 T=100 B=1 I=128 H=128", "kernel lstm forward float32 T=150 B=16 I=256 H=256",
         "LM train iteration LSTM L=1 H=64 B=50 T=50", "LM sampling step LSTM 2x256 B=1",
         "LM forward LSTM 2x256 B=1 T=100", "memory LSTM 2x256 fwd+bwd T=100 B=32",
         "classifier train iteration bi-LSTM mean-pool V=10000 E=128 H=128 C=5 B=32 T=100"}


@dataclass
class Workload:
    """One thing to time: `builders[impl]()` returns the zero-argument callable doing one unit of
    work. `flops` (None when not meaningful) counts one call; `params` describes it in the report."""
    name: str
    group: str
    builders: dict
    flops: float = None
    params: dict = field(default_factory=dict)

    @property
    def impls(self):
        """The implementations that can run here (torch only when it is importable)."""
        return [i for i in IMPLS if i in self.builders and (i != "torch" or runners.torch is not None)]


def layer_flops(T, B, I, H, G, train, layers=1, directions=1):
    """FLOPs of a stack's forward (x3 with backward); layers above the first read D*H features."""
    per = sum(2 * T * B * ((I if k == 0 else directions * H) + H) * G * H * directions
              for k in range(layers))
    return per * (3 if train else 1)


def _lm_flops(layers, hidden, B, T, train):
    V = runners.VOCAB
    fwd = layer_flops(T, B, 0, hidden, 4, False, layers) + 2 * T * B * hidden * V
    return fwd * (3 if train else 1)


def _kernels():
    out = []
    shapes = [(cell, T, B, H, dtype) for cell in KERNEL_CELLS for T, B, H in KERNEL_GRID
              for dtype in ("float32", "float64")]
    shapes += [("lstm", T, B, H, "float32") for H, B, T in DEEPBENCH_LSTM
               if (T, B, H) not in KERNEL_GRID]
    for cell, T, B, H, dtype in shapes:
        for train in (False, True):
            mode = "fwd+bwd" if train else "forward"
            out.append(Workload(
                f"kernel {cell} {mode} {dtype} T={T} B={B} I={H} H={H}", "kernels",
                runners.kernel(cell, T, B, H, H, dtype, train),
                layer_flops(T, B, H, H, runners.CELLS[cell][1], train),
                dict(cell=cell, mode=mode, dtype=dtype, T=T, B=B, I=H, H=H,
                     deepbench=(H, B, T) in DEEPBENCH_LSTM and cell == "lstm" and dtype == "float32")))
    return out


def all_workloads():
    """Every workload, in report order."""
    out = _kernels()
    T, B, I, H = 50, 50, 128, 256
    for train in (False, True):
        mode = "fwd+bwd" if train else "forward"
        out.append(Workload(f"2-layer bi-LSTM {mode} T={T} B={B} I={I} H={H}", "layers",
                            runners.bilstm(T, B, I, H, train),
                            layer_flops(T, B, I, H, 4, train, layers=2, directions=2),
                            dict(cell="lstm", mode=mode, layers=2, bidirectional=True, T=T, B=B, I=I, H=H)))
    for layers, hidden in LM_MATRIX:
        out.append(Workload(f"LM train iteration LSTM L={layers} H={hidden} B=50 T=50", "models",
                            runners.lm_train(layers, hidden, 50, 50), _lm_flops(layers, hidden, 50, 50, True),
                            dict(layers=layers, hidden=hidden, B=50, T=50, vocab=runners.VOCAB)))
    for key, shape in shapes.SHAPES.items():
        sizes = shape.sizes
        out.append(Workload(f"{shape.title} " + " ".join(f"{k}={v}" for k, v in sizes.items()), "models",
                            shapes.train(key), float(shape.flops(**sizes)), dict(shape=key, **sizes)))
    out.append(Workload("LM sampling step LSTM 2x256 B=1", "latency", runners.lm_infer(2, 256, 1),
                        _lm_flops(2, 256, 1, 1, False), dict(layers=2, hidden=256, B=1, T=1)))
    out.append(Workload("LM forward LSTM 2x256 B=1 T=100", "latency", runners.lm_infer(2, 256, 100),
                        _lm_flops(2, 256, 1, 100, False), dict(layers=2, hidden=256, B=1, T=100)))
    T, B, H, L = 100, 32, 256, 2
    ours, needed = runners.tape_bytes(T, B, H, H, L)
    out.append(Workload(f"memory LSTM {L}x{H} fwd+bwd T={T} B={B}", "memory",
                        runners.memory(T, B, H, H, L), None,
                        dict(layers=L, T=T, B=B, I=H, H=H, tape_bytes=ours, minimal_tape_bytes=needed)))
    return out


def select(quick=False, pattern=None, group=None):
    """The workloads to run: the quick subset or all, filtered by a regex on the name and a group."""
    regex = re.compile(pattern) if pattern else None
    return [w for w in all_workloads()
            if (not quick or w.name in QUICK) and (regex is None or regex.search(w.name))
            and (group is None or w.group == group)]
