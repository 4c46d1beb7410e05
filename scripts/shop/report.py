#!/usr/bin/env python3
"""Writes the shop benchmark's report from a run directory of bench-shop.sh: per page and
system, the virtual-user runs (throughput, p50/p95/p99, errors), the open-loop rates up to
each system's knee, the browser page loads, and SVG plots beside the report.

    report.py RUN_DIR REPORT.md
"""
import json
import os
import sys

PAGES = ["home", "plp", "pdp"]
# The published run (HarperFast/harper-vs-micro-perf-test, k6 on one machine, one request
# then 1 s sleep per virtual user): Harper's p95 in ms at 20 / 200 / 2000 users; the
# microservices PLP and PDP failed (100 % errors) from 200 users up.
PUBLISHED_HARPER_P95 = {"home": [6.6, 7.0, 15.0], "plp": [15.7, 45.0, 846.0], "pdp": [7.2, 15.9, 41.3]}
PUBLISHED_USERS = [20, 200, 2000]
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]


def runs(run_dir, kind):
    """{(system, page, x): result} for the loadgen runs of `kind` ("vu" or "rate")."""
    out = {}
    for name in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, name, "result.json")
        parts = name.split("--")
        if len(parts) != 4 or parts[2] != kind:
            continue
        key = (parts[0], parts[1], int(parts[3]))
        if os.path.exists(os.path.join(run_dir, name, "no-answers")):
            out[key] = dict(NO_ANSWERS)
            if os.path.exists(path):
                with open(path) as f:
                    out[key]["counts"] = json.load(f)["counts"]
        elif os.path.exists(path):
            with open(path) as f:
                out[key] = json.load(f)
    return out


# A run in which the system answered nothing in the measured window.
NAN = float("nan")
NO_ANSWERS = {"throughput": 0.0, "counts": {"requests": 0, "ok": 0}, "no_answers": True,
              "latency_us": {"p50": NAN, "p99": NAN}, "percentile_curve": []}


def pct(r, q):
    """Percentile `q` in ms; p95 is read from the percentile curve."""
    lat = r["latency_us"]
    if q == 95:
        curve = r.get("percentile_curve") or []
        at = [p for p in curve if p[0] >= 95.0]
        v = at[0][1] if at else lat["p99"]
    else:
        v = lat[{50: "p50", 99: "p99"}[q]]
    return v / 1000.0


def errors(r):
    c = r["counts"]
    return c["requests"] - c["ok"]


def errors_text(r):
    if r.get("no_answers"):
        return f"no answer in the window ({r['counts']['requests']} sent)"
    return f"{errors(r)} of {r['counts']['requests']}"


def fmt_ms(v):
    if v != v:  # NaN: nothing measured
        return "–"
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"


