#!/usr/bin/env python3
"""Two benchmark runs (two CPUs, or before/after a change) side by side, as markdown on stdout.

    scripts/bench_compare.py A.json B.json [--filter REGEX]

Sections: the targets of each run measured within that run (issue A, N-D ALiBi against 1-D, RoPE against memcpy,
LieRE against the FMA peak, the fused attention), the kernels where the dispatched ISA is more than 5% slower than
another ISA of the same CPU, the dispatched kernel of every kernel and shape (rows aligned across CPUs whose ISAs
differ), then one table per benchmark family (the report's sections) with every benchmark: time per call in A and
in B, the ratio B/A of times (below 1: B is faster) and the family's within-run ratios in A and in B (x memcpy,
x 1-D, fraction of the FMA peak, ...). A benchmark in only one run says "not run" or why it was skipped in the
other. Both files come from bench/posattn_bench (scripts/bench-report writes them to reports/).
"""
import argparse
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report as br  # noqa: E402


class Run:
    """One JSON with everything computed within it (ISAS differ between CPUs: each run is summarised with its own)."""

    def __init__(self, path):
        self.path = path
        self.context, self.results, self.skipped = br.load(path)
        br.set_isas(self.context, self.results)
        self.isas = list(br.ISAS)
        self.targets = [(f"{isa}/scalar, {br.ISSUE_A_SHAPE}", s, f">= {t:g}x",
                         "met" if ok else ("MISSED" if s is not None else "not measured"))
                        for isa, s, t, ok in br.issue_a(self.results)]
        self.targets += br.nd_targets(self.results) + br.rope_targets(self.results) + br.liere_targets(self.results)
        if any(r.family == "attention" for r in self.results.values()):
            for measure, vals, target, verdict in br.attn_targets(self.results):
                v = vals.get(br.ATTN_TARGET_ISA, vals.get("avx2/avx512"))
                self.targets.append((measure, v, target, verdict.split(" ")[0]))
        self.compared, self.slow, _ = br.dispatch_check(self.context, self.results)
        self.ratios = {n: br.within_run_ratios(self.results, self.context, r) for n, r in self.results.items()}
        self.dispatched = {}
        for r in self.results.values():
            if r.family in br.OP_OF_FAMILY and r.variant == br.dispatched_isa(self.context, self.results, r.family):
                self.dispatched[(r.family, r.shape, r.threads)] = r
        self.skip_reason = {r.name: r.error for r in self.skipped}

    def label(self):
        c = self.context
        return f"{os.path.basename(self.path)}: {c.get('host_name', '?')}, {c.get('cpu_model', '?')}, " \
               f"{c.get('num_cpus', '?')} CPUs at {c.get('mhz_per_cpu', '?')} MHz, caches {br.cache_text(c)}; " \
               f"dispatch {c.get('posattn_dispatch') or 'best ISA ' + c.get('posattn_best_isa', '?')}"

    def absent(self, name):
        return f"skipped: {self.skip_reason[name]}" if name in self.skip_reason else "not run"


def time_text(r):
    return br.fmt(r.time_ns / 1e3, 1) if r else None


