// The study page's model-quality charts: global loss, global AUC/accuracy and AUC per site.
//
// Two things keep these charts honest about what they are drawn from:
// - a site's line breaks at every round in which it has no value (it did not report, or its
//   figure is withheld by the small-cell rule); points mark only the rounds it reported;
// - the global values are pooled over whichever clinics evaluated that round, so a round where
//   that set changed is marked on the global charts ("+clinic-c −clinic-b"): values either side
//   of the mark are over different clinics.

import { dataTable, legend, lineChart, seriesStyle } from './charts.js';
import { h } from './dom.js';

/**
 * @typedef {import('./api.js').StudyDetail} StudyDetail
 * @typedef {import('./api.js').Metric} Metric
 * @typedef {import('./charts.js').Series} Series
 * @typedef {import('./charts.js').Mark} Mark
 */

/** A site is "lagging" when its AUC is this far below the global AUC of the same round. */
const LAG_THRESHOLD = 0.05;
/** A site is "degrading" when its latest AUC is this far below its own best. */
const DEGRADE_THRESHOLD = 0.03;
/** Longer marker labels are shortened to counts; the full text stays in the tooltip and the list. */
const MARK_LABEL_MAX = 26;

/**
 * Evaluation metrics per round (the last report wins if a round was retried).
 * @param {Metric[]} metrics @param {(m: Metric) => boolean} pick @param {(m: Metric) => number | undefined} value
 */
function perRound(metrics, pick, value) {
  /** @type {Map<number, number>} */
  const out = new Map();
  for (const m of metrics) {
    const v = value(m);
    if (pick(m) && typeof v === 'number' && Number.isFinite(v)) out.set(m.round, v);
  }
  return [...out].sort((a, b) => a[0] - b[0]).map(([x, y]) => ({ x, y }));
}

/** @param {{ x: number, y: number }[]} pts @param {string} what @param {number} digits */
const labelled = (pts, what, digits = 3) => pts.map((p) => ({ ...p, label: `Round ${p.x}: ${what} ${p.y.toFixed(digits)}` }));

/** @param {{ x: number, y: number }[]} pts */
const last = (pts) => pts[pts.length - 1];

/** "3, 5–7" from sorted round numbers. @param {number[]} rounds */
export function roundRanges(rounds) {
  /** @type {[number, number][]} */
  const out = [];
  for (const r of rounds) {
    const run = out[out.length - 1];
    if (run && r === run[1] + 1) run[1] = r;
    else out.push([r, r]);
  }
  return out.map(([a, b]) => (a === b ? `${a}` : `${a}–${b}`)).join(', ');
}

/**
 * Per evaluated round (ascending), the sites whose hold-out evaluation is pooled into the
 * global value: those with a per-site figure and those whose figure is withheld. A committed
 * round nobody evaluated has an empty set.
 * @param {StudyDetail} study
 * @returns {[number, Set<string>][]}
 */
export function reportingSets(study) {
  /** @type {Map<number, Set<string>>} */
  const sets = new Map();
  /** @param {number} r */
  const at = (r) => {
    let set = sets.get(r);
    if (!set) sets.set(r, (set = new Set()));
    return set;
  };
  for (const t of study.timeline ?? []) if (t.state === 'COMMITTED' && t.round >= 1) at(t.round);
  for (const m of study.metrics ?? []) {
    if (m.phase !== 'evaluation' || m.round < 1) continue;
    const set = at(m.round);
    if (m.nodeId !== null) set.add(m.nodeId);
  }
  for (const w of study.metricsWithheld ?? []) if (w.round >= 1) at(w.round).add(w.nodeId);
  return [...sets].sort((a, b) => a[0] - b[0]);
}

/**
 * Rounds at which the reporting set differs from the previous evaluated round's.
 * @param {[number, Set<string>][]} sets
 * @returns {{ round: number, added: string[], removed: string[], now: string[] }[]}
 */
export function reportingChanges(sets) {
  const out = [];
  for (let i = 1; i < sets.length; i++) {
    const [, prev] = sets[i - 1];
    const [round, cur] = sets[i];
    const added = [...cur].filter((id) => !prev.has(id));
    const removed = [...prev].filter((id) => !cur.has(id));
    if (added.length > 0 || removed.length > 0) out.push({ round, added, removed, now: [...cur] });
  }
  return out;
}

