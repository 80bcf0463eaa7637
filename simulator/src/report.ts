/**
 * Self-contained HTML reports (inline SVG, no scripts, fonts or CDNs: they open offline inside
 * a hospital network) for simulations and benchmarks.
 *
 * Charts mark their parts for readers and for the browser test: legend entries are
 * `g.legend-entry[data-series][data-color]` with a `rect.swatch`; axis labels are `text.tick`,
 * `text.category` and `text.axis`; a bar chart spanning 0 has a `line.zero`; calibration bins are
 * `circle.bin[data-n]` with their count in `text.count`.
 */
import { MIN_CASES_FOR_AUC, UNSTABLE_AUC, type Interval, type PairedAucDifference } from './evaluation.js';

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const fmt = (v: number | null | undefined, digits = 3): string => (v == null || Number.isNaN(v) ? '–' : v.toFixed(digits));
/** Coordinates rounded to 0.1 px: shorter SVG, same picture. */
const c1 = (v: number): string => String(Math.round(v * 10) / 10);

/** Series colours. None is grey: grey is for grids, axes and text. */
export const PALETTE: Record<string, string> = { federated: '#1f6feb', pooled: '#8250df', local: '#d4a72c', oracle: '#2da44e', published: '#cf222e' };

/** Font size of chart text (px) and a conservative average glyph width for it (wide sans fonts such as DejaVu). */
const FONT = 11;
const textWidth = (s: string, size = FONT): number => s.length * size * 0.64;
/** Widest plot area (px) a chart may take before its category labels turn upright: a report page is ~1300 px wide, and two charts should fit side by side where they can. */
const MAX_PLOT_WIDTH = 820;
/** Shortened in the middle, where names of sites in one network differ least ("regional-hosp…site-07 (412)"). */
const ellipsize = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, Math.ceil((max - 1) / 2))}…${s.slice(s.length - Math.floor((max - 1) / 2))}`);
/** A category label on two lines: before " (" and from it, else at the space nearest the middle. */
function wrap(label: string): string[] {
  const paren = label.indexOf(' (');
  if (paren > 0) return [label.slice(0, paren), label.slice(paren + 1)];
  const spaces = [...label.matchAll(/ /g)].map((m) => m.index);
  if (spaces.length === 0) return [label];
  const cut = spaces.reduce((a, b) => (Math.abs(b - label.length / 2) < Math.abs(a - label.length / 2) ? b : a));
  return [label.slice(0, cut), label.slice(cut + 1)];
}

/** Tick positions for a numeric axis: steps of 1, 2, 2.5 or 5 × 10^k, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5, extend = false): { lo: number; hi: number; ticks: number[]; digits: number } {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / Math.max(1, count - 1);
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  const [a, b] = extend ? [Math.floor(lo / step + 1e-9) * step, Math.ceil(hi / step - 1e-9) * step] : [lo, hi === lo ? lo + step : hi];
  const ticks: number[] = [];
  for (let k = Math.ceil(a / step - 1e-9); k * step <= b + step * 1e-9; k++) ticks.push(Math.abs(k * step) < step * 1e-9 ? 0 : k * step);
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (f > 2 && f <= 2.5 ? 1 : 0));
  return { lo: a, hi: b, ticks, digits };
}

/** A legend: one swatch (filled in the series colour, set inline so no stylesheet can grey it) and name per entry. */
function legend(entries: { name: string; color: string }[], x: number, y: number): string {
  return entries.map((e, i) => `<g class="legend-entry" data-series="${esc(e.name)}" data-color="${esc(e.color)}"><rect class="swatch" x="${c1(x)}" y="${c1(y + 18 * i - 9)}" width="12" height="12" rx="2" fill="${esc(e.color)}" style="fill:${esc(e.color)}"/><text x="${c1(x + 18)}" y="${c1(y + 18 * i + 1)}">${esc(e.name)}</text></g>`).join('');
}
const legendWidth = (names: string[]): number => 34 + Math.max(0, ...names.map((n) => textWidth(n)));

function svgOpen(w: number, h: number, title: string, kind: string): string {
  return `<svg width="${c1(w)}" height="${c1(h)}" viewBox="0 0 ${c1(w)} ${c1(h)}" role="img" aria-label="${esc(title)}" data-chart="${esc(kind)}"><title>${esc(title)}</title>`;
}
const figure = (svg: string, width: number, title: string, note = ''): string => `<figure style="width:${c1(width)}px">${svg}</svg><figcaption>${esc(title)}${note === '' ? '' : `<br><span class="note">${esc(note)}</span>`}</figcaption></figure>`;

/** y-axis grid lines and tick labels. */
function yAxis(ticks: number[], digits: number, sy: (y: number) => number, left: number, right: number): string {
  return ticks.map((t) => `<line x1="${c1(left)}" x2="${c1(right)}" y1="${c1(sy(t))}" y2="${c1(sy(t))}" class="grid"/><text class="tick" x="${c1(left - 6)}" y="${c1(sy(t) + 4)}" text-anchor="end">${t.toFixed(digits)}</text>`).join('');
}

/** One point of a line series; `y: null` breaks the line; `low`/`high` draw a shaded interval band. */
export interface SeriesPoint {
  x: number;
  y: number | null;
  low?: number | null;
  high?: number | null;
}

export interface Series {
  name: string;
  color: string;
  points: SeriesPoint[];
  /** A reference line (e.g. the no-information rate): dashed, without point markers. */
  dashed?: boolean;
}

/**
 * A line chart of one or more series against x (rounds by default). A series breaks where a
 * point's y is null rather than joining across the gap; `low`/`high` give a shaded band.
 */
export function lineChart(title: string, series: Series[], yLabel: string, yRange?: [number, number], options: { xLabel?: string } = {}): string {
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.flatMap((p) => [p.y, p.low, p.high]).filter((v): v is number => v != null));
  if (xs.length === 0 || ys.length === 0) return '';
  const h = 280;
  const m = { l: 52, r: 24 + legendWidth(series.map((s) => s.name)), t: 30, b: 44 };
  const w = Math.max(560, m.l + m.r + 300);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  const y = yRange === undefined ? niceTicks(Math.min(...ys), Math.max(...ys), 5, true) : niceTicks(yRange[0], yRange[1], 5);
  const sx = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * (w - m.l - m.r);
  const clampY = (v: number): number => Math.max(y.lo, Math.min(y.hi, v));
  const sy = (v: number): number => h - m.b - ((clampY(v) - y.lo) / (y.hi - y.lo || 1)) * (h - m.t - m.b);
  // x ticks: whole numbers when every x is one, spaced so their labels never touch.
  const integral = xs.every(Number.isInteger);
  const fit = Math.max(2, Math.floor((w - m.l - m.r) / (textWidth(String(Math.round(x1))) + 16)));
  const xt = niceTicks(x0, x1, integral ? Math.min(fit, x1 - x0 + 1) : fit);
  const xStep = integral ? Math.max(1, Math.round(xt.ticks.length > 1 ? xt.ticks[1]! - xt.ticks[0]! : 1)) : 0;
  const xTicks = integral
    ? Array.from({ length: Math.floor((x1 - x0) / xStep) + 1 }, (_, i) => x0 + i * xStep)
    : xt.ticks.filter((t) => t >= x0 && t <= x1);
  const segments = (pts: SeriesPoint[]): SeriesPoint[][] => {
    const out: SeriesPoint[][] = [[]];
    for (const p of [...pts].sort((a, b) => a.x - b.x)) {
      if (p.y === null) out.push([]);
      else out.at(-1)!.push(p);
    }
    return out.filter((s) => s.length > 0);
  };
  const body = series.map((s) => {
    const segs = segments(s.points);
    const bands = segs.map((seg) => seg.filter((p) => p.low != null && p.high != null)).filter((seg) => seg.length > 1)
      .map((seg) => `<path class="band" fill="${esc(s.color)}" fill-opacity="0.15" d="M${seg.map((p) => `${c1(sx(p.x))},${c1(sy(p.high!))}`).join('L')}L${[...seg].reverse().map((p) => `${c1(sx(p.x))},${c1(sy(p.low!))}`).join('L')}Z"/>`).join('');
    const lines = segs.filter((seg) => seg.length > 1).map((seg) => `<polyline class="series" data-series="${esc(s.name)}" fill="none" stroke="${esc(s.color)}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${seg.map((p) => `${c1(sx(p.x))},${c1(sy(p.y!))}`).join(' ')}"/>`).join('');
    const dots = s.dashed ? '' : segs.flat().map((p) => `<circle class="point" data-series="${esc(s.name)}" cx="${c1(sx(p.x))}" cy="${c1(sy(p.y!))}" r="2.5" fill="${esc(s.color)}"><title>${esc(`${s.name} at ${p.x}: ${fmt(p.y)}${p.low != null && p.high != null ? ` [${fmt(p.low)}, ${fmt(p.high)}]` : ''}`)}</title></circle>`).join('');
    return bands + lines + dots;
  }).join('\n');
  return figure(`${svgOpen(w, h, title, 'line')}
