import { deriveSeriesRun, describeIndex, diffManifests, releasePolicy, seriesVarying, studyFeatureNames, type SeriesTemplate, type StudyManifest } from '@fedlhs/core';
import type { AgentConfig } from './config.js';
import { describePrivacy } from './privacy-review.js';
import type { RunApproval } from './series-approval.js';
import { forTerminal } from '@fedlhs/service';

/**
 * Lines of text the coordinator chose (a manifest's name, description, feature names), each
 * escaped for the terminal (forTerminal) and joined: a line feed or control character in a value
 * cannot add a line (a fake "status approved") or move the cursor.
 */
const lines = (parts: readonly string[]): string => parts.map((l) => forTerminal(l)).join('\n');

/** The features, and for a cohort study a second line describing the cohort. */
function describeFeatures(m: StudyManifest): [string] | [string, string] {
  const cohort = m.data.cohort;
  if (cohort === undefined) return [studyFeatureNames(m).join(', ')];
  const features = cohort.features.map((f) => {
    switch (f.type) {
      case 'latest':
        return `${f.name} (latest ${f.system} ${f.codes.join('/')} in ${f.unit})`;
      case 'latest-coded':
      case 'condition':
        return `${f.name} (${f.type} ${f.system} ${f.codes.join('/')})`;
      case 'count':
        return `${f.name} (count of ${f.kind}s)`;
      default:
        return f.name;
    }
  });
  return [
    features.join(', '),
    `  cohort           index: ${describeIndex(cohort.index)}; ages ${cohort.eligibility.minAge}-${cohort.eligibility.maxAge}; lookback ${cohort.lookbackDays} days; label: ${cohort.label.condition.system} ${cohort.label.condition.codes.join('/')} within ${cohort.label.horizonDays} days`,
  ];
}

interface LayerJson {
  class_name: string;
  config: Record<string, unknown>;
}

function describeLayer(layer: LayerJson): string {
  const c = layer.config;
  const parts: string[] = [];
  if (typeof c.units === 'number') parts.push(String(c.units));
  if (typeof c.activation === 'string') parts.push(c.activation);
  if (typeof c.rate === 'number') parts.push(`rate ${c.rate}`);
  const input = (c.batch_input_shape ?? c.input_shape) as unknown[] | undefined;
  const prefix = Array.isArray(input) ? `input [${input.filter((d) => d !== null).join(', ')}] → ` : '';
  return `${prefix}${layer.class_name}(${parts.join(', ')})`;
}

