#!/usr/bin/env python3
"""Turns the JSON of build-bench/bench/posattn_bench into a markdown report and a PNG plot.

    scripts/bench_report.py reports/HOST-DATE.json [--md OUT.md] [--png OUT.png]

Benchmark names follow bench/bench.h: <family>/<variant>/<shape>[/threads:N][/real_time]. Times are the calling
thread's CPU time for the one-thread benchmarks and wall-clock time for the multi-core ones (the names ending in
/real_time); with --benchmark_repetitions the median aggregate is used. Ratios:
  speedup vs scalar   time(scalar) / time(this)                      (> 1: faster than the scalar reference)
  x memcpy            time(this) / time(memcpy of the same rows)    (1.0: as fast as copying S to P)
  peer / posattn      time(peer) / time(best posattn ISA)            (> 1: posattn faster)
"""
import argparse
import json
import math
import os
import re
import sys

ISSUE_A_SHAPE = "decode_h32_nq1_nk4096"
ISSUE_A_TARGETS = {"avx512": 8.0, "avx2": 5.0}
# The ISAs of this build, scalar first: read from the benchmark context ("posattn_isas", the library's own list,
# best first) by load(), never written here, so a new ISA is reported without editing this script.
ISAS = []
PEERS = [
    ("peer_onednn", "softmax", "oneDNN softmax"),
    ("peer_onednn", "bias+softmax", "oneDNN bias+softmax"),
    ("peer_xnnpack", "softmax", "XNNPACK softmax"),
    ("peer_xnnpack", "bias+softmax", "XNNPACK bias+softmax"),
    ("peer_naive", "multipass", "naive multi-pass C"),
]
TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def shape_info(shape):
    """(heads, nq, nk, description) from a shape name of bench/cases.c."""
    m = re.fullmatch(r"decode_h(\d+)_nq(\d+)_nk(\d+)(_cold|_irregular)?", shape)
    if m:
        h, nq, nk = (int(m.group(i)) for i in (1, 2, 3))
        return h, nq, nk, "decode" + {"_cold": ", rotating buffers (cold)",
                                      "_irregular": ", sorted irregular key positions"}.get(m.group(4), "")
    m = re.fullmatch(r"prefill_h(\d+)_n(\d+)(_causal)?", shape)
    if m:
        h, n = int(m.group(1)), int(m.group(2))
        return h, n, n, "prefill" + (", causal" if m.group(3) else "")
    m = re.fullmatch(r"timeseries_h(\d+)_n(\d+)", shape)
    if m:
        h, n = int(m.group(1)), int(m.group(2))
        return h, n, n, "irregular time series"
    return None, None, None, shape


class Result:
    def __init__(self, b):
        name = b.get("run_name", b["name"])
        parts = [p for p in name.split("/") if p != "real_time"]
        self.wall_clock = name.split("/")[-1] == "real_time"
        self.name = "/".join(parts)
        self.family, self.variant, self.shape = (parts + ["", "", ""])[:3]
        self.threads = 1
        self.mode = None  # far_field's skip:on | skip:off | summary_update:1token
        for p in parts[3:]:
            if p.startswith("threads:"):
                self.threads = int(p.split(":")[1])
            elif ":" in p:
                self.mode = p
        self.error = b.get("error_message") if b.get("error_occurred") else None
        unit = TIME_UNIT_NS.get(b.get("time_unit", "ns"), 1.0)
        nan = float("nan")
        self.real_ns = b.get("real_time", nan) * unit if not self.error else nan
        self.cpu_ns = b.get("cpu_time", nan) * unit if not self.error else nan
        self.time_ns = self.real_ns if self.wall_clock else self.cpu_ns
        self.elems = b.get("elems")
        if not self.elems:
            h, nq, nk, _ = shape_info(self.shape)
            self.elems = h * nq * nk if h else float("nan")
        self.bytes_per_s = b.get("bytes_per_second", float("nan"))
        self.read_fraction = b.get("kv_read_fraction")

    @property
    def disturbed(self):
        """A one-thread benchmark whose wall-clock time exceeds its CPU time by 15%: it was preempted."""
        return not self.wall_clock and self.real_ns > 1.15 * self.cpu_ns

    @property
    def ns_per_elem(self):
        return self.time_ns / self.elems

    @property
    def gbps(self):
        return self.bytes_per_s / 1e9


def load(path):
    """Returns (context, {name: Result}, [Result skipped])."""
    with open(path) as f:
        data = json.load(f)
    results, skipped = {}, []
    benches = data.get("benchmarks", [])
    has_median = any(b.get("aggregate_name") == "median" for b in benches)
    for b in benches:
        if has_median and b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if has_median and b.get("run_type") != "aggregate" and not b.get("error_occurred"):
            continue
        r = Result(b)
        if r.error:
            if r.name not in results and all(x.name != r.name for x in skipped):
                skipped.append(r)
            continue
        results[r.name] = r
    return data.get("context", {}), results, skipped


def get(results, family, variant, shape, threads=None):
    key = f"{family}/{variant}/{shape}" + (f"/threads:{threads}" if threads else "")
    return results.get(key)


def ratio(a, b):
    if a is None or b is None or not (a == a and b == b) or b == 0:
        return None
    return a / b


def fmt(x, digits=2, suffix=""):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}{suffix}"
    if abs(x) >= 10:
        return f"{x:.1f}{suffix}"
    return f"{x:.{digits}f}{suffix}"


def is_softmax_table(r):
    """The cases of the fused-softmax tables (bench/cases.c): the other families have sections of their own."""
    return r.family in ("alibi_softmax", "alibi_bias", "roofline_sleef_expf") or \
        (r.family == "roofline_memcpy" and r.variant == "rows") or any(r.family == p[0] and r.variant == p[1]
                                                                        for p in PEERS)


def shapes_in(results, skipped):
    seen = []
    for r in list(results.values()) + skipped:
        if is_softmax_table(r) and r.shape not in seen:
            seen.append(r.shape)
    return seen


def is_rope(r):
    """The rotary-embedding cases of bench/rope.c: rope/<isa>/<shape> and roofline_memcpy/rope/<shape>."""
    return r.family == "rope" or (r.family == "roofline_memcpy" and r.variant == "rope")


def rope_target(shape):
    """x memcpy on AVX-512: per-head (mixed) tables <= 2.5, shared tables <= 1.3 (bench/rope.c)."""
    return 2.5 if shape.endswith("_mixed") else 1.3


def ordered_shapes(results, keep):
    """The shapes of the results for which keep(r) holds, in the order of the run."""
    shapes = []
    for r in results.values():
        if keep(r) and r.shape not in shapes:
            shapes.append(r.shape)
    return shapes


def rope_targets(results):
    """[(measure, value, target text, verdict)] of the rotary targets (AVX-512 time / memcpy time, one run)."""
    out = []
    for s in ordered_shapes(results, is_rope):
        r, mc = get(results, "rope", "avx512", s), get(results, "roofline_memcpy", "rope", s)
        v = ratio(r.time_ns, mc.time_ns) if r and mc else None
        out.append((f"rope/avx512/{s} x memcpy", v, f"<= {rope_target(s):g}", verdict_text(v, v is not None and
                                                                                           v <= rope_target(s))))
    return out


def verdict_text(value, ok):
    return "not measured" if value is None else ("met" if ok else "MISSED")


def rope_section(results):
    """Rotary embeddings: time per call per ISA and the ratio to a memcpy of the same tensor (one run)."""
    shapes = ordered_shapes(results, is_rope)
    if not shapes:
        return []
    present = [i for i in ISAS if any(get(results, "rope", i, s) for s in shapes)]
    lines = ["## Rotary embeddings (posattn_rope_apply): us per call, x memcpy of the same tensor", ""]
    lines.append("In place over [tokens][heads][dims] (8 B/elem: read and written); the memcpy roofline copies the same "
                 "tensor to another buffer. Targets on AVX-512: shared tables <= 1.3x memcpy, per-head (mixed) <= 2.5x.")
    lines.append("")
    header = ["shape"] + [f"{i} us" for i in present] + ["memcpy us"] + [f"{i} x memcpy" for i in present] + \
        ["avx512 target"]
    rows = []
    for s in shapes:
        mc = get(results, "roofline_memcpy", "rope", s)
        rs = {i: get(results, "rope", i, s) for i in present}
        r512 = ratio(rs["avx512"].time_ns, mc.time_ns) if rs.get("avx512") and mc else None
        target = rope_target(s)
        verdict = f"<= {target:g}: " + ("no avx512 row" if r512 is None else ("met" if r512 <= target else "MISSED"))
        rows.append([s] + [fmt(rs[i].time_ns / 1e3 if rs[i] else None, 1) for i in present] +
                    [fmt(mc.time_ns / 1e3 if mc else None, 1)] +
                    [fmt(ratio(rs[i].time_ns, mc.time_ns) if rs[i] and mc else None) for i in present] + [verdict])
    lines.append(md_table(header, rows))
    lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# ALiBi with N-D positions (bench/alibi_nd.c)
