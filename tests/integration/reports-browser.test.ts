import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '@fedlhs/core';
import { FLAMBY_PUBLISHED, assess, heartHtml, simulationHtml, type Assessment, type ClinicResult, type HeartReport, type Method, type SimulationReport } from '@fedlhs/simulator';
import { repoRoot } from '@fedlhs/tests';

// The reports rendered in headless Chromium from fixed report objects (seeded synthetic scores:
// no simulation or benchmark runs here), checked in the DOM, and kept as screenshots.
// FEDLHS_REPORT_HTML=<file> also checks a report written by a real run (e.g. `npm run demo`).

const CHROMIUM = process.env.FEDLHS_CHROMIUM ?? '/usr/bin/chromium';
const artifacts = join(repoRoot, 'artifacts');
let browser: Browser | undefined;

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install Debian's chromium package (.ci/run does) or set FEDLHS_CHROMIUM`).toBe(true);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  mkdirSync(artifacts, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
});

// ---- fixtures --------------------------------------------------------------------------------

type Paired = NonNullable<ClinicResult['gainPaired']>;

/** Scores for `n` patients with exactly `cases` cases; `separation` shifts the cases' log-odds up. */
function scored(n: number, cases: number, separation: number, seed: number): { scores: number[]; labels: number[] } {
  const random = mulberry32(seed);
  const labels = Array.from({ length: n }, (_, i) => (i < cases ? 1 : 0));
  const base = Math.log(Math.max(1, cases) / Math.max(1, n - cases));
  const scores = labels.map((y) => 1 / (1 + Math.exp(-(base + separation * (y - 0.5) + 1.6 * (random() + random() + random() - 1.5)))));
  return { scores, labels };
}
const assessed = (s: { scores: number[]; labels: number[] }): Assessment => assess(s.scores, s.labels);

/** A paired difference as the report stores it, with an interval of half-width `half`. */
function paired(a: Assessment, b: Assessment, half: number): Paired {
  const difference = a.auc! - b.auc!;
  return { a: a.auc, b: b.auc, difference, ci: { low: difference - half, high: difference + half }, cases: a.positives, nonCases: a.negatives, stable: a.aucStable };
}

/** One clinic of a fixture; `local` is the log-odds separation of its local model (the federated model's is 1.6). */
interface ClinicSpec {
  name: string;
  eligible: number;
  holdout: number;
  cases: number;
  local: number;
}

/** Like the default simulation: two large clinics, a medium one whose local model beats the federated one, two small ones with 4 and 3 cases in their hold-out. */
const DEFAULT_CLINICS: ClinicSpec[] = [
  { name: 'clinic-large-1', eligible: 4915, holdout: 1505, cases: 168, local: 1.55 },
  { name: 'clinic-large-2', eligible: 4518, holdout: 1349, cases: 129, local: 1.6 },
  { name: 'clinic-medium', eligible: 809, holdout: 234, cases: 30, local: 2.2 },
  { name: 'clinic-small-1', eligible: 232, holdout: 64, cases: 4, local: 0.6 },
  { name: 'clinic-small-2', eligible: 180, holdout: 58, cases: 3, local: -0.5 },
];

/** Twelve clinics with long names: category labels that cannot stand side by side. */
const MANY_CLINICS: ClinicSpec[] = Array.from({ length: 12 }, (_, i) => ({
  name: `regional-hospital-network-site-${String(i + 1).padStart(2, '0')}`, eligible: 300 + 150 * i, holdout: 90 + 45 * i, cases: 6 + 4 * i, local: 0.8 + 0.06 * i,
}));

