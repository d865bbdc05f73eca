#!/usr/bin/env bash
# Builds the differential fuzz targets (fuzz/) with clang, libFuzzer, AddressSanitizer and UBSan in build-fuzz/,
# then runs each for SECONDS seconds (default 60) from its seed corpus in fuzz/corpus/<target>/, with a fixed seed.
#   scripts/fuzz.sh            60 s per target (CI runs `scripts/fuzz.sh 30`)
#   scripts/fuzz.sh 3600       a longer local run; new inputs go to build-fuzz/corpus/<target>/, crashes to
#                              build-fuzz/crash-* (replay one: build-fuzz/fuzz/fuzz_<target> <file>)
#   FUZZ_TARGETS="rope" scripts/fuzz.sh 600      some targets only; FUZZ_JOBS=2 runs two at a time
#   FUZZ_RUNS=50000 scripts/fuzz.sh 300        a fixed number of inputs per target (with the fixed seed: the same
#                                              inputs every time, as CI runs it)
# A crash, a sanitizer report or a failed check aborts the target and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
scripts/install-deps.sh --sanitizers

dir=build-fuzz
if [ ! -f "$dir/build.ninja" ]; then
  CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false -Dbench=false -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all"
fi
ninja -C "$dir"

default_targets=$(find "$dir/fuzz" -maxdepth 1 -type f -executable -name 'fuzz_*' -printf '%f\n' | sed 's/^fuzz_//' | sort | tr '\n' ' ')
targets="${FUZZ_TARGETS:-$default_targets}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in $targets; do
  exe="$dir/fuzz/fuzz_$t"
  [ -x "$exe" ] || { echo "fuzz: no target $t"; status=1; continue; }
  mkdir -p "$dir/corpus/$t"
  echo "== fuzz_$t for ${seconds}s"
  # New inputs go to the build directory's corpus; the repository's seeds are read only.
  if ! "$exe" -seed=1 ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$dir/crash-$t-" "$dir/corpus/$t" "fuzz/corpus/$t" 2>&1 | tail -n 25; then
    status=1
  fi
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
exit $status
