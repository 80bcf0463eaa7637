import { MIN_CASES_FOR_AUC, UNSTABLE_AUC, differenceVerdict, type PairedAucDifference } from './evaluation.js';
import { PALETTE, accuracyCell, cellHtml, aucCell, barChart, calibrationChart, differenceCell, esc, fmt, fmtInterval, lineChart, page, table } from './report.js';
import type { ClinicResult, Method, SimulationReport } from './simulation-types.js';

const METHODS: Method[] = ['local', 'federated', 'pooled', 'oracle'];
/** The second gain series (local model scored on every clinic's test part): not a method colour, not grey. */
const ALL_HOLDOUTS = '#bf3989';
/** The no-information rate's reference line (accuracy is drawn in the pooled colour's purple beside it). */
const NIR = '#bc4c00';

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
const list = (xs: string[]): string => (xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)!}`);

/** Clinics grouped by where the interval of a paired gain lies. */
export interface GainTally {
  above: ClinicResult[];
  below: ClinicResult[];
  includesZero: ClinicResult[];
  tooFew: ClinicResult[];
  none: ClinicResult[];
}

/** Groups clinics by the verdict of one of their paired gains. */
export function tallyGains(clinics: ClinicResult[], gain: (c: ClinicResult) => PairedAucDifference | null): GainTally {
  const t: GainTally = { above: [], below: [], includesZero: [], tooFew: [], none: [] };
  for (const c of clinics) {
    const v = differenceVerdict(gain(c));
    (v === 'above' ? t.above : v === 'below' ? t.below : v === 'includes-zero' ? t.includesZero : v === 'too-few' ? t.tooFew : t.none).push(c);
  }
  return t;
}

/** "better at 2 of 3 clinics (95 % interval above 0), worse at 1 (interval below 0), and at 1 the interval includes 0". */
function tallyText(t: GainTally, better: string, worse: string): string {
  const judged = t.above.length + t.below.length + t.includesZero.length;
  const parts = [`${better} at ${t.above.length} of ${plural(judged, 'clinic')} (95 % interval above 0)`];
  if (t.below.length > 0) parts.push(`${worse} at ${t.below.length} (interval below 0)`);
  if (t.includesZero.length > 0) parts.push(`at ${t.includesZero.length} the interval includes 0`);
  return parts.length === 1 ? parts[0]! : `${parts.slice(0, -1).join(', ')}; ${parts.at(-1)!}`;
}

/**
 * The report's headline: how many clinics gain from the federation with a 95 % interval above
 * 0, on their own test patients where it has enough cases and on every clinic's test patients;
 * clinics whose test part has too few cases are named and claim nothing. Never a mean gain.
 */
export function simulationHeadline(r: SimulationReport): string {
  const own = tallyGains(r.clinics, (c) => c.gainPaired);
  const onAll = tallyGains(r.clinics, (c) => c.gainOnAll);
  const sentences: string[] = [];
  const judgedOwn = own.above.length + own.below.length + own.includesZero.length;
  if (judgedOwn > 0) sentences.push(`Federated vs local-only on each clinic's own test patients: federated is ${tallyText(own, 'better', 'worse')}.`);
  if (own.tooFew.length > 0) {
    const who = own.tooFew.map((c) => `${c.name}: ${plural(c.gainPaired!.cases, 'case')}, ${plural(c.gainPaired!.nonCases, 'non-case')}`);
    sentences.push(`${own.tooFew.length === 1 ? 'One clinic\'s test part has' : `${own.tooFew.length} clinics' test parts have`} ${UNSTABLE_AUC} (${who.join('; ')}; at least ${MIN_CASES_FOR_AUC} of each are needed): no gain is claimed there.`);
  }
  const judgedAll = onAll.above.length + onAll.below.length + onAll.includesZero.length;
  const fed = r.overall.federated;
  if (judgedAll > 0 && fed !== undefined) {
    sentences.push(`Scored on all ${fed.n} test patients (${fed.positives} cases), the federated model is ${tallyText(onAll, 'better than the local-only model', 'worse')}.`);
  }
  const withoutLocal = r.clinics.filter((c) => c.gainPaired === null);
  if (withoutLocal.length > 0) sentences.push(`${list(withoutLocal.map((c) => c.name))} had no local-only model to compare (too few training patients or no outcome among them).`);
  const vp = r.federatedVsPooled;
  if (vp !== null && vp.difference !== null) {
    const v = differenceVerdict(vp);
    const reading = v === 'above' ? 'federated is better' : v === 'below' ? 'pooled is better' : v === 'too-few' ? UNSTABLE_AUC : 'the interval includes 0';
    sentences.push(`Federated vs pooled on all test patients: ${vp.difference >= 0 ? '+' : ''}${fmt(vp.difference)} ${fmtInterval(vp.ci)} (${reading}).`);
  }
  return sentences.join(' ');
}