def side_by_side(runs, keys, cell, ratio_of=None):
    """Rows [key, A, B, B/A]: cell(run, key) -> text or None (None: absent); ratio_of(run, key) -> time_ns."""
    rows = []
    for k in keys:
        a, b = (cell(run, k) for run in runs)
        ta, tb = (ratio_of(run, k) for run in runs) if ratio_of else (None, None)
        rows.append([a if a is not None else "not run", b if b is not None else "not run",
                     br.fmt(br.ratio(tb, ta)) if ta and tb else ""])
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--filter", help="only benchmark names matching this regular expression")
    args = ap.parse_args(argv)
    runs = (Run(args.a), Run(args.b))
    keep = (lambda n: re.search(args.filter, n)) if args.filter else (lambda n: True)
    out = print
    out("# posattn benchmarks side by side")
    out()
    out(f"- **A** {runs[0].label()}")
    out(f"- **B** {runs[1].label()}")
    out()

    out("## Targets, each run measured within itself")
    out()
    measures = [t[0] for t in runs[0].targets] + [t[0] for t in runs[1].targets
                                                  if t[0] not in [u[0] for u in runs[0].targets]]
    by_run = [{t[0]: t for t in run.targets} for run in runs]
    rows = []
    for m in measures:
        cells = []
        for d in by_run:
            t = d.get(m)
            cells.append(f"{br.fmt(t[1])} ({t[3]})" if t and t[1] is not None else (t[3] if t else "not run"))
        target = (by_run[0].get(m) or by_run[1].get(m))[2]
        rows.append([m, target] + cells)
    out(br.md_table(["measure", "target", "A", "B"], rows))
    out()

    out(f"## Dispatched ISA more than {br.DISPATCH_TOLERANCE:.0%} slower than another ISA of the same CPU")
    out()
    out(f"A: {len(runs[0].slow)} of {runs[0].compared} kernel/shape pairs; B: {len(runs[1].slow)} of "
        f"{runs[1].compared}.")
    out()
    flagged = {}
    for k, run in enumerate(runs):
        for f, s, d, _, fastest, _, x in run.slow:
            flagged.setdefault((f, s), [None, None])[k] = f"{x:.2f}x ({d} vs {fastest})"
    if flagged:
        out(br.md_table(["kernel", "shape", "A dispatched / fastest", "B dispatched / fastest"],
                        [[f, s, a or "no flag", b or "no flag"] for (f, s), (a, b) in flagged.items()]))
        out()

    keys = list(runs[0].dispatched) + [k for k in runs[1].dispatched if k not in runs[0].dispatched]
    keys = [k for k in keys if keep(f"{k[0]}/{k[1]}")]
    if keys:
        out("## Dispatched kernels: us per call (ISA), rows aligned across CPUs")
        out()

        def cell(run, k):
            r = run.dispatched.get(k)
            return f"{time_text(r)} ({r.variant})" if r else None
        rows = side_by_side(runs, keys, cell, lambda run, k: getattr(run.dispatched.get(k), "time_ns", None))
        out(br.md_table(["kernel", "shape", "A", "B", "B/A time"],
                        [[k[0], k[1] + (f" ({k[2]} thread{'s' if k[2] > 1 else ''})" if k[0].startswith("mt_")
                                        else "")] + row for k, row in zip(keys, rows)]))
        out()

    names = list(runs[0].results) + [n for n in runs[1].results if n not in runs[0].results]
    names += [r.name for run in runs for r in run.skipped if r.name not in names and
              any(r.name in other.results for other in runs)]
    names = [n for n in names if keep(n)]
    for key, title, labels in br.FAMILIES:
        fam = []
        for n in names:
            r = runs[0].results.get(n) or runs[1].results.get(n)
            if r and br.family_of(r) == key and n not in fam:
                fam.append(n)
        if not fam:
            continue
        used = [lab for lab in labels if any(lab in run.ratios.get(n, {}) for run in runs for n in fam)]
        out(f"## {title}: us per call, B/A" + (", " + ", ".join(used) + " within each run" if used else ""))
        out()
        rows = []
        for n in fam:
            ra, rb = (run.results.get(n) for run in runs)
            row = [n, time_text(ra) or runs[0].absent(n), time_text(rb) or runs[1].absent(n),
                   br.fmt(br.ratio(rb.time_ns, ra.time_ns)) if ra and rb else ""]
            for lab in used:
                row += [br.fmt(run.ratios.get(n, {}).get(lab)) if lab in run.ratios.get(n, {}) else ""
                        for run in runs]
            rows.append(row)
        header = ["benchmark", "A us", "B us", "B/A time"]
        for lab in used:
            header += [f"A {lab}", f"B {lab}"]
        out(br.md_table(header, rows))
        out()
    return 0


if __name__ == "__main__":
    sys.exit(main())
