import { UNSTABLE_AUC, differenceVerdict, type Assessment, type PairedAucDifference } from './evaluation.js';
import type { LhsClinicYear, LhsReport } from './lhs-types.js';
import { signed } from './format.js';

/**
 * The multi-year simulation's report: plain verdicts on the equity hypothesis (every clinic,
 * small and newly joined included, gets from the network a model at least as good as it could
 * build alone, and continuous learning keeps it so as clinics drift), what the scenario's changes
 * did to the data, and the whole report as markdown. Nothing is claimed that an interval does
 * not support; where the interval includes 0 it says so.
 */

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

const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;

/** Where a clinic-year's paired difference lies, as words for the not-holding list; undefined when it is above 0. */
function shortfall(d: PairedAucDifference | null): string | undefined {
  switch (differenceVerdict(d)) {
    case 'above':
      return undefined;
    case 'below':
      return `DOES NOT HOLD: ${diffText(d)}, the interval lies below 0`;
    case 'includes-zero':
      return `not shown: ${diffText(d)}, the interval includes 0`;
    case 'too-few':
      return `cannot be judged: ${d!.cases} cases and ${d!.nonCases} non-cases in its test part (${UNSTABLE_AUC})`;
    default:
      return 'cannot be judged: no local-only model (too few training patients or one class)';
  }
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
    ["Each later year's retrained release (promoted or not) vs the frozen model", "the year's release", (x) => x.challengerVsFrozen, r.clinicYears.filter((x) => x.year > 1)],
  ];
  for (const [title, who, pick, rows] of comparisons) {
    const t = tally(rows, pick);
    const judged = t.above.length + t.below.length + t['includes-zero'].length;
    if (judged === 0 && t['too-few'].length === 0) {
      out.push(`${title}: nothing to compare.`);
      continue;
    }
    const parts = [`${title} (each clinic's test patients of the year, paired 95 % interval): ${who} is better at ${t.above.length} of ${judged} clinic-years with enough cases${t.above.length === 0 ? '' : ` (${t.above.map((x) => where(x, pick(x))).join('; ')})`}.`];
    if (t['includes-zero'].length > 0) parts.push(`Not shown at ${t['includes-zero'].length} (the interval includes 0).`);
    if (t.below.length > 0) parts.push(`WORSE at ${t.below.map((x) => where(x, pick(x))).join('; ')} (the interval lies below 0).`);
    if (t['too-few'].length > 0) parts.push(`Too few cases to judge at ${t['too-few'].length}.`);
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
  const bySchedule = r.runs.filter((x) => x.trigger === 'schedule').length;
  out.push(`${r.runs.length} yearly runs, ${bySchedule === r.runs.length ? 'every one' : `${bySchedule}`} started by the series' schedule on the simulated clock; ${decided.length} releases judged by the coordinator, ${promoted} promoted, ${decided.length - promoted} kept out.`);
  return out;
}

/** Every clinic-year (and the first day) where the equity hypothesis does not hold or is not shown: continuous learning vs local-only, and vs the frozen model where they differ. */
export function lhsNotHolding(r: LhsReport): string[] {
  const out: string[] = [];
  const frozen = r.runs[0]?.championAfter ?? null;
  const sorted = [...r.clinicYears].sort((a, b) => (a.clinic === b.clinic ? a.year - b.year : a.clinic < b.clinic ? -1 : 1));
  for (const x of sorted) {
    const s = shortfall(x.continuousVsLocal);
    if (s !== undefined) out.push(`${x.clinic}, year ${x.year}: the network's model vs its own local-only model ${s}.`);
  }
  for (const x of sorted) {
    const run = r.runs.find((y) => y.year === x.year);
    if (x.year === 1 || run?.championAfter === frozen) continue;
    if (differenceVerdict(x.continuousVsFrozen) === 'below') out.push(`${x.clinic}, year ${x.year}: continuous learning made it WORSE than the frozen year-1 model: ${diffText(x.continuousVsFrozen)}.`);
  }
  const f = r.firstDay;
  if (f !== null && f.championVersion !== null) {
    const s = shortfall(f.championVsLocal);
    if (s !== undefined) out.push(`${f.clinic}'s first day (year ${f.year}): the champion vs its own local-only model ${s}.`);
  }
  return out;
}