/** A manifest as a clinic operator reads it before approving: what runs and what leaves. */
export function formatManifest(m: StudyManifest, hash: string, studyId: string, privacy?: AgentConfig['privacy']): string {
  const layers = ((m.model.topology.config as { layers?: LayerJson[] } | undefined)?.layers ?? []).map(describeLayer);
  return lines([
    `Study ${m.name}  (study id ${studyId})`,
    `  manifest sha256  ${hash}`,
    ...(m.description === '' ? [] : [`  description      ${m.description}`]),
    `  model            ${String(m.model.topology.class_name)}: ${layers.join(' → ')}`,
    ...(m.model.initialWeights === undefined ? [] : [`  starts from      release ${m.model.initialWeights.release.studyName} v${m.model.initialWeights.release.version} (weights sha256 ${m.model.initialWeights.release.weightsSha256})`]),
    `  training         ${m.training.optimizer.name} (learning rate ${m.training.optimizer.learningRate}), loss ${m.training.loss}, ${m.training.localEpochs} local epoch(s), batch ${m.training.batchSize}`,
    `  rounds           ${m.rounds}; ${m.clients.min}-${m.clients.max} clinics per round, quorum ${m.clients.quorum}; deadlines ${m.deadlines.roundSeconds}s training, ${m.deadlines.evaluationSeconds}s evaluation${m.deadlines.readinessSeconds === undefined ? '' : `, ${m.deadlines.readinessSeconds}s for enough clinics to be ready`}`,
    `  data             feature spec ${m.data.featureSpec}; label "${m.data.label}"; ${Math.round(m.data.holdoutFraction * 100)}% held out for evaluation`,
    ...describeFeatures(m).map((line, i) => (i === 0 ? `  features (${studyFeatureNames(m).length})    ${line}` : line)),
    `  normalisation    ${m.data.normalization}${m.data.normalization === 'federated-zscore' ? ` (clinics share counts, sums, sums of squares and histograms of these features, and their numbers of records and cases; counts under ${m.data.minCellCount} withheld)` : ''}`,
    `  aggregation      ${m.aggregation.strategy}`,
    // What the study's differential privacy means for this clinic, at its own delta and budget (privacy-review.ts).
    ...(privacy === undefined || (m.privacy === undefined && privacy.maxEpsilonPerStudy === 0 && privacy.maxEpsilonLifetime === 0) ? [] : describePrivacy(m, privacy).map((line, i) => `${i === 0 ? '  privacy          ' : '                   '}${line}`)),
    `  release          round chosen by ${releasePolicy(m).selection} on the validation part; ${Math.round(releasePolicy(m).testFraction * 100)}% of the hold-out kept as the test part for the published figures; risk bands ${releasePolicy(m).riskBands.map((b, i, all) => `${b.name} ${i === all.length - 1 ? "≤" : "<"}${b.upTo}`).join(', ')}`,
    ...whatLeaves(m).map((line, i) => `${i === 0 ? '  what leaves      ' : '                   '}${line}`),
  ]);
}

/**
 * Everything this clinic sends the coordinator if it takes part in the study, in words a clinic
 * IT person can check against `audit.jsonl` (which records the exact values of each message).
 */
export function whatLeaves(m: StudyManifest): string[] {
  const k = m.data.minCellCount;
  const names = studyFeatureNames(m);
  const lines = [
    ...(k === 0 ? ['WARNING: data.minCellCount is 0: no small count is withheld anywhere (for public benchmark data only).'] : []),
    'On connecting: this agent\'s version, TensorFlow.js backend and platform.',
    'For each study: whether this clinic takes part (READY, not approved, cohort too small, ...) and why, in words that never give a small count.',
  ];
  if (m.data.normalization === 'federated-zscore') {
    lines.push(
      `Once, before round 1 (statistics): the number of training records and of those with the outcome (label positives, i.e. cases), each withheld when it or the number of non-cases is below ${k};`,
      `  and for each of the ${names.length} features: the count of values, their sum and sum of squares, the count of missing values, and a histogram over the feature's declared range;`,
      `  a count below ${k} is withheld (a small missing count hides only itself: the other figures then cover all but ${k} values), histogram cells below ${k} are zeroed.`,
    );
  }
  const secagg = m.privacy?.secureAggregation;
  lines.push(
    ...(secagg === undefined
      ? ['Each training round: the trained model weights (the whole model, not a difference), the number of training records used, and loss, accuracy and AUC on them.']
      : [
          `Each training round, in four secure-aggregation stages (the coordinator learns only the sum of the round's clinics' changes, never this clinic's): two fresh public keys;`,
          `  shares of this round's mask secrets, each pair encrypted for one of this clinic's ${secagg.neighbours} neighbouring clinics and readable only by it;`,
          `  this clinic's model change (trained minus the round's model${m.privacy?.dp === undefined ? '' : ', after DP clipping and noise'}) clipped to ±${secagg.clipRange} per value, quantised to ${secagg.valueBits} bits and masked;`,
          "  and the shares it holds for its neighbours that the coordinator needs to remove the masks from the sum (a neighbour's self-mask seed if it sent its change, its mask key if it dropped, never both).",
          '  No number of records and no training metric is sent in a training round.',
        ]),
    `Each evaluation: on the hold-out records' validation part (${Math.round((1 - releasePolicy(m).testFraction) * 100)} %, used to choose the released round): their number, loss, accuracy and AUC;`,
    '  and for the validation and the test part each: the number of records and of cases, AUC and its standard error, Brier score, calibration slope and intercept,',
    '  and a 10-bin reliability table (records, sum of predicted risks and cases per bin). The coordinator shows none of these for a part with fewer than',
    `  ${k} cases or non-cases, and no bin below ${k}.`,
    ...(m.series === undefined
      ? []
      : [
          `This study is run ${m.series.run} of the series ${m.series.name}. When a run names a champion (the series' current release), each evaluation also scores that release on the same test records`,
          '  and sends its figures there (the same kinds as above) and the difference in AUC between this round\'s model and the champion, with its standard error: aggregates only, never a score.',
        ]),
    `After the study, if this clinic deploys its release: when the export changes, the same figures for the release on the refreshed export's test records (the hold-out split's test part, never trained on), with an opaque digest of the export; nothing when they hold fewer than ${k} records, cases or non-cases.`,
    'No record, no identifier, no date, no value of any one patient ever leaves.',
  );
  return lines;
}

