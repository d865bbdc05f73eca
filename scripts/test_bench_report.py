#!/usr/bin/env python3
"""Checks scripts/bench_report.py and scripts/bench_compare.py on a small hand-written benchmark JSON: every family
gets its section, the ratios are those worked out by hand below, the dispatched-ISA check flags exactly the slow
kernel, the cache line falls back to posattn_bench's "cpu_caches", and the compare command has no empty rows.
Needs only python3 (no matplotlib: the plots are not drawn). Run by scripts/test.sh; exits non-zero on a failure.
"""
import contextlib
import io
import json
import os
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_compare  # noqa: E402
import bench_report as br  # noqa: E402

# name -> (CPU time in us, elems counter). Times are round numbers so that every expected ratio is exact.
BENCH = {
    "alibi_softmax/scalar/decode_h32_nq1_nk4096": (400.0, 131072),
    "alibi_softmax/avx2/decode_h32_nq1_nk4096": (40.0, 131072),
    "alibi_softmax/avx512/decode_h32_nq1_nk4096": (20.0, 131072),
    "roofline_memcpy/rows/decode_h32_nq1_nk4096": (8.0, 131072),
    "peer_onednn/softmax/decode_h32_nq1_nk4096": (30.0, 131072),
    "alibi_nd_softmax/avx2/image_h12_32x32_l2": (900.0, 12582912),
    "alibi_nd_softmax/avx2/image_h12_32x32_1d": (600.0, 12582912),
    "alibi_nd_softmax/avx512/image_h12_32x32_l2": (500.0, 12582912),
    "alibi_nd_softmax/avx512/image_h12_32x32_1d": (400.0, 12582912),
    "rope/avx2/llm_t4096_h32_d128_1d": (2000.0, 16777216),
    "rope/avx512/llm_t4096_h32_d128_1d": (3000.0, 16777216),  # dispatched, 1.5x slower than AVX2: flagged
    "roofline_memcpy/rope/llm_t4096_h32_d128_1d": (2500.0, 16777216),
    "roofline_fma/avx512/chains": (1000.0, 200e6),  # 200 GFLOP/s
    "liere_rot/avx512/b64_shared": (1000.0, 100e6),  # 100 GFLOP/s: 0.50 of the peak
    "liere_apply/avx512/b64_perhead": (600.0, 10e6),
    "roofline_memcpy/liere_apply/b64_perhead": (500.0, 1e6),  # apply 1.2x memcpy
    "far_field/avx512/decode_h32_kv32_d128_f16_nk131072_tok/skip:off": (200000.0, 4194304),
    "far_field/avx512/decode_h32_kv32_d128_f16_nk131072_tok/skip:on": (8000.0, 4194304),  # 25x, read 2.5%: met
    "far_field/avx512/decode_h32_kv32_d128_f16_nk32768_tok/skip:off": (40000.0, 1048576),
    "far_field/avx512/decode_h32_kv32_d128_f16_nk32768_tok/skip:on": (8000.0, 1048576),  # 5x: missed
    "far_field/avx512/decode_h32_kv32_d128_f16_nk32768_tok/summary_update:1token": (80.0, 1048576),  # 1% of a step
}
READ_FRACTION = {"far_field/avx512/decode_h32_kv32_d128_f16_nk131072_tok/skip:on": 0.025,
                 "far_field/avx512/decode_h32_kv32_d128_f16_nk32768_tok/skip:on": 0.1}


def write_json(path, host, scale_rope=1.0):
    benchmarks = []
    for name, (us, elems) in BENCH.items():
        if name.startswith("rope/avx512/"):
            us *= scale_rope
        benchmarks.append({"name": name, "run_name": name, "run_type": "iteration", "iterations": 10,
                           "real_time": us, "cpu_time": us, "time_unit": "us", "elems": elems,
                           "bytes_per_second": 1e9})
        if name in READ_FRACTION:
            benchmarks[-1]["kv_read_fraction"] = READ_FRACTION[name]
    benchmarks.append({"name": "rope/avx2/vision_t1024_h16_d80", "run_name": "rope/avx2/vision_t1024_h16_d80",
                       "error_occurred": True, "error_message": "ISA not supported on this CPU"})
    context = {"host_name": host, "cpu_model": "Test CPU", "num_cpus": 2, "mhz_per_cpu": 2000, "caches": [],
               "cpu_caches": "L1d:49152:1 L2:1048576:1 L3:33554432:2 source:sysfs",
               "posattn_isas": "avx512:supported avx2:supported scalar:supported", "posattn_best_isa": "avx512",
               "posattn_dispatch": "alibi_bias:avx512 alibi_softmax:avx512 rope:avx512 liere_rotations:avx512 "
                                   "liere_apply:avx512 attention:avx512"}
    with open(path, "w") as f:
        json.dump({"context": context, "benchmarks": benchmarks}, f)