/** @param {StudyDetail} study @param {(id: string) => string} site */
export function studyCharts(study, site) {
  const metrics = study.metrics ?? [];
  const globalEval = (/** @type {Metric} */ m) => m.nodeId === null && m.phase === 'evaluation';
  const globalTrain = (/** @type {Metric} */ m) => m.nodeId === null && m.phase === 'training';
  const xMax = study.totalRounds;
  /** @param {string[]} ids */
  const names = (ids) => ids.map(site).sort((a, b) => a.localeCompare(b));

  const sets = reportingSets(study);
  const changes = reportingChanges(sets);
  /** @type {Mark[]} */
  const marks = changes.map((c) => {
    const full = [...names(c.added).map((n) => `+${n}`), ...names(c.removed).map((n) => `−${n}`)].join(' ');
    const short = [c.added.length ? `+${c.added.length}` : '', c.removed.length ? `−${c.removed.length}` : ''].filter(Boolean).join(' ') + ' sites';
    return {
      x: c.round,
      label: full.length <= MARK_LABEL_MAX ? full : short,
      title: `Round ${c.round}: reporting clinics changed (${full}). The global value of round ${c.round} is pooled over ${c.now.length ? names(c.now).join(', ') : 'no clinic'}.`,
    };
  });
  const markLegend = 'reporting clinics changed (+ joined, − missing): global values either side are over different clinics';

  const evalLoss = perRound(metrics, globalEval, (m) => m.loss);
  const trainLoss = perRound(metrics, globalTrain, (m) => m.loss);
  /** @type {Series[]} */
  const lossSeries = [{ name: 'Evaluation loss', ...seriesStyle(0), dash: '', points: labelled(evalLoss, 'evaluation loss', 4) }];
  if (trainLoss.length > 0) lossSeries.push({ name: 'Training loss', ...seriesStyle(1), dash: '6 3', marker: 'square', points: labelled(trainLoss, 'training loss', 4) });

  const auc = perRound(metrics, globalEval, (m) => m.auc);
  const acc = perRound(metrics, globalEval, (m) => m.accuracy);
  /** @type {Series[]} */
  const qualitySeries = [
    { name: 'AUC', ...seriesStyle(0), points: labelled(auc, 'AUC') },
    { name: 'Accuracy', ...seriesStyle(1), dash: '6 3', marker: 'square', points: labelled(acc, 'accuracy') },
  ];

  // Per site: every evaluated round at or after the site's first report is one it could have had.
  /** @type {Set<string>} */
  const withheld = new Set((study.metricsWithheld ?? []).map((w) => `${w.nodeId}/${w.round}`));
  const evaluated = sets.map(([r]) => r);
  const siteIds = [...new Set([
    ...metrics.filter((m) => m.nodeId !== null && m.phase === 'evaluation').map((m) => /** @type {string} */ (m.nodeId)),
    ...(study.metricsWithheld ?? []).map((w) => w.nodeId),
  ])].sort((a, b) => site(a).localeCompare(site(b)) || a.localeCompare(b));
  const globalAuc = new Map(auc.map((p) => [p.x, p.y]));
  const siteSeries = siteIds.map((id, i) => {
    const pts = perRound(metrics, (m) => m.nodeId === id && m.phase === 'evaluation', (m) => m.auc);
    const have = new Set(pts.map((p) => p.x));
    const first = Math.min(...evaluated.filter((r) => have.has(r) || withheld.has(`${id}/${r}`)));
    const gaps = evaluated.filter((r) => r >= first && !have.has(r));
    return {
      name: site(id), ...seriesStyle(i), points: labelled(pts, `${site(id)} AUC`),
      ...siteNote(pts, globalAuc, gaps.filter((r) => !withheld.has(`${id}/${r}`)), gaps.filter((r) => withheld.has(`${id}/${r}`))),
    };
  });
  const idByName = new Map(siteIds.map((id) => [site(id), id]));
  const flagged = siteSeries.filter((se) => se.flagged);

  const lossChart = lineChart({
    key: 'global-loss', title: 'Global loss per round', yLabel: 'Loss', xMax, series: lossSeries, yRange: [0, Infinity], marks, markLegend,
    summary: evalLoss.length ? `Round ${last(evalLoss).x}: evaluation loss ${last(evalLoss).y.toFixed(4)}.` : '',
    empty: 'No evaluation results yet.',
  });
  const qualityChart = lineChart({
    key: 'global-auc', title: 'Global AUC and accuracy per round', yLabel: 'AUC / accuracy', xMax, series: qualitySeries, yRange: [0, 1], marks, markLegend,
    summary: [auc.length ? `Round ${last(auc).x}: AUC ${last(auc).y.toFixed(3)}.` : 'No AUC reported.', acc.length ? `Accuracy ${last(acc).y.toFixed(3)}.` : '',
      changes.length ? `Reporting clinics changed in round${changes.length > 1 ? 's' : ''} ${changes.map((c) => c.round).join(', ')}.` : ''].join(' '),
    empty: 'No evaluation results yet.',
  });
  const siteChart = lineChart({
    key: 'site-auc', title: 'AUC per site per round', yLabel: 'AUC', xMax, series: siteSeries, yRange: [0, 1], width: 1100, height: 300,
    summary: `${siteSeries.length} sites. ${flagged.length ? `Needs attention: ${flagged.map((se) => `${se.name} (${se.note})`).join('; ')}.` : 'No site lags behind the global model.'}`,
    empty: 'No per-site evaluation results yet.',
  });
  // The per-site chart gets the richer legend: latest value, gaps and a flag per site.
  siteChart.querySelector('ul.legend')?.replaceWith(legend(siteSeries) ?? '');
  /** @param {string} name @param {number} r */
  const siteMissing = (name, r) => {
    const id = idByName.get(name);
    return id !== undefined && withheld.has(`${id}/${r}`) ? 'withheld' : 'not reported';
  };
  return [
    h('div', {}, lossChart, dataTable('global-loss', lossSeries, (v) => v.toFixed(4), { rounds: evaluated })),
    h('div', {}, qualityChart, dataTable('global-auc', qualitySeries, (v) => v.toFixed(3), { rounds: evaluated })),
    h('div', { class: 'wide' }, reportingNote(sets, changes, names)),
    h('div', { class: 'wide' }, siteChart,
      h('p', { class: 'help' },
        'A line is drawn only between consecutive rounds a site reported; it breaks where the site has no value. ',
        `Flagged: AUC more than ${LAG_THRESHOLD} below the global model's (lagging), or more than ${DEGRADE_THRESHOLD} below the site's own best (degrading).`),
      withheldNote(study, site),
      dataTable('site-auc', siteSeries, (v) => v.toFixed(3), { rounds: evaluated, missing: siteMissing })),
  ];
}

