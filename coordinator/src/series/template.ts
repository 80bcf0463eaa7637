import { FedlhsError, canonicalSeriesTemplateJson, seriesTemplateHash, validateSeriesTemplate, type SeriesTemplate } from '@fedlhs/core';

/**
 * Series templates as the coordinator stores them: validated, and as canonical JSON whose SHA-256
 * is the template hash clinics approve.
 */

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
  // Core's canonical JSON: its SHA-256 is the template hash (the manifest's series.templateSha256).
  return { template, json: canonicalSeriesTemplateJson(template), sha256: seriesTemplateHash(template) };
}

/** A stored template (canonical JSON) read back; DATA_LOSS naming the series when it no longer validates. */
export function storedTemplate(name: string, json: string): SeriesTemplate {
  try {
    return validateSeriesTemplate(JSON.parse(json));
  } catch (err) {
    throw new FedlhsError('DATA_LOSS', `the stored template of series ${name} no longer reads: ${(err as Error).message}`, { cause: err });
  }
}
