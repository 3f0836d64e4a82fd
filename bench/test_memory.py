"""Memory benchmark: the shared `memory` workloads of fastrnn.benchmarks.workloads (peak RSS growth of
a 2-layer LSTM forward+backward), fastrnn vs fastrnn.reference vs torch, measured as `fastrnn bench`
measures it: each implementation in a fresh process with the session's thread count
(fastrnn.benchmarks.memory). The summary prints the bytes next to the timing table.

This is not timed, so it does not go through pytest-benchmark's fixture and `--benchmark-only`
skips it. Run: python -m pytest bench/test_memory.py -q
"""
import pytest

from fastrnn.benchmarks import memory
from fastrnn.benchmarks.workloads import IMPLS, select
from conftest import MEMORY, THREADS


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("workload", select(group="memory"), ids=lambda w: w.name)
def test_memory(workload, impl):
    """Peak RSS growth of one call (after a warm-up call) in a fresh process."""
    if impl not in workload.impls:
        pytest.skip(f"{impl} does not run {workload.name!r} here")
    MEMORY[(workload.name, impl)] = memory.measure(workload.name, impl, THREADS["count"])