def vu_table(vu, systems, page):
    rows = ["| system | users | req/s | p50 ms | p95 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
    for s in systems:
        for (sy, pg, n), r in sorted(vu.items(), key=lambda kv: kv[0][2]):
            if sy == s and pg == page:
                rows.append(f"| {s} | {n} | {r['throughput']:.0f} | {fmt_ms(pct(r, 50))} | "
                            f"{fmt_ms(pct(r, 95))} | {fmt_ms(pct(r, 99))} | {errors_text(r)} |")
    return "\n".join(rows)


def knee_table(rate, systems, page):
    rows = ["| system | highest rate held (req/s) | p50 ms | p99 ms | errors there |", "|---|---|---|---|---|"]
    for s in systems:
        held = [(n, r) for (sy, pg, n), r in rate.items() if sy == s and pg == page
                and not r.get("no_answers") and errors(r) <= r["counts"]["requests"] / 100 and pct(r, 99) < 100]
        if not held:
            rows.append(f"| {s} | none under the knee test | | | |")
            continue
        n, r = max(held, key=lambda x: x[0])
        rows.append(f"| {s} | {n} | {fmt_ms(pct(r, 50))} | {fmt_ms(pct(r, 99))} | {errors(r)} |")
    return "\n".join(rows)


def svg_plot(series, title, xlabel, ylabel, path, logx=True):
    """A line chart: series = {label: [(x, y), ...]}; y on a log scale (latency)."""
    import math
    w, h, left, bottom = 640, 360, 70, 50
    pts = [p for s in series.values() for p in s if p[1] > 0]
    if not pts:
        return
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    fx = (lambda x: math.log10(x)) if logx else (lambda x: x)
    x0, x1 = fx(min(xs)), fx(max(xs)) + 1e-9
    y0, y1 = math.log10(min(ys)), math.log10(max(ys)) + 1e-9
    X = lambda x: left + (fx(x) - x0) / (x1 - x0) * (w - left - 20)
    Y = lambda y: h - bottom - (math.log10(y) - y0) / (y1 - y0) * (h - bottom - 30)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<text x="{w/2}" y="18" text-anchor="middle" font-size="14">{title}</text>',
           f'<text x="{w/2}" y="{h-8}" text-anchor="middle">{xlabel}</text>',
           f'<text x="14" y="{h/2}" transform="rotate(-90 14 {h/2})" text-anchor="middle">{ylabel}</text>',
           f'<line x1="{left}" y1="{h-bottom}" x2="{w-20}" y2="{h-bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="30" x2="{left}" y2="{h-bottom}" stroke="black"/>']
    for e in range(math.floor(y0), math.ceil(y1) + 1):
        v = 10 ** e
        if min(ys) <= v <= max(ys) * 1.01:
            out.append(f'<text x="{left-6}" y="{Y(v)+4}" text-anchor="end">{v:g}</text>')
    for x in sorted(set(xs)):
        out.append(f'<text x="{X(x)}" y="{h-bottom+16}" text-anchor="middle">{x:g}</text>')
    for k, (label, s) in enumerate(series.items()):
        s = [p for p in s if p[1] > 0]
        if not s:
            continue
        c = COLORS[k % len(COLORS)]
        line = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in sorted(s))
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{line}"/>')
        out.append(f'<text x="{w-150}" y="{40 + 16*k}" fill="{c}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def main():
    run_dir, report = sys.argv[1], sys.argv[2]
    meta = json.load(open(os.path.join(run_dir, "meta.json")))
    systems = meta["systems"]
    vu, rate = runs(run_dir, "vu"), runs(run_dir, "rate")
    base = os.path.splitext(report)[0]
    lines = [f"# Shop: microlith against Harper and two microservices designs", "",
             f"Run {meta['started']} on {meta['machine']}; load before the run: {meta['load']}.",
             f"Command: `{meta['command']}`. Server under test on cores {meta['server_cores']}, "
             f"loadgen on cores {meta['loadgen_cores']}; one system at a time. Raw loadgen results: "
             f"`{os.path.basename(run_dir)}/`.", "",
             "Correctness before timing (`scripts/shop/check.py`, home, every category and 29 product "
             "pages against the SPEC computed independently):", ""]
    lines += [f"- {s}: {meta['checks'].get(s, 'not run')}" for s in systems]
    for page in PAGES:
        lines += ["", f"## {page.upper()}", "",
                  f"Virtual users (one request, then {meta['think']} of think time; {meta['duration']} measured):", "",
                  vu_table(vu, systems, page), "",
                  "Open loop at fixed rates (the knee: the highest rate with at most 1 % errors and p99 under 100 ms):", "",
                  knee_table(rate, systems, page)]
        svg = f"{base}-{page}-users.svg"
        svg_plot({s: [(n, pct(r, 95)) for (sy, pg, n), r in vu.items() if sy == s and pg == page] for s in systems},
                 f"{page.upper()}: p95 by virtual users", "virtual users", "p95 ms", svg)
        svg2 = f"{base}-{page}-rate.svg"
        svg_plot({s: [(n, pct(r, 99)) for (sy, pg, n), r in rate.items() if sy == s and pg == page] for s in systems},
                 f"{page.upper()}: p99 by offered rate", "req/s offered", "p99 ms", svg2)
        lines += ["", f"![p95 by users]({os.path.basename(svg)}) ![p99 by rate]({os.path.basename(svg2)})"]
    lines += ["", "## Beside the published figures", "",
              "p95 in ms at 20 / 200 / 2000 virtual users. The published run is Harper against a gateway",
              "and four Fastify services over MongoDB; there the microservices PLP and PDP failed",
              "(100 % errors) from 200 users up. Ours is the same profile on this machine.", "",
              "| page | published Harper | " + " | ".join(systems) + " |",
              "|---|---|" + "---|" * len(systems)]
    for page in PAGES:
        cells = []
        for s in systems:
            vals = [vu.get((s, page, n)) for n in PUBLISHED_USERS]
            cells.append(" / ".join(fmt_ms(pct(r, 95)) if r else "–" for r in vals))
        pub = " / ".join(fmt_ms(v) for v in PUBLISHED_HARPER_P95[page])
        lines.append(f"| {page.upper()} | {pub} | " + " | ".join(cells) + " |")
    lines += ["", "## Page load in headless Chromium", "",
              f"Median (p95) time from navigation start to the load event over {meta['loads']} loads, caches warm:", "",
              "| system | PDP ms | PLP ms |", "|---|---|---|"]
    for s in systems:
        b = meta["browser"].get(s)
        if not b:
            lines.append(f"| {s} | not run | not run |")
            continue
        cell = lambda p: f"{b[p]['median_ms']:.1f} ({b[p]['p95_ms']:.1f})"
        lines.append(f"| {s} | {cell('/shop/p/p-0042')} | {cell('/shop/c/cat-3')} |")
    with open(report, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
