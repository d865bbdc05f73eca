#!/usr/bin/env bash
# The vendoring checks of CI (issue 13), after scripts/test.sh has built ./build with Meson:
#   1. the CMake build (top-level, Release) passes the same tests as the Meson build (same test names) and its
#      static library defines the same global symbols as Meson's, all prefixed posattn_;
#   2. examples/cmake-consumer, a project that add_subdirectory()s posattn, builds and runs (runtime dispatch, and
#      compile-time dispatch under -march=x86-64-v3 on x86-64);
#   3. the compile-time selection mode (meson -Ddispatch=compile-time) passes the suite;
#   4. a baseline build (./build: no -march, runtime dispatch) runs on a CPU without AVX (qemu-x86_64 -cpu
#      qemu64, which traps every AVX instruction): detection and the scalar paths execute nothing the CPU lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --vendor
jobs=$(nproc)
# Quiet on success, the tail of the output on failure (ninja reports compile errors on stdout).
quiet() { local log; log=$(mktemp); if ! "$@" >"$log" 2>&1; then tail -n 60 "$log"; rm -f "$log"; return 1; fi; rm -f "$log"; }
x86=$([ "$(uname -m)" = x86_64 ] && echo 1 || echo 0)

echo "== vendor: CMake build and tests"
rm -rf build-cmake
quiet cmake -S . -B build-cmake -G Ninja -DCMAKE_BUILD_TYPE=Release
quiet ninja -C build-cmake -j"$jobs"
(cd build-cmake && ctest -j"$jobs" --output-on-failure)

echo "== vendor: the same tests and the same symbols as the Meson build"
[ -f build/build.ninja ] || quiet meson setup build -Dbench=false
quiet ninja -C build
meson test -C build --list 2>/dev/null | sed -n 's|^posattn:[a-z]* / ||p' | sort >build-cmake/tests-meson.txt
(cd build-cmake && ctest -N | sed -n 's/^ *Test *#[0-9]*: //p' | sort) >build-cmake/tests-cmake.txt
diff -u build-cmake/tests-meson.txt build-cmake/tests-cmake.txt
symbols() { nm --defined-only -g "$1" 2>/dev/null | awk 'NF == 3 { print $2, $3 }' | sort -u; }
symbols build/libposattn.a >build-cmake/symbols-meson.txt
symbols build-cmake/libposattn.a >build-cmake/symbols-cmake.txt
diff -u build-cmake/symbols-meson.txt build-cmake/symbols-cmake.txt
if grep -v ' posattn_' build-cmake/symbols-cmake.txt; then echo "vendor: symbols without the posattn_ prefix" >&2; exit 1; fi
echo "$(wc -l <build-cmake/symbols-cmake.txt) global symbols, identical, all posattn_; $(wc -l <build-cmake/tests-cmake.txt) tests in both"

echo "== vendor: examples/cmake-consumer (add_subdirectory)"
consumer() { # <build dir> <cmake args...>
    local dir="$1"; shift
    rm -rf "$dir"
    quiet cmake -S examples/cmake-consumer -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
    quiet ninja -C "$dir" -j"$jobs"
    [ ! -e "$dir/posattn/tests" ] || { echo "vendor: a vendored posattn built its tests" >&2; exit 1; }
    "$dir/decode_step"
}
consumer build-consumer
if [ "$x86" = 1 ] && grep -q avx2 /proc/cpuinfo; then
    consumer build-consumer-v3 -DPOSATTN_DISPATCH=compile-time -DCMAKE_C_FLAGS=-march=x86-64-v3 |
        tee /dev/stderr | grep -q "attention on avx2"
fi
echo "(a consumer build without SLEEF needs the no-SLEEF option, not built yet)"

echo "== vendor: compile-time selection (meson -Ddispatch=compile-time)"
rm -rf build-compile-time
march=$([ "$x86" = 1 ] && echo "-march=x86-64-v3" || echo "")
quiet meson setup build-compile-time -Dbench=false -Ddispatch=compile-time ${march:+-Dc_args=$march}
quiet ninja -C build-compile-time -j"$jobs"
quiet meson test -C build-compile-time --print-errorlogs --no-rebuild
echo "compiled ISAs: $(nm build-compile-time/libposattn.a | sed -n 's/.* T posattn_rope_token_f32_//p' | sort | tr '\n' ' ')"

if [ "$x86" = 1 ]; then
    echo "== vendor: the baseline build on a CPU without AVX (qemu-x86_64 -cpu qemu64)"
    for exe in tests/test_dispatch tests/test_attention tests/test_rope examples/example_time_series; do
        out=$(CK_FORK=no qemu-x86_64 -cpu qemu64 "build/$exe" 2>&1) || { echo "$out"; echo "vendor: $exe failed without AVX" >&2; exit 1; }
        echo "$exe: $(echo "$out" | grep -E '^[0-9]+%: Checks|sum 1' | head -n1)"
    done
fi
echo "== vendor checks passed"