${yAxis(y.ticks, y.digits, sy, m.l, w - m.r)}
${xTicks.map((t) => `<text class="tick" x="${c1(sx(t))}" y="${c1(h - m.b + 16)}" text-anchor="middle">${integral ? String(t) : t.toFixed(xt.digits)}</text>`).join('')}
<text class="axis" x="${m.l}" y="16">${esc(yLabel)}</text><text class="axis" x="${c1((w - m.r + m.l) / 2)}" y="${h - 8}" text-anchor="middle">${esc(options.xLabel ?? 'round')}</text>
${body}
${legend(series, w - m.r + 14, m.t + 6)}`, w, title);
}

/** One series of a bar chart: a value (or null: no bar) per category, optionally a 95 % interval and an "unstable" flag per value. */
export interface BarSeries {
  name: string;
  color: string;
  values: (number | null)[];
  /** Drawn as a whisker over the bar. */
  intervals?: (Interval | null | undefined)[];
  /** Drawn faded, and the caption says why ({@link UNSTABLE_AUC}). */
  unstable?: (boolean | undefined)[];
}

/**
 * Grouped bars: one group per category, one bar per series (null values left out). Bars grow
 * from 0 when the range spans it (negative bars go down from a solid zero line), otherwise from
 * the floor of `yRange`. Without `yRange` the axis spans 0 and every value and interval.
 * Category labels go on two lines ({@link wrap}), and turn upright (shortened in the middle past
 * 32 characters) when even that does not fit.
 */
export function barChart(title: string, categories: string[], series: BarSeries[], yRange?: [number, number], options: { yLabel?: string } = {}): string {
  const data = series.flatMap((s) => [...s.values, ...(s.intervals ?? []).flatMap((i) => (i == null ? [] : [i.low, i.high]))]).filter((v): v is number => v != null && Number.isFinite(v));
  const y = yRange === undefined ? niceTicks(Math.min(0, ...data), Math.max(0, ...data), 6, true) : niceTicks(yRange[0], yRange[1], 5);
  const lines = categories.map(wrap);
  const labelWidth = Math.max(0, ...lines.flat().map((l) => textWidth(l)));
  const barW = Math.max(6, Math.min(18, 90 / series.length));
  const barsWidth = series.length * barW + 14;
  const sideBySide = Math.max(barsWidth, Math.min(labelWidth + 14, 150));
  // Labels stand side by side when each fits its group and the chart stays page-wide; else upright.
  const upright = labelWidth + 6 > sideBySide || categories.length * sideBySide > MAX_PLOT_WIDTH;
  const group = upright ? Math.max(barsWidth, 22) : sideBySide;
  const longest = Math.max(0, ...categories.map((c) => Math.min(c.length, 32)));
  const h0 = 240;
  const m = { l: 56, r: 24 + legendWidth(series.map((s) => s.name)), t: 30, b: upright ? 16 + textWidth('x'.repeat(longest)) : 22 + 15 * Math.max(1, ...lines.map((l) => l.length)) };
  const w = Math.max(480, m.l + categories.length * group + m.r);
  const h = h0 + m.b;
  const sy = (v: number): number => h - m.b - ((Math.max(y.lo, Math.min(y.hi, v)) - y.lo) / (y.hi - y.lo)) * (h - m.t - m.b);
  const spansZero = y.lo < 0 && y.hi > 0;
  const base = sy(y.lo >= 0 ? y.lo : y.hi <= 0 ? y.hi : 0);
  const anyUnstable = series.some((s) => (s.unstable ?? []).some(Boolean));
  const groups = categories.map((c, ci) => {
    const gx = m.l + ci * group + (group - series.length * barW) / 2;
    const cx = m.l + ci * group + group / 2;
    const bars = series.map((s, si) => {
      const v = s.values[ci];
      if (v == null) return '';
      const ci95 = s.intervals?.[ci];
      const faded = s.unstable?.[ci] === true;
      const x = gx + si * barW;
      const tip = `${c} · ${s.name}: ${fmt(v)}${ci95 == null ? '' : ` [${fmt(ci95.low)}, ${fmt(ci95.high)}]`}${faded ? ` (${UNSTABLE_AUC})` : ''}`;
      const rect = `<rect class="bar${faded ? ' unstable' : ''}" data-series="${esc(s.name)}" data-value="${v}" x="${c1(x + 1)}" y="${c1(Math.min(sy(v), base))}" width="${c1(barW - 2)}" height="${c1(Math.max(0.5, Math.abs(base - sy(v))))}" fill="${esc(s.color)}"${faded ? ' fill-opacity="0.35" stroke="' + esc(s.color) + '" stroke-dasharray="2 2"' : ''}><title>${esc(tip)}</title></rect>`;
      const mid = x + barW / 2;
      const whisker = ci95 == null ? '' : `<path class="whisker" d="M${c1(mid)},${c1(sy(ci95.low))}V${c1(sy(ci95.high))}M${c1(mid - 3)},${c1(sy(ci95.low))}H${c1(mid + 3)}M${c1(mid - 3)},${c1(sy(ci95.high))}H${c1(mid + 3)}"/>`;
      return rect + whisker;
    }).join('');
    const label = upright
      ? `<text class="category" x="${c1(cx)}" y="${c1(h - m.b + 8)}" dy="0.35em" text-anchor="end" transform="rotate(-90 ${c1(cx)} ${c1(h - m.b + 8)})"><title>${esc(c)}</title>${esc(ellipsize(c, 32))}</text>`
      : `<text class="category" x="${c1(cx)}" y="${c1(h - m.b + 16)}" text-anchor="middle">${lines[ci]!.map((l, i) => `<tspan x="${c1(cx)}"${i === 0 ? '' : ' dy="1.3em"'}>${esc(l)}</tspan>`).join('')}</text>`;
    return bars + label;
  }).join('\n');
  const zero = spansZero ? `<line class="zero" x1="${m.l}" x2="${c1(w - m.r)}" y1="${c1(sy(0))}" y2="${c1(sy(0))}"/>` : '';
  const yTitle = options.yLabel === undefined ? '' : `<text class="axis" x="${m.l}" y="16">${esc(options.yLabel)}</text>`;
  const note = [
    series.some((s) => s.intervals !== undefined) ? 'Whiskers: 95 % bootstrap interval.' : '',
    anyUnstable ? `Faded bars: ${UNSTABLE_AUC} (fewer than ${MIN_CASES_FOR_AUC} cases or non-cases).` : '',
  ].filter((s) => s !== '').join(' ');
  return figure(`${svgOpen(w, h, title, 'bar')}
