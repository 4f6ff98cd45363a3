/** Minimal dependency-free SVG line charts: one panel per group, one polyline per series. */
export interface ChartSeries {
  name: string;
  /** [x, y] points; plotted in x order. */
  points: [number, number][];
  /** Optional [low, high] interval per point (same order as `points`), drawn as an error bar. */
  intervals?: ([number, number] | null)[];
  /** Dashed reference line (full KV, draft-only). */
  dashed?: boolean;
}

export interface ChartPanel {
  title: string;
  series: ChartSeries[];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  panels: ChartPanel[];
  /** log2 x axis (budgets, lengths). */
  xLog?: boolean;
  /** Fixed y range, e.g. [0, 1] for accuracy; default from the data (from 0). */
  yRange?: [number, number];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#000000'];

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  if (a >= 1) return String(Number(v.toPrecision(3)));
  return v.toPrecision(2);
}

/** Renders the chart; series keep their colour across panels (by name). */
export function lineChart(options: LineChartOptions): string {
  const { panels } = options;
  const pw = 360;
  const ph = 240;
  const margin = { left: 56, right: 12, top: 28, bottom: 40 };
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const legendHeight = 18 * Math.ceil(names.length / 4) + 8;
  const cols = Math.min(panels.length, 3) || 1;
  const rows = Math.ceil(panels.length / cols) || 1;
  const width = cols * (pw + margin.left + margin.right);
  const height = 30 + rows * (ph + margin.top + margin.bottom) + legendHeight;
  const color = (name: string) => COLORS[names.indexOf(name) % COLORS.length];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(options.title)}</text>`,
  ];
  panels.forEach((panel, pi) => {
    const ox = (pi % cols) * (pw + margin.left + margin.right) + margin.left;
    const oy = 30 + Math.floor(pi / cols) * (ph + margin.top + margin.bottom) + margin.top;
    const pts = panel.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const tx = (x: number) => (options.xLog ? Math.log2(Math.max(x, 1e-9)) : x);
    let x0 = Math.min(...pts.map(([x]) => tx(x)));
    let x1 = Math.max(...pts.map(([x]) => tx(x)));
    if (!Number.isFinite(x0)) [x0, x1] = [0, 1];
    if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
    let [y0, y1] = options.yRange ?? [0, Math.max(...pts.map(([, y]) => y), 0) * 1.08 || 1];
    if (y1 === y0) y1 = y0 + 1;
    const sx = (x: number) => ox + ((tx(x) - x0) / (x1 - x0)) * pw;
    const sy = (y: number) => oy + ph - ((y - y0) / (y1 - y0)) * ph;
    out.push(`<text x="${ox + pw / 2}" y="${oy - 10}" text-anchor="middle" font-weight="bold">${esc(panel.title)}</text>`);
    out.push(`<rect x="${ox}" y="${oy}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      out.push(`<line x1="${ox}" x2="${ox + pw}" y1="${sy(y)}" y2="${sy(y)}" stroke="#eee"/>`);
      out.push(`<text x="${ox - 4}" y="${sy(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
    }
    const xs = [...new Set(pts.map(([x]) => x))].sort((a, b) => a - b);
    for (const x of xs) out.push(`<text x="${sx(x)}" y="${oy + ph + 14}" text-anchor="middle">${fmt(x)}</text>`);
    out.push(`<text x="${ox + pw / 2}" y="${oy + ph + 30}" text-anchor="middle">${esc(options.xLabel)}</text>`);
    out.push(`<text transform="translate(${ox - 42} ${oy + ph / 2}) rotate(-90)" text-anchor="middle">${esc(options.yLabel)}</text>`);
    for (const s of panel.series) {
      const withBars = s.points.map((pt, i) => ({ pt, bar: s.intervals?.[i] ?? null }));
      const kept = withBars.filter(({ pt: [x, y] }) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a.pt[0] - b.pt[0]);
      const p = kept.map((k) => k.pt);
      if (p.length === 0) continue;
      const c = color(s.name);
      for (const { pt, bar } of kept) {
        if (!bar) continue;
        // Error bar with caps; series at one x overlap, so bars are thin and half-transparent.
        const bx = sx(pt[0]).toFixed(1);
        const [lo, hi] = [sy(bar[0]).toFixed(1), sy(bar[1]).toFixed(1)];
        out.push(
          `<g stroke="${c}" stroke-opacity="0.6" stroke-width="1.2"><line x1="${bx}" x2="${bx}" y1="${lo}" y2="${hi}"/><line x1="${Number(bx) - 3}" x2="${Number(bx) + 3}" y1="${lo}" y2="${lo}"/><line x1="${Number(bx) - 3}" x2="${Number(bx) + 3}" y1="${hi}" y2="${hi}"/><title>${esc(`${s.name}: 95% interval ${fmt(bar[0])}–${fmt(bar[1])}`)}</title></g>`,
        );
      }
      const dash = s.dashed ? ' stroke-dasharray="5 4"' : '';
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${dash} points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"><title>${esc(s.name)}</title></polyline>`);
      for (const [x, y] of p) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${c}"><title>${esc(`${s.name}: ${fmt(x)} → ${fmt(y)}`)}</title></circle>`);
    }
  });
  const ly = height - legendHeight + 10;
  names.forEach((name, i) => {
    const x = 20 + (i % 4) * 180;
    const y = ly + Math.floor(i / 4) * 18;
    out.push(`<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${color(name)}" stroke-width="2"/>`);
    out.push(`<text x="${x + 30}" y="${y + 4}">${esc(name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** For a flat reference (full KV, draft-only) at every x of a panel. */
export function flatSeries(name: string, y: number, xs: readonly number[], interval?: [number, number]): ChartSeries {
  return { name, points: xs.map((x) => [x, y] as [number, number]), dashed: true, ...(interval ? { intervals: xs.map(() => interval) } : {}) };
}
