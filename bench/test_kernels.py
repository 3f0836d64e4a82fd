"""Kernel benchmarks: each cell x forward / fwd+bwd x float32 / float64 over the DeepBench-style
grid of fastrnn.benchmarks.workloads (the same definitions `fastrnn bench` runs); fastrnn's bare
kernels vs fastrnn.reference vs torch.

Run: python -m pytest bench/test_kernels.py --benchmark-columns=median,iqr -q
(with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset). The summary table at the end gives the
ratios, GFLOP/s and the fraction of the SGEMM peak measured in the same run.
"""
import pytest

from fastrnn.benchmarks.workloads import IMPLS, select
from conftest import run_workload


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("workload", select(group="kernels"), ids=lambda w: w.name)
def test_kernel(benchmark, workload, impl):
    run_workload(benchmark, workload, impl)