${yAxis(y.ticks, y.digits, sy, m.l, w - m.r)}${yTitle}
${groups}
${zero}<line class="axis-line" x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${c1(h - m.b)}"/>
${legend(series, w - m.r + 14, m.t + 6)}`, w, title, note);
}

/** Calibration bins: mean predicted and observed risk, and the number of patients. */
export interface CalibrationBin {
  predicted: number;
  observed: number;
  n: number;
}

/** Counts shown under a calibration plot: 4 digits at most, so neighbouring deciles never touch. */
const shortCount = (n: number): string => (n < 10_000 ? String(n) : `${Math.round(n / 1000)}k`);

/**
 * A reliability diagram: observed vs predicted risk per bin, one line per series. Each bin's
 * point has an area proportional to its patients, and the counts stand in a row per series
 * under the axis, at the centre of the bin's decile (the bins of {@link assess}).
 */
export function calibrationChart(title: string, series: { name: string; color: string; bins: CalibrationBin[] }[]): string {
  const side = 300;
  const m = { l: 44, r: 24 + legendWidth(series.map((s) => s.name)), t: 28 };
  const plotBottom = m.t + side;
  // Under the plot, top to bottom: x ticks, x-axis title, the counts' caption, one row of counts per series.
  const rowsTop = plotBottom + 74;
  const h = rowsTop + 14 * (series.length - 1) + 10;
  const w = m.l + side + m.r;
  const p = (v: number): number => m.l + Math.max(0, Math.min(1, v)) * side;
  const q = (v: number): number => plotBottom - Math.max(0, Math.min(1, v)) * side;
  const maxN = Math.max(1, ...series.flatMap((s) => s.bins.map((b) => b.n)));
  const radius = (n: number): number => 2 + 7 * Math.sqrt(n / maxN);
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  const grid = ticks.map((t) => `<line class="grid" x1="${c1(p(0))}" x2="${c1(p(1))}" y1="${c1(q(t))}" y2="${c1(q(t))}"/><line class="grid" x1="${c1(p(t))}" x2="${c1(p(t))}" y1="${c1(q(0))}" y2="${c1(q(1))}"/>`
    + `<text class="tick" x="${c1(m.l - 6)}" y="${c1(q(t) + 4)}" text-anchor="end">${t.toFixed(1)}</text><text class="tick" x="${c1(p(t))}" y="${c1(plotBottom + 20)}" text-anchor="middle">${t.toFixed(1)}</text>`).join('');
  const lines = series.map((s) => {
    const bins = [...s.bins].sort((a, b) => a.predicted - b.predicted);
    const line = `<polyline class="series" data-series="${esc(s.name)}" fill="none" stroke="${esc(s.color)}" stroke-width="1.5" points="${bins.map((b) => `${c1(p(b.predicted))},${c1(q(b.observed))}`).join(' ')}"/>`;
    const dots = bins.map((b) => `<circle class="bin" data-series="${esc(s.name)}" data-n="${b.n}" cx="${c1(p(b.predicted))}" cy="${c1(q(b.observed))}" r="${c1(radius(b.n))}" fill="${esc(s.color)}" fill-opacity="0.55" stroke="${esc(s.color)}"><title>${esc(`${s.name}: predicted ${fmt(b.predicted)}, observed ${fmt(b.observed)}, ${b.n} patients`)}</title></circle>`).join('');
    return line + dots;
  }).join('\n');
  const rows = series.map((s, i) => {
    const y = rowsTop + 14 * i;
    const swatch = `<rect x="${c1(m.l - 28)}" y="${c1(y - 8)}" width="8" height="8" fill="${esc(s.color)}" style="fill:${esc(s.color)}"/><text class="count-label" x="${c1(m.l - 6)}" y="${c1(y)}" text-anchor="end">n</text>`;
    return swatch + s.bins.map((b) => {
      const decile = Math.min(9, Math.max(0, Math.floor(b.predicted * 10)));
      return `<text class="count" data-series="${esc(s.name)}" data-n="${b.n}" x="${c1(p((decile + 0.5) / 10))}" y="${c1(y)}" text-anchor="middle">${shortCount(b.n)}</text>`;
    }).join('');
  }).join('');
  return figure(`${svgOpen(w, h, title, 'calibration')}
