import { createHash } from 'node:crypto';
import { FedlhsError, seriesTemplateHash, validateSeriesTemplate, type SeriesTemplate } from '@fedlhs/core';

/**
 * Series templates as the coordinator stores them: validated, and as canonical JSON whose SHA-256
 * is the template hash clinics approve.
 */

/**
 * RFC 8785 canonical JSON of plain JSON data (what core's `canonicalize` gives for it): keys
 * sorted by UTF-16 code units, strings and numbers as JSON.stringify writes them (ES number
 * formatting is RFC 8785's), undefined members left out.
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  if (typeof v === 'number' && !Number.isFinite(v)) throw new FedlhsError('INVALID_ARGUMENT', `a series template cannot hold the number ${v}`);
  return JSON.stringify(v) ?? 'null';
}

/** A template ready to store: the validated value, its canonical JSON and the hash of that JSON. */
export interface StoredTemplate {
  template: SeriesTemplate;
  json: string;
  sha256: string;
}

/**
 * Validates a template from outside (MANIFEST_INVALID naming the field). Cron and data schedules
 * both run (scheduler.ts; data: the clinics' SeriesDataReports, data-trigger.ts).
 */
export function acceptTemplate(value: unknown): StoredTemplate {
  const template = validateSeriesTemplate(value);
  const json = canonicalJson(template);
  const sha256 = createHash('sha256').update(json, 'utf8').digest('hex');
  // The stored JSON must hash to what core calls the template's hash (the manifest's series.templateSha256).
  if (sha256 !== seriesTemplateHash(template)) throw new FedlhsError('INTERNAL', `series template ${template.name}: its canonical JSON does not hash to the template hash`);
  return { template, json, sha256 };
}

/** A stored template (canonical JSON) read back; DATA_LOSS naming the series when it no longer validates. */
export function storedTemplate(name: string, json: string): SeriesTemplate {
  try {
    return validateSeriesTemplate(JSON.parse(json));
  } catch (err) {
    throw new FedlhsError('DATA_LOSS', `the stored template of series ${name} no longer reads: ${(err as Error).message}`, { cause: err });
  }
}
