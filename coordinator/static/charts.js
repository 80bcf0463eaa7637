// Line charts drawn as inline SVG (no chart library: the dashboard must work offline and the
// CSP forbids external assets). One chart = one <svg data-chart="…" role="img"> with a <title>,
// an aria-label summarising the latest values, and a <circle class="point"> per data point of
// its primary series; secondary series use squares so they differ by shape, not only colour.
//
// A line is drawn only between values of consecutive rounds. Rounds are numbered 1, 2, 3… and
// every committed round is evaluated, so a missing round number is a round without a value
// (the site did not report, or its figure is withheld): the line breaks there, one <path
// class="segment"> per unbroken run, and points mark only the rounds that have a value.

import { h, s } from './dom.js';

/**
 * @typedef {{ x: number, y: number, label: string }} Point label is the tooltip, e.g. "Round 3: AUC 0.812"
 * @typedef {{ name: string, color: string, points: Point[], dash?: string, marker?: 'circle' | 'square' }} Series
 * @typedef {{ x: number, label: string, title: string }} Mark a vertical marker at round x: short label, full text as tooltip
 * @typedef {{ key: string, title: string, yLabel: string, xMax: number, series: Series[],
 *   yRange?: [number, number], summary: string, empty: string, width?: number, height?: number,
 *   marks?: Mark[], markLegend?: string }} ChartOptions marks: e.g. rounds where the reporting sites changed
 */

/** Colour-blind-safe palette (Okabe–Ito, darkened where needed for 3:1 contrast on white). */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#8a6d00', '#56b4e9', '#5b5b5b', '#e69f00'];
/** Dash patterns used after the palette runs out, so the 9th site still differs from the 1st. */
const DASHES = ['', '6 3', '2 3', '8 3 2 3'];

/** @param {number} i */
export function seriesStyle(i) {
  return { color: PALETTE[i % PALETTE.length], dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length] };
}

/** Tick values covering [lo, hi] with a 1/2/5×10^k step. @param {number} lo @param {number} hi @param {number} count */
function ticks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return { values: out, step };
}

/**
 * The y range to draw: the data's range padded by 10%, snapped to ticks, clamped to `bounds`
 * (e.g. [0, 1] for AUC, [0, Infinity] for loss).
 * @param {number[]} ys @param {[number, number] | undefined} bounds
 */
function yDomain(ys, bounds) {
  if (ys.length === 0) return [0, 1];
  let lo = Math.min(...ys);
  let hi = Math.max(...ys);
  const pad = Math.max((hi - lo) * 0.1, 0.02);
  lo -= pad;
  hi += pad;
  if (bounds) {
    lo = Math.max(lo, bounds[0]);
    hi = Math.min(hi, bounds[1]);
  }
  const { step } = ticks(lo, hi, 5);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}

/**
 * Draw a line chart of values per round.
 * @param {ChartOptions} o
 * @returns {HTMLElement} a <figure> holding the svg and its legend
 */