/** A SimulationReport with every field the HTML reads, intervals included; round `gapRound` has no hold-out score (the line must break there). */
function syntheticSimulationReport(specs: ClinicSpec[], gapRound = 4): SimulationReport {
  const methods: Method[] = ['federated', 'pooled', 'local', 'oracle'];
  const byMethod = Object.fromEntries(methods.map((m) => [m, { scores: [] as number[], labels: [] as number[] }])) as Record<Method, { scores: number[]; labels: number[] }>;
  const everyone = specs.reduce((s, c) => s + c.holdout, 0);
  const everyoneCases = specs.reduce((s, c) => s + c.cases, 0);
  const fedAll = assessed(scored(everyone, everyoneCases, 1.6, 99));
  const clinics: ClinicResult[] = specs.map((c, i) => {
    const separation: Record<Method, number> = { federated: 1.6, pooled: 1.62, local: c.local, oracle: 2.4 };
    const results: Partial<Record<Method, Assessment>> = {};
    for (const m of methods) {
      const s = scored(c.holdout, c.cases, separation[m], 10 * i + m.length);
      byMethod[m].scores.push(...s.scores);
      byMethod[m].labels.push(...s.labels);
      results[m] = assessed(s);
    }
    const localOnAll = assessed(scored(everyone, everyoneCases, Math.min(1.55, c.local), 50 + i));
    const gainPaired = paired(results.federated!, results.local!, c.cases < 10 ? 0.35 : 0.04);
    return {
      name: c.name, format: (['synthea-csv', 'fhir-ndjson', 'omop-csv'] as const)[i % 3]!, patients: Math.round(c.eligible * 1.25), eligible: c.eligible,
      train: c.eligible - c.holdout, holdout: c.holdout, prevalence: c.cases / c.holdout, participated: true,
      cohort: {
        patients: Math.round(c.eligible * 1.25), patientLosses: {}, eligible: c.eligible, excluded: { 'diabetes before index': Math.round(c.eligible * 0.2) },
        positives: Math.round((c.cases / c.holdout) * c.eligible), features: [{ name: 'hba1c', missing: Math.round(c.eligible * 0.4), outOfRange: 0, unitMismatch: 0, converted: {} }],
        skipped: {}, eventsForUnknownPatients: 0, notes: {}, indexWindowClasses: {}, warnings: [],
      },
      results,
      gain: gainPaired.difference,
      gainPaired,
      localOnAll,
      gainOnAll: paired(fedAll, localOnAll, 0.012),
    };
  });
  const overall: Partial<Record<Method, Assessment>> = {};
  for (const m of methods) overall[m] = assess(byMethod[m].scores, byMethod[m].labels);
  return {
    kind: 'simulation',
    createdAt: '2026-11-29T12:00:00.000Z',
    settings: { clinics: specs.length, seed: 1, rounds: 10, scale: 1, backend: 'cpu', bootstrap: { resamples: 2000, seed: 1, minCases: 10 } },
    study: { id: 'st-fixture', state: 'COMPLETED', manifestSha256: 'ab'.repeat(32), roundsCommitted: 10 },
    release: { studyName: 't2d-3y', version: 1, round: 8, rule: 'best-validation-auc', testFraction: 0.5 },
    rounds: Array.from({ length: 10 }, (_, k) => ({
      round: k + 1, loss: 0.33 - 0.005 * k, accuracy: 0.89, auc: 0.7 + 0.01 * k,
      holdout: k + 1 === gapRound ? null : assessed(scored(everyone, everyoneCases, 0.9 + 0.07 * k, 200 + k)),
    })),
    clinics,
    overall,
    federatedVsPooled: paired(overall.federated!, overall.pooled!, 0.006),
    headline: "Federated vs local-only on each clinic's own hold-out patients (fixture): federated is better at 1 of 3 clinics (95 % interval above 0); at 2 the interval includes 0.",
    normalizationMaxAbsDiff: 1e-9,
    suppressionEffect: 0.002,
    timings: { generate: 1000, extract: 1000, federated: 20000, baselines: 5000, total: 27000 },
  };
}

