import { describeIndex, diffManifests, releasePolicy, studyFeatureNames, type StudyManifest } from '@fedlhs/core';
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
export function formatManifest(m: StudyManifest, hash: string, studyId: string): string {
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
  lines.push(
    'Each training round: the trained model weights (the whole model, not a difference), the number of training records used, and loss, accuracy and AUC on them.',
    `Each evaluation: on the hold-out records' validation part (${Math.round((1 - releasePolicy(m).testFraction) * 100)} %, used to choose the released round): their number, loss, accuracy and AUC;`,
    '  and for the validation and the test part each: the number of records and of cases, AUC and its standard error, Brier score, calibration slope and intercept,',
    '  and a 10-bin reliability table (records, sum of predicted risks and cases per bin). The coordinator shows none of these for a part with fewer than',
    `  ${k} cases or non-cases, and no bin below ${k}.`,
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
