#!/usr/bin/env python3
"""benchmarks/tune_curves.py CASE RANDOM.jsonl XGB.jsonl PLOT.svg

Compares two kiln tune logs of the same task: random search and the
model-guided (xgb) search. Prints one JSON line: each search's trials and
best GFLOP/s, and how many trials the xgb search took to reach random
search's best (and 99 % / 97 % of it), or null when it did not. Draws both
best-so-far curves into PLOT.svg.
"""
import json
import sys


def curve(path):
    best, out = 0.0, []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if not r["error"] and r["gflops"] > best:
                best = r["gflops"]
            out.append(best)
    return out


def reach(c, goal):
    for i, v in enumerate(c):
        if v >= goal:
            return i + 1
    return None


def plot(path, title, curves):
    w, h, x0, y0, x1, y1 = 640, 400, 60, 360, 620, 40
    n = max(len(c) for _, c, _ in curves)
    top = max(max(c) for _, c, _ in curves) * 1.1 or 1
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w // 2}" y="20" text-anchor="middle">{title}</text>',
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>',
        f'<line x1="{x0}" y1="{y1}" x2="{x0}" y2="{y0}" stroke="black"/>',
        f'<text x="{(x0 + x1) // 2}" y="390" text-anchor="middle">trials (0-{n})</text>',
        f'<text x="15" y="200" transform="rotate(-90 15 200)" text-anchor="middle">best GFLOP/s so far (top {top / 1.1:.1f})</text>',
    ]
    for k, (name, c, color) in enumerate(curves):
        pts = " ".join(
            f"{x0 + (x1 - x0) * (i / (n - 1) if n > 1 else 0):.1f},{y0 - (y0 - y1) * v / top:.1f}" for i, v in enumerate(c))
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        lines.append(f'<text x="{x1 - 150}" y="{y0 - 20 - 16 * k}" fill="{color}">{name} ({len(c)} trials)</text>')
    lines.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    case, rpath, xpath, svg = sys.argv[1:5]
    rc, xc = curve(rpath), curve(xpath)
    rbest = rc[-1] if rc else 0
    out = {
        "bench": "tune_cpu", "case": case,
        "random_trials": len(rc), "random_best_gflops": round(rbest, 1),
        "xgb_trials": len(xc), "xgb_best_gflops": round(xc[-1] if xc else 0, 1),
        "xgb_trials_to_random_best": reach(xc, rbest),
        "xgb_trials_to_99pct": reach(xc, 0.99 * rbest), "xgb_trials_to_97pct": reach(xc, 0.97 * rbest),
        "random_trials_to_99pct": reach(rc, 0.99 * rbest), "random_trials_to_97pct": reach(rc, 0.97 * rbest),
        "plot": svg,
    }
    plot(svg, f"{case}: best so far, random vs model-guided (xgb)",
         [("random", rc, "#888"), ("xgb", xc, "#c33")])
    print(json.dumps(out))


main()
