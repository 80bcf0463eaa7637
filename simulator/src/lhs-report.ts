import { UNSTABLE_AUC, differenceVerdict, type Assessment, type PairedAucDifference } from './evaluation.js';
import type { LhsClinicYear, LhsReport } from './lhs-types.js';

/**
 * The multi-year simulation's report: plain verdicts on the equity hypothesis (every clinic,
 * small and newly joined included, gets from the network a model at least as good as it could
 * build alone, and continuous learning keeps it so as clinics drift), what the scenario's changes
 * did to the data, and the whole report as markdown. Nothing is claimed that an interval does
 * not support; where the interval includes 0 it says so.
 */

const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
const interval = (d: PairedAucDifference): string => (d.ci === null ? '' : ` [${signed(d.ci.low)}, ${signed(d.ci.high)}]`);
const diffText = (d: PairedAucDifference | null): string => (d === null || d.difference === null ? '–' : `${signed(d.difference)}${interval(d)}${d.stable ? '' : ` (${UNSTABLE_AUC})`}`);
const aucText = (a: Assessment | null): string =>
  a === null ? '–' : a.auc === null ? `no AUC (${a.positives} cases of ${a.n})` : `${a.auc.toFixed(3)}${a.aucCi === null ? '' : ` [${a.aucCi.low.toFixed(3)}, ${a.aucCi.high.toFixed(3)}]`}${a.aucStable ? '' : ' *'}`;
const where = (cy: LhsClinicYear, d: PairedAucDifference | null): string => `${cy.clinic} in year ${cy.year} (${diffText(d)})`;

/** Clinic-years grouped by where a paired difference's interval lies. */
function tally(rows: LhsClinicYear[], pick: (r: LhsClinicYear) => PairedAucDifference | null): Record<'above' | 'below' | 'includes-zero' | 'too-few' | 'none', LhsClinicYear[]> {
  const t = { above: [] as LhsClinicYear[], below: [] as LhsClinicYear[], 'includes-zero': [] as LhsClinicYear[], 'too-few': [] as LhsClinicYear[], none: [] as LhsClinicYear[] };
  for (const r of rows) t[differenceVerdict(pick(r))].push(r);
  return t;
}

/** Sentences on the equity hypothesis, each naming the clinic-years it rests on. */
export function lhsVerdicts(r: LhsReport): string[] {
  const out: string[] = [];
  // A year whose champion is still the year-1 model compares a model with itself: said once, not tallied.
  const frozen = r.runs[0]?.championAfter ?? null;
  const stillFrozen = r.runs.filter((x) => x.year > 1 && x.championAfter === frozen).map((x) => x.year);
  const comparisons: [string, string, (x: LhsClinicYear) => PairedAucDifference | null, LhsClinicYear[]][] = [
    ['Continuous learning vs local-only', 'the champion', (x) => x.continuousVsLocal, r.clinicYears],
    ['Continuous learning vs the model frozen after year 1', 'the current champion', (x) => x.continuousVsFrozen, r.clinicYears.filter((x) => x.year > 1 && !stillFrozen.includes(x.year))],
  ];
  for (const [title, who, pick, rows] of comparisons) {
    const t = tally(rows, pick);
    const judged = t.above.length + t.below.length + t['includes-zero'].length;
    if (judged === 0 && t['too-few'].length === 0) {
      out.push(`${title}: nothing to compare.`);
      continue;
    }
    const parts = [`${title} (each clinic's test patients of the year, paired 95 % interval): ${who} is better at ${t.above.length} of ${judged} clinic-years with enough cases.`];
    if (t['includes-zero'].length > 0) parts.push(`The hypothesis is NOT shown at ${t['includes-zero'].map((x) => where(x, pick(x))).join('; ')}: the interval includes 0.`);
    if (t.below.length > 0) parts.push(`It DOES NOT HOLD at ${t.below.map((x) => where(x, pick(x))).join('; ')}: the interval lies below 0.`);
    if (t['too-few'].length > 0) parts.push(`Too few cases to judge at ${t['too-few'].map((x) => `${x.clinic} in year ${x.year} (${pick(x)!.cases} cases, ${pick(x)!.nonCases} non-cases)`).join('; ')}.`);
    if (t.none.length > 0) parts.push(`No comparison at ${t.none.map((x) => `${x.clinic} in year ${x.year}`).join(', ')} (no local model: too few training patients or one class).`);
    out.push(parts.join(' '));
  }
  if (stillFrozen.length > 0) out.push(`In year${stillFrozen.length === 1 ? '' : 's'} ${stillFrozen.join(', ')} the champion was still the year-1 model (no release was promoted): continuous learning and the frozen model are the same model there, and continuous learning gained nothing.`);
  const f = r.firstDay;
  if (f === null) out.push('No clinic joined during the simulated years: there is no first day to report.');
  else if (f.championVersion === null) out.push(`${f.clinic} joined in year ${f.year} before there was any champion: it got no model on its first day.`);
  else {
    const v = differenceVerdict(f.championVsLocal);
    const reading = v === 'above' ? 'the champion is better than what it could build alone'
      : v === 'below' ? 'the hypothesis DOES NOT HOLD: its own model is better'
        : v === 'includes-zero' ? 'the hypothesis is NOT shown: the interval includes 0'
          : v === 'too-few' ? `too few cases in its test part to judge (${UNSTABLE_AUC})` : 'no local-only model to compare (too few training patients or one class)';
    const d = f.championVsLocal;
    const against = d === null || d.difference === null ? '' : ` ${signed(d.difference)}${interval(d)},`;
    out.push(`${f.clinic}'s first day (year ${f.year}): champion v${f.championVersion}, never trained on its patients, scores AUC ${aucText(f.championOnAll)} on all its ${f.championOnAll?.n ?? 0} labelled patients; against its own local-only model on its test patients:${against} ${reading}.`);
  }
  const decided = r.runs.filter((x) => x.decision !== null);
  const promoted = decided.filter((x) => x.decision!.promote).length;
  out.push(`${r.runs.length} yearly runs; ${decided.length} releases judged, ${promoted} promoted, ${decided.length - promoted} kept out${r.settings.adapter === 'studies' ? ' (decided by the simulator\'s interim stand-in for the coordinator\'s series, with the same rule)' : ' (decided by the coordinator)'}.`);
  return out;
}