# ---------------------------------------------------------------------------------------------------------------

ND_KINDS = ("1d_default", "split", "1d", "l1", "l2")  # longest suffix first: "1d_default" before "1d"
ND_KIND_TEXT = {"l2": "L2 (Euclidean)", "l1": "L1", "split": "split heads (one axis per head group)",
                "1d": "1-D given positions (baseline)", "1d_default": "1-D default positions"}
# (group, kind): the largest N-D time / 1-D time of the same group, ISA and run (bench/alibi_nd.c, issue 16).
ND_TARGETS = {("image_h12_32x32", "l2"): 1.3, ("vol4d_h8_4x8x8x8", "l1"): 1.5}
ND_TARGET_ISAS = ("avx512", "avx2")


def nd_split(shape):
    """image_h12_32x32_q32_l2 -> ("image_h12_32x32_q32", "l2"); (shape, None) for a name of another grammar."""
    for kind in ND_KINDS:
        if shape.endswith("_" + kind):
            return shape[:-len(kind) - 1], kind
    return shape, None


def nd_over_1d(results, r):
    """Time of an N-D case / time of the 1-D case of the same group, family and ISA (the cost of the positions)."""
    group, kind = nd_split(r.shape)
    base = get(results, r.family, r.variant, f"{group}_1d") if kind else None
    return ratio(r.time_ns, base.time_ns) if base else None


def nd_targets(results):
    out = []
    for (group, kind), target in ND_TARGETS.items():
        for isa in ND_TARGET_ISAS:
            r = get(results, "alibi_nd_softmax", isa, f"{group}_{kind}")
            if not r and not any(x.family == "alibi_nd_softmax" and x.variant == isa for x in results.values()):
                continue
            v = nd_over_1d(results, r) if r else None
            out.append((f"alibi_nd_softmax/{isa}/{group}_{kind} / {group}_1d", v, f"<= {target:g}",
                        verdict_text(v, v is not None and v <= target)))
    return out


def nd_section(results):
    """N-D ALiBi: per group of shapes (same H, nq, nk), each position kind against the group's 1-D case."""
    rs = [r for r in results.values() if r.family in ("alibi_nd_softmax", "alibi_nd_bias")]
    if not rs:
        return []
    lines = ["## ALiBi with N-D positions: time per call and N-D time / 1-D time", ""]
    lines.append("Queries = keys = the tokens of a grid in raster order; within a group every case has the same H, nq "
                 "and nk, so the ratio to the group's 1-D case (float positions 0..n-1 given) is the cost of the "
                 "N-D distances, same ISA, same run. `q32`: only the first 32 tokens query (S and P stay in L2: "
                 "the compute, not the memory). Targets (AVX-512 and AVX2): 2-D L2 image <= 1.3x, 4-D L1 volume "
                 "<= 1.5x.")
    lines.append("")
    for family, title in (("alibi_nd_softmax", "Fused softmax (posattn_alibi_softmax)"),
                          ("alibi_nd_bias", "External bias (posattn_alibi_bias)")):
        shapes = ordered_shapes(results, lambda r: r.family == family)
        if not shapes:
            continue
        present = [i for i in ISAS if any(get(results, family, i, s) for s in shapes)]
        header = ["group", "positions"] + [f"{i} us" for i in present] + [f"{i} ns/elem" for i in present] + \
            [f"{i} x 1-D" for i in present] + ["target"]
        rows = []
        for s in shapes:
            group, kind = nd_split(s)
            cases = {i: get(results, family, i, s) for i in present}
            target = ND_TARGETS.get((group, kind)) if family == "alibi_nd_softmax" else None
            verdicts = []
            for i in ND_TARGET_ISAS:
                v = nd_over_1d(results, cases[i]) if cases.get(i) else None
                if target and v is not None:
                    verdicts.append(f"{i} " + ("met" if v <= target else "MISSED"))
            rows.append([group, ND_KIND_TEXT.get(kind, kind or s)] +
                        [fmt(cases[i].time_ns / 1e3 if cases[i] else None, 1) for i in present] +
                        [fmt(cases[i].ns_per_elem if cases[i] else None, 3) for i in present] +
                        [fmt(nd_over_1d(results, cases[i]) if cases[i] else None) for i in present] +
                        [f"<= {target:g}: " + (", ".join(verdicts) or "not measured") if target else ""])
        lines.append(f"### {title}")
        lines.append("")
        lines.append(md_table(header, rows))
        lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# LieRE (bench/liere.c) and the FMA peak ("chains")
# ---------------------------------------------------------------------------------------------------------------

LIERE_FAMILIES = (("liere_rot", "Rotations (posattn_liere_rotations): exponentials of the generator combinations"),
                  ("liere_apply", "Apply (posattn_liere_apply) to q and k, 12 + 12 heads"),
                  ("liere_apply_backward", "Apply backward (POSATTN_LIERE_BACKWARD, R^T)"))
# (family, shape, measure, target): "peak" is the fraction of the same ISA's FMA peak, "memcpy" time / memcpy time.
LIERE_TARGETS = (("liere_rot", "b64_shared", "peak", 0.40), ("liere_apply", "b64_shared", "peak", 0.50),
                 ("liere_apply", "b64_perhead", "memcpy", 1.3))


def fma_peak(results, isa):
    """FLOP/s of roofline_fma/<isa>/chains (independent FMA chains in registers; items are flops)."""
    r = get(results, "roofline_fma", isa, "chains")
    return r.elems / (r.time_ns * 1e-9) if r else None


def flops(r):
    """FLOP/s of a LieRE case (its elements counter is the flops of a call)."""
    return r.elems / (r.time_ns * 1e-9) if r and r.time_ns > 0 else None


def of_fma_peak(results, r):
    return ratio(flops(r), fma_peak(results, r.variant)) if r else None


def liere_x_memcpy(results, r):
    mc = get(results, "roofline_memcpy", "liere_apply", r.shape) if r else None
    return ratio(r.time_ns, mc.time_ns) if mc else None


def liere_targets(results):
    out = []
    for family, shape, measure, target in LIERE_TARGETS:
        r = get(results, family, "avx512", shape)
        if measure == "peak":
            v = of_fma_peak(results, r)
            out.append((f"{family}/avx512/{shape}: fraction of the FMA peak", v, f">= {target:.2f}",
                        verdict_text(v, v is not None and v >= target)))
        else:
            v = liere_x_memcpy(results, r) if r else None
            out.append((f"{family}/avx512/{shape} x memcpy", v, f"<= {target:g}",
                        verdict_text(v, v is not None and v <= target)))
    return out