export function lineChart(o) {
  const W = o.width ?? 560;
  const H = o.height ?? 260;
  const m = { left: 52, right: 16, top: o.marks?.length ? 34 : 14, bottom: 40 };
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;
  const all = o.series.flatMap((se) => se.points);
  const xMax = Math.max(o.xMax, ...all.map((p) => p.x), 1);
  const [y0, y1] = yDomain(all.map((p) => p.y), o.yRange);
  /** @param {number} x */
  const X = (x) => m.left + (xMax <= 1 ? plotW / 2 : ((x - 1) / (xMax - 1)) * plotW);
  /** @param {number} y */
  const Y = (y) => m.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const yDigits = y1 - y0 >= 5 ? 0 : y1 - y0 >= 0.5 ? 1 : 2;

  const grid = [];
  for (const v of ticks(y0, y1, 5).values) {
    grid.push(s('line', { class: 'grid', x1: m.left, x2: W - m.right, y1: Y(v), y2: Y(v) }));
    grid.push(s('text', { class: 'tick', x: m.left - 6, y: Y(v) + 4, 'text-anchor': 'end' }, v.toFixed(yDigits)));
  }
  // Round ticks on whole multiples of the step (5, 10, 15…), plus round 1 when they are sparse.
  const xTicks = ticks(1, Math.max(xMax, 2), 8);
  const rounds = xTicks.values.filter((v) => Number.isInteger(v) && v >= 1 && v <= xMax);
  if (xTicks.step >= 5 && rounds[0] !== 1) rounds.unshift(1);
  for (const r of rounds) {
    grid.push(s('line', { class: 'tick-mark', x1: X(r), x2: X(r), y1: m.top + plotH, y2: m.top + plotH + 4 }));
    grid.push(s('text', { class: 'tick', x: X(r), y: m.top + plotH + 17, 'text-anchor': 'middle' }, r));
  }

  const lines = o.series.map((se) => {
    const pts = [...se.points].sort((a, b) => a.x - b.x);
    const segments = runs(pts).filter((run) => run.length > 1).map((run) => s('path', {
      class: 'segment', 'data-from': run[0].x, 'data-to': run[run.length - 1].x,
      d: run.map((p, i) => `${i === 0 ? 'M' : 'L'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(''),
      fill: 'none', stroke: se.color, 'stroke-width': 2, 'stroke-dasharray': se.dash || null,
    }));
    const markers = pts.map((p) => se.marker === 'square'
      ? s('rect', { class: 'point-alt', 'data-x': p.x, x: X(p.x) - 3.5, y: Y(p.y) - 3.5, width: 7, height: 7, fill: se.color }, s('title', {}, p.label))
      : s('circle', { class: 'point', 'data-x': p.x, cx: X(p.x), cy: Y(p.y), r: 3.5, fill: se.color }, s('title', {}, p.label)));
    return s('g', { class: 'series', 'data-series': se.name }, segments, markers);
  });

  // Marks sit behind the lines; their labels alternate between two rows so neighbours do not collide.
  const marks = (o.marks ?? []).filter((mk) => mk.x >= 1 && mk.x <= xMax).map((mk, i) => {
    const right = X(mk.x) > W - 120; // near the right edge the label runs leftwards
    return s('g', { class: 'mark', 'data-round': mk.x },
      s('title', {}, mk.title),
      s('line', { class: 'mark-line', x1: X(mk.x), x2: X(mk.x), y1: m.top - 2 - (i % 2) * 11, y2: m.top + plotH }),
      s('text', { class: 'mark-label', x: X(mk.x) + (right ? -3 : 3), y: m.top - 4 - (i % 2) * 11, 'text-anchor': right ? 'end' : 'start' }, mk.label));
  });

  const svg = s('svg', {
    'data-chart': o.key, role: 'img', viewBox: `0 0 ${W} ${H}`,
    'aria-label': `${o.title}. ${all.length === 0 ? o.empty : o.summary}`, preserveAspectRatio: 'xMidYMid meet',
  },
  s('title', {}, o.title),
  s('rect', { class: 'plot-bg', x: m.left, y: m.top, width: plotW, height: plotH }),
  grid,
  s('line', { class: 'axis', x1: m.left, x2: m.left, y1: m.top, y2: m.top + plotH }),
  s('line', { class: 'axis', x1: m.left, x2: W - m.right, y1: m.top + plotH, y2: m.top + plotH }),
  s('text', { class: 'axis-label', x: m.left + plotW / 2, y: H - 4, 'text-anchor': 'middle' }, 'Round'),
  s('text', { class: 'axis-label', x: 12, y: m.top + plotH / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${m.top + plotH / 2})` }, o.yLabel),
  marks.length ? s('g', { class: 'marks' }, marks) : null,
  lines,
  all.length === 0 ? s('text', { class: 'no-data', x: m.left + plotW / 2, y: m.top + plotH / 2, 'text-anchor': 'middle' }, o.empty) : null);

  return h('figure', { class: 'chart' },
    h('figcaption', {}, o.title),
    svg,
    legend(o.series.map((se) => ({ ...se, note: null })), marks.length ? o.markLegend : undefined));
}

/**
 * Split points (sorted by x) into runs of consecutive rounds.
 * @param {Point[]} pts
 */
function runs(pts) {
  /** @type {Point[][]} */
  const out = [];
  for (const p of pts) {
    const run = out[out.length - 1];
    if (run && p.x - run[run.length - 1].x <= 1) run.push(p);
    else out.push([p]);
  }
  return out;
}

/**
 * A legend as a list: a line sample with the series' marker and dash, then its name and a note;
 * last, when the chart has marks, a sample of the mark line and what it means.
 * @param {(Series & { note: string | null, flagged?: boolean })[]} entries
 * @param {string} [markLegend]
 */
export function legend(entries, markLegend) {
  if (entries.length === 0 && !markLegend) return null;
  return h('ul', { class: 'legend' }, entries.map((e) => h('li', { class: e.flagged ? 'flagged' : null },
    s('svg', { class: 'swatch', viewBox: '0 0 28 10', width: 28, height: 10, 'aria-hidden': 'true' },
      s('line', { x1: 1, x2: 27, y1: 5, y2: 5, stroke: e.color, 'stroke-width': 2, 'stroke-dasharray': e.dash || null }),
      e.marker === 'square' ? s('rect', { x: 10.5, y: 1.5, width: 7, height: 7, fill: e.color }) : s('circle', { cx: 14, cy: 5, r: 3.5, fill: e.color })),
    h('span', { class: 'legend-name' }, e.name),
    e.note ? h('span', { class: 'legend-note' }, e.note) : null)),
  markLegend ? h('li', { class: 'legend-mark' },
    s('svg', { class: 'swatch', viewBox: '0 0 28 10', width: 28, height: 10, 'aria-hidden': 'true' }, s('line', { class: 'mark-line', x1: 14, x2: 14, y1: 0, y2: 10 })),
    h('span', { class: 'legend-note' }, markLegend)) : null);
}

/**
 * The chart's numbers as a collapsible table, for screen readers and for reading exact values.
 * `missing` says why a series has no value in a round ("withheld", "not reported"); "—" otherwise.
 * @param {string} key @param {Series[]} series @param {(v: number) => string} fmt
 * @param {{ rounds?: number[], missing?: (series: string, round: number) => string | null }} [o]
 */
export function dataTable(key, series, fmt, o = {}) {
  const rounds = [...new Set([...series.flatMap((se) => se.points.map((p) => p.x)), ...(o.rounds ?? [])])].sort((a, b) => a - b);
  if (rounds.length === 0) return null;
  /** @type {Map<string, Map<number, number>>} */
  const byName = new Map(series.map((se) => [se.name, new Map(se.points.map((p) => [p.x, p.y]))]));
  return h('details', { class: 'chart-data', 'data-key': `data-${key}` },
    h('summary', {}, 'Show values'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Round'), series.map((se) => h('th', { scope: 'col' }, se.name)))),
      h('tbody', {}, rounds.map((r) => h('tr', {},
        h('th', { scope: 'row' }, r),
        series.map((se) => {
          const v = byName.get(se.name)?.get(r);
          if (v !== undefined) return h('td', { class: 'num' }, fmt(v));
          const why = o.missing?.(se.name, r);
          return h('td', { class: 'num missing' }, why ?? '—');
        })))))));
}
