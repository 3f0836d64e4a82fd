#!/usr/bin/env bash
# Run a command with no C/C++ compiler (nor linker) on PATH, as on a user's machine without
# build tools: each PATH directory that holds one is replaced by a directory of symlinks to
# everything else in it. Fails if a compiler is still found.
#   bash tools/no_cc.sh COMMAND [ARGS...]
set -euo pipefail
tools='^(cc|c\+\+|c89|c99|cpp|gcc|g\+\+|clang|clang\+\+|tcc|icc|icx|zig|ld)$|^(gcc|g\+\+|cpp|clang|clang\+\+)-[0-9.]+$|-(gcc|g\+\+|cc|c\+\+|cpp|ld)(-[0-9.]+)?$|^ld\.'
shadow_root=$(mktemp -d)
trap 'rm -rf "$shadow_root"' EXIT
new_path=
IFS=: read -ra dirs <<< "$PATH"
for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    if ls -A "$d" | grep -E "$tools" > /dev/null; then   # shadow it, without the compilers
        shadow=$(mktemp -d "$shadow_root/dir.XXXX")
        ls -A "$d" | grep -Ev "$tools" | sed "s|^|$d/|" | xargs -r -d '\n' ln -s -t "$shadow"
        d=$shadow
    fi
    new_path=${new_path:+$new_path:}$d
done
export PATH=$new_path
for tool in cc gcc c++ g++ clang x86_64-linux-gnu-gcc; do
    if command -v "$tool" > /dev/null; then echo "no_cc: $tool is still on PATH ($(command -v "$tool"))" >&2; exit 1; fi
done
"$@"
