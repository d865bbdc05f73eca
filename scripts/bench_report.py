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
    m = re.fullmatch(r"decode_h(\d+)_nq(\d+)_nk(\d+)(_cold)?", shape)
    if m:
        h, nq, nk = (int(m.group(i)) for i in (1, 2, 3))
        return h, nq, nk, "decode" + (", rotating buffers (cold)" if m.group(4) else "")
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
        for p in parts[3:]:
            if p.startswith("threads:"):
                self.threads = int(p.split(":")[1])
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


ROPE_TARGETS = {"mixed": 2.5}  # x memcpy on AVX-512, per-head tables; shared tables: 1.3


def rope_section(results):
    """Rotary embeddings: time per call per ISA and the ratio to a memcpy of the same tensor (one run)."""
    shapes = []
    for r in results.values():
        if is_rope(r) and r.shape not in shapes:
            shapes.append(r.shape)
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
        target = ROPE_TARGETS["mixed"] if s.endswith("_mixed") else 1.3
        r512 = ratio(rs["avx512"].time_ns, mc.time_ns) if rs.get("avx512") and mc else None
        verdict = "-" if r512 is None else (f"<= {target:g}: " + ("PASS" if r512 <= target else "FAIL"))
        rows.append([s] + [fmt(rs[i].time_ns / 1e3 if rs[i] else None, 1) for i in present] +
                    [fmt(mc.time_ns / 1e3 if mc else None, 1)] +
                    [fmt(ratio(rs[i].time_ns, mc.time_ns) if rs[i] and mc else None) for i in present] + [verdict])
    lines.append(md_table(header, rows))
    lines.append("")
    return lines


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


def report(path, context, results, skipped, png_name=None):
    lines = []
    host = context.get("host_name", "?")
    lines.append(f"# posattn benchmark report: {host}, {context.get('date', '?')}")
    lines.append("")
    lines.append(f"- Source: `{os.path.basename(path)}` (one thread unless stated; Google Benchmark says "
                 f"its own library is a {context.get('library_build_type', '?')} build: that is Debian's package, and it only "
                 f"concerns the bookkeeping around the timed loop).")
    lines.append(f"- CPU: {context.get('cpu_model', '?')}, {context.get('num_cpus', '?')} CPUs at "
                 f"{context.get('mhz_per_cpu', '?')} MHz; caches: " + ", ".join(
                     f"L{c.get('level')} {c.get('type', '')[:1].lower()} {c.get('size', 0) // 1024} KiB"
                     + (f" x{c.get('num_sharing')}" if c.get("num_sharing", 0) > 1 else "")
                     for c in context.get("caches", [])))
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
                 f"oneDNN: {context.get('onednn', '?')}; XNNPACK: {context.get('xnnpack', '?')}; "
                 f"SLEEF rooflines: {context.get('sleef_rooflines', '?').strip() or 'none'}.")
    lines.append("- Shapes: scale 1/sqrt(128), slopes posattn_alibi_slopes(H, 8); KV-cache default positions except "
                 "the time series (cumulative sums of exponential gaps). ns/elem = time per call / (H*nq*nk); GB/s "
                 "counts S read + P written (8 B/elem; 12 B/elem for peers' bias+softmax, which also read the "
                 "materialised bias; 4 B/elem for the external bias, written only).")
    lines.append("")

    # Issue A.
    lines.append("## Issue A check (H=32, nq=1, nk=4096, one thread, one run)")
    lines.append("")
    for isa, s, target, ok in issue_a(results):
        verdict = "PASS" if ok else ("FAIL" if s is not None else "NOT MEASURED")
        lines.append(f"- **{isa}/scalar = {fmt(s, suffix='x')}** (target >= {target:g}x): {verdict}")
    lines.append("")

    shapes = shapes_in(results, skipped)

    # Summary: ns per element.
    if shapes:
        lines += fused_sections(results, shapes)

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

    lines += rope_section(results)
    lines += attention_section(results, context)

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

    if png_name:
        lines.append("## Plot")
        lines.append("")
        lines.append(f"![ns per element against row length, decode shapes]({png_name})")
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


def plot(results, out_png, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decode = {}
    for r in results.values():
        m = re.fullmatch(r"decode_h32_nq1_nk(\d+)", r.shape)
        if m and r.family != "alibi_bias" and r.family != "mt_alibi_softmax":
            decode.setdefault((r.family, r.variant), []).append((int(m.group(1)), r.ns_per_elem))
    palette = ["tab:orange", "tab:red", "tab:purple", "tab:cyan", "tab:olive", "tab:pink"]
    isa_color = {"scalar": "black"}
    isa_color.update((i, palette[k % len(palette)]) for k, i in enumerate(i for i in ISAS if i != "scalar"))
    styles = [(("alibi_softmax", i), f"posattn {i}", dict(color=isa_color[i], ls="-", marker="o", lw=2))
              for i in ISAS]
    styles += [(("roofline_memcpy", "rows"), "memcpy roofline (same bytes)",
                dict(color="gray", ls=":", marker="s", lw=2))]
    styles += [(("roofline_sleef_expf", i), f"SLEEF expf {i} roofline", dict(color=isa_color[i], ls=":", marker="^"))
               for i in ISAS]
    peer_color = {"peer_onednn": "tab:blue", "peer_xnnpack": "tab:green", "peer_naive": "tab:brown"}
    styles += [((p[0], p[1]), p[2], dict(color=peer_color[p[0]], ls="-." if p[1] == "bias+softmax" else "--",
                                         marker="x")) for p in PEERS]
    if not decode:
        return False
    fig, ax = plt.subplots(figsize=(9.5, 5.5), dpi=110)
    xs = set()
    for key, label, style in styles:
        pts = sorted(decode.get(key, []))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
            xs.update(p[0] for p in pts)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted(xs))
    ax.set_xticklabels([str(x) for x in sorted(xs)])
    ax.minorticks_off()
    ax.set_xlabel("row length nk (decode: H=32, nq=1)")
    ax.set_ylabel("ns per element (lower is better)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return True


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
    try:
        png_ok = plot(results, png_path, f"posattn decode softmax, {context.get('host_name', '?')}: "
                                f"{context.get('cpu_model', '?')}")
    except ImportError as e:
        print(f"bench_report: no plot ({e}); install python3-matplotlib", file=sys.stderr)
        png_ok = False
    text = report(args.json, context, results, skipped,
                  os.path.relpath(png_path, os.path.dirname(md_path) or ".") if png_ok else None)
    with open(md_path, "w") as f:
        f.write(text + "\n")
    for isa, s, target, ok in issue_a(results):
        verdict = "PASS" if ok else ("FAIL" if s is not None else "NOT MEASURED")
        print(f"issue A: {isa}/scalar on H=32 nq=1 nk=4096 = {fmt(s, suffix='x')} (target >= {target:g}x): {verdict}")
    for measure, vals, target, v in attn_targets(results) if any(r.family == "attention" for r in results.values()) \
            else []:
        print(f"attention: {measure} (target {target}): {v}")
    print(f"report: {md_path}" + (f"\nplot:   {png_path}" if png_ok else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
