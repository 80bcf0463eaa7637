import type { EhrSource, SourceOptions } from './events.js';
import { openFhirBulk } from './fhir.js';
import { openOmopCsv } from './omop.js';
import { openSyntheaCsv } from './synthea.js';

/** Local data formats an agent can read. */
export type DataFormat = 'flat-table' | 'synthea-csv' | 'fhir-ndjson' | 'omop-csv';

/** Opens an EHR export directory in the given event format. */
export function openEhrSource(format: Exclude<DataFormat, 'flat-table'>, path: string, options: SourceOptions = {}): EhrSource {
  switch (format) {
    case 'synthea-csv':
      return openSyntheaCsv(path, options);
    case 'fhir-ndjson':
      return openFhirBulk(path, options);
    case 'omop-csv':
      return openOmopCsv(path, options);
  }
}
