/**
 * Self-contained HTML reports (inline SVG, no scripts, fonts or CDNs: they open offline inside
 * a hospital network) for simulations and benchmarks.
 */

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const fmt = (v: number | null | undefined, digits = 3): string => (v == null || Number.isNaN(v) ? '–' : v.toFixed(digits));

export const PALETTE: Record<string, string> = { federated: '#1f6feb', pooled: '#8250df', local: '#d4a72c', oracle: '#2da44e', published: '#6e7781' };

export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
}

/** A line chart of one or more series. */
export function lineChart(title: string, series: Series[], yLabel: string, yRange?: [number, number]): string {
  const w = 560;
  const h = 260;
  const m = { l: 48, r: 120, t: 28, b: 36 };
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  if (xs.length === 0) return '';
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  const [y0, y1] = yRange ?? [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * (w - m.l - m.r);
  const sy = (y: number): number => h - m.b - ((y - y0) / (y1 - y0 || 1)) * (h - m.t - m.b);
  const ticks = Array.from({ length: 5 }, (_, i) => y0 + ((y1 - y0) * i) / 4);
  return `<figure><svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}"><title>${esc(title)}</title>
${ticks.map((t) => `<line x1="${m.l}" x2="${w - m.r}" y1="${sy(t)}" y2="${sy(t)}" class="grid"/><text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${t.toFixed(2)}</text>`).join('')}
<text x="${m.l}" y="16" class="axis">${esc(yLabel)}</text><text x="${(w - m.r + m.l) / 2}" y="${h - 6}" text-anchor="middle" class="axis">round</text>
${series.map((s, i) => `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' ')}"/>${s.points.map((p) => `<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="2.5" fill="${s.color}"/>`).join('')}<text x="${w - m.r + 8}" y="${m.t + 16 * i + 4}" fill="${s.color}">${esc(s.name)}</text>`).join('\n')}
</svg><figcaption>${esc(title)}</figcaption></figure>`;
}

/** Grouped bars: one group per category, one bar per series (null values left out). */
export function barChart(title: string, categories: string[], series: { name: string; color: string; values: (number | null)[] }[], yRange: [number, number]): string {
  const w = Math.max(560, 70 + categories.length * (series.length * 14 + 24) + 120);
  const h = 280;
  const m = { l: 48, r: 120, t: 28, b: 60 };
  const group = (w - m.l - m.r) / Math.max(1, categories.length);
  const bar = Math.min(16, (group - 10) / series.length);
  const sy = (y: number): number => h - m.b - ((Math.max(yRange[0], Math.min(yRange[1], y)) - yRange[0]) / (yRange[1] - yRange[0])) * (h - m.t - m.b);
  const ticks = Array.from({ length: 5 }, (_, i) => yRange[0] + ((yRange[1] - yRange[0]) * i) / 4);
  return `<figure><svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}"><title>${esc(title)}</title>
${ticks.map((t) => `<line x1="${m.l}" x2="${w - m.r}" y1="${sy(t)}" y2="${sy(t)}" class="grid"/><text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${t.toFixed(2)}</text>`).join('')}
${categories.map((c, ci) => {
    const gx = m.l + ci * group + 5;
    return `${series.map((s, si) => {
      const v = s.values[ci];
      // Bars grow from zero when the range spans it (gains can be negative), else from the floor.
      const base = sy(Math.max(yRange[0], Math.min(0, yRange[1])) === 0 && yRange[0] < 0 ? 0 : yRange[0]);
      return v == null ? '' : `<rect x="${gx + si * bar}" y="${Math.min(sy(v), base)}" width="${bar - 2}" height="${Math.abs(base - sy(v))}" fill="${s.color}"><title>${esc(`${c} · ${s.name}: ${fmt(v)}`)}</title></rect>`;
    }).join('')}<text x="${gx + (series.length * bar) / 2}" y="${h - m.b + 14}" text-anchor="middle">${esc(c)}</text>`;
  }).join('\n')}
${series.map((s, i) => `<rect x="${w - m.r + 8}" y="${m.t + 16 * i - 6}" width="10" height="10" fill="${s.color}"/><text x="${w - m.r + 22}" y="${m.t + 16 * i + 3}">${esc(s.name)}</text>`).join('')}
</svg><figcaption>${esc(title)}</figcaption></figure>`;
}

/** A reliability diagram: predicted vs observed risk per bin, per series. */
export function calibrationChart(title: string, series: { name: string; color: string; bins: { predicted: number; observed: number; n: number }[] }[]): string {
  const s = 260;
  const m = 36;
  const p = (v: number): number => m + v * (s - 2 * m);
  const q = (v: number): number => s - m - v * (s - 2 * m);
  return `<figure><svg viewBox="0 0 ${s + 120} ${s}" role="img" aria-label="${esc(title)}"><title>${esc(title)}</title>
<line x1="${p(0)}" y1="${q(0)}" x2="${p(1)}" y2="${q(1)}" class="grid"/><text x="${s / 2}" y="${s - 6}" text-anchor="middle" class="axis">predicted risk</text><text x="6" y="16" class="axis">observed</text>
${series.map((se, i) => `<polyline fill="none" stroke="${se.color}" stroke-width="2" points="${se.bins.map((b) => `${p(b.predicted)},${q(b.observed)}`).join(' ')}"/><text x="${s + 4}" y="${m + 16 * i}" fill="${se.color}">${esc(se.name)}</text>`).join('\n')}
</svg><figcaption>${esc(title)}</figcaption></figure>`;
}

/** An HTML table. */
export function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  const cell = (v: string | number | null | undefined): string => (typeof v === 'number' ? fmt(v) : esc(v ?? '–'));
  return `<table><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((v) => `<td>${cell(v)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** The page around the sections. */
export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1f2328}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right}th:first-child,td:first-child{text-align:left}
figure{display:inline-block;margin:.5rem 1rem .5rem 0}svg{width:560px;max-width:100%;height:auto;font-size:11px}svg text{fill:#57606a}.grid{stroke:#d0d7de;stroke-dasharray:2 2}.axis{font-weight:600}
.note{color:#57606a;font-size:.9rem}
</style></head><body>${body}</body></html>`;
}

export { esc, fmt };