/** A HeartReport shaped like one seed of the benchmark with two federated strategies, beside FLamby's published figures. */
function syntheticHeartReport(): HeartReport {
  const sites = [{ site: 'cleveland', train: 199, test: 104 }, { site: 'hungary', train: 172, test: 89 }, { site: 'switzerland', train: 30, test: 16 }, { site: 'va', train: 85, test: 45 }];
  const method = (name: string, accs: number[]): HeartReport['accuracy'][number] => ({
    method: name, perSite: Object.fromEntries(sites.map((s, i) => [s.site, [accs[i]!]])), average: [accs.reduce((a, b) => a + b, 0) / accs.length],
  });
  return {
    kind: 'heart',
    createdAt: '2026-11-29T12:00:00.000Z',
    seeds: [0],
    backend: 'cpu',
    rounds: 15,
    localSteps: 100,
    batchSize: 4,
    sites,
    strategies: [{ strategy: 'fedavg', parameters: {}, clientLearningRate: 0.001 }, { strategy: 'fedprox', parameters: { mu: 0.01 }, clientLearningRate: 0.001 }],
    accuracy: [
      method('fedavg', [0.76, 0.8, 0.56, 0.62]), method('fedprox', [0.75, 0.8, 0.56, 0.63]), method('pooled', [0.77, 0.8, 0.62, 0.64]),
      method('local cleveland', [0.75, 0.78, 0.5, 0.6]), method('local hungary', [0.72, 0.81, 0.44, 0.58]),
      method('local switzerland', [0.55, 0.52, 0.94, 0.6]), method('local va', [0.64, 0.66, 0.75, 0.62]),
    ],
    published: FLAMBY_PUBLISHED,
    credit: 'UCI Heart Disease data (CC BY 4.0). Benchmark protocol: FLamby.',
  };
}

// ---- checks ----------------------------------------------------------------------------------

/** Opens `html` in a fresh page; returns the page and the errors it reports. */
async function open(html: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.setContent(html, { waitUntil: 'load' });
  return { page, errors };
}

/**
 * Every chart's legend entries have a swatch painted in the series colour (not grey) and the
 * series' marks in the same colour; no two labels (ticks, categories, axis titles, legend
 * names, counts) overlap, and none sticks out of its chart. Returns the problems found.
 */
function legendAndLabelProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    const rgb = (hex: string): string => {
      const v = Number.parseInt(hex.slice(1), 16);
      return `rgb(${(v >> 16) & 255}, ${(v >> 8) & 255}, ${v & 255})`;
    };
    const grey = (css: string): boolean => {
      const [r = 0, g = 0, b = 0] = (css.match(/\d+/g) ?? []).map(Number);
      return Math.max(r, g, b) - Math.min(r, g, b) < 24;
    };
    const charts = Array.from(document.querySelectorAll('svg[data-chart]'));
    if (charts.length === 0) problems.push('no charts on the page');
    for (const svg of charts) {
      const chart = svg.getAttribute('aria-label') ?? '?';
      const entries = Array.from(svg.querySelectorAll('g.legend-entry'));
      if (entries.length === 0) problems.push(`${chart}: no legend`);
      for (const e of entries) {
        const series = e.getAttribute('data-series') ?? '';
        const want = rgb(e.getAttribute('data-color') ?? '#000000');
        const swatch = e.querySelector('rect.swatch');
        if (swatch === null) {
          problems.push(`${chart} / ${series}: legend entry without a swatch`);
          continue;
        }
        const fill = getComputedStyle(swatch).fill;
        const box = swatch.getBoundingClientRect();
        if (fill !== want) problems.push(`${chart} / ${series}: swatch painted ${fill}, series colour ${want}`);
        if (grey(fill)) problems.push(`${chart} / ${series}: swatch is grey (${fill})`);
        if (box.width < 6 || box.height < 6) problems.push(`${chart} / ${series}: swatch ${box.width}×${box.height} px`);
        const marks = Array.from(svg.querySelectorAll('rect.bar, polyline.series, circle.point, circle.bin')).filter((m) => m.getAttribute('data-series') === series);
        if (marks.length === 0) problems.push(`${chart} / ${series}: no marks of this series`);
        for (const m of marks) {
          const paint = m.tagName === 'polyline' ? getComputedStyle(m).stroke : getComputedStyle(m).fill;
          if (paint !== want) problems.push(`${chart} / ${series}: a ${m.tagName} painted ${paint}, legend says ${want}`);
        }
      }
      const frame = svg.getBoundingClientRect();
      const labels = Array.from(svg.querySelectorAll('text.tick, text.category, text.axis, text.count, text.count-label, g.legend-entry text'))
        .map((t) => ({ text: (t.lastChild?.textContent ?? t.textContent ?? '').trim(), r: t.getBoundingClientRect() }));
      for (const { text, r } of labels) {
        if (r.left < frame.left - 1 || r.right > frame.right + 1 || r.top < frame.top - 1 || r.bottom > frame.bottom + 1) problems.push(`${chart}: label "${text}" sticks out of the chart`);
      }
      for (let i = 0; i < labels.length; i++) {
        for (let j = i + 1; j < labels.length; j++) {
          const a = labels[i]!.r;
          const b = labels[j]!.r;
          if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) problems.push(`${chart}: labels "${labels[i]!.text}" and "${labels[j]!.text}" overlap`);
        }
      }
    }
    return problems;
  });
}