/** What the scenario's data changes did: the glucose switch and the new assay, as the extractor saw them. */
export function lhsFindings(r: LhsReport, switching: string | undefined, assayClinic: string | undefined, insulinCounts: ReadonlyMap<number, number>): string[] {
  const out: string[] = [];
  const { unitSwitchYear, assayYear } = r.settings.drift;
  const at = (clinic: string | undefined, year: number): LhsClinicYear | undefined => r.clinicYears.find((x) => x.clinic === clinic && x.year === year);
  const before = at(switching, unitSwitchYear - 1);
  const after = at(switching, unitSwitchYear);
  if (before !== undefined && after !== undefined) {
    const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;
    const lost = after.glucoseMissing - before.glucoseMissing > 0.2;
    out.push(
      `${switching} switched glucose from mg/dL (LOINC 2345-7) to mmol/L (LOINC 14749-6) in year ${unitSwitchYear}: its eligible patients without a glucose value went from ${pct(before.glucoseMissing)} to ${pct(after.glucoseMissing)}. ` +
        (lost
          ? "The agent's reader could convert 14749-6 from mmol/L (core units.ts knows it), but the study's glucose feature lists only LOINC 2339-0 and 2345-7, so no value is read: the approved series template must add 14749-6 to the feature's codes (a template change every clinic approves again)."
          : 'The reader kept reading glucose after the switch.') +
        (after.warnings.length > 0 ? ` The extractor warned: ${after.warnings.join('; ')}.` : ' The extractor raised no warning about it.'),
    );
  }
  const assay = insulinCounts.get(assayYear);
  if (assayClinic !== undefined && assay !== undefined) {
    out.push(`${assayClinic} reports a new assay, fasting insulin (LOINC 20448-7), from year ${assayYear} (${assay} values in that year's export). The series' features do not include it, so no model of the series uses it; using it needs a new template (new features, a new model shape) approved by every clinic.`);
  }
  return out;
}