/** The changes from a previously approved manifest, one line each. */
export function formatChanges(before: StudyManifest, after: StudyManifest, beforeHash: string): string {
  const changes = diffManifests(before, after);
  if (changes.length === 0) return forTerminal(`  no differences from the approved manifest ${beforeHash.slice(0, 12)}`);
  return lines([
    `  changes since the approved manifest ${beforeHash.slice(0, 12)}:`,
    ...changes.map((c) => `    ${c.path}: ${JSON.stringify(c.before) ?? '(absent)'} → ${JSON.stringify(c.after) ?? '(absent)'}`),
  ]);
}

/** What each field a series lets vary means, for the clinic reading `review`. */
const VARYING_WORDS: Record<string, string> = {
  'series.run': 'the run number',
  'series.champion': 'which champion release the run is compared with',
  'data.cohort.index.from': 'the start of the index window (moves with each run)',
  'data.cohort.index.to': 'the end of the index window (moves with each run)',
  'model.initialWeights': 'the weights training starts from (the champion of the time)',
};

/** A changed value, cut to one readable line. */
const brief = (value: unknown): string => {
  const text = JSON.stringify(value) ?? '(absent)';
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
};

const fmtDelta = (x: number): string => `${x >= 0 ? '+' : ''}${x}`;

/** A series template's schedule, start, promotion and window in words. */
export function describeSeries(t: SeriesTemplate): { schedule: string; start: string; promotion: string; window: string } {
  const schedule = t.schedule.type === 'cron' ? `cron "${t.schedule.expression}" (${t.schedule.timezone})` : `when the clinics report at least ${t.schedule.newLabelled} newly labelled patients in all`;
  const start = t.start === 'champion' ? 'the current champion release (warm start)' : 'the template\'s initial weights (from scratch)';
  const promotion =
    t.promotion.rule === 'auto'
      ? `automatic: the new model replaces the champion when its AUC is at least ${fmtDelta(t.promotion.minDelta)} above the champion's on the same test patients, pooled over the clinics with its 95 % interval above 0, at least ${t.promotion.minSites} clinic(s) compared, and no clinic worse by more than ${t.promotion.maxSiteLoss}`
      : 'by an operator at the coordinator (the evidence is recorded)';
  const window = t.window === undefined ? 'none: every run reads the same data definition' : `index dates over ${t.window.days} days, ending ${t.window.labelLagDays} days plus the label horizon before each run (so every outcome is known)`;
  return { schedule, start, promotion, window };
}

/**
 * What an approved data-triggered series makes this agent send (series-data.ts): one count per
 * series, at most once a minute, and nothing when it would be below the study's minCellCount.
 */