/** What the scenario's data changes did: the glucose switch and the new assay, as the extractor and the models saw them. */
export function lhsFindings(r: LhsReport, switching: string | undefined, assayClinic: string | undefined, insulinCounts: ReadonlyMap<number, number>): string[] {
  const out: string[] = [];
  const { unitSwitchYear, assayYear } = r.settings.drift;
  const at = (clinic: string | undefined, year: number): LhsClinicYear | undefined => r.clinicYears.find((x) => x.clinic === clinic && x.year === year);
  const before = at(switching, unitSwitchYear - 1);
  const after = at(switching, unitSwitchYear);
  if (before !== undefined && after !== undefined) {
    const lost = after.glucoseMissing - before.glucoseMissing > 0.1;
    out.push(
      `${switching} switched glucose from mg/dL (LOINC 2345-7) to mmol/L (LOINC 14749-6) in year ${unitSwitchYear}: its eligible patients without a glucose value went from ${pct(before.glucoseMissing)} to ${pct(after.glucoseMissing)}. ` +
        (lost
          ? 'The switch was NOT absorbed: glucose values were lost (check the glucose feature\'s codes and unit against this export).'
          : 'The switch was absorbed: the series\' glucose feature lists the whole LOINC glucose concept set and the reader converts mmol/L to mg/dL.') +
        (after.agentWarnings.length > 0 ? ` Its agent reported: ${after.agentWarnings.join('; ')}.` : ' Its agent reported no data warning for that run.'),
    );
  }
  const assay = insulinCounts.get(assayYear);
  const pre = at(assayClinic, assayYear - 1);
  const post = at(assayClinic, assayYear);
  if (assayClinic !== undefined && assay !== undefined && post !== undefined) {
    const promotedAfter = r.runs.filter((x) => x.year >= assayYear && x.decision?.promote === true).map((x) => `v${x.release!.version} (year ${x.year})`);
    const later = r.clinicYears.filter((x) => x.clinic === assayClinic && x.year >= assayYear);
    out.push(
      `${assayClinic} reports a new assay, fasting insulin (LOINC 20448-7), from year ${assayYear} (${assay} values in that year's export): its eligible patients without insulin went from ${pre === undefined ? '–' : pct(pre.insulinMissing)} to ${pct(post.insulinMissing)}. ` +
        'The series template has insulin as a feature from the start (missing and imputed; excluded from the normalisation while no clinic measured it), so the frozen year-1 model cannot use it and a model retrained afterwards can. ' +
        `At ${assayClinic}, each later year's release vs the frozen model: ${later.map((x) => `year ${x.year} ${diffText(x.challengerVsFrozen)}`).join('; ')}. ` +
        (promotedAfter.length === 0 ? 'No release trained after the assay appeared was promoted, so continuous learning did not bring it into use.' : `Promoted after it appeared: ${promotedAfter.join(', ')}.`),
    );
    const without = [...new Set(r.clinicYears.filter((x) => x.clinic !== assayClinic && x.year >= assayYear && x.insulinMissing >= 1).map((x) => x.clinic))];
    const told = [...new Set(r.clinicYears.filter((x) => x.clinic !== assayClinic && x.agentWarnings.some((w) => w.includes('insulin'))).map((x) => x.clinic))];
    if (without.length > 0) {
      out.push(`Insulin stays missing at ${without.join(', ')}. ${told.length === 0 ? 'No agent reported it.' : `The agents of ${told.join(', ')} reported it with each run they were ready for ("no eligible patient has a value for insulin"): a gap the operator is told of, not a silent one.`}`);
    }
  }
  return out;
}