/** Bars of a chart spanning 0 stand on its zero line: positive ones end there at the bottom, negative ones at the top. */
function zeroLineProblems(page: Page, chartLabel: string): Promise<{ problems: string[]; negative: number; positive: number }> {
  return page.evaluate((label) => {
    const svg = Array.from(document.querySelectorAll('svg[data-chart="bar"]')).find((s) => (s.getAttribute('aria-label') ?? '').startsWith(label));
    if (svg === undefined) return { problems: [`no bar chart "${label}"`], negative: 0, positive: 0 };
    const zero = svg.querySelector('line.zero');
    if (zero === null) return { problems: [`"${label}" has no zero line`], negative: 0, positive: 0 };
    const y = zero.getBoundingClientRect().top;
    const problems: string[] = [];
    let negative = 0;
    let positive = 0;
    for (const bar of Array.from(svg.querySelectorAll('rect.bar'))) {
      const v = Number(bar.getAttribute('data-value'));
      const r = bar.getBoundingClientRect();
      if (v > 0) positive++;
      if (v < 0) negative++;
      if (v > 0 && Math.abs(r.bottom - y) > 1) problems.push(`bar ${v} ends at ${r.bottom}, zero line at ${y}`);
      if (v < 0 && Math.abs(r.top - y) > 1) problems.push(`bar ${v} starts at ${r.top}, zero line at ${y}`);
    }
    if (!Array.from(svg.querySelectorAll('text.tick')).some((t) => Number(t.textContent) === 0)) problems.push(`"${label}" has no 0 tick`);
    return { problems, negative, positive };
  }, chartLabel);
}

/** Every calibration bin shows its count (as a label, and in its point's size). */
function calibrationProblems(page: Page): Promise<{ problems: string[]; bins: number }> {
  return page.evaluate(() => {
    const problems: string[] = [];
    let bins = 0;
    for (const svg of Array.from(document.querySelectorAll('svg[data-chart="calibration"]'))) {
      const chart = svg.getAttribute('aria-label') ?? '?';
      const dots = Array.from(svg.querySelectorAll('circle.bin')).map((c) => ({ series: c.getAttribute('data-series'), n: Number(c.getAttribute('data-n')), r: Number(c.getAttribute('r')) }));
      bins += dots.length;
      if (dots.length === 0) problems.push(`${chart}: no bins`);
      const counts = Array.from(svg.querySelectorAll('text.count')).map((t) => ({ series: t.getAttribute('data-series'), n: Number(t.getAttribute('data-n')), text: t.textContent ?? '' }));
      for (const d of dots) {
        if (!(d.n > 0)) problems.push(`${chart}: a bin without a count`);
        const label = counts.find((c) => c.series === d.series && c.n === d.n);
        if (label === undefined) problems.push(`${chart}: bin of ${d.n} patients has no count label`);
        else if (label.text !== String(d.n) && label.text !== `${Math.round(d.n / 1000)}k`) problems.push(`${chart}: bin of ${d.n} labelled "${label.text}"`);
      }
      const bySize = [...dots].sort((a, b) => a.n - b.n);
      for (let i = 1; i < bySize.length; i++) if (bySize[i]!.r < bySize[i - 1]!.r) problems.push(`${chart}: a bin of ${bySize[i]!.n} drawn smaller than one of ${bySize[i - 1]!.n}`);
    }
    return { problems, bins };
  });
}