function dataReportLines(t: SeriesTemplate): string[] {
  let minCell: number | undefined;
  try {
    minCell = deriveSeriesRun(t, 1, Date.now()).data.minCellCount; // with the manifest's default when the template leaves it out
  } catch {
    minCell = undefined;
  }
  const counted = t.window === undefined
    ? 'eligible patients with a known outcome now, minus those this clinic had when it sent READY for the last run'
    : 'eligible patients with a known outcome whose index date falls after the last run\'s window and up to where a run started now would end';
  return [
    '  sends            once approved, a SeriesDataReport for this series (at every connection, when a run ends, when the export changes; at most once a minute):',
    `                   the series name, its template hash, the last run's number and one count: ${counted};`,
    `                   below minCellCount (${minCell ?? 'the study\'s'}) only "suppressed" is sent, never the count. No record, key or date leaves. Each report is in audit.jsonl (series_data_sent).`,
  ];
}

/**
 * A study series as a clinic operator reads it before approving it once for all its runs:
 * schedule, start, promotion, window, exactly which fields may change between runs, and the
 * study every run is (as a run derived now would be).
 */
export function formatSeries(t: SeriesTemplate, rec: { hash: string; approvedAt: number | null; approvedBy: string | null }, now = Date.now()): string {
  const d = describeSeries(t);
  const varying = seriesVarying(t);
  let each: string[];
  try {
    each = formatManifest(deriveSeriesRun(t, 1, now), '', '').split('\n').slice(2);
  } catch (err) {
    each = [`  (the template does not derive a run: ${(err as Error).message})`];
  }
  return lines([
    `Series ${t.name}`,
    `  template sha256  ${rec.hash}`,
    ...(t.description === '' ? [] : [`  description      ${t.description}`]),
    `  schedule         ${d.schedule}`,
    `  runs start from  ${d.start}`,
    `  promotion        ${d.promotion}`,
    `  data window      ${d.window}`,
    ...(t.schedule.type === 'data' ? dataReportLines(t) : []),
    ...varying.map((f, i) => `${i === 0 ? '  may vary by run  ' : '                   '}${f}: ${VARYING_WORDS[f] ?? f}`),
    '                   Anything else a run changes needs this clinic\'s approval of that run\'s manifest.',
    '  each run, as a run today would be:',
    ...each.map((l) => `  ${l}`),
    rec.approvedAt === null
      ? `  status           PENDING — approve every run of this series that changes only the fields above with: fedlhs-agent approve ${rec.hash}`
      : `  status           approved ${new Date(rec.approvedAt).toISOString()} by ${rec.approvedBy ?? ''}`,
  ]);
}

/** One run of a series: its number, champion, index window, and whether the series approval covers it and why. */
export function formatRun(m: StudyManifest, hash: string, studyId: string, approval: RunApproval): string {
  const s = m.series;
  if (s === undefined) return '';
  const index = m.data.cohort?.index;
  const status = approval.approved
    ? approval.via === 'series'
      ? 'approved: covered by the series approval (changes only what the series lets vary)'
      : 'approved by its own manifest hash'
    : `NOT APPROVED: ${approval.detail}`;
  return lines([
    `  run ${s.run} of ${s.name}  (study id ${studyId})`,
    `    manifest sha256  ${hash}`,
    `    template sha256  ${s.templateSha256}`,
    `    champion         ${s.champion === undefined ? 'none yet (nothing to compare with)' : `release v${s.champion.version} (weights sha256 ${s.champion.weightsSha256})`}`,
    `    index window     ${index === undefined ? 'none (flat table)' : `${index.from}..${index.to}`}`,
    ...(approval.changes.length === 0 ? [] : approval.changes.map((c, i) => `${i === 0 ? '    changes          ' : '                     '}${c.path}: ${brief(c.before)} → ${brief(c.after)}`)),
    `    status           ${status}`,
    ...(approval.approved ? [] : [`                     approve this run alone with: fedlhs-agent approve ${hash}`]),
  ]);
}
