#!/usr/bin/env bash
# Speed, not a test: soft_max_ext and flash_attn_ext stock vs patched (posattn) in the packaged llama.cpp. The
# two builds run alternately ROUNDS times; each prints best-of times; the ratio stock/patched is taken per round
# and the median reported, so both see the same machine state. Name the CPU with the figures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$("$here/build.sh" | tail -1)
rounds=${ROUNDS:-5}
for r in $(seq "$rounds"); do
  "$out/stock/bench-driver" | sed 's/^/stock /'
  "$out/patched/bench-driver" | sed 's/^/patched /'
done | awk '
  { key = $2 " " $3; t[$1, key, ++n[$1, key]] = $4; keys[key] = 1 }
  END {
    for (k in keys) {
      m = n["stock", k]; cnt = 0
      for (i = 1; i <= m; i++) { ratio[++cnt] = t["stock", k, i] / t["patched", k, i] }
      for (i = 2; i <= cnt; i++) for (j = i; j > 1 && ratio[j - 1] > ratio[j]; j--) { x = ratio[j]; ratio[j] = ratio[j - 1]; ratio[j - 1] = x }
      printf "%-40s stock %9.0f ns  patched %9.0f ns  median ratio %.2fx\n", k, t["stock", k, m], t["patched", k, m], ratio[int((cnt + 1) / 2)]
      delete ratio
    }
  }' | sort
