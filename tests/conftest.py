"""Test-session settings shared by every test file."""
import os


def pytest_configure(config):
    # CI sets this so that the PyTorch parity tests cannot silently skip.
    if os.environ.get("FASTRNN_REQUIRE_TORCH") == "1":
        import torch  # noqa: F401  (ImportError here fails the run, as it should)
