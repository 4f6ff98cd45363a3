#!/usr/bin/env python3
"""Loss curves (SVG, no matplotlib) from models/train/runs/<run>/log.csv -> models/train/results/.

  PYENV_VERSION=system python3 models/train/plot.py draft seed target
  PYENV_VERSION=system python3 models/train/plot.py --svg loss_curves_gpu.svg --xlabel "minutes on one NVIDIA H200" g3 h3
Writes loss_curves.svg (or --svg NAME) (answer/copy loss vs minutes, log scale, smoothed) and loss_<run>.csv (copies of the logs).
"""
import csv
import math
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]


def main():
    argv = sys.argv[1:]
    svg, xlabel = "loss_curves.svg", "minutes of training (1 torch thread, shared 2-core CPU)"
    while argv and argv[0].startswith("--"):
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == "--svg":
            svg = value
        elif flag == "--xlabel":
            xlabel = value
        else:
            sys.exit(f"unknown flag {flag} (valid: --svg, --xlabel)")
    runs = argv or ["draft", "seed", "target"]
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    series = {}
    for r in runs:
        p = os.path.join(HERE, "runs", r, "log.csv")
        if not os.path.exists(p):
            continue
        shutil.copy(p, os.path.join(out, f"loss_{r}.csv"))
        rows = list(csv.DictReader(open(p)))
        pts, ema = [], None
        for row in rows:
            loss = float(row["loss"])
            ema = loss if ema is None else 0.9 * ema + 0.1 * loss
            pts.append((float(row["minutes"]), max(ema, 1e-3), row["phase"]))
        series[r] = pts
    W, H, ml, mb = 760, 420, 60, 40
    tmax = max(p[0] for s in series.values() for p in s)
    lo, hi = -3, 1.5  # log10 loss range
    X = lambda t: ml + (W - ml - 20) * t / tmax  # noqa: E731
    Y = lambda l: 20 + (H - mb - 20) * (hi - max(lo, min(hi, math.log10(l)))) / (hi - lo)  # noqa: E731
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         '<rect width="100%" height="100%" fill="white"/>']
    for e in range(lo, 2):
        y = Y(10 ** e)
        s.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{W - 20}" y2="{y:.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{ml - 8}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
    step = 5 if tmax > 20 else 2 if tmax > 6 else 1
    t = 0
    while t <= tmax:
        s.append(f'<text x="{X(t):.1f}" y="{H - mb + 16}" text-anchor="middle">{t}</text>')
        t += step
    s.append(f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle">{xlabel}</text>')
    s.append(f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">loss (EMA; phase A copy loss, phase B answer-only loss)</text>')
    for i, (r, pts) in enumerate(series.items()):
        d = " ".join(f"{X(t):.1f},{Y(l):.1f}" for t, l, _ in pts)
        s.append(f'<polyline fill="none" stroke="{COLORS[i % 4]}" stroke-width="1.5" points="{d}"/>')
        s.append(f'<text x="{W - 150}" y="{30 + 16 * i}" fill="{COLORS[i % 4]}">{r}</text>')
    s.append("</svg>")
    with open(os.path.join(out, svg), "w") as f:
        f.write("\n".join(s) + "\n")
    print("wrote", os.path.join(out, svg))


if __name__ == "__main__":
    main()