const row = (cells: string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
const tableMd = (head: string[], rows: string[][]): string => [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');

/** The report as markdown. */
export function lhsMarkdown(r: LhsReport): string {
  const s = r.settings;
  const runs = tableMd(
    ['year', 'study', 'state', 'index window', 'clinics', 'trained', 'started from', 'release', 'decision', 'champion after'],
    r.runs.map((x) => [String(x.year), x.studyId, x.state, `${x.window.from}..${x.window.to}`, String(x.clinics.length), x.trained.join(', '), x.championBefore === null ? 'scratch' : `v${x.championBefore}${x.warmStart ? ' (warm start)' : ' (NOT warm-started)'}`,
      x.release === null ? '–' : `v${x.release.version} (round ${x.release.round})`, x.decision === null ? '–' : `${x.decision.promote ? 'promote' : 'keep'} (${x.decision.by}): ${x.decision.reasons.join('; ')}`,
      x.championAfter === null ? '–' : `v${x.championAfter}`]),
  );
  const perClinic = tableMd(
    ['clinic', 'year', 'eligible', 'prevalence', 'test (cases)', 'glucose missing', 'frozen AUC', 'continuous AUC', 'in-use AUC', 'local AUC', 'continuous − frozen', 'continuous − local'],
    [...r.clinicYears].sort((a, b) => (a.clinic === b.clinic ? a.year - b.year : a.clinic < b.clinic ? -1 : 1)).map((x) => [
      x.clinic + (x.joined && x.year > 1 ? ' (joins)' : ''), String(x.year), String(x.eligible), `${(x.prevalence * 100).toFixed(1)} %`, `${x.test.n} (${x.test.cases})`, `${(x.glucoseMissing * 100).toFixed(0)} %`,
      aucText(x.frozen), aucText(x.continuous), aucText(x.inUse), aucText(x.local), diffText(x.continuousVsFrozen), diffText(x.continuousVsLocal),
    ]),
  );
  const f = r.firstDay;
  const first = f === null ? 'No clinic joined.' : tableMd(['', 'patients', 'AUC [95 % interval]'], [
    [`champion v${f.championVersion ?? '–'} on all labelled patients`, String(f.championOnAll?.n ?? 0), aucText(f.championOnAll)],
    [`champion v${f.championVersion ?? '–'} on the test patients`, String(f.championOnTest?.n ?? 0), aucText(f.championOnTest)],
    ['local-only model on the test patients', String(f.localOnTest?.n ?? 0), aucText(f.localOnTest)],
    ['champion − local (paired)', String(f.championOnTest?.n ?? 0), diffText(f.championVsLocal)],
  ]);
  return `# fedlhs: the learning health system over ${s.years} simulated years

Series \`${r.series.name}\` (template sha256 \`${r.series.templateSha256.slice(0, 16)}…\`): incident T2D within 3 years, one run a year, warm-started from the champion, promoted automatically by the template's rule.
${s.adapter === 'studies' ? '**Interim:** the coordinator of this run had no series service; each year ran as a single study derived from the template, and the simulator decided promotions with the same rule (core decidePromotion on the clinics\' paired comparisons).\n' : 'The coordinator ran the series: it derived each run, warm-started it and decided each promotion.\n'}
Seed ${s.seed}, scale ${s.scale}, ${s.rounds} rounds a run, ${s.founders} founding clinics; drift: prevalence +${s.drift.prevalenceDriftPerYear} log-odds a year, glucose unit and code switch in year ${s.drift.unitSwitchYear}, new assay in year ${s.drift.assayYear}, a small clinic joins in year ${s.drift.joinYear}. Backend ${s.backend}.
Every figure is on the clinic's test patients of that year (the part of its hold-out split that chose nothing). Intervals: 95 %, stratified percentile bootstrap (${s.bootstrap.resamples} resamples, seed ${s.bootstrap.seed}), paired for differences; \* marks an AUC on fewer than ${s.bootstrap.minCases} cases or non-cases.
Frozen: the champion after year 1, never updated. Continuous: the champion after the year's run. In use: the champion during the year (after the previous run). Local: the clinic's own model trained on its training patients of the year alone.

## Verdicts

${r.verdicts.map((v) => `- ${v}`).join('\n')}

## What the changes did to the data

${r.findings.length === 0 ? '- (none observed)' : r.findings.map((v) => `- ${v}`).join('\n')}

## Runs

${runs}

## Per clinic and year

${perClinic}

## The joining clinic's first day

${first}

Timings (ms): ${Object.entries(r.timings).map(([k, v]) => `${k} ${v}`).join(', ')}. Generated ${r.createdAt}.
`;
}