${grid}<line class="diagonal" x1="${c1(p(0))}" y1="${c1(q(0))}" x2="${c1(p(1))}" y2="${c1(q(1))}"/>
<text class="axis" x="4" y="14">observed rate</text><text class="axis" x="${c1(p(0.5))}" y="${c1(plotBottom + 38)}" text-anchor="middle">predicted risk</text>
<text class="axis" x="${c1(p(0.5))}" y="${c1(rowsTop - 16)}" text-anchor="middle">patients per decile of predicted risk</text>
${lines}
${rows}
${legend(series, m.l + side + 14, m.t + 6)}`, w, title, 'Point area grows with the patients in the bin; the dotted diagonal is perfect calibration.');
}

/** A table cell: text (escaped), a number (3 decimals), missing (–), or ready HTML from the helpers below. */
export type Cell = string | number | null | undefined | { html: string };

/** A cell as HTML. */
export function cellHtml(v: Cell): string {
  return typeof v === 'number' ? fmt(v) : typeof v === 'object' && v !== null ? v.html : esc(v ?? '–');
}

/** An HTML table. */
export function table(head: string[], rows: Cell[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((v) => `<td>${cellHtml(v)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** "[0.712, 0.801]", or "" without an interval. */
export function fmtInterval(ci: Interval | null | undefined, digits = 3): string {
  return ci == null ? '' : `[${fmt(ci.low, digits)}, ${fmt(ci.high, digits)}]`;
}

const flag = `<abbr class="flag" title="${esc(UNSTABLE_AUC)} (fewer than ${MIN_CASES_FOR_AUC} cases or non-cases)">${esc(UNSTABLE_AUC)}</abbr>`;

/** What an AUC cell needs: {@link Assessment} has it. */
export interface AucLike {
  auc: number | null;
  aucCi: Interval | null;
  positives: number;
  negatives: number;
  aucStable: boolean;
}

/** An AUC with its 95 % interval, the cases/non-cases it rests on, and the flag when they are too few. */
export function aucCell(a: AucLike | null | undefined): Cell {
  if (a == null) return null;
  return { html: `${fmt(a.auc)} <span class="ci">${fmtInterval(a.aucCi)}</span><br><span class="counts">${a.positives} cases / ${a.negatives} non-cases</span>${a.aucStable || a.auc === null ? '' : `<br>${flag}`}` };
}

/** A paired AUC difference (signed) with its interval and what the interval says. */
export function differenceCell(d: PairedAucDifference | null | undefined): Cell {
  if (d == null || d.difference === null) return null;
  const sign = d.difference > 0 ? '+' : '';
  const reading = !d.stable ? flag : d.ci === null ? '' : d.ci.low > 0 ? '<span class="verdict above">interval above 0</span>' : d.ci.high < 0 ? '<span class="verdict below">interval below 0</span>' : '<span class="verdict zero">interval includes 0</span>';
  return { html: `${sign}${fmt(d.difference)} <span class="ci">${fmtInterval(d.ci)}</span>${reading === '' ? '' : `<br>${reading}`}` };
}

/** Accuracy with the no-information rate (the share of the majority class) beside it. */
export function accuracyCell(a: { accuracy: number; noInformationRate: number } | null | undefined): Cell {
  if (a == null) return null;
  return { html: `${fmt(a.accuracy)} <span class="nir">(no-information rate ${fmt(a.noInformationRate)})</span>` };
}

/** The page around the sections. */
export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1340px;padding:0 1rem;color:#1f2328}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right;vertical-align:top}th:first-child,td:first-child{text-align:left}
.ci,.counts,.nir{color:#57606a;font-size:.85em}.ci,.counts{white-space:nowrap}.flag{color:#9a6700;font-size:.85em;text-decoration:none}
td:first-child{white-space:nowrap}
.verdict{font-size:.85em;white-space:nowrap}.verdict.above{color:#1a7f37}.verdict.below{color:#cf222e}.verdict.zero{color:#57606a}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top;max-width:100%}svg{max-width:100%;height:auto;font-size:${FONT}px}
svg text{fill:#424a53}.grid{stroke:#d0d7de;stroke-dasharray:2 2}.axis{font-weight:600}.zero{stroke:#24292f;stroke-width:1.5}.axis-line{stroke:#8c959f}
.whisker{stroke:#24292f;stroke-width:1.2;fill:none}.diagonal{stroke:#8c959f;stroke-dasharray:2 3}.count{font-variant-numeric:tabular-nums}
.note{color:#57606a;font-size:.9rem}.headline{font-size:1.05rem;border-left:4px solid #1f6feb;padding:.25rem .75rem}
</style></head><body>${body}</body></html>`;
}

export { esc, fmt };
