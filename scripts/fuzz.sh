#!/usr/bin/env bash
# Builds the differential fuzz targets (fuzz/) with clang, libFuzzer, AddressSanitizer and UBSan in build-fuzz/,
# then runs each for SECONDS seconds (default 60) from its seed corpus in fuzz/corpus/<target>/, with a fixed seed.
#   scripts/fuzz.sh            60 s per target
#   scripts/fuzz.sh 3600       a longer local run; new inputs go to build-fuzz/corpus/<target>/, crashes to
#                              build-fuzz/crash-* (replay one: build-fuzz/fuzz/fuzz_<target> <file>)
#   FUZZ_TARGETS="rope liere" scripts/fuzz.sh 600      some targets only (alibi_softmax alibi_bias rope liere
#                                                  attention)
#   FUZZ_RUNS=200000 scripts/fuzz.sh 60        a fixed number of inputs per target unless the time limit comes first
#                                              (then it says so); with the fixed seed, the same inputs from the same
#                                              corpus on the same ISAs. This is what CI runs.
#   FUZZ_RUNS=10000000 FUZZ_SEED=7 scripts/fuzz.sh 86400      ten million inputs per target, another seed
# A crash, a sanitizer report or a failed check aborts the target and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
scripts/install-deps.sh --sanitizers

dir=build-fuzz
if [ -f "$dir/build.ninja" ]; then
  meson setup --reconfigure "$dir" >/dev/null # picks up targets added to fuzz/ since the last setup
else
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
  log="$dir/fuzz_$t.log"
  if ! "$exe" -seed="${FUZZ_SEED:-1}" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -max_total_time="$seconds" -timeout=20 \
      -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$dir/crash-$t-" "$dir/corpus/$t" "fuzz/corpus/$t" \
      >"$log" 2>&1; then
    status=1
  fi
  tail -n 25 "$log"
  # The time limit wins over FUZZ_RUNS on a slow machine: say so, since the inputs then differ from a full run.
  ran=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  if [ -n "${FUZZ_RUNS:-}" ] && [ "${ran:-0}" -lt "$FUZZ_RUNS" ]; then
    echo "fuzz_$t: the ${seconds} s limit stopped it after ${ran:-0} of $FUZZ_RUNS inputs"
  fi
done
exit $status
