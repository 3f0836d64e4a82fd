"""Test-session settings and fixtures shared by every test file."""
import os

import pytest


def pytest_configure(config):
    # CI sets this so that the PyTorch parity tests cannot silently skip.
    if os.environ.get("FASTRNN_REQUIRE_TORCH") == "1":
        import torch  # noqa: F401  (ImportError here fails the run, as it should)
    # ... and this, so that the MPI tests (mpiexec -n 2) cannot either
    if os.environ.get("FASTRNN_REQUIRE_MPI") == "1":
        import shutil
        import sys

        import mpi4py  # noqa: F401
        local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        if not (os.access(local, os.X_OK) or shutil.which("mpiexec")):
            raise RuntimeError("FASTRNN_REQUIRE_MPI=1 but there is no mpiexec")


@pytest.fixture
def restore_threads():
    """Give the kernels' thread count back after a test that sets it."""
    from fastrnn import _kernels
    before = _kernels.get_num_threads()
    yield
    _kernels.set_num_threads(before)