/** The simulation report as a self-contained HTML page. */
export function simulationHtml(r: SimulationReport): string {
  const clinics = r.clinics;
  const bySize = [...clinics].sort((a, b) => a.eligible - b.eligible);
  const labels = bySize.map((c) => `${c.name} (${c.eligible})`);
  const aucBars = barChart(
    'Hold-out AUC per clinic, clinics ordered by cohort size (eligible patients)',
    labels,
    METHODS.map((m) => ({
      name: m, color: PALETTE[m]!,
      values: bySize.map((c) => c.results[m]?.auc ?? null),
      intervals: bySize.map((c) => c.results[m]?.aucCi),
      unstable: bySize.map((c) => c.results[m]?.aucStable === false),
    })),
    [0.5, 1],
    { yLabel: 'AUC' },
  );
  const gainBars = barChart(
    'Gain from joining the federation: federated AUC − local-only AUC (paired, same patients)',
    labels,
    [
      { name: 'own test patients', color: PALETTE.federated!, values: bySize.map((c) => c.gainPaired?.difference ?? null), intervals: bySize.map((c) => c.gainPaired?.ci), unstable: bySize.map((c) => c.gainPaired?.stable === false) },
      { name: 'all test parts', color: ALL_HOLDOUTS, values: bySize.map((c) => c.gainOnAll?.difference ?? null), intervals: bySize.map((c) => c.gainOnAll?.ci), unstable: bySize.map((c) => c.gainOnAll?.stable === false) },
    ],
    undefined,
    { yLabel: 'AUC gain' },
  );
  const nir = r.overall.federated?.noInformationRate ?? null;
  const rounds = lineChart('The federated model after each round, on all test patients', [
    { name: 'AUC (95 % band)', color: PALETTE.federated!, points: r.rounds.map((x) => ({ x: x.round, y: x.holdout?.auc ?? null, low: x.holdout?.aucCi?.low ?? null, high: x.holdout?.aucCi?.high ?? null })) },
    { name: 'accuracy', color: PALETTE.pooled!, points: r.rounds.map((x) => ({ x: x.round, y: x.holdout?.accuracy ?? null })) },
    ...(nir === null ? [] : [{ name: 'no-information rate', color: NIR, dashed: true, points: r.rounds.map((x) => ({ x: x.round, y: nir })) }]),
  ], 'test-part metric');
  const calibration = METHODS.filter((m) => r.overall[m] !== undefined)
    .map((m) => calibrationChart(`Calibration of ${m}, all test patients`, [{ name: m, color: PALETTE[m]!, bins: r.overall[m]!.calibration }])).join('');
  const b = r.settings.bootstrap;
  const fed = r.overall.federated;
  const body = `
<h1>fedlhs simulation: incident type 2 diabetes within 3 years</h1>
<p>${r.clinics.length} synthetic clinics (seed ${r.settings.seed}, scale ${r.settings.scale}), ${r.study.roundsCommitted} federated rounds over real gRPC
(study <code>${esc(r.study.id)}</code>, manifest sha256 <code>${esc(r.study.manifestSha256.slice(0, 16))}…</code>), TensorFlow.js backend ${esc(r.settings.backend)}.
The federated model is the coordinator's signed release ${esc(r.release.studyName)} v${r.release.version}: round ${r.release.round} of ${r.study.roundsCommitted}, chosen by ${esc(r.release.rule)} on the clinics' validation patients.
Every method is scored on the same test patients of each clinic (${Math.round(r.release.testFraction * 100)} % of its hold-out split, which chose nothing), so the release's figures are not flattered by its selection. The oracle scores patients with their true risk from the generator's disease model: the best achievable AUC.</p>
<p class="headline" id="headline">${esc(r.headline)}</p>
<p class="note">Every AUC carries a 95 % interval (stratified percentile bootstrap: cases and non-cases resampled separately, ${b.resamples} resamples, seed ${b.seed}) and the cases and non-cases it rests on.
Gains are paired: both models scored on the same patients and resampled together. An AUC resting on fewer than ${b.minCases} cases or non-cases is shown but flagged "${esc(UNSTABLE_AUC)}" and never used for a headline.
Accuracy stands beside the no-information rate, the accuracy of always predicting the majority class.</p>
<h2>Overall (all test patients)</h2>
${table(['method', 'AUC [95 % interval]', 'accuracy', 'no-information rate', 'Brier', 'ECE', 'patients'], METHODS.filter((m) => r.overall[m]).map((m) => [m, aucCell(r.overall[m]), r.overall[m]!.accuracy, r.overall[m]!.noInformationRate, r.overall[m]!.brier, r.overall[m]!.ece, String(r.overall[m]!.n)]))}
<p>Federated − pooled AUC on these patients (paired): ${cellHtml(differenceCell(r.federatedVsPooled)).replace('<br>', ' ')}. "local" is each clinic's own model on its own test patients.
The coordinator's normalisation equals what the clinics' (small-cell-suppressed) statistics imply to within ${r.normalizationMaxAbsDiff.toExponential(1)}; suppression moves it at most ${r.suppressionEffect.toPrecision(2)} from the pooled data's.</p>
${aucBars}${gainBars}
${rounds}
<h2>Calibration</h2>
${calibration}
<h2>Per clinic, on its own test patients patients</h2>
${table(['clinic', 'eligible', 'train/test', 'prevalence', 'local AUC', 'federated AUC', 'pooled AUC', 'oracle AUC', 'gain (federated − local)'],
  clinics.map((c) => [c.name, String(c.eligible), `${c.train}/${c.holdout}`, `${(c.prevalence * 100).toFixed(1)}%`,
    aucCell(c.results.local), aucCell(c.results.federated), aucCell(c.results.pooled), aucCell(c.results.oracle), differenceCell(c.gainPaired)]))}
<p class="note">A small clinic's test part has few patients with the outcome, so its own AUC is noisy: read its interval, and the next table.</p>
<h2>Each clinic's local-only model on all test patients</h2>
${table(['clinic', 'local model AUC', 'federated AUC (same patients)', 'gain (federated − local)'],
  clinics.map((c) => [c.name, aucCell(c.localOnAll), c.localOnAll === null ? null : aucCell(fed), differenceCell(c.gainOnAll)]))}
<p class="note">What a clinic's own model could offer, scored on every clinic's test patients (${fed?.n ?? 0}) beside the federated model on the same patients.</p>
<h2>Accuracy and calibration per clinic (own test patients)</h2>
${table(['clinic', 'no-information rate', 'local accuracy', 'federated accuracy', 'local Brier', 'federated Brier'],
  clinics.map((c) => [c.name, c.results.federated?.noInformationRate, c.results.local?.accuracy, c.results.federated?.accuracy, c.results.local?.brier, c.results.federated?.brier]))}
<h2>Data quality per clinic (aggregate counts; nothing left the clinics but the study's statistics)</h2>
${table(['clinic', 'export read', 'trained', 'excluded (by reason)', 'missing values per feature'], clinics.map((c) => [c.name, c.format, c.participated ? 'yes' : 'no (still scored)',
  Object.entries(c.cohort.excluded).map(([k, v]) => `${k}: ${v}`).join('; '),
  c.cohort.features.filter((f) => f.missing > 0).map((f) => `${f.name} ${f.missing}`).join(', ')]))}
<h2>Per round</h2>
${table(['round', 'loss (clinics)', 'AUC, all test parts [95 % interval]', 'accuracy, all test parts'], r.rounds.map((x) => [String(x.round), x.loss, aucCell(x.holdout), accuracyCell(x.holdout)]))}
<p class="note">Loss as the clinics reported it (example-weighted mean); AUC and accuracy: the round's committed model scored here on every clinic's test patients.
Timings (ms): ${Object.entries(r.timings).map(([k, v]) => `${k} ${v}`).join(', ')}. Generated ${esc(r.createdAt)}.</p>`;
  return page('fedlhs simulation report', body);
}
