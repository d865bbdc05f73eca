#!/usr/bin/env bash
# Differential test of the packaged llama.cpp's soft_max_ext, stock vs patched (posattn), against a float64
# reference (ops-driver.c): every case within ggml's NMSE bar for soft_max (1e-7), patched no less accurate than
# stock, and no NaN from patched (stock's NaN rows, where no key is visible, must come out as zeros). Builds are
# cached under build-ggml/ (build.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/../../scripts/install-deps.sh" --ggml
command -v npm >/dev/null || { echo "test.sh: npm (from nodejs) is needed to fetch the package" >&2; exit 1; }
out=$("$here/build.sh" | tail -1)
status=0
for threads in 1 2; do
  "$out/stock/ops-driver" "$threads" > "$out/stock.txt"
  "$out/patched/ops-driver" "$threads" > "$out/patched.txt"
  paste -d' ' "$out/stock.txt" "$out/patched.txt" | awk -v threads="$threads" '
    function val(field) { sub(/^[a-z_]+=/, "", field); return field + 0 }
    {
      n++
      if ($1 != $6) { print "case mismatch: " $1 " vs " $6; bad++; next }
      stock = val($2); patched = val($7)
      if (!(patched <= 1e-7)) { print "FAIL bar  " $1 " patched nmse " patched; bad++ }
      if (!(patched <= stock)) { print "FAIL worse than stock " $1 " stock " stock " patched " patched; bad++ }
      if (val($8) != 0) { print "FAIL patched NaN " $1; bad++ }
      if (val($4) > 0 && val($10) != val($4)) { print "FAIL empty rows not zeros " $1; bad++ }
      if (val($4) > 0) { printf "empty rows (threads %d): %s stock gives NaN in %d rows, patched all zeros in %d\n", threads, $1, val($4), val($10) }
      if (stock > worst_s) worst_s = stock
      if (patched > worst_p) worst_p = patched
    }
    END {
      printf "soft_max, %d threads: %d cases, worst NMSE stock %.2e patched %.2e, %d failures\n", threads, n, worst_s, worst_p, bad
      exit bad > 0
    }' || status=1
done
exit $status
