#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds in ./build and runs the Check suite natively
# (every ISA this CPU supports is forced in turn; the others are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build -Dbench=false
ninja -C build
meson test -C build --print-errorlogs
scripts/check-registry.sh build
python3 scripts/test_bench_report.py  # the benchmark report and compare command on a hand-written JSON (stdlib only)
