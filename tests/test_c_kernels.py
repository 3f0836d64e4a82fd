"""The C kernels on their own (csrc/test_kernels.c: naive BLAS, finite differences), built with
AddressSanitizer and UndefinedBehaviorSanitizer when the compiler supports them."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the C test is built on Linux only")
def test_c_kernels_pass_their_own_checks(tmp_path):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None or not os.path.exists(os.path.join(CSRC, "test_kernels.c")):
        pytest.skip("no C compiler or no csrc/ (installed without sources)")
    exe = str(tmp_path / "test_kernels")
    base = [cc, "-std=c99", "-O1", "-g", "-Wall", "-I", CSRC, os.path.join(CSRC, "test_kernels.c"),
            os.path.join(CSRC, "kernels.c"), os.path.join(CSRC, "gemm.c"), os.path.join(CSRC, "team.c"),
            "-lm", "-pthread", "-o", exe]
    built = subprocess.run(base[:1] + SANITIZE + base[1:], capture_output=True, text=True)
    if built.returncode:                 # no sanitizer runtime here: build plainly
        built = subprocess.run(base, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    run = subprocess.run([exe], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "passed" in run.stdout
