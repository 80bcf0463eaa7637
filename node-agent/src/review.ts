import { describeIndex, diffManifests, studyFeatureNames, type StudyManifest } from '@fedlhs/core';

function describeFeatures(m: StudyManifest): string {
  const cohort = m.data.cohort;
  if (cohort === undefined) return studyFeatureNames(m).join(', ');
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
  return `${features.join(', ')}\n  cohort           index: ${describeIndex(cohort.index)}; ages ${cohort.eligibility.minAge}-${cohort.eligibility.maxAge}; lookback ${cohort.lookbackDays} days; label: ${cohort.label.condition.system} ${cohort.label.condition.codes.join('/')} within ${cohort.label.horizonDays} days`;
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
  return [
    `Study ${m.name}  (study id ${studyId})`,
    `  manifest sha256  ${hash}`,
    ...(m.description === '' ? [] : [`  description      ${m.description}`]),
    `  model            ${String(m.model.topology.class_name)}: ${layers.join(' → ')}`,
    `  training         ${m.training.optimizer.name} (learning rate ${m.training.optimizer.learningRate}), loss ${m.training.loss}, ${m.training.localEpochs} local epoch(s), batch ${m.training.batchSize}`,
    `  rounds           ${m.rounds}; ${m.clients.min}-${m.clients.max} clinics per round, quorum ${m.clients.quorum}; deadlines ${m.deadlines.roundSeconds}s training, ${m.deadlines.evaluationSeconds}s evaluation`,
    `  data             feature spec ${m.data.featureSpec}; label "${m.data.label}"; ${Math.round(m.data.holdoutFraction * 100)}% held out for evaluation`,
    `  features (${studyFeatureNames(m).length})    ${describeFeatures(m)}`,
    `  normalisation    ${m.data.normalization}${m.data.normalization === 'federated-zscore' ? ` (clinics share means, sums of squares and histograms of these features, cells under ${m.data.minCellCount} suppressed)` : ''}`,
    `  aggregation      ${m.aggregation.strategy}`,
    `  what leaves      trained model weights, the number of training examples, and loss/accuracy/AUC on local data. No records, no identifiers.`,
  ].join('\n');
}

/** The changes from a previously approved manifest, one line each. */
export function formatChanges(before: StudyManifest, after: StudyManifest, beforeHash: string): string {
  const changes = diffManifests(before, after);
  if (changes.length === 0) return `  no differences from the approved manifest ${beforeHash.slice(0, 12)}`;
  return [
    `  changes since the approved manifest ${beforeHash.slice(0, 12)}:`,
    ...changes.map((c) => `    ${c.path}: ${JSON.stringify(c.before) ?? '(absent)'} → ${JSON.stringify(c.after) ?? '(absent)'}`),
  ].join('\n');
}