/**
 * Which clinics the global values are pooled over, and where that changed.
 * @param {[number, Set<string>][]} sets @param {ReturnType<typeof reportingChanges>} changes @param {(ids: string[]) => string[]} names
 */
function reportingNote(sets, changes, names) {
  if (sets.length === 0) return null;
  const [firstRound, firstSet] = sets[0];
  const start = `Global values are pooled over the clinics that evaluated each round. Round ${firstRound}: ${firstSet.size ? names([...firstSet]).join(', ') : 'no clinic'}.`;
  if (changes.length === 0) {
    return h('p', { class: 'help', id: 'reporting-changes', 'data-changes': 0 }, start, sets.length > 1 ? ` The same clinics reported in every round since (${sets.length} rounds).` : '');
  }
  return h('div', { class: 'help reporting-changes', id: 'reporting-changes', 'data-changes': changes.length },
    h('p', {}, start, ' The set changed at the marked rounds (dashed lines on the global charts):'),
    h('ul', { class: 'plain' }, changes.map((c) => h('li', { 'data-round': c.round },
      h('strong', {}, `Round ${c.round}: `),
      c.added.length ? `joined ${names(c.added).join(', ')}` : '',
      c.added.length && c.removed.length ? '; ' : '',
      c.removed.length ? `missing ${names(c.removed).join(', ')}` : '',
      ` (now ${c.now.length ? names(c.now).join(', ') : 'no clinic'})`))));
}

/**
 * Sites whose per-site results are withheld (too few hold-out records, or needed to keep such a
 * site from being worked out from the global value); they count only in the global metrics.
 * @param {StudyDetail} study @param {(id: string) => string} site
 */
function withheldNote(study, site) {
  /** @type {Map<string, number[]>} */
  const bySite = new Map();
  for (const w of study.metricsWithheld ?? []) bySite.set(w.nodeId, [...(bySite.get(w.nodeId) ?? []), w.round]);
  if (bySite.size === 0) return null;
  const k = study.manifest?.data?.minCellCount;
  const list = [...bySite].map(([id, rounds]) => `${site(id)} (round${rounds.length > 1 ? 's' : ''} ${roundRanges([...new Set(rounds)].sort((a, b) => a - b))})`).join('; ');
  return h('p', { class: 'note', id: 'metrics-withheld', role: 'note' },
    h('strong', {}, 'Per-site figures withheld (small cells): '), list, '. ',
    `These clinics' hold-out results are not shown on their own${typeof k === 'number' ? ` (fewer than ${k} records, the study's minCellCount, or needed to keep such a clinic from being worked out from the others)` : ''}; `,
    'they still count in the global values, and their lines break at those rounds.');
}

/**
 * The legend note for one site's AUC series, and whether it needs attention.
 * @param {{ x: number, y: number }[]} pts @param {Map<number, number>} globalAuc
 * @param {number[]} notReported rounds without a report @param {number[]} withheldRounds rounds whose figure is withheld
 */
function siteNote(pts, globalAuc, notReported, withheldRounds) {
  /** @type {string[]} */
  const gaps = [];
  if (notReported.length) gaps.push(`not reported in round${notReported.length > 1 ? 's' : ''} ${roundRanges(notReported)}`);
  if (withheldRounds.length) gaps.push(`withheld in round${withheldRounds.length > 1 ? 's' : ''} ${roundRanges(withheldRounds)}`);
  if (pts.length === 0) return { note: ['no AUC shown', ...gaps].join('; '), flagged: false };
  const latest = last(pts);
  const notes = [`AUC ${latest.y.toFixed(3)} in round ${latest.x}`];
  let flagged = false;
  const g = globalAuc.get(latest.x);
  if (g !== undefined && g - latest.y > LAG_THRESHOLD) {
    notes.push(`lagging: ${(latest.y - g).toFixed(3)} vs global`);
    flagged = true;
  }
  const best = pts.reduce((a, b) => (b.y > a.y ? b : a));
  if (best.y - latest.y > DEGRADE_THRESHOLD) {
    notes.push(`degrading: best was ${best.y.toFixed(3)} in round ${best.x}`);
    flagged = true;
  }
  return { note: `${flagged ? '⚠ ' : ''}${[...notes, ...gaps].join('; ')}`, flagged };
}