def liere_section(results):
    if not any(r.family.startswith("liere_") for r in results.values()):
        return []
    lines = ["## LieRE: time per call, GFLOP/s and the fraction of the FMA peak", ""]
    lines.append("1024 tokens on a 32 x 32 grid, q and k of 12 heads x 64 dims, block size b = 2..64, generators "
                 "shared by the heads or one set per head. GFLOP/s counts the products the kernel performs "
                 "(bench/liere.c); 'of peak' = GFLOP/s / the same ISA's FMA peak (roofline_fma/<isa>/chains, next "
                 "section); 'x memcpy' = time / time of a memcpy moving the bytes apply must read and write. Targets on AVX-512: "
                 "rotations b64_shared >= 0.40 of peak, apply b64_shared >= 0.50 of peak, apply b64_perhead <= 1.3x "
                 "memcpy.")
    lines.append("")
    for family, title in LIERE_FAMILIES:
        shapes = ordered_shapes(results, lambda r: r.family == family)
        if not shapes:
            continue
        present = [i for i in ISAS if any(get(results, family, i, s) for s in shapes)]
        apply_like = family != "liere_rot"
        header = ["shape"] + [f"{i} us" for i in present] + [f"{i} GFLOP/s" for i in present] + \
            [f"{i} of peak" for i in present if fma_peak(results, i)]
        if apply_like:
            header += ["memcpy us"] + [f"{i} x memcpy" for i in present]
        if family == "liere_apply_backward":
            header += [f"{i} x forward" for i in present]
        rows = []
        for s in shapes:
            cases = {i: get(results, family, i, s) for i in present}
            row = [s] + [fmt(cases[i].time_ns / 1e3 if cases[i] else None, 1) for i in present]
            row += [fmt(flops(cases[i]) / 1e9 if cases[i] else None, 1) for i in present]
            row += [fmt(of_fma_peak(results, cases[i])) for i in present if fma_peak(results, i)]
            if apply_like:
                mc = get(results, "roofline_memcpy", "liere_apply", s)
                row += [fmt(mc.time_ns / 1e3 if mc else None, 1)]
                row += [fmt(liere_x_memcpy(results, cases[i]) if cases[i] else None) for i in present]
            if family == "liere_apply_backward":
                row += [fmt(ratio(cases[i].time_ns, get(results, "liere_apply", i, s).time_ns)
                            if cases[i] and get(results, "liere_apply", i, s) else None) for i in present]
            rows.append(row)
        lines.append(f"### {title}")
        lines.append("")
        lines.append(md_table(header, rows))
        lines.append("")
    skipped_rot = [s for s in ordered_shapes(results, lambda r: r.family == "liere_rot")
                   if not get(results, "liere_rot", "scalar", s)]
    if skipped_rot and any(get(results, "liere_rot", "scalar", s) for s in
                           ordered_shapes(results, lambda r: r.family == "liere_rot")):
        lines.append(f"Scalar rotations not run on {', '.join(skipped_rot)} (bench/liere.c: too long a call; "
                     "b64_shared times the same kernel).")
        lines.append("")
    lines.append("### Targets (AVX-512, one run)")
    lines.append("")
    for measure, v, target, verdict in liere_targets(results):
        lines.append(f"- {measure} = {fmt(v)} (target {target}): **{verdict}**")
    lines.append("")
    return lines


def chains_section(results, context):
    """The FMA peak (roofline_fma/<isa>/chains): the reference of the LieRE and prefill-attention fractions."""
    rs = [get(results, "roofline_fma", i, "chains") for i in ISAS]
    rs = [r for r in rs if r]
    if not rs:
        return []
    mhz = context.get("mhz_per_cpu")
    lines = ["## FMA peak (roofline_fma/<isa>/chains)", ""]
    lines.append("Independent chains of vector FMAs in registers, no memory traffic: the most FLOP/s one core reaches "
                 "with the ISA's vectors. The LieRE and prefill-attention fractions of peak divide by it. Flops per "
                 f"cycle use the nominal clock Google Benchmark reports ({mhz or '?'} MHz; boost clocks run faster, so "
                 "this can exceed the core's nominal width).")
    lines.append("")
    rows = []
    for r in rs:
        f = flops(r)
        rows.append([r.variant, fmt(r.time_ns / 1e3, 1), fmt(f / 1e9, 1),
                     fmt(f / (mhz * 1e6) if mhz else None, 1)])
    best = max(rs, key=lambda r: flops(r))
    lines.append(md_table(["ISA", "us/call", "GFLOP/s", "flops/cycle at nominal clock"], rows))
    lines.append("")
    lines.append(f"Best: {best.variant}, " + ", ".join(f"{r.variant} {fmt(ratio(flops(r), flops(best)))} of it"
                                                        for r in rs if r is not best) + ".")
    lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# The dispatched ISA against the other ISAs of this CPU
# ---------------------------------------------------------------------------------------------------------------

# Benchmark family -> the posattn_op whose dispatch it measures (posattn_op_name).
OP_OF_FAMILY = {"alibi_softmax": "alibi_softmax", "alibi_nd_softmax": "alibi_softmax",
                "mt_alibi_softmax": "alibi_softmax", "alibi_bias": "alibi_bias", "alibi_nd_bias": "alibi_bias",
                "rope": "rope", "liere_rot": "liere_rotations", "liere_apply": "liere_apply",
                "liere_apply_backward": "liere_apply", "attention": "attention", "mt_attention": "attention"}
DISPATCH_TOLERANCE = 0.05


def dispatched_isa(context, results, family):
    """The ISA posattn runs family's operation on with the ISA chosen automatically: the context's
    "posattn_dispatch" (bench/cases.c); older JSON: the best ISA, or the next one down with rows of the family."""
    op = OP_OF_FAMILY[family]
    for item in context.get("posattn_dispatch", "").split():
        name, _, isa = item.partition(":")
        if name == op:
            return isa
    order = ISAS[::-1]
    best = context.get("posattn_best_isa")
    if best in order:
        order = order[order.index(best):]
    for isa in order:
        if any(r.family == family and r.variant == isa for r in results.values()):
            return isa
    return None


def dispatch_check(context, results, tolerance=DISPATCH_TOLERANCE):
    """Compares, per kernel and shape, the dispatched ISA with every other ISA that ran on this CPU (a row in the
    results: the unsupported ones are skipped by the benchmark). Returns (pairs compared, [(family, shape,
    dispatched isa, its ns, fastest isa, its ns, ratio)] where the dispatched ISA is slower by more than tolerance,
    [(family, shape, dispatched isa)] where the dispatched ISA has no row but others do)."""
    groups = {}
    for r in results.values():
        if r.family in OP_OF_FAMILY:
            groups.setdefault((r.family, r.shape, r.threads), {})[r.variant] = r
    compared, slow, missing = 0, [], []
    for (family, shape, threads), by_isa in groups.items():
        if len(by_isa) < 2:
            continue
        disp = dispatched_isa(context, results, family)
        label = shape + (f" ({threads} thread{'s' if threads > 1 else ''})" if family.startswith("mt_") else "")
        if disp not in by_isa:
            missing.append((family, label, disp))
            continue
        compared += 1
        fastest = min(by_isa.values(), key=lambda r: r.time_ns)
        d = by_isa[disp]
        if fastest is not d and d.time_ns > (1 + tolerance) * fastest.time_ns:
            slow.append((family, label, disp, d.time_ns, fastest.variant, fastest.time_ns,
                         d.time_ns / fastest.time_ns))
    slow.sort(key=lambda x: -x[6])
    return compared, slow, missing


def dispatch_section(context, results):
    compared, slow, missing = dispatch_check(context, results)
    if not compared and not missing:
        return []
    disp = context.get("posattn_dispatch") or f"not in this JSON; taken as the best ISA, " \
                                                  f"{context.get('posattn_best_isa', '?')}"
    lines = ["## Dispatched ISA against the other ISAs of this CPU", ""]
    lines.append(f"For every kernel and shape measured on two or more ISAs: is the ISA posattn dispatches to "
                 f"(per operation: {disp}) more than {DISPATCH_TOLERANCE:.0%} slower than another ISA that ran "
                 f"here? One run: a flag within a few percent of the threshold may be noise; confirm it with "
                 f"`scripts/bench-report --no-install --repetitions 3 --filter '<family>/.*/<shape>$'`.")
    lines.append("")
    lines.append(f"**{len(slow)} of {compared}** kernel/shape pairs flagged.")
    lines.append("")
    if slow:
        rows = [[f, s, d, fmt(dt / 1e3, 1), b, fmt(bt / 1e3, 1), fmt(x, suffix="x")]
                for f, s, d, dt, b, bt, x in slow]
        lines.append(md_table(["kernel", "shape", "dispatched", "us", "fastest", "us", "dispatched / fastest"], rows))
        lines.append("")
    if missing:
        lines.append("No row of the dispatched ISA (not compared): " +
                     ", ".join(f"{f}/{s} ({d})" for f, s, d in missing[:8]) + (" ..." if len(missing) > 8 else "")
                     + ".")
        lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Families (the report's sections and the compare command's tables)
# ---------------------------------------------------------------------------------------------------------------

