"""The report's plots, one PNG per benchmark family (matplotlib, Agg backend), from bench_report's results.

plot_all(results, context, first_png) writes first_png (the fused softmax against row length) and, next to it,
<first_png stem>-<family>.png for every other family present in the run; it returns {family key: path}.
"""
import os
import re

import bench_report as br


def _isa_colors():
    palette = ["tab:orange", "tab:red", "tab:purple", "tab:cyan", "tab:olive", "tab:pink"]
    colors = {"scalar": "black"}
    colors.update((i, palette[k % len(palette)]) for k, i in enumerate(i for i in br.ISAS if i != "scalar"))
    return colors


def _bars(plt, path, title, categories, series, ylabel, hlines=(), log=False):
    """Grouped bars: one group per category, one bar per series ({label: [value or None per category]})."""
    series = {k: v for k, v in series.items() if any(x is not None for x in v)}
    if not categories or not series:
        return False
    colors = _isa_colors()
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.35 * len(categories) * len(series) + 2.5)), 5.0), dpi=110)
    width = 0.8 / len(series)
    for k, (label, values) in enumerate(series.items()):
        xs = [c + (k - (len(series) - 1) / 2) * width for c in range(len(categories))]
        pts = [(x, v) for x, v in zip(xs, values) if v is not None]
        ax.bar([p[0] for p in pts], [p[1] for p in pts], width=width, label=label,
               color=colors.get(label.split()[0], None))
    line_styles = [("gray", ":"), ("tab:green", "--"), ("tab:blue", "-."), ("tab:brown", (0, (5, 1)))]
    for k, (y, text) in enumerate(hlines):
        color, ls = line_styles[k % len(line_styles)]
        ax.axhline(y, color=color, ls=ls, lw=1.3, label=text)
    if log:
        ax.set_yscale("log")
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _finish_log_log(plt, fig, ax, path, title, xs, xlabel, ylabel):
    """Log-log axes with the x ticks at the measured sizes (powers of two), the legend outside, then saves."""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted(xs))
    ax.set_xticklabels([str(x) for x in sorted(xs)])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _softmax(plt, results, path, title):
    decode = {}
    for r in results.values():
        m = re.fullmatch(r"decode_h32_nq1_nk(\d+)", r.shape)
        if m and br.family_of(r) == "softmax":
            decode.setdefault((r.family, r.variant), []).append((int(m.group(1)), r.ns_per_elem))
    if not decode:
        return False
    colors = _isa_colors()
    styles = [(("alibi_softmax", i), f"posattn {i}", dict(color=colors[i], ls="-", marker="o", lw=2)) for i in br.ISAS]
    styles += [(("roofline_memcpy", "rows"), "memcpy roofline (same bytes)",
                dict(color="gray", ls=":", marker="s", lw=2))]
    styles += [(("roofline_sleef_expf", i), f"SLEEF expf {i} roofline", dict(color=colors[i], ls=":", marker="^"))
               for i in br.ISAS]
    peer_color = {"peer_onednn": "tab:blue", "peer_xnnpack": "tab:green", "peer_naive": "tab:brown"}
    styles += [((p[0], p[1]), p[2], dict(color=peer_color[p[0]], ls="-." if p[1] == "bias+softmax" else "--",
                                         marker="x")) for p in br.PEERS]
    fig, ax = plt.subplots(figsize=(9.5, 5.5), dpi=110)
    xs = set()
    for key, label, style in styles:
        pts = sorted(decode.get(key, []))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
            xs.update(p[0] for p in pts)
    return _finish_log_log(plt, fig, ax, path, title, xs, "row length nk (decode: H=32, nq=1)",
                           "ns per element (lower is better)")


def _far_field(plt, results, path, title):
    """Time per call against nk, log-log, one line per (ISA, skipping on/off, key distribution)."""
    lines = {}
    for r in results.values():
        m = br.FAR_NK.fullmatch(r.shape)
        if r.family == "far_field" and m and r.mode in ("skip:on", "skip:off"):
            key = (r.variant, r.mode, bool(m.group(2)))
            lines.setdefault(key, []).append((int(m.group(1)), r.time_ns / 1e6))
    if not lines:
        return False
    colors = _isa_colors()
    fig, ax = plt.subplots(figsize=(9.5, 5.5), dpi=110)
    xs = set()
    for (isa, mode, varied), pts in sorted(lines.items()):
        pts.sort()
        xs.update(p[0] for p in pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colors.get(isa), marker="s" if varied else "o",
                ls="-" if mode == "skip:on" else ":", lw=2,
                label=f"{isa}, {mode.replace(':', ' ')}" + (", varied keys" if varied else ""))
    return _finish_log_log(plt, fig, ax, path, title, xs, "keys in the cache nk (decode: H = Hkv = 32, D = 128, f16)",
                           "ms per call (lower is better)")


def _per_isa(results, families, shapes, value):
    """{isa: [value(r) or None per shape]} over the ISAs with a row in one of families."""
    out = {}
    for isa in br.ISAS:
        vals = []
        for s in shapes:
            r = next((br.get(results, f, isa, s) for f in families if br.get(results, f, isa, s)), None)
            vals.append(value(r) if r else None)
        out[isa] = vals
    return out


