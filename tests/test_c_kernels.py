"""The C kernels on their own (csrc/test_kernels.c: naive BLAS, finite differences, the float32
engine at 1-3 threads; csrc/test_stack.c: whole stacks), built with AddressSanitizer + UndefinedBehaviorSanitizer and again with
ThreadSanitizer when the compiler supports them."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
SOURCES = ["test_kernels.c", "test_stack.c", "test_generate.c", "test_int8.c", "test_bf16.c", "test_amx.c", "kernels.c", "gemm.c",
           "team.c", "gemm_int8.c", "gemm_bf16.c", "gemm_amx.c", "test_train.c", "head.c", "optim.c",
           "test_train_seq.c", "head_seq.c", "test_gemm.c"]
SANITIZERS = {
    "address,undefined": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                          "-fno-sanitize-recover=all"],
    # ifunc resolvers (target_clones) run before TSan's runtime is up: plain loops under TSan
    "thread": ["-fsanitize=thread", "-DFRNN_NO_CLONES"],
}


def find_cc(needed):
    """The C compiler; a skip when there is none or csrc/`needed` is absent (installed without sources)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None or not os.path.exists(os.path.join(CSRC, needed)):
        pytest.skip("no C compiler or no csrc/ (installed without sources)")
    return cc


def _runtime_missing(cc, tmp_path, flags):
    """Why the compiler cannot build even an empty program with `flags` (no sanitizer runtime
    here), or None when it can: only then may a sanitized build fall back to a plain one -- a
    sanitized build of ours that fails where the empty one builds is a failure, not a fallback."""
    src = tmp_path / "empty.c"
    src.write_text("int main(void) { return 0; }\n")
    built = subprocess.run([cc, *flags, str(src), "-o", str(tmp_path / "empty")], capture_output=True, text=True)
    if built.returncode == 0:
        return None
    if os.environ.get("FASTRNN_REQUIRE_TORCH") == "1":      # CI: the sanitizer runs must run
        pytest.fail(f"FASTRNN_REQUIRE_TORCH=1 (CI) but {cc} cannot build with {flags}: {built.stderr[-300:]}")
    return built.stderr[-300:]


def _build(cc, exe, flags):
    cmd = [cc, "-std=c99", "-O1", "-g", "-Wall", "-pthread", "-I", CSRC, *flags,
           *[os.path.join(CSRC, s) for s in SOURCES], "-lm", "-o", exe]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the C test is built on Linux only")
@pytest.mark.parametrize("sanitizer", list(SANITIZERS))
def test_c_kernels_pass_their_own_checks(tmp_path, sanitizer):
    cc = find_cc("test_kernels.c")
    exe = str(tmp_path / "test_kernels")
    missing = _runtime_missing(cc, tmp_path, SANITIZERS[sanitizer])
    if missing and sanitizer == "thread":
        pytest.skip(f"no ThreadSanitizer runtime here: {missing}")
    built = _build(cc, exe, [] if missing else SANITIZERS[sanitizer])   # no runtime here: build plainly
    assert built.returncode == 0, built.stderr
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", TSAN_OPTIONS="halt_on_error=1")
    run = subprocess.run([exe], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "passed" in run.stdout
    assert "WARNING: ThreadSanitizer" not in run.stderr, run.stderr


# The extension's own flags (setup.py): the vectorised gate loops the wheel ships.
EXTENSION_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
LIB_SOURCES = [s for s in SOURCES if not s.startswith("test_")]


def _build_sweep(cc, exe, flags):
    cmd = [cc, "-std=c99", "-Wall", "-pthread", "-I", CSRC, "-I", os.path.join(ROOT, "tests", "c"), *flags,
           os.path.join(ROOT, "tests", "c", "sweep_activations.c"), *[os.path.join(CSRC, s) for s in LIB_SOURCES],
           "-lm", "-o", exe]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the C test is built on Linux only")
@pytest.mark.parametrize("build", ["full sweep", "address,undefined", "no flags"])
def test_activations_bit_identical_to_the_scalar_reference(tmp_path, build):
    """frnn_sigmoid/frnn_tanh (float32: every one of the 2^32 inputs at the extension's flags, about
    2-3 minutes; a dense sample under ASan+UBSan and at plain -O3, where GCC may vectorise
    differently) give exactly the bits of the scalar definitions in tests/c/activations_ref.h."""
    cc = find_cc("activations.h")
    exe = str(tmp_path / "sweep_activations")
    if build == "full sweep":
        flags, args = EXTENSION_FLAGS, ["1", str(1 << 24)]
    elif build == "no flags":
        flags, args = ["-O3"], ["4099", str(1 << 20)]
    else:
        flags, args = ["-O1", "-g", *SANITIZERS[build]], ["65537", str(1 << 16)]
    if build == "address,undefined" and _runtime_missing(cc, tmp_path, SANITIZERS[build]):
        flags = ["-O1"]                                  # no sanitizer runtime here: build plainly
    built = _build_sweep(cc, exe, flags)
    assert built.returncode == 0, built.stderr
    run = subprocess.run([exe, *args], capture_output=True, text=True, timeout=1200,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "bit-identical: passed" in run.stdout
