#!/usr/bin/env bash
# The C kernels on aarch64, the portable path (no x86 ISA: the BLAS-fallback products and the
# plain gate loops): cross-compile csrc/test_kernels.c and the other test parts with Debian's
# gcc-aarch64-linux-gnu and run them under qemu-user. qemu checks correctness, not speed.
# Exits non-zero when the build warns-as-errors or any check fails.
#   bash tools/check_aarch64.sh     (installs gcc-aarch64-linux-gnu and qemu-user with apt-get if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v aarch64-linux-gnu-gcc > /dev/null || ! command -v qemu-aarch64 > /dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user > /dev/null
fi
exe=$(mktemp -d)/test_kernels
# the extension's flags (setup.py), with warnings as errors; the extension's C units and every
# part of the test program (test_kernels.c holds main)
aarch64-linux-gnu-gcc -std=c99 -O2 -Wall -Werror -pthread -fno-math-errno -fno-trapping-math \
    -Icsrc csrc/test_*.c csrc/kernels.c csrc/gemm.c csrc/gemm_int8.c csrc/gemm_bf16.c csrc/gemm_amx.c csrc/team.c csrc/head.c csrc/optim.c csrc/head_seq.c -lm -o "$exe"
readelf -h "$exe" | grep Machine
qemu-aarch64 -L /usr/aarch64-linux-gnu "$exe"
