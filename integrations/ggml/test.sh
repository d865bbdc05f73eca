#!/usr/bin/env bash
# Differential test of the packaged llama.cpp's soft_max_ext (ops-driver.c) and flash_attn_ext (fa-driver.c),
# stock vs patched (posattn), against float64 references: every case within ggml's NMSE bar (1e-7 soft_max, 5e-4
# flash attention), patched no less accurate than stock, no NaN from patched (stock's NaN rows, where no key is
# visible, must come out as zeros), and the cases the adapter leaves to ggml (quantized K/V) bit-identical to
# stock. Builds are cached under build-ggml/ (build.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/../../scripts/install-deps.sh" --ggml
command -v npm >/dev/null || { echo "test.sh: npm (from nodejs) is needed to fetch the package" >&2; exit 1; }
out=$("$here/build.sh" | tail -1)
status=0
for threads in 1 2; do
  for run in "ops-driver soft_max 1e-7" "fa-driver flash_attn_ext 5e-4"; do
    set -- $run
    "$out/stock/$1" "$threads" > "$out/stock-$1.txt"
    "$out/patched/$1" "$threads" > "$out/patched-$1.txt"
    paste -d' ' "$out/stock-$1.txt" "$out/patched-$1.txt" | awk -v threads="$threads" -v op="$2" -v bar="$3" '
      function val(field) { sub(/^[a-z_]+=/, "", field); return field + 0 }
      {
        n++
        if ($1 != $6) { print "case mismatch: " $1 " vs " $6; bad++; next }
        stock = val($2); patched = val($7)
        if ($1 ~ /:kv=q[0-9]/) {
          # Quantized K/V: the adapter declines, ggml computes; the outputs must be stock bit for bit.
          fallback++
          if (patched != stock) { print "FAIL fallback differs from stock " $1; bad++ }
          next
        }
        if (!(patched <= bar)) { print "FAIL bar  " $1 " patched nmse " patched; bad++ }
        if (!(patched <= stock)) { print "FAIL worse than stock " $1 " stock " stock " patched " patched; bad++ }
        if (val($8) != 0) { print "FAIL patched NaN " $1; bad++ }
        if (val($4) > 0 && val($10) != val($4)) { print "FAIL empty rows not zeros " $1; bad++ }
        if (val($4) > 0) { printf "empty rows (threads %d): %s stock gives NaN in %d rows, patched all zeros in %d\n", threads, $1, val($4), val($10) }
        if (stock > worst_s) worst_s = stock
        if (patched > worst_p) worst_p = patched
      }
      END {
        printf "%s, %d threads: %d cases, worst NMSE stock %.2e patched %.2e, %d failures\n", op, threads, n, worst_s, worst_p, bad
        if (fallback) printf "%s, %d threads: %d cases left to stock ggml (quantized K/V), outputs identical\n", op, threads, fallback
        exit bad > 0
      }' || status=1
  done
done
exit $status
