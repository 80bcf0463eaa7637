import { createHash } from 'node:crypto';
import { FedlhsError, type ClinicStats, type EvalMetrics } from '@fedlhs/core';
import type { FederationHandlers, Metrics__Output, StatisticsReport__Output, Study } from '@fedlhs/proto';
import type { ReleaseRecord, StudyRecord, TaskRecord } from './store.js';

/** Conversions between stored records and fedlhs.v1 messages, with the checks on what agents send. */

/**
 * The wire form of a task. `payload`: the task's per-clinic input (Task.payload; the JSON stage
 * request of a secure-aggregation task), empty when there is none.
 */
export function toWireTask(task: TaskRecord, manifestSha256: string, parameters: string | null, payload?: string) {
  return {
    payload: Buffer.from(payload ?? '', 'utf8'),
    parametersJson: parameters ?? '',
    taskId: task.id,
    kind: `TASK_KIND_${task.kind}` as const,
    studyId: task.studyId,
    manifestSha256,
    round: task.round,
    attempt: task.attempt,
    deadlineUnixMs: task.deadline,
    modelSha256: Buffer.from(task.modelSha256, 'hex'),
  };
}

/**
 * A wire statistics report as core ClinicStats, converted field by field and checked for
 * nothing: core validateClinicStats checks every report against the study (so that a bad
 * one is rejected and recorded with reason INCONSISTENT_STATISTICS).
 */
export function toClinicStats(r: StatisticsReport__Output): ClinicStats {
  return {
    rows: r.rows,
    positives: r.positives,
    suppressed: r.suppressed,
    features: r.features.map((f) => ({
      name: f.name, count: f.count, sum: f.sum, sumOfSquares: f.sumOfSquares, missing: f.missing, suppressed: f.suppressed, missingSuppressed: f.missingSuppressed,
      histogram: [...f.histogram], histogramMin: f.histogramMin, histogramMax: f.histogramMax,
    })),
  };
}

/**
 * The largest loss a report may state (common.proto `Metrics`). The study's losses are means of
 * per-example losses that TF.js clips (binary cross-entropy stays below ~16 with its epsilon,
 * squared errors of normalised labels far below this): a larger value is not a measurement. The
 * bound also keeps every example-weighted mean of losses finite (issue 11: one report of
 * 1.7e308 made the stored global loss Infinity).
 */
export const MAX_METRIC_LOSS = 1e6;

/**
 * Checks wire metrics (common.proto `Metrics`): `num_examples` a positive safe integer, at most
 * `maxExamples` (limits.maxExamplesPerUpdate), `loss` finite, ≥ 0 and ≤ MAX_METRIC_LOSS,
 * `accuracy` and `auc` (when present) in [0, 1]. Anything else is the rejection INVALID_METRICS
 * (recorded, and it closes the task), naming the field, its value and the range. Absent metrics
 * are `undefined`: whether that is allowed is the caller's decision.
 */
export function toEvalMetrics(m: Metrics__Output | null | undefined, maxExamples = Number.MAX_SAFE_INTEGER): EvalMetrics | undefined {
  if (m == null) return undefined;
  const bad = (what: string, range: string): never => {
    throw new FedlhsError('INVALID_METRICS', `metric ${what} is out of range (${range})`);
  };
  if (!Number.isSafeInteger(m.numExamples) || m.numExamples < 1 || m.numExamples > maxExamples) {
    bad(`num_examples (${m.numExamples})`, maxExamples === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `1 to ${maxExamples}, limits.maxExamplesPerUpdate`);
  }
  if (!(m.loss >= 0 && m.loss <= MAX_METRIC_LOSS)) bad(`loss (${m.loss})`, `0 to ${MAX_METRIC_LOSS}`);
  if (!(m.accuracy >= 0 && m.accuracy <= 1)) bad(`accuracy (${m.accuracy})`, '0 to 1');
  if (m.auc != null && !(m.auc >= 0 && m.auc <= 1)) bad(`auc (${m.auc})`, '0 to 1');
  return { numExamples: m.numExamples, loss: m.loss, accuracy: m.accuracy, auc: m.auc ?? undefined };
}

/**
 * The digest a report is compared by (proto: duplicates): SHA-256 (hex) of its canonical JSON,
 * i.e. of the value as converted here, with object keys sorted and undefined members left out.
 */
export function reportDigest(value: ClinicStats | EvalMetrics): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * The series template of each series run this process started or resumed (proto Study
 * series_template_json/_sha256), by study id: announcements are built per session and study, so
 * the template is remembered when the run starts rather than read from the store each time.
 * Study ids are unique (name + random suffix), so coordinators in one process can share it.
 */
const seriesTemplates = new Map<string, { json: string; sha256: string }>();

/** Remembers the template (canonical JSON, from the run's SeriesRunRecord) a series run's study announces. */
export function rememberSeriesTemplate(studyId: string, templateJson: string): void {
  seriesTemplates.set(studyId, { json: templateJson, sha256: createHash('sha256').update(templateJson, 'utf8').digest('hex') });
}

/** Forgets a study's series template (the coordinator that remembered it shuts down). */
export function forgetSeriesTemplate(studyId: string): void {
  seriesTemplates.delete(studyId);
}

export function toWireStudy(s: StudyRecord): Study {
  const series = seriesTemplates.get(s.id);
  return {
    studyId: s.id,
    manifestJson: s.manifestJson,
    manifestSha256: s.manifestHash,
    state: `STUDY_STATE_${s.state}`,
    lastCommittedRound: s.lastCommittedRound,
    parametersJson: s.parameters ?? '',
    seriesTemplateJson: series?.json ?? '',
    seriesTemplateSha256: series?.sha256 ?? '',
  };
}

/** The wire Release message (derived from the service's types: @fedlhs/proto does not export the message types of issue 12 by name). */
type ListReleasesResponse = NonNullable<Parameters<Parameters<FederationHandlers['ListReleases']>[1]>[1]>;
export type WireRelease = NonNullable<ListReleasesResponse['releases']>[number];

/** The wire form of a release (proto Release): the envelope as UTF-8 JSON bytes, files with sizes, aliases. */
export function toWireRelease(r: ReleaseRecord & { aliases: readonly string[] }): WireRelease {
  return {
    studyName: r.studyName,
    version: r.version,
    studyId: r.studyId,
    round: r.round,
    manifestSha256: r.manifestSha256,
    envelope: Buffer.from(r.envelope, 'utf8'),
    files: r.files.map((f) => ({ name: f.name, sha256: f.sha256, size: f.size })),
    aliases: [...r.aliases],
    createdAtMs: r.createdAt,
  };
}