def plot_all(results, context, first_png):
    """Writes the plots; returns {family key: path} of those written. Raises ImportError without matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cpu = f"{context.get('host_name', '?')}: {context.get('cpu_model', '?')}"
    stem = os.path.splitext(first_png)[0]
    written = {}

    def path(family):
        return first_png if family == "softmax" else f"{stem}-{family}.png"

    if _softmax(plt, results, path("softmax"), f"posattn decode softmax, {cpu}"):
        written["softmax"] = path("softmax")

    shapes = br.ordered_shapes(results, lambda r: r.family == "alibi_bias")
    if _bars(plt, path("bias"), f"External bias (posattn_alibi_bias), {cpu}", shapes,
             _per_isa(results, ["alibi_bias"], shapes, lambda r: r.gbps), "GB/s written (higher is better)"):
        written["bias"] = path("bias")

    shapes = [s for s in br.ordered_shapes(results, lambda r: r.family == "alibi_nd_softmax")
              if br.nd_split(s)[1] != "1d"]
    hl = [(t, f"target, {g}_{k}") for (g, k), t in br.ND_TARGETS.items()]
    if _bars(plt, path("alibi_nd"), f"N-D ALiBi softmax: time / 1-D time of the same grid, {cpu}", shapes,
             _per_isa(results, ["alibi_nd_softmax"], shapes, lambda r: br.nd_over_1d(results, r)),
             "N-D time / 1-D time (lower is better)", hlines=[(1.0, "1-D")] + hl):
        written["alibi_nd"] = path("alibi_nd")

    shapes = br.ordered_shapes(results, lambda r: r.family == "rope")
    if _bars(plt, path("rope"), f"Rotary embeddings: time / memcpy of the same tensor, {cpu}", shapes,
             _per_isa(results, ["rope"], shapes, lambda r: br.within_run_ratios(results, context, r).get("x memcpy")),
             "x memcpy (lower is better)", hlines=[(1.0, "memcpy"), (1.3, "target, shared tables"),
                                                   (2.5, "target, mixed")], log=True):
        written["rope"] = path("rope")

    rot = br.ordered_shapes(results, lambda r: r.family == "liere_rot")
    app = br.ordered_shapes(results, lambda r: r.family == "liere_apply")
    if rot or app:
        cats = [f"rot {s}" for s in rot] + [f"apply {s}" for s in app]
        series = {}
        for isa in br.ISAS:
            vals = [br.of_fma_peak(results, br.get(results, "liere_rot", isa, s)) for s in rot]
            vals += [br.of_fma_peak(results, br.get(results, "liere_apply", isa, s)) for s in app]
            series[isa] = vals
        if _bars(plt, path("liere"), f"LieRE: fraction of the same ISA's FMA peak, {cpu}", cats, series,
                 "fraction of FMA peak (higher is better)", hlines=[(0.4, "rot target"), (0.5, "apply target")]):
            written["liere"] = path("liere")

    chains = {i: br.flops(br.get(results, "roofline_fma", i, "chains")) for i in br.ISAS
              if br.get(results, "roofline_fma", i, "chains")}
    if _bars(plt, path("chains"), f"FMA peak (roofline_fma/<isa>/chains), {cpu}", ["chains"],
             {i: [v / 1e9] for i, v in chains.items()}, "GFLOP/s (one core)"):
        written["chains"] = path("chains")

    shapes = sorted({r.shape for r in results.values()
                     if r.family == "attention" and br.ATTN_DECODE.fullmatch(r.shape)}, key=br.attn_shape_key)
    if _bars(plt, path("attention"), f"Attention decode: time / read roofline of the same K, V bytes, {cpu}", shapes,
             _per_isa(results, ["attention"], shapes,
                      lambda r: br.within_run_ratios(results, context, r).get("x read")),
             "x read roofline (lower is better)", hlines=[(1.0, "read speed")], log=True):
        written["attention"] = path("attention")

    if _far_field(plt, results, path("far_field"), f"Far-field skipping: decode time against context, {cpu}"):
        written["far_field"] = path("far_field")

    mt = [r for r in results.values() if r.family == "mt_alibi_softmax"]
    if mt:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        colors = _isa_colors()
        for isa, shape in sorted({(r.variant, r.shape) for r in mt}):
            one = br.get(results, "mt_alibi_softmax", isa, shape, 1)
            pts = sorted((r.threads, one.time_ns / r.time_ns) for r in mt
                         if one and r.variant == isa and r.shape == shape)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{isa} {shape}",
                    color=colors.get(isa))
        top = max(r.threads for r in mt)
        ax.plot([1, top], [1, top], color="gray", ls=":", label="linear")
        ax.set_xlabel("threads")
        ax.set_ylabel("speedup vs 1 thread")
        ax.set_title(f"Multi-core fused softmax (wall-clock), {cpu}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path("multicore"))
        plt.close(fig)
        written["multicore"] = path("multicore")
    return written