failures = []


def check(what, ok):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a.json"), os.path.join(tmp, "b.json")
        write_json(a, "hostA")
        write_json(b, "hostB", scale_rope=0.5)  # B's AVX-512 RoPE: 1500 us, faster than AVX2: not flagged
        context, results, skipped = br.load(a)
        br.set_isas(context, results)
        text = br.report(a, context, results, skipped)
        for heading in ("## Fused bias + softmax", "## ALiBi with N-D positions", "## Rotary embeddings",
                        "## LieRE", "## FMA peak", "## Dispatched ISA against the other ISAs", "## Far-field skipping"):
            check(f"report has a section '{heading}'", heading in text)
        check("caches from cpu_caches", "caches: L1d 48 KiB, L2 1 MiB, L3 32 MiB (shared by 2 CPUs)." in text)
        check("N-D: AVX-512 L2 / 1-D = 500/400 = 1.25, met", "| image_h12_32x32 | L2 (Euclidean) | 900 | 500 | "
              "0.072 | 0.040 | 1.50 | 1.25 | <= 1.3: avx512 met, avx2 MISSED |" in text)
        check("RoPE: AVX-512 3000/2500 = 1.20x memcpy", "| llm_t4096_h32_d128_1d | 2000 | 3000 | 2500 | 0.80 | 1.20 |"
              in text)
        check("LieRE rotations at 0.50 of the FMA peak", "| b64_shared | 1000 | 100 | 0.50 |" in text)
        check("LieRE apply 1.2x memcpy, met", "liere_apply/avx512/b64_perhead x memcpy = 1.20 (target <= 1.3): **met**"
              in text)
        check("FMA peak 200 GFLOP/s = 100 flops/cycle at 2 GHz", "| avx512 | 1000 | 200 | 100 |" in text)
        check("dispatch: 1 of 4 flagged (softmax, N-D l2 and 1d, rope)",
              "**1 of 4** kernel/shape pairs flagged." in text)
        check("dispatch: rope 1.50x", "| rope | llm_t4096_h32_d128_1d | avx512 | 3000 | avx2 | 2000 | 1.50x |" in text)
        check("softmax: AVX-512 2.50x memcpy, oneDNN 1.50x posattn", "| decode_h32_nq1_nk4096 | 10.0x | 20.0x | "
              "avx512 | 2.50 |" in text and "| 1.50x |" in text)
        check("far field: nk 131072 25x, 2.5% read", "| decode_h32_kv32_d128_f16_nk131072_tok | avx512 | 200000 | 8000 | "
              "25.0x | 2.50% | - | - |" in text)
        check("far field: nk 32768 5x, update 1% of a step", "| decode_h32_kv32_d128_f16_nk32768_tok | avx512 | 40000 | "
              "8000 | 5.0x | 10.0% | 80.0 | 1.00% |" in text)
        check("far field targets", "nk=131072: speed-up over skipping off (target >= 20x): 25.0x: **PASS**" in text and
              "nk=32768: speed-up over skipping off (target >= 8x): 5.0x: **FAIL**" in text and
              "nk=131072: fraction of K/V bytes read (target <= 3%): 2.50%: **PASS**" in text and
              "nk=4096: speed-up over skipping off (target >= 2x): -: **NOT MEASURED**" in text)
        check("no None in the report", "None" not in text)

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            bench_compare.main([a, b])
        cmp = out.getvalue()
        check("compare: RoPE B/A 0.50", "| rope/avx512/llm_t4096_h32_d128_1d | 3000 | 1500 | 0.50 | 1.20 | 0.60 |"
              in cmp)
        check("compare: N-D x 1-D in both runs",
              "| alibi_nd_softmax/avx512/image_h12_32x32_l2 | 500 | 500 | 1.00 | 1.25 | 1.25 |" in cmp)
        check("compare: flag in A only", "| rope | llm_t4096_h32_d128_1d | 1.50x (avx512 vs avx2) | no flag |" in cmp)
        check("compare: FMA chains row", "| roofline_fma/avx512/chains | 1000 | 1000 | 1.00 | 100 | 100 |" in cmp)
        for line in cmp.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")] if line.startswith("| ") else []
            if len(cells) > 1 and all(c in ("", "-", "None") for c in cells[1:]):
                check(f"compare: a row with no figure: {line}", False)
        check("no None in the compare output", "None" not in cmp)
    print(f"test_bench_report: {'FAILED ' + str(len(failures)) if failures else 'all checks passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
