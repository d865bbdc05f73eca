#!/usr/bin/env python3
"""Two benchmark runs (two CPUs, or before/after a change) side by side, as markdown on stdout.

    scripts/bench_compare.py A.json B.json [--filter REGEX]

For every benchmark of either file: ns per element in A and in B and the ratio B/A of times (below 1: B is
faster), then the issue-A speedups, the best-ISA-vs-memcpy ratio and the fused attention's targets of each run.
Both files come from bench/posattn_bench (scripts/bench-report writes them to reports/).
"""
import argparse
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_report import (ISSUE_A_SHAPE, attn_targets, best_softmax, fmt, get, issue_a, load,  # noqa: E402
                          md_table, ratio, set_isas, shapes_in)


def label(path, context):
    return f"{os.path.basename(path)}: {context.get('host_name', '?')}, {context.get('cpu_model', '?')}, " \
           f"best ISA {context.get('posattn_best_isa', '?')}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--filter", help="only benchmark names matching this regular expression")
    args = ap.parse_args(argv)
    ctx_a, res_a, skip_a = load(args.a)
    ctx_b, res_b, skip_b = load(args.b)
    print("# posattn benchmarks side by side")
    print()
    print(f"- **A** {label(args.a, ctx_a)}")
    print(f"- **B** {label(args.b, ctx_b)}")
    print()

    print(f"## Issue A ({ISSUE_A_SHAPE}) and the memcpy roofline")
    print()
    rows = []
    ia, ib = dict((r[0], r) for r in issue_a(res_a)), dict((r[0], r) for r in issue_a(res_b))
    for isa in ia:
        rows.append([f"{isa}/scalar (target >= {ia[isa][2]:g}x)", fmt(ia[isa][1], suffix="x"),
                     fmt(ib[isa][1], suffix="x")])
    for shape in shapes_in(res_a, skip_a) + [s for s in shapes_in(res_b, skip_b) if s not in shapes_in(res_a, skip_a)]:
        cells = []
        for res in (res_a, res_b):
            best, mc = best_softmax(res, shape), get(res, "roofline_memcpy", "rows", shape)
            cells.append(f"{fmt(ratio(best.time_ns, mc.time_ns))} ({best.variant})" if best and mc else "-")
        rows.append([f"best x memcpy, {shape}"] + cells)
    print(md_table(["measure", "A", "B"], rows))
    print()

    # The fused attention's targets (issue 12), each run against itself. ISAS is set from A's context (or B's when
    # A has none), the order in which the values are listed.
    if any(r.family == "attention" for r in list(res_a.values()) + list(res_b.values())):
        set_isas(ctx_a if ctx_a.get("posattn_isas") else ctx_b, res_a or res_b)
        print("## Attention targets (issue 12), each run within itself")
        print()
        rows = []
        for ta, tb in zip(attn_targets(res_a), attn_targets(res_b)):
            cells = [", ".join(f"{i} {fmt(x)}" for i, x in t[1].items()) or "-" for t in (ta, tb)]
            rows.append([f"{ta[0]} (target {ta[2]})"] + cells)
        print(md_table(["measure", "A", "B"], rows))
        print()

    print("## Every benchmark: ns per element")
    print()
    names = list(res_a) + [n for n in res_b if n not in res_a]
    if args.filter:
        names = [n for n in names if re.search(args.filter, n)]
    rows = []
    for n in names:
        a, b = res_a.get(n), res_b.get(n)
        rows.append([n, fmt(a.ns_per_elem if a else None, 3), fmt(b.ns_per_elem if b else None, 3),
                     fmt(ratio(b.time_ns, a.time_ns) if a and b else None)])
    print(md_table(["benchmark", "A ns/elem", "B ns/elem", "B/A time"], rows))
    only = sorted({r.name for r in skip_a} ^ {r.name for r in skip_b})
    if only:
        print()
        print(f"Skipped in only one run: {len(only)} benchmarks (e.g. {', '.join(only[:4])}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