# (key, title, the labels of its within-run ratios) in the order of the report.
FAMILIES = (("softmax", "Fused bias + softmax (1-D), its rooflines and peers", ("x memcpy",)),
            ("bias", "External bias (posattn_alibi_bias)", ("speedup vs scalar",)),
            ("alibi_nd", "ALiBi with N-D positions", ("x 1-D",)),
            ("rope", "Rotary embeddings", ("x memcpy",)),
            ("liere", "LieRE", ("of FMA peak", "x memcpy")),
            ("chains", "FMA peak (chains)", ("flops/cycle",)),
            ("attention", "Fused attention", ("x read", "speedup vs 1 thread")),
            ("far_field", "Far-field skipping", ("speedup vs skip off", "of K/V read", "of a decode step")),
            ("multicore", "Multi-core softmax", ("speedup vs 1 thread",)),
            ("other", "Other benchmarks", ()))


def family_of(r):
    """The report section a benchmark belongs to (every benchmark belongs to exactly one)."""
    f, v = r.family, r.variant
    if f == "alibi_softmax" or f == "roofline_sleef_expf" or (f == "roofline_memcpy" and v == "rows") or \
            any(f == p[0] and v == p[1] for p in PEERS):
        return "softmax"
    if f == "alibi_bias":
        return "bias"
    if f in ("alibi_nd_softmax", "alibi_nd_bias"):
        return "alibi_nd"
    if is_rope(r):
        return "rope"
    if f.startswith("liere_") or (f == "roofline_memcpy" and v == "liere_apply"):
        return "liere"
    if f == "roofline_fma":
        return "chains"
    if f in ("attention", "mt_attention", "roofline_read") or (f == "peer_onednn" and v.startswith("attention")):
        return "attention"
    if f == "mt_alibi_softmax":
        return "multicore"
    if f == "far_field":
        return "far_field"
    return "other"


def within_run_ratios(results, context, r):
    """{label: value} of the family's ratios (FAMILIES) for one benchmark, within its own run; the labels that do
    not apply to it are left out."""
    fam = family_of(r)
    out = {}
    if fam == "softmax":
        mc = get(results, "roofline_memcpy", "rows", r.shape)
        out["x memcpy"] = ratio(r.time_ns, mc.time_ns) if mc else None
    elif fam == "bias":
        sc = get(results, "alibi_bias", "scalar", r.shape)
        out["speedup vs scalar"] = ratio(sc.time_ns, r.time_ns) if sc else None
    elif fam == "alibi_nd":
        out["x 1-D"] = nd_over_1d(results, r)
    elif fam == "rope":
        mc = get(results, "roofline_memcpy", "rope", r.shape)
        out["x memcpy"] = ratio(r.time_ns, mc.time_ns) if mc else None
    elif fam == "liere":
        if r.family.startswith("liere_"):
            out["of FMA peak"] = of_fma_peak(results, r)
        if r.family.startswith("liere_apply"):
            out["x memcpy"] = liere_x_memcpy(results, r)
    elif fam == "chains":
        mhz = context.get("mhz_per_cpu")
        out["flops/cycle"] = flops(r) / (mhz * 1e6) if mhz else None
    elif fam == "attention" and r.family == "attention":
        read = attn_read_best(results, r.shape)
        out["x read"] = ratio(r.time_ns, read.time_ns) if read else None
    elif fam == "far_field":
        out.update(far_ratios(results, r))
    elif fam == "attention" and r.family == "mt_attention" or fam == "multicore":
        one = get(results, r.family, r.variant, r.shape, 1)
        out["speedup vs 1 thread"] = ratio(one.time_ns, r.time_ns) if one else None
    return {k: v for k, v in out.items() if v is not None}


# ---------------------------------------------------------------------------------------------------------------
# The fused attention (bench/attention.c, issue 12)
# ---------------------------------------------------------------------------------------------------------------

ATTN_DECODE = re.compile(r"decode_h(\d+)_kv(\d+)_d(\d+)_(f16|f32)_nk(\d+)(?:_(tok|head))?")
ATTN_PREFILL = re.compile(r"prefill_h(\d+)_d(\d+)_(f16|f32)_n(\d+)_causal")
ATTN_TARGET_ISA = "avx512"
ATTN_HEADLINE = "decode_h32_kv32_d128_f16_nk32768_tok"  # the shape of the roofline, peer and split-KV targets


def attn_read_shape(shape):
    """The roofline_read shape with the same K and V bytes: decode_h32_kv8_d128_f16_nk4096_tok -> decode_kv8_..."""
    m = ATTN_DECODE.fullmatch(shape)
    return f"decode_kv{m.group(2)}_d{m.group(3)}_{m.group(4)}_nk{m.group(5)}" if m else None


def attn_read_best(results, shape):
    """The fastest read-only roofline over the shape's K + V bytes (any variant: plain C or an ISA's)."""
    rs = [r for r in results.values() if r.family == "roofline_read" and r.shape == attn_read_shape(shape)]
    return min(rs, key=lambda r: r.time_ns) if rs else None


def attn_peer(results, shape):
    """The oneDNN unfused peer of a shape (its name has no layout: it runs on its own head-major f32 copies)."""
    m = ATTN_DECODE.fullmatch(shape)
    if m:
        shape = shape[:m.start(6) - 1] if m.group(6) else shape
    return get(results, "peer_onednn", "attention_unfused", shape)


def attn_mha_peer(shape):
    """decode_h32_kv8_... (GQA) -> decode_h8_kv8_... (the MHA call with one query head per KV head), else None."""
    m = ATTN_DECODE.fullmatch(shape)
    if not m or m.group(1) == m.group(2):
        return None
    return f"decode_h{m.group(2)}_kv{m.group(2)}" + shape[m.end(2):]


def attn_flops(r, shape):
    """Prefill flops counting only the unmasked products: q.k and p.v, 2 * d each, per valid logit (elems)."""
    m = ATTN_PREFILL.fullmatch(shape)
    return 4.0 * int(m.group(2)) * r.elems if m else None


def attn_fma_peak(results, isa):
    """FLOP/s of roofline_fma/<isa>/chains (bench/liere.c; items are flops)."""
    r = get(results, "roofline_fma", isa, "chains")
    return r.elems / (r.time_ns * 1e-9) if r else None


def attn_shape_key(shape):
    m = ATTN_DECODE.fullmatch(shape)
    if m:
        return (0, int(m.group(5)), m.group(4), -int(m.group(2)), -int(m.group(1)), m.group(6) != "tok")
    m = ATTN_PREFILL.fullmatch(shape)
    return (1, int(m.group(4)), m.group(3), 0, 0, False) if m else (2, 0, shape, 0, 0, False)


