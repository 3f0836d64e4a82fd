"""The LSTM and GRU pointwise rows (csrc/lstm.c, csrc/gru.c: the backward rows and GRU's forward
passes, written as restrict row functions so they vectorise) give exactly the bits of a plain
scalar transcription of their formulas in the same order (tests/c/bwd_rows.c): float32 and
float64, peepholes on/off, packed sequences, odd H, member unit ranges off a vector boundary."""
import os
import subprocess
import sys

import pytest

from test_c_kernels import EXTENSION_FLAGS, SANITIZERS, find_cc   # the flags the other C tests build with

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
# kernels.c is #included by the test itself (its row functions are static)
LIB = ["gemm.c", "team.c", "gemm_int8.c", "gemm_bf16.c", "gemm_amx.c"]
BUILDS = {"extension flags": EXTENSION_FLAGS, "address,undefined": ["-O1", "-g", *SANITIZERS["address,undefined"]]}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the C test is built on Linux only")
@pytest.mark.parametrize("build", list(BUILDS))
def test_gate_rows_bit_identical_to_the_scalar_formulas(tmp_path, build):
    cc = find_cc("lstm.c")
    exe = str(tmp_path / "bwd_rows")

    def build_with(flags):
        cmd = [cc, "-std=c99", "-Wall", "-pthread", "-I", CSRC, *flags,
               os.path.join(ROOT, "tests", "c", "bwd_rows.c"), *[os.path.join(CSRC, s) for s in LIB], "-lm", "-o", exe]
        return subprocess.run(cmd, capture_output=True, text=True)

    built = build_with(BUILDS[build])
    if built.returncode and build != "extension flags":
        built = build_with(["-O1"])                     # no sanitizer runtime here: build plainly
    assert built.returncode == 0, built.stderr[-3000:]
    run = subprocess.run([exe], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "bit-identical to the scalar formulas: passed" in run.stdout