const row = (cells: string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
const tableMd = (head: string[], rows: string[][]): string => [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');

/** The report as markdown. */
export function lhsMarkdown(r: LhsReport): string {
  const s = r.settings;
  const runs = tableMd(
    ['year', 'study', 'started by', 'scheduled at', 'state', 'index window', 'clinics', 'trained', 'started from', 'release', 'champion after'],
    r.runs.map((x) => [String(x.year), x.studyId, x.trigger, x.scheduledAt.slice(0, 10), x.state, `${x.window.from}..${x.window.to}`, String(x.clinics.length), x.trained.join(', ') + (x.staleExports.length === 0 ? '' : ` (STALE EXPORT: ${x.staleExports.join('; ')})`), x.championBefore === null ? 'scratch' : `v${x.championBefore}${x.warmStart ? ' (warm start)' : ' (NOT warm-started)'}`,
      x.release === null ? '–' : `v${x.release.version} (round ${x.release.round})`, x.championAfter === null ? '–' : `v${x.championAfter}`]),
  );
  const decisions = tableMd(
    ['year', 'release', 'compared with', 'pooled challenger − champion [95 %]', 'decision', 'reasons', 'too small to judge', 'worse'],
    r.runs.filter((x) => x.decision !== null).map((x) => {
      const d = x.decision!;
      const p = d.pooled === null ? '–' : `${signed(d.pooled.difference)} [${signed(d.pooled.interval[0])}, ${signed(d.pooled.interval[1])}] over ${d.pooled.sites} clinics${d.pooled.excluded > 0 ? ` (${d.pooled.excluded} left out)` : ''}`;
      return [String(x.year), `v${x.release?.version ?? '–'}`, x.championBefore === null ? 'none' : `v${x.championBefore}`, p, d.promote ? 'promote' : 'keep', d.reasons.join('; '), d.tooSmall.join(', ') || '–', d.worse.join(', ') || '–'];
    }),
  );
  const sorted = [...r.clinicYears].sort((a, b) => (a.clinic === b.clinic ? a.year - b.year : a.clinic < b.clinic ? -1 : 1));
  const perClinic = tableMd(
    ['clinic', 'year', 'eligible', 'prevalence', 'test (cases)', 'glucose missing', 'insulin missing', 'frozen AUC', 'continuous AUC', 'in-use AUC', 'release AUC', 'local AUC', 'continuous − frozen', 'continuous − local', 'release − frozen'],
    sorted.map((x) => [
      x.clinic + (x.joined && x.year > 1 ? ' (joins)' : ''), String(x.year), String(x.eligible), `${(x.prevalence * 100).toFixed(1)} %`, `${x.test.n} (${x.test.cases})`, pct(x.glucoseMissing), pct(x.insulinMissing),
      aucText(x.frozen), aucText(x.continuous), aucText(x.inUse), aucText(x.challenger), aucText(x.local), diffText(x.continuousVsFrozen), diffText(x.continuousVsLocal), diffText(x.challengerVsFrozen),
    ]),
  );
  const warned = sorted.filter((x) => x.agentWarnings.length > 0);
  const warnings = warned.length === 0 ? 'No agent reported a data warning.' : tableMd(['clinic', 'year', 'what its agent reported for the run'], warned.map((x) => [x.clinic, String(x.year), x.agentWarnings.join('; ')]));
  const f = r.firstDay;
  const first = f === null ? 'No clinic joined.' : tableMd(['', 'patients', 'AUC [95 % interval]'], [
    [`champion v${f.championVersion ?? '–'} on all labelled patients`, String(f.championOnAll?.n ?? 0), aucText(f.championOnAll)],
    [`champion v${f.championVersion ?? '–'} on the test patients`, String(f.championOnTest?.n ?? 0), aucText(f.championOnTest)],
    ['local-only model on the test patients', String(f.localOnTest?.n ?? 0), aucText(f.localOnTest)],
    ['champion − local (paired)', String(f.championOnTest?.n ?? 0), diffText(f.championVsLocal)],
  ]);
  return `# fedlhs: the learning health system over ${s.years} simulated years (${s.firstCalendarYear}–${s.firstCalendarYear + s.years - 1})

Series \`${r.series.name}\` (template sha256 \`${r.series.templateSha256.slice(0, 16)}…\`): incident T2D within 3 years, one run a year, warm-started from the champion, promoted automatically by the template's rule.
The coordinator ran the series on its simulated series clock: each run was started by the yearly cron schedule (1 January), derived, warm-started and decided by the coordinator; the simulation only wrote each year's exports and moved the clock.
Seed ${s.seed}, scale ${s.scale}, ${s.rounds} rounds a run, ${s.founders} founding clinics; drift: prevalence +${s.drift.prevalenceDriftPerYear} log-odds a year, glucose unit and code switch in year ${s.drift.unitSwitchYear}, new assay (fasting insulin) in year ${s.drift.assayYear}, a small clinic joins in year ${s.drift.joinYear}. Backend ${s.backend}.
Every figure is on the clinic's test patients of that year (the part of its hold-out split that chose nothing). Intervals: 95 %, stratified percentile bootstrap (${s.bootstrap.resamples} resamples, seed ${s.bootstrap.seed}), paired for differences; \\* marks an AUC on fewer than ${s.bootstrap.minCases} cases or non-cases.
Frozen: the champion after year 1, never updated. Continuous: the champion after the year's run. In use: the champion during the year (after the previous run). Release: the year's run's release, promoted or not. Local: the clinic's own model trained on its training patients of the year alone.

## Verdicts

${r.verdicts.map((v) => `- ${v}`).join('\n')}

## Where the equity hypothesis does not hold

The hypothesis: every clinic, small and newly joined included, gets from the network a model at least as good as it could build alone, and continuous learning keeps it so as clinics drift. It is shown only where a paired 95 % interval lies above 0.

${r.notHolding.length === 0 ? '- Nowhere in these figures.' : r.notHolding.map((v) => `- ${v}`).join('\n')}

## What the changes did to the data

${r.findings.length === 0 ? '- (none observed)' : r.findings.map((v) => `- ${v}`).join('\n')}

## Runs

${runs}

## Promotion decisions (the coordinator's, with their evidence)

${decisions}

## What the agents reported

${warnings}

## Per clinic and year

${perClinic}

## The joining clinic's first day

${first}

Timings (ms): ${Object.entries(r.timings).map(([k, v]) => `${k} ${v}`).join(', ')}. Generated ${r.createdAt}.
`;
}
