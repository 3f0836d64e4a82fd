"""Instruction-count driver for LanguageModel.step at batch 1 (the "LM sampling step" rows): N
steps of a 2-layer char LSTM LM (V 65) on one thread, as bench/targets.py's row calls it. Run it
under callgrind twice and subtract: per call = (Ir(N2) - Ir(N1)) / (N2 - N1), e.g.

    for n in 50 250; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
        python bench/step_calls.py $n float32 256; done

usage: python bench/step_calls.py N [float32|bf16] [hidden]"""
import sys

import numpy as np

from fastrnn import _kernels
from fastrnn.models import LanguageModel


def main(argv):
    n = int(argv[0])
    precision = argv[1] if len(argv) > 1 else "float32"
    hidden = int(argv[2]) if len(argv) > 2 else 256
    _kernels.set_num_threads(1)          # no team hand-offs or spinning workers in the count
    model = LanguageModel(65, hidden_size=hidden, num_layers=2, seed=0)
    model.rnn.precision = precision
    ids = np.array([5])
    state = model.step(ids)[1]
    for _ in range(5):
        model.step(ids, state)
    for _ in range(n):
        model.step(ids, state)


if __name__ == "__main__":
    main(sys.argv[1:])