def attn_targets(results):
    """[(measure, {isa: value}, target text, verdict)] for the issue's speed targets, within this one run. The
    verdict is on AVX-512 (the issue's ISA); the other ISAs' values are shown for information."""
    isas = [i for i in ISAS if any(r.family in ("attention", "mt_attention") and r.variant == i
                                   for r in results.values())]
    out = []

    def verdict(values, ok, how):
        v = values.get(ATTN_TARGET_ISA)
        if v is None:
            return "NOT MEASURED (no avx512 attention row in this run)"
        return ("met" if ok(v) else "MISSED") + how(v)

    def each(fn):
        return {i: fn(i) for i in isas if fn(i) is not None}

    hl = ATTN_HEADLINE
    read = attn_read_best(results, hl)
    vals = each(lambda i: ratio(read.time_ns, get(results, "attention", i, hl).time_ns)
                if read and get(results, "attention", i, hl) else None)
    out.append(("decode f16 nk=32768 Hkv=32 token-major: fraction of the read roofline of the same bytes", vals,
                ">= 0.85", verdict(vals, lambda v: v >= 0.85,
                                   lambda v: "" if v >= 0.85 else f" by {0.85 / v:.2f}x (time)")))
    gqa = sorted({r.shape for r in results.values() if r.family == "attention" and attn_mha_peer(r.shape)},
                 key=attn_shape_key)

    def worst_gqa(i):
        rs = [ratio(get(results, "attention", i, s).time_ns, get(results, "attention", i, attn_mha_peer(s)).time_ns)
              for s in gqa if get(results, "attention", i, s) and get(results, "attention", i, attn_mha_peer(s))]
        return max(rs) if rs else None
    vals = each(worst_gqa)
    out.append(("GQA H=32/Hkv=8 time / MHA H=8 time, worst decode shape", vals, "<= 1.2",
                verdict(vals, lambda v: v <= 1.2, lambda v: "" if v <= 1.2 else f" by {v / 1.2:.2f}x")))
    for t in ("f16", "f32"):
        shape = f"prefill_h32_d128_{t}_n1024_causal"
        vals = each(lambda i: ratio(attn_flops(get(results, "attention", i, shape), shape) /
                                    (get(results, "attention", i, shape).time_ns * 1e-9), attn_fma_peak(results, i))
                    if get(results, "attention", i, shape) and attn_fma_peak(results, i) else None)
        out.append((f"prefill {t} 1024x1024 causal: fraction of the same ISA's FMA peak (unmasked products)", vals,
                    ">= 0.50", verdict(vals, lambda v: v >= 0.5,
                                       lambda v: "" if v >= 0.5 else f" by {0.5 / v:.2f}x")))
    peer = attn_peer(results, hl)
    vals = each(lambda i: ratio(peer.time_ns, get(results, "attention", i, hl).time_ns)
                if peer and get(results, "attention", i, hl) else None)
    out.append(("oneDNN unfused peer time / posattn time, decode f16 nk=32768 Hkv=32", vals, ">= 3",
                verdict(vals, lambda v: v >= 3, lambda v: "" if v >= 3 else f" by {3 / v:.2f}x")))
    vals = each(lambda i: ratio(get(results, "mt_attention", i, hl, 1).time_ns,
                                get(results, "mt_attention", i, hl, 2).time_ns)
                if get(results, "mt_attention", i, hl, 1) and get(results, "mt_attention", i, hl, 2) else None)
    out.append(("split-KV, decode f16 nk=32768: 1-thread time / 2-thread time", vals, ">= 1.8",
                verdict(vals, lambda v: v >= 1.8, lambda v: "" if v >= 1.8 else f" by {1.8 / v:.2f}x")))
    shapes = {r.shape for r in results.values() if r.family == "attention"}
    rs = [ratio(get(results, "attention", "avx2", s).time_ns, get(results, "attention", "avx512", s).time_ns)
          for s in shapes if get(results, "attention", "avx2", s) and get(results, "attention", "avx512", s)]
    worst = max(rs) if rs else None
    v = "NOT MEASURED (no avx2 and avx512 attention rows in this run)" if worst is None else \
        ("met" if worst <= 1.6 else f"MISSED by {worst / 1.6:.2f}x")
    out.append(("AVX2 time / AVX-512 time, worst attention shape", {"avx2/avx512": worst} if worst else {},
                "<= 1.6", v))
    return out


