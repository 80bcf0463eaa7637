/**
 * What `fedlhs-agent score` writes: scores.csv and FHIR R4 RiskAssessment ndjson. Both are a
 * pure function of the release and the scores (no clock, no random ids), so the same release
 * and export give byte-identical files. They hold patient ids: written 0600, never sent.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dayToIso, type DataFormat } from '@fedlhs/ehr';
import { writeFileAtomic } from '@fedlhs/service';
import { riskText, type DeployedRelease, type Score } from './pipeline.js';

export const SCORES_CSV = 'scores.csv';
export const RISK_ASSESSMENTS_NDJSON = 'risk-assessments.ndjson';

const CSV_HEADER = ['key', 'index_date', 'risk', 'band', 'study', 'version'];

/** One CSV field: quoted when it holds a comma, quote or line break (RFC 4180). */
function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** scores.csv: key, index date (empty for flat tables), risk (6 decimals), band, study, version; rows in the given order. */
export function scoresCsv(release: Pick<DeployedRelease, 'studyName' | 'version'>, scores: readonly Score[]): string {
  const lines = [CSV_HEADER.join(',')];
  for (const s of scores) {
    lines.push([s.key, s.indexDay === undefined ? '' : dayToIso(s.indexDay), riskText(s.risk), s.band, release.studyName, String(release.version)].map(csvField).join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** The name a release goes by in outputs and cards. */
export const releaseName = (release: Pick<DeployedRelease, 'studyName' | 'version'>): string => `fedlhs ${release.studyName} v${release.version}`;

/** A FHIR id ([A-Za-z0-9.-]{1,64}) that is the same for the same release and patient, and says nothing about the patient. */
export function riskAssessmentId(release: Pick<DeployedRelease, 'studyName' | 'version'>, key: string): string {
  return `fedlhs-${createHash('sha256').update(`${release.studyName}\u0000${release.version}\u0000${key}`).digest('hex').slice(0, 32)}`;
}

/** The identifier system of a subject known only by the export's own key (not a FHIR Patient id). */
export const LOCAL_KEY_SYSTEM = 'urn:fedlhs:local-key';
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * RiskAssessment.subject: `Patient/<id>` only for a FHIR export whose key is a valid FHIR id.
 * Any other key (a CSV or OMOP person id, a table's key column) is not the EHR's Patient id, and
 * as a reference it would name whichever patient has that id, so it is written as an
 * identifier instead (an R4 Reference may carry only an identifier).
 */
export function riskSubject(format: DataFormat, key: string): Record<string, unknown> {
  if (format === 'fhir-ndjson' && FHIR_ID.test(key)) return { reference: `Patient/${key}` };
  return { identifier: { system: LOCAL_KEY_SYSTEM, value: key } };
}

/**
 * A FHIR R4 RiskAssessment for one score of an export in `format`. `basis` is left out rather
 * than written as `[]`: FHIR JSON forbids empty arrays, and the release records what the model reads.
 */
export function riskAssessment(release: Pick<DeployedRelease, 'studyName' | 'version' | 'descriptor'>, score: Score, format: DataFormat): Record<string, unknown> {
  const outcome = release.descriptor.modelCard.outcome;
  return {
    resourceType: 'RiskAssessment',
    id: riskAssessmentId(release, score.key),
    status: 'final',
    subject: riskSubject(format, score.key),
    ...(score.indexDay === undefined ? {} : { occurrenceDateTime: dayToIso(score.indexDay) }),
    method: { text: `${releaseName(release)} (model release ${release.descriptor.lineage.checkpointSha256.slice(0, 12)}, round ${release.descriptor.round})` },
    prediction: [{ outcome: { text: outcome }, probabilityDecimal: Number(riskText(score.risk)), qualitativeRisk: { text: score.band } }],
  };
}

/** risk-assessments.ndjson: one RiskAssessment per line, in the given order. */
export function riskAssessmentsNdjson(release: Pick<DeployedRelease, 'studyName' | 'version' | 'descriptor'>, scores: readonly Score[], format: DataFormat): string {
  return scores.map((s) => `${JSON.stringify(riskAssessment(release, s, format))}\n`).join('');
}

/** Writes both files into `dir` (created if needed), each atomically and 0600; returns their paths. `format`: the export's (see riskSubject). */
export function writeScoreFiles(dir: string, release: Pick<DeployedRelease, 'studyName' | 'version' | 'descriptor'>, scores: readonly Score[], format: DataFormat): { csv: string; ndjson: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const csv = join(dir, SCORES_CSV);
  const ndjson = join(dir, RISK_ASSESSMENTS_NDJSON);
  writeFileAtomic(csv, scoresCsv(release, scores), 0o600);
  writeFileAtomic(ndjson, riskAssessmentsNdjson(release, scores, format), 0o600);
  return { csv, ndjson };
}