describe('reports in headless Chromium', () => {
  it('simulation report: coloured legends, labels apart, gains on a zero line, calibration counts, a line broken at a missing round', async () => {
    const report = syntheticSimulationReport(DEFAULT_CLINICS);
    const html = simulationHtml(report);
    writeFileSync(join(artifacts, 'report-simulation.html'), html);
    const { page, errors } = await open(html);
    expect(await legendAndLabelProblems(page)).toEqual([]);
    const zero = await zeroLineProblems(page, 'Gain from joining');
    expect(zero.problems).toEqual([]);
    // The fixture's medium clinic does better alone: a bar that must go down.
    expect(zero.negative).toBeGreaterThan(0);
    expect(zero.positive).toBeGreaterThan(0);
    const calibration = await calibrationProblems(page);
    expect(calibration.problems).toEqual([]);
    expect(calibration.bins).toBeGreaterThan(10);
    // Round 4 has no score: the AUC line is two pieces, not one joined across the gap.
    expect(await page.locator('svg[data-chart="line"] polyline.series[data-series="AUC (95 % band)"]').count()).toBe(2);
    expect(await page.locator('svg[data-chart="line"] circle.point[data-series="AUC (95 % band)"]').count()).toBe(9);
    // Small hold-outs are flagged, and the headline is the report's.
    expect(await page.locator('abbr.flag').count()).toBeGreaterThan(0);
    expect(await page.textContent('#headline')).toBe(report.headline);
    await page.screenshot({ path: join(artifacts, 'report-simulation.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('simulation report with twelve long-named clinics: category labels turn upright rather than overlap', async () => {
    const html = simulationHtml(syntheticSimulationReport(MANY_CLINICS, 0));
    writeFileSync(join(artifacts, 'report-simulation-many-clinics.html'), html);
    const { page, errors } = await open(html);
    expect(await legendAndLabelProblems(page)).toEqual([]);
    expect((await zeroLineProblems(page, 'Gain from joining')).problems).toEqual([]);
    expect(await page.locator('svg[data-chart="bar"] text.category[transform^="rotate"]').count()).toBe(24);
    await page.screenshot({ path: join(artifacts, 'report-simulation-many-clinics.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('heart benchmark report: coloured legends and labels apart', async () => {
    const html = heartHtml(syntheticHeartReport());
    writeFileSync(join(artifacts, 'report-heart.html'), html);
    const { page, errors } = await open(html);
    expect(await legendAndLabelProblems(page)).toEqual([]);
    await page.screenshot({ path: join(artifacts, 'report-heart.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  // Defined only when asked for, so the default run has no skipped test.
  if (process.env.FEDLHS_REPORT_HTML !== undefined) it('a report written by a real run (FEDLHS_REPORT_HTML)', async () => {
    const file = resolve(process.env.FEDLHS_REPORT_HTML!);
    const { page, errors } = await open(readFileSync(file, 'utf8'));
    expect(await legendAndLabelProblems(page)).toEqual([]);
    expect((await calibrationProblems(page)).problems).toEqual([]);
    await page.screenshot({ path: join(artifacts, 'report-real-run.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });
});