def attention_section(results, context):
    """The fused attention: decode and prefill tables, split-KV, and the issue's targets, from one run."""
    rs = [r for r in results.values() if r.family in ("attention", "mt_attention")]
    if not rs:
        return []
    isas = [i for i in ISAS if any(r.variant == i for r in rs)]
    shapes = sorted({r.shape for r in rs if r.family == "attention"}, key=attn_shape_key)
    decode = [s for s in shapes if ATTN_DECODE.fullmatch(s)]
    prefill = [s for s in shapes if ATTN_PREFILL.fullmatch(s)]
    cpu = context.get("cpu_model", "?")
    lines = [f"## Attention (posattn_attention, fused over a KV cache): {cpu}", ""]
    lines.append("Head size 128, scale 1/sqrt(128), ALiBi slopes posattn_alibi_slopes(H, 8), KV-cache default "
                 "positions. tok: token-major K/V [nk][Hkv][128] (llama.cpp); head: head-major [Hkv][nk][128]. "
                 "GB/s counts the K + V bytes read. x read = time / time of the fastest read-only vector sum over "
                 "the same K + V bytes (roofline_read; 1.0 is read speed). GQA/MHA = time of H=32 over Hkv=8 / time "
                 "of H=8 over Hkv=8 (the same K/V bytes). peer/posattn = time of the unfused peer (oneDNN matmul "
                 "QK^T, posattn_alibi_softmax, oneDNN matmul PV, one thread, f32: the f16 K/V converted to f32 "
                 "head-major copies beforehand, untimed) / time of posattn (> 1: posattn faster).")
    lines.append("")
    if decode:
        header = ["shape", "read roofline GB/s"] + [f"{i} us" for i in isas] + [f"{i} GB/s" for i in isas] + \
            [f"{i} x read" for i in isas] + [f"{i} GQA/MHA" for i in isas] + ["peer us"] + \
            [f"peer/{i}" for i in isas]
        rows = []
        for s in decode:
            read, peer = attn_read_best(results, s), attn_peer(results, s)
            a = {i: get(results, "attention", i, s) for i in isas}
            mha = attn_mha_peer(s)
            row = [s, fmt(read.gbps if read else None, 1)]
            row += [fmt(a[i].time_ns / 1e3 if a[i] else None, 1) for i in isas]
            row += [fmt(a[i].gbps if a[i] else None, 1) for i in isas]
            row += [fmt(ratio(a[i].time_ns, read.time_ns) if a[i] and read else None) for i in isas]
            row += [fmt(ratio(a[i].time_ns, get(results, "attention", i, mha).time_ns)
                        if a[i] and mha and get(results, "attention", i, mha) else None) for i in isas]
            row += [fmt(peer.time_ns / 1e3 if peer else None, 1)]
            row += [fmt(ratio(peer.time_ns, a[i].time_ns) if a[i] and peer else None, suffix="x") for i in isas]
            rows.append(row)
        lines.append("### Decode (nq = 1), one thread")
        lines.append("")
        lines.append(md_table(header, rows))
        lines.append("")
    if prefill:
        header = ["shape"] + [f"{i} ms" for i in isas] + [f"{i} GFLOP/s" for i in isas] + \
            [f"{i} of FMA peak" for i in isas] + ["peer ms"] + [f"peer/{i}" for i in isas]
        rows = []
        for s in prefill:
            peer = attn_peer(results, s)
            a = {i: get(results, "attention", i, s) for i in isas}
            fl = {i: attn_flops(a[i], s) / (a[i].time_ns * 1e-9) if a[i] else None for i in isas}
            row = [s] + [fmt(a[i].time_ns / 1e6 if a[i] else None, 1) for i in isas]
            row += [fmt(fl[i] / 1e9 if fl[i] else None, 1) for i in isas]
            row += [fmt(ratio(fl[i], attn_fma_peak(results, i)) if fl[i] else None) for i in isas]
            row += [fmt(peer.time_ns / 1e6 if peer else None, 1)]
            row += [fmt(ratio(peer.time_ns, a[i].time_ns) if a[i] and peer else None, suffix="x") for i in isas]
            rows.append(row)
        peaks = ", ".join(f"{i} {attn_fma_peak(results, i) / 1e9:.0f} GFLOP/s" for i in ISAS
                          if attn_fma_peak(results, i))
        lines.append("### Prefill (nq = nk = 1024, causal, H = Hkv = 32), one thread")
        lines.append("")
        lines.append("GFLOP/s counts 4 x 128 flops per unmasked logit (q.k and p.v); the FMA peak is "
                     f"roofline_fma/<isa>/chains of the same run ({peaks or 'not in this run'}).")
        lines.append("")
        lines.append(md_table(header, rows))
        lines.append("")
    mt = [r for r in rs if r.family == "mt_attention"]
    if mt:
        rows = []
        for (isa, shape) in sorted({(r.variant, r.shape) for r in mt}, key=lambda k: (ISAS.index(k[0])
                                                                                     if k[0] in ISAS else 99, k[1])):
            one = get(results, "mt_attention", isa, shape, 1)
            for r in sorted((r for r in mt if r.variant == isa and r.shape == shape), key=lambda r: r.threads):
                rows.append([shape, isa, r.threads, fmt(r.time_ns / 1e6, 2), fmt(r.gbps, 1),
                             fmt(ratio(one.time_ns, r.time_ns) if one else None, suffix="x")])
        lines.append("### Split-KV over threads (posattn_attention_partial per thread, then posattn_attention_merge;"
                     " wall-clock time)")
        lines.append("")
        lines.append(md_table(["shape", "ISA", "threads", "ms/call", "GB/s", "speedup vs 1 thread"], rows))
        lines.append("")
    lines.append("### Issue 12 targets (AVX-512, one run)")
    lines.append("")
    for measure, vals, target, v in attn_targets(results):
        shown = ", ".join(f"{i} {fmt(x)}" for i, x in vals.items()) or "-"
        lines.append(f"- {measure} (target {target}): {shown}: **{v}**")
    lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Far-field skipping (bench/attention.c far_field/*, issue 15)
# ---------------------------------------------------------------------------------------------------------------

FAR_TARGETS = ((131072, "speedup", 20.0), (131072, "read", 0.03), (32768, "speedup", 8.0), (4096, "speedup", 2.0))
FAR_UPDATE_TARGET = 0.05  # one token's summary update, as a fraction of one decode step (skip on)
FAR_NK = re.compile(r".*_nk(\d+)_tok(_varied)?")


def far_get(results, isa, shape, mode):
    return results.get(f"far_field/{isa}/{shape}/{mode}")


def far_ratios(results, r):
    """Within-run ratios of one far_field row: speed-up and bytes read (skip:on), cost per decode step (update)."""
    out = {}
    if r.mode == "skip:on":
        off = far_get(results, r.variant, r.shape, "skip:off")
        out["speedup vs skip off"] = ratio(off.time_ns, r.time_ns) if off else None
        out["of K/V read"] = r.read_fraction
    elif r.mode == "summary_update:1token":
        on = far_get(results, r.variant, r.shape, "skip:on")
        out["of a decode step"] = ratio(r.time_ns, on.time_ns) if on else None
    return out


def far_targets(results):
    """[(measure, value, target text, verdict)] of issue 15, on AVX-512 (the issue's ISA) in this run."""
    out = []
    for nk, what, target in FAR_TARGETS:
        shape = f"decode_h32_kv32_d128_f16_nk{nk}_tok"
        on = far_get(results, ATTN_TARGET_ISA, shape, "skip:on")
        vals = far_ratios(results, on) if on else {}
        v = vals.get("speedup vs skip off" if what == "speedup" else "of K/V read")
        if what == "speedup":
            out.append((f"nk={nk}: speed-up over skipping off", v, f">= {target:g}x",
                        "NOT MEASURED" if v is None else "PASS" if v >= target else "FAIL"))
        else:
            out.append((f"nk={nk}: fraction of K/V bytes read", v, f"<= {target:.0%}",
                        "NOT MEASURED" if v is None else "PASS" if v <= target else "FAIL"))
    ups = [far_ratios(results, r).get("of a decode step") for r in results.values()
           if r.family == "far_field" and r.mode == "summary_update:1token"]
    ups = [u for u in ups if u is not None]
    worst = max(ups) if ups else None
    out.append(("summary update per appended token / decode step with skipping, worst shape", worst,
                f"<= {FAR_UPDATE_TARGET:.0%}",
                "NOT MEASURED" if worst is None else "PASS" if worst <= FAR_UPDATE_TARGET else "FAIL"))
    return out


def far_field_section(results):
    rs = [r for r in results.values() if r.family == "far_field"]
    if not rs:
        return []
    lines = ["## Far-field skipping (posattn_attention_far_field against posattn_attention)", ""]
    lines.append("Decode, H = Hkv = 32, D = 128, f16 token-major K/V, slopes posattn_alibi_slopes(32, 8), scale "
                 "1/sqrt(128), default positions, eps 2^-24; q, k, v with unit-variance entries (_varied: keys whose "
                 "norms vary 4x across tokens, with two outlier channels per head). skip off: the same call without "
                 "skipping (every key read). read: the fraction of the K/V bytes the skipping call read (counted by "
                 "the kernel). update: posattn_kv_summary_update for one appended token, against one decode step "
                 "with skipping.")
    lines.append("")
    groups = sorted({(r.variant, r.shape) for r in rs},
                    key=lambda k: (ISAS.index(k[0]) if k[0] in ISAS else 99, bool(FAR_NK.fullmatch(k[1]) and
                                                                                  FAR_NK.fullmatch(k[1]).group(2)),
                                   int(FAR_NK.fullmatch(k[1]).group(1)) if FAR_NK.fullmatch(k[1]) else 0))
    rows = []
    for isa, shape in groups:
        off, on = far_get(results, isa, shape, "skip:off"), far_get(results, isa, shape, "skip:on")
        up = far_get(results, isa, shape, "summary_update:1token")
        rat = far_ratios(results, on) if on else {}
        rows.append([shape, isa, fmt(off.time_ns / 1e3 if off else None, 0), fmt(on.time_ns / 1e3 if on else None, 0),
                     fmt(rat.get("speedup vs skip off"), 1, "x"),
                     fmt(100 * rat["of K/V read"] if rat.get("of K/V read") is not None else None, 2, "%"),
                     fmt(up.time_ns / 1e3 if up else None, 2),
                     fmt(100 * far_ratios(results, up).get("of a decode step") if up and
                         far_ratios(results, up).get("of a decode step") else None, 2, "%")])
    lines.append(md_table(["shape", "ISA", "skip off us", "skip on us", "speed-up", "read", "update us",
                           "update / step"], rows))
    lines.append("")
    lines.append("### Issue 15 targets (AVX-512, one run)")
    lines.append("")
    for measure, v, target, verdict in far_targets(results):
        shown = "-" if v is None else (f"{v:.2%}" if "fraction" in measure or "update" in measure else f"{v:.1f}x")
        lines.append(f"- {measure} (target {target}): {shown}: **{verdict}**")
    lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Issue 16: short rows, sorted explicit positions, a mask shared by the heads (fused softmax, dispatched ISA)
# ---------------------------------------------------------------------------------------------------------------

def softmax_targets(context, results):
    """[(measure, value text, target text, verdict)] of issue 16 items 3-5, on the ISA the softmax dispatches to."""
    isa = dispatched_isa(context, results, "alibi_softmax")
    out = []

    def verdict(v, ok):
        return "NOT MEASURED" if v is None else "PASS" if ok else "FAIL"

    short = get(results, "alibi_softmax", isa, "decode_h32_nq1_nk16")
    per_row = short.time_ns / 32 if short else None
    out.append((f"{isa}: time per row of 16 keys (H=32)", fmt(per_row, 1, " ns"), "<= 20 ns",
                verdict(per_row, per_row is not None and per_row <= 20)))
    s512 = get(results, "alibi_softmax", isa, "decode_h32_nq1_nk512")
    dnn, mc = get(results, "peer_onednn", "softmax", "decode_h32_nq1_nk512"), \
        get(results, "roofline_memcpy", "rows", "decode_h32_nq1_nk512")
    v = ratio(dnn.time_ns, s512.time_ns) if dnn and s512 else None
    out.append((f"{isa}: oneDNN softmax / posattn at nk=512", fmt(v, 2, "x"), ">= 1.5x", verdict(v, v and v >= 1.5)))
    v = ratio(s512.time_ns, mc.time_ns) if mc and s512 else None
    out.append((f"{isa}: posattn / memcpy at nk=512", fmt(v, 2, "x"), "<= 2.5x", verdict(v, v and v <= 2.5)))
    for nk in (32768, 131072):
        a = get(results, "alibi_softmax", isa, f"decode_h32_nq1_nk{nk}_irregular")
        b = get(results, "alibi_softmax", isa, f"decode_h32_nq1_nk{nk}")
        v = ratio(a.time_ns, b.time_ns) if a and b else None
        out.append((f"{isa}: sorted explicit positions / default positions, nk={nk}", fmt(v, 2, "x"), "<= 1.1x",
                    verdict(v, v and v <= 1.1)))
    a = next((r for r in results.values() if r.family == "alibi_softmax_ggml_mask"), None)
    b = get(results, "alibi_softmax", a.variant, a.shape) if a else None
    v = ratio(a.time_ns, b.time_ns) if a and b else None
    out.append((f"{a.variant if a else isa}: mask shared by the heads (ggml's call) / positions in the kernel, "
                "prefill_h8_n4096", fmt(v, 2, "x"), "<= 1.15x", verdict(v, v and v <= 1.15)))
    return out


def softmax_targets_section(context, results):
    rows = softmax_targets(context, results)
    if all(r[3] == "NOT MEASURED" for r in rows):
        return []
    lines = ["## Issue 16 targets of the fused softmax (one run)", ""]
    lines += [f"- {m} (target {t}): {v}: **{verdict}**" for m, v, t, verdict in rows]
    lines.append("")
    return lines


def best_softmax(results, shape):
    best = None
    for isa in ISAS:
        r = get(results, "alibi_softmax", isa, shape)
        if r and (best is None or r.time_ns < best.time_ns):
            best = r
    return best


def issue_a(results):
    """[(isa, speedup, target, ok)] for the issue-A check, measured in this one run."""
    scalar = get(results, "alibi_softmax", "scalar", ISSUE_A_SHAPE)
    rows = []
    for isa, target in ISSUE_A_TARGETS.items():
        r = get(results, "alibi_softmax", isa, ISSUE_A_SHAPE)
        s = ratio(scalar.time_ns, r.time_ns) if scalar and r else None
        rows.append((isa, s, target, s is not None and s >= target))
    return rows


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def fused_sections(results, shapes):
    """The summary, ratio and per-shape tables of the fused softmax and everything compared with it."""
    lines = ["## Fused bias + softmax: ns per element"]
    lines.append("")
    lines.append("Scale 1/sqrt(128), slopes posattn_alibi_slopes(H, 8); KV-cache default positions except the time "
                 "series (cumulative sums of exponential gaps). ns/elem = time per call / (H*nq*nk); GB/s counts S "
                 "read + P written (8 B/elem; 12 B/elem for peers' bias+softmax, which also read the materialised "
                 "bias; 4 B/elem for the external bias, written only).")
    lines.append("")
    present_isas = [i for i in ISAS if any(get(results, "alibi_softmax", i, s) for s in shapes)]
    present_sleef = [i for i in ISAS if any(get(results, "roofline_sleef_expf", i, s) for s in shapes)]
    present_peers = [p for p in PEERS if any(get(results, p[0], p[1], s) for s in shapes)]
    header = ["shape", "H", "nq", "nk"] + [f"posattn {i}" for i in present_isas] + ["memcpy roofline"] + \
        [f"SLEEF expf {i}" for i in present_sleef] + [p[2] for p in present_peers]
    rows = []
    for s in shapes:
        h, nq, nk, _ = shape_info(s)
        row = [s, h, nq, nk]
        row += [fmt(getattr(get(results, "alibi_softmax", i, s), "ns_per_elem", None), 3) for i in present_isas]
        row.append(fmt(getattr(get(results, "roofline_memcpy", "rows", s), "ns_per_elem", None), 3))
        row += [fmt(getattr(get(results, "roofline_sleef_expf", i, s), "ns_per_elem", None), 3) for i in present_sleef]
        row += [fmt(getattr(get(results, p[0], p[1], s), "ns_per_elem", None), 3) for p in present_peers]
        rows.append(row)
    lines.append(md_table(header, rows))
    lines.append("")

    # Ratios.
    lines.append("## Ratios")
    lines.append("")
    lines.append("Speedups over the scalar path (time scalar / time ISA); the best posattn ISA against the memcpy "
                 "roofline (time / time of copying the same rows: 1.0 is copy speed); peers against the best posattn "
                 "ISA (time peer / time posattn: above 1, posattn is faster).")
    lines.append("")
    header = ["shape"] + [f"{i}/scalar" for i in present_isas if i != "scalar"] + \
        ["best ISA", "best x memcpy", "best GB/s", "memcpy GB/s"] + [f"{p[2]} / posattn" for p in present_peers]
    rows = []
    for s in shapes:
        scalar = get(results, "alibi_softmax", "scalar", s)
        best = best_softmax(results, s)
        mc = get(results, "roofline_memcpy", "rows", s)
        row = [s]
        for i in present_isas:
            if i == "scalar":
                continue
            r = get(results, "alibi_softmax", i, s)
            row.append(fmt(ratio(scalar.time_ns, r.time_ns) if scalar and r else None, suffix="x"))
        row += [best.variant if best else "-", fmt(ratio(best.time_ns, mc.time_ns) if best and mc else None),
                fmt(best.gbps if best else None, 1), fmt(mc.gbps if mc else None, 1)]
        for p in present_peers:
            r = get(results, p[0], p[1], s)
            row.append(fmt(ratio(r.time_ns, best.time_ns) if r and best else None, suffix="x"))
        rows.append(row)
    lines.append(md_table(header, rows))
    lines.append("")

    # Details per shape.
    lines.append("## Per shape")
    lines.append("")
    for s in shapes:
        h, nq, nk, desc = shape_info(s)
        lines.append(f"### {s} (H={h}, nq={nq}, nk={nk}; {desc})")
        lines.append("")
        scalar = get(results, "alibi_softmax", "scalar", s)
        mc = get(results, "roofline_memcpy", "rows", s)
        best = best_softmax(results, s)
        rows = []
        entries = [(f"posattn {i}", get(results, "alibi_softmax", i, s)) for i in ISAS]
        entries += [("memcpy roofline", mc)]
        entries += [(f"SLEEF expf {i}", get(results, "roofline_sleef_expf", i, s)) for i in ISAS]
        entries += [(p[2], get(results, p[0], p[1], s)) for p in PEERS]
        for label, r in entries:
            if not r:
                continue
            rows.append([label, fmt(r.time_ns / 1e3, 1), fmt(r.ns_per_elem, 3), fmt(r.gbps, 1),
                         fmt(ratio(scalar.time_ns, r.time_ns) if scalar else None, suffix="x"),
                         fmt(ratio(r.time_ns, mc.time_ns) if mc else None),
                         fmt(ratio(r.time_ns, best.time_ns) if best else None)])
        lines.append(md_table(["implementation", "us/call", "ns/elem", "GB/s", "speedup vs scalar",
                               "x memcpy", "x best posattn"], rows))
        lines.append("")

    return lines


def cache_text(context):
    """The data and unified caches: Google Benchmark's "caches" (from /sys), else bench/cases.c's "cpu_caches"
    (sysfs, else glibc's sysconf), else why there are none."""
    def size(n):
        return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 and n % (1024 * 1024) == 0 else f"{n // 1024} KiB"
    items = []
    for c in context.get("caches", []):
        if c.get("type") == "Instruction":
            continue
        kind = "d" if c.get("type") == "Data" else ""
        sharing = c.get("num_sharing", 0)
        items.append(f"L{c.get('level')}{kind} {size(c.get('size', 0))}" + (f" (shared by {sharing} CPUs)"
                                                                            if sharing > 1 else ""))
    if items:
        return ", ".join(items)
    source = ""
    for item in context.get("cpu_caches", "").split():
        fields = item.split(":")
        if fields[0] == "source":
            source = fields[1]
        elif len(fields) == 3 and fields[1].isdigit() and int(fields[1]) > 0:
            sharing = int(fields[2])
            items.append(f"{fields[0]} {size(int(fields[1]))}" +
                         (f" (shared by {sharing} CPUs)" if sharing > 1 else ""))
    if items:
        return ", ".join(items) + (" (glibc sysconf: /sys/devices/system/cpu/cpu0/cache is absent here; L3 may be "
                                   "the whole package's)" if source == "sysconf" else "")
    return "not reported (this JSON has neither Google Benchmark's 'caches', empty where " \
           "/sys/devices/system/cpu/cpu0/cache is absent, nor posattn_bench's 'cpu_caches')"


def plot_line(plots, family, what):
    if family not in plots:
        return []
    return [f"![{what}]({plots[family]})", ""]


def report(path, context, results, skipped, plots=None):
    """The markdown report; plots: {family key: image path relative to the report} (bench_plots.plot_all)."""
    plots = plots or {}
    lines = []
    host = context.get("host_name", "?")
    lines.append(f"# posattn benchmark report: {host}, {context.get('date', '?')}")
    lines.append("")
    lines.append(f"- Source: `{os.path.basename(path)}` (one thread unless stated; Google Benchmark says "
                 f"its own library is a {context.get('library_build_type', '?')} build: that is Debian's package, and it only "
                 f"concerns the bookkeeping around the timed loop).")
    lines.append(f"- CPU: {context.get('cpu_model', '?')}, {context.get('num_cpus', '?')} CPUs at "
                 f"{context.get('mhz_per_cpu', '?')} MHz; caches: {cache_text(context)}.")
    load = context.get("load_avg", [])
    lines.append(f"- Run: --benchmark_min_time={context.get('bench_min_time', '?')}, repetitions "
                 f"{context.get('bench_repetitions', '?')} (medians when > 1); posattn at "
                 f"{context.get('git_commit', '?')}; load average at start "
                 + (", ".join(f"{x:.2f}" for x in load) if load else "?")
                 + (" (**busy machine: other processes may have disturbed the timings, the multi-core ones "
                    "first**)" if load and load[0] > 0.5 else "") + ".")
    disturbed = [r for r in results.values() if r.disturbed]
    lines.append(f"- Timing: one-thread benchmarks in the calling thread's CPU time, multi-core ones in wall-clock time. "
                 f"{len(disturbed)} of {len(results)} one-thread benchmarks were preempted (wall-clock > 1.15 x CPU "
                 f"time)" + (": " + ", ".join(r.name for r in disturbed[:6]) + (" ..." if len(disturbed) > 6 else "")
                             if disturbed else "") + ".")
    lines.append(f"- posattn ISAs: {context.get('posattn_isas', '?')} (best: {context.get('posattn_best_isa', '?')}); "
                 f"dispatch per operation: {context.get('posattn_dispatch', 'not recorded')}; "
                 f"oneDNN: {context.get('onednn', '?')}; XNNPACK: {context.get('xnnpack', '?')}; "
                 f"SLEEF rooflines: {context.get('sleef_rooflines', '?').strip() or 'none'}.")
    counts = {}
    for r in results.values():
        counts[family_of(r)] = counts.get(family_of(r), 0) + 1
    lines.append("- Sections: " + ", ".join(f"{title} ({counts[key]} benchmarks)" for key, title, _ in FAMILIES
                                            if counts.get(key)) + ".")
    lines.append("")

    # Issue A.
    lines.append("## Issue A check (H=32, nq=1, nk=4096, one thread, one run)")
    lines.append("")
    for isa, s, target, ok in issue_a(results):
        verdict = "PASS" if ok else ("FAIL" if s is not None else "NOT MEASURED")
        lines.append(f"- **{isa}/scalar = {fmt(s, suffix='x')}** (target >= {target:g}x): {verdict}")
    lines.append("")

    lines += dispatch_section(context, results)
    lines += softmax_targets_section(context, results)

    shapes = shapes_in(results, skipped)
    if shapes:
        lines += fused_sections(results, shapes)
        lines += plot_line(plots, "softmax", "ns per element against row length, decode shapes")

    # External bias.
    bias_shapes = [s for s in shapes if any(get(results, "alibi_bias", i, s) for i in ISAS)]
    if bias_shapes:
        lines.append("## External bias (posattn_alibi_bias), decode shapes")
        lines.append("")
        present = [i for i in ISAS if any(get(results, "alibi_bias", i, s) for s in bias_shapes)]
        header = ["shape"] + [f"{i} ns/elem" for i in present] + [f"{i} GB/s" for i in present] + \
            [f"{i}/scalar" for i in present if i != "scalar"]
        rows = []
        for s in bias_shapes:
            rs = {i: get(results, "alibi_bias", i, s) for i in present}
            sc = rs.get("scalar")
            row = [s] + [fmt(getattr(rs[i], "ns_per_elem", None), 3) for i in present] + \
                [fmt(getattr(rs[i], "gbps", None), 1) for i in present] + \
                [fmt(ratio(sc.time_ns, rs[i].time_ns) if sc and rs[i] else None, suffix="x")
                 for i in present if i != "scalar"]
            rows.append(row)
        lines.append(md_table(header, rows))
        lines.append("")
        lines += plot_line(plots, "bias", "external bias, GB/s per ISA")

    lines += nd_section(results)
    lines += plot_line(plots, "alibi_nd", "N-D time / 1-D time per group and ISA")
    lines += rope_section(results)
    lines += plot_line(plots, "rope", "rotary time / memcpy time per shape and ISA")
    lines += liere_section(results)
    lines += plot_line(plots, "liere", "LieRE fraction of the FMA peak and x memcpy per shape and ISA")
    lines += chains_section(results, context)
    lines += plot_line(plots, "chains", "FMA peak per ISA")
    lines += attention_section(results, context)
    lines += plot_line(plots, "attention", "attention decode time / read roofline per shape and ISA")
    lines += far_field_section(results)
    lines += plot_line(plots, "far_field", "far-field decode time against nk, skipping on and off")

    # Multi-core.
    mt = [r for r in results.values() if r.family == "mt_alibi_softmax"]
    if mt:
        lines.append("## Multi-core scaling (rows split with the row-range API over pthreads)")
        lines.append("")
        rows = []
        for (isa, shape) in sorted({(r.variant, r.shape) for r in mt}):
            one = get(results, "mt_alibi_softmax", isa, shape, 1)
            for r in sorted((r for r in mt if r.variant == isa and r.shape == shape), key=lambda r: r.threads):
                rows.append([shape, isa, r.threads, fmt(r.time_ns / 1e6, 2), fmt(r.ns_per_elem, 3), fmt(r.gbps, 1),
                             fmt(ratio(one.time_ns, r.time_ns) if one else None, suffix="x")])
        lines.append(md_table(["shape", "ISA", "threads", "ms/call", "ns/elem", "GB/s", "speedup vs 1 thread"], rows))
        lines.append("")
        lines += plot_line(plots, "multicore", "multi-core speedup against threads")

    other = [r for r in results.values() if family_of(r) == "other"]
    if other:
        lines.append("## Other benchmarks (no section of their own yet)")
        lines.append("")
        lines.append(md_table(["benchmark", "us/call", "GB/s"],
                              [[r.name, fmt(r.time_ns / 1e3, 1), fmt(r.gbps, 1)] for r in other]))
        lines.append("")

    if skipped:
        lines.append("## Skipped")
        lines.append("")
        by_msg = {}
        for r in skipped:
            by_msg.setdefault(r.error, []).append(r.name)
        for msg, names in by_msg.items():
            kinds = sorted({"/".join(n.split("/")[:2]) for n in names})
            lines.append(f"- {msg}: {', '.join(kinds)} ({len(names)} benchmarks)")
        lines.append("")
    return "\n".join(lines)


def set_isas(context, results):
    """ISAS from the context's "posattn_isas" ("avx512:supported avx2:supported scalar:supported", best first),
    reversed; older JSON without it: the variants seen in the alibi_softmax rows."""
    listed = [item.split(":")[0] for item in context.get("posattn_isas", "").split()]
    if not listed:
        listed = sorted({r.variant for r in results.values() if r.family == "alibi_softmax"},
                        key=lambda i: (i != "scalar", i))[::-1]
    ISAS[:] = listed[::-1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("--md", help="markdown output (default: JSON path with .md)")
    ap.add_argument("--png", help="plot output (default: JSON path with .png)")
    args = ap.parse_args(argv)
    base = os.path.splitext(args.json)[0]
    md_path = args.md or base + ".md"
    png_path = args.png or base + ".png"
    context, results, skipped = load(args.json)
    set_isas(context, results)
    if not results:
        print(f"bench_report: no successful benchmark in {args.json}", file=sys.stderr)
        return 1
    # bench_plots imports this module by name: run as a script, this module is __main__, whose ISAS set_isas
    # filled, and a second import would start from an empty list.
    sys.modules.setdefault("bench_report", sys.modules[__name__])
    sys.dont_write_bytecode = True  # no __pycache__ in scripts/
    try:
        import bench_plots
        plots = bench_plots.plot_all(results, context, png_path)
    except ImportError as e:
        print(f"bench_report: no plots ({e}); install python3-matplotlib", file=sys.stderr)
        plots = {}
    md_dir = os.path.dirname(md_path) or "."
    text = report(args.json, context, results, skipped, {k: os.path.relpath(v, md_dir) for k, v in plots.items()})
    with open(md_path, "w") as f:
        f.write(text + "\n")
    for isa, s, target, ok in issue_a(results):
        verdict = "PASS" if ok else ("FAIL" if s is not None else "NOT MEASURED")
        print(f"issue A: {isa}/scalar on H=32 nq=1 nk=4096 = {fmt(s, suffix='x')} (target >= {target:g}x): {verdict}")
    for measure, vals, target, v in attn_targets(results) if any(r.family == "attention" for r in results.values()) \
            else []:
        print(f"attention: {measure} (target {target}): {v}")
    for measure, v, target, verdict in nd_targets(results) + rope_targets(results) + liere_targets(results):
        if v is None:
            continue  # not in this run (--filter)
        print(f"target: {measure} = {fmt(v)} (target {target}): {verdict}")
    compared, slow, _ = dispatch_check(context, results)
    print(f"dispatch: {len(slow)} of {compared} kernel/shape pairs where the dispatched ISA is more than "
          f"{DISPATCH_TOLERANCE:.0%} slower than another ISA" + "".join(
              f"\n  {f}/{d}/{s}: {x:.2f}x {b}" for f, s, d, _, b, _, x in slow))
    print(f"report: {md_path}" + "".join(f"\nplot:   {p}" for p in plots.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
