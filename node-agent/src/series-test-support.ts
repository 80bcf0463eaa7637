import { canonicalManifestJson, canonicalSeriesTemplateJson, deriveSeriesRun, manifestHash, sha256Hex, validateManifest, validateSeriesTemplate, type SeriesTemplate, type StudyManifest } from '@fedlhs/core';

/**
 * Test support for series approval (unit tests; not used by the agent): a series template over
 * the release tests' flat-table study, its canonical JSON as the coordinator announces it, and
 * Study announcements of its runs.
 */

/** The template's canonical JSON, as the coordinator announces it (core canonicalSeriesTemplateJson). */
export const canonicalJson = (t: SeriesTemplate): string => canonicalSeriesTemplateJson(t);

/** The study of the test series: the release tests' flat-table study (releases/test-support.ts testManifest), without its name. */
function testStudy(): Record<string, unknown> {
  return {
    apiVersion: 'fedlhs.v1', kind: 'Study', description: 'release test study',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid', batch_input_shape: [null, 3] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
    rounds: 2, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
    data: { featureSpec: 'flat-table/v1', features: ['x1', 'x2', 'x3'], label: 'label', holdoutFraction: 0.5, normalization: 'federated-zscore', minCellCount: 5 },
    aggregation: { strategy: 'fedavg' }, seed: 7,
  };
}

/** A validated series template named `name` (yearly cron, start champion, auto promotion). */
export function testTemplate(name = 'lhs', patch: (t: Record<string, unknown>) => void = () => undefined): SeriesTemplate {
  const study = testStudy();
  const t: Record<string, unknown> = { apiVersion: 'fedlhs.v1', kind: 'StudySeries', name, schedule: { type: 'cron', expression: '0 0 1 1 *' }, start: 'champion', promotion: { rule: 'auto', minDelta: 0.01 }, study };
  patch(t);
  return validateSeriesTemplate(t);
}

/** A Study announcement of run `run` of `t` (manifest optionally changed after deriving). */
export function runStudy(t: SeriesTemplate, run: number, o: { change?: (m: Record<string, unknown>) => void; champion?: { version: number; weightsSha256: string }; templateJson?: string; templateSha256?: string } = {}) {
  const derived = deriveSeriesRun(t, run, Date.UTC(2026, 0, 1), o.champion);
  const raw = JSON.parse(canonicalManifestJson(derived)) as Record<string, unknown>;
  o.change?.(raw);
  const manifestJson = canonicalManifestJson(validateManifest(raw));
  const json = o.templateJson ?? canonicalJson(t);
  return {
    studyId: `st-${t.name}-${run}`, manifestJson, manifestSha256: sha256Hex(Buffer.from(manifestJson, 'utf8')), state: 'STUDY_STATE_RUNNING' as const,
    lastCommittedRound: 0, parametersJson: '', seriesTemplateJson: json, seriesTemplateSha256: o.templateSha256 ?? sha256Hex(Buffer.from(json, 'utf8')),
  };
}

/** The manifest hash core computes (equals runStudy's manifestSha256 for an unchanged run). */
export const hashOf = (m: StudyManifest): string => manifestHash(m);
