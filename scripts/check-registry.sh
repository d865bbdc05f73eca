#!/usr/bin/env bash
# Every kernel the build compiles (a posattn_<op>_f32_<isa> function defined in libposattn.a) must be named by a line
# of src/registry.c, else it would be compiled and never dispatched, tested, fuzzed or benchmarked (the tests,
# fuzz targets and benchmarks reach kernels only through the registry). Also the converse, which the linker
# already enforces: every kernel the registry names is defined.
#   scripts/check-registry.sh [BUILD_DIR] [NM]        (default: build, nm; a cross build: build-arm aarch64-linux-gnu-nm)
set -euo pipefail
build=${1:-build}
nm_tool=${2:-nm}
lib="$build/libposattn.a"
registry_object=$(find "$build" -path '*libposattn*' -name '*registry.c.o' | head -n 1)
[ -f "$lib" ] && [ -n "$registry_object" ] || { echo "check-registry: no $lib or registry object in $build" >&2; exit 2; }

kernel_pattern='^posattn_[a-z0-9_]+_f32_[a-z0-9]+$'
defined=$("$nm_tool" --defined-only "$lib" 2>/dev/null | awk '$2 == "T" {print $3}' | grep -E "$kernel_pattern" | sort -u)
named=$("$nm_tool" -u "$registry_object" | awk '{print $2}' | grep -E "$kernel_pattern" | sort -u)
unregistered=$(comm -23 <(echo "$defined") <(echo "$named"))
if [ -n "$unregistered" ]; then
  echo "check-registry: compiled kernels without a line in src/registry.c (never dispatched or tested):" >&2
  echo "$unregistered" | sed 's/^/  /' >&2
  exit 1
fi
echo "check-registry: $(echo "$named" | wc -l) kernels, each compiled and named by the registry"
