"""The units split's shared steps (csrc/timeloop.h, team.c frnn_share) against a stalled member:
tests/c/shared_steps.c runs RNN, LSTM (with peepholes), GRU layers with and without lengths,
inference and training, at 1, 2 and 3 threads; FASTRNN_TEST_STALL=m,us,every makes member m sleep
before its part of every `every`-th step, as a member the OS has descheduled. The results must be
the unstalled bits at every thread count, and a stalled call must not wait for the sleeper at
every step the way a barrier per step does. Shared steps are opt-in (FASTRNN_SHARED_STEPS=1, set by
_run unless a test asks for "0", the barrier). Built plainly, with
AddressSanitizer + UndefinedBehaviorSanitizer and with ThreadSanitizer where the compiler has them."""
import os
import re
import subprocess
import sys

import pytest

from test_c_kernels import CSRC, LIB_SOURCES, ROOT, SANITIZERS, find_cc

DRIVER = os.path.join(ROOT, "tests", "c", "shared_steps.c")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the C test is built on Linux only")


def _build(tmp_path, flags, name):
    cc = find_cc("timeloop.h")
    exe = str(tmp_path / name)
    cmd = [cc, "-std=c99", "-pthread", "-I", CSRC, *flags, DRIVER, *[os.path.join(CSRC, s) for s in LIB_SOURCES],
           "-lm", "-o", exe]
    return exe, subprocess.run(cmd, capture_output=True, text=True)


def _run(exe, *args, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("FASTRNN_TEST_STALL", "FASTRNN_SHARED_STEPS")}
    full.update({"FASTRNN_SHARED_STEPS": "1"}, **env)     # opt-in; "0" runs the barrier path
    # the shared steps are the units split's: its inference cases would run as the batch split
    # (decomp_model.h frnn_infer_chunks: no barrier per step to share)
    full.setdefault("FASTRNN_DECOMP", "units")
    full.update(TSAN_OPTIONS="halt_on_error=1", ASAN_OPTIONS="detect_leaks=1")
    run = subprocess.run([exe, *args], capture_output=True, text=True, timeout=600, env=full)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "WARNING: ThreadSanitizer" not in run.stderr, run.stderr[-3000:]
    assert "FAIL" not in run.stdout, run.stdout
    return run.stdout


def _cases(out):
    """Each case's line without its barrier count (the barrier path opens one fewer going back)."""
    lines = [ln.split(" barriers")[0] for ln in out.splitlines() if ln.startswith("cell")]
    assert len(lines) == 20, out
    return lines


@pytest.mark.parametrize("build", ["plain", "address,undefined", "thread"])
def test_a_stalled_member_changes_no_bit(tmp_path, build):
    """Every case gives the same bits at 1, 2 and 3 threads, with member 1 or every member stalling
    (parts taken from it, counted), and with the barrier per step (FASTRNN_SHARED_STEPS=0)."""
    flags = ["-O2"] if build == "plain" else ["-O1", "-g", *SANITIZERS[build]]
    exe, built = _build(tmp_path, flags, "shared_steps")
    if built.returncode and build != "plain":
        pytest.skip(f"no {build} sanitizer runtime here: {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr
    quiet = _cases(_run(exe))
    assert all("threads-equal 1" in ln for ln in quiet), quiet
    for stall in ("1,300,3", "-1,200,4", "2,500,2"):
        out = _run(exe, FASTRNN_TEST_STALL=stall)
        assert _cases(out) == quiet, (stall, out)
        if stall.startswith("1,"):
            assert int(re.search(r"steals (\d+)", out).group(1)) > 0, out
    assert _cases(_run(exe, FASTRNN_SHARED_STEPS="0", FASTRNN_TEST_STALL="1,200,5")) == quiet


def test_a_stalled_member_does_not_stall_every_step(tmp_path):
    """Member 1 sleeping 20 ms before every 10th step of a 100-step call: with a barrier per step
    the call waits for all ten sleeps (>= 200 ms); with shared steps member 0 takes the sleeper's
    parts, so the call waits for about one sleep. Forward (batch-1 LSTM) and fwd+bwd (RNN)."""
    exe, built = _build(tmp_path, ["-O2"], "shared_steps")
    assert built.returncode == 0, built.stderr
    for case in (["5", "100", "1", "16", "128", "0"], ["0", "100", "4", "16", "128", "1"]):
        ms = {}
        for shared in ("1", "0"):
            out = _run(exe, "time", *case, FASTRNN_TEST_STALL="1,20000,10", FASTRNN_SHARED_STEPS=shared)
            ms[shared] = float(re.search(r"ms ([0-9.]+)", out).group(1))
        assert ms["0"] >= 200, ms             # the hook stalls the barrier path at every 10th step
        assert ms["1"] < ms["0"] / 2, ms
