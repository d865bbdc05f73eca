#!/usr/bin/env bash
# Builds the packaged llama.cpp twice under build-ggml/ (ignored by git): stock, and patched (ggml-cpu.patch
# applied to a copy of the sources) linked to posattn's static library built by Meson. Incremental: a second run
# rebuilds only what changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${POSATTN_GGML_BUILD:-$repo/build-ggml}
jobs=${JOBS:-2}
pkg=$("$here/fetch.sh")
mkdir -p "$out"
# The patched copy is refreshed only when the patch changes, so make keeps its objects.
if ! cmp -s "$here/ggml-cpu.patch" "$out/src-patched/.patch" 2>/dev/null; then
  rm -rf "$out/src-patched"
  cp -r "$pkg/cpp" "$out/src-patched"
  patch -s -p1 -d "$out/src-patched" < "$here/ggml-cpu.patch"
  cp "$here/ggml-cpu.patch" "$out/src-patched/.patch"
fi
[ -d "$out/posattn" ] || meson setup "$out/posattn" "$repo" -Dbench=false --buildtype=release >/dev/null
ninja -C "$out/posattn" -j"$jobs" libposattn.a >/dev/null
[ -f "$out/stock/Makefile" ] || cmake -S "$here" -B "$out/stock" -DGGML_CPP="$pkg/cpp" >/dev/null
[ -f "$out/patched/Makefile" ] || cmake -S "$here" -B "$out/patched" -DGGML_CPP="$out/src-patched" \
  -DPOSATTN_LIB="$out/posattn/libposattn.a" -DPOSATTN_INCLUDE="$repo/include" >/dev/null
make -s -C "$out/stock" -j"$jobs" ops-driver fa-driver bench-driver
make -s -C "$out/patched" -j"$jobs" ops-driver fa-driver bench-driver
echo "$out"
