/** Writes patients as a FHIR R4 Bulk Data export: one ndjson file per resource type + manifest.json. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ENCOUNTER_TYPES, LOINC, SMOKING_FINDINGS, SYSTEMS, type Coded } from './codes.js';
import { LineSink } from './line-sink.js';
import type { SimEncounter, SimPatient } from './patient.js';
import { isoDate } from './time.js';
import type { ExportWriter } from './writer.js';

/** The resource types written, in manifest order. */
export const FHIR_RESOURCE_TYPES = ['Patient', 'Encounter', 'Condition', 'Observation'] as const;

/** A fixed export time: the export is a function of the profile only, so files are byte-identical across runs. */
export const TRANSACTION_TIME = '2023-01-01T00:00:00Z';

const concept = (system: string, c: Coded, withText: boolean): unknown => ({
  coding: [{ system, code: c.code, display: c.display }],
  ...(withText ? { text: c.display } : {}),
});
const category = (code: string): unknown => [{ coding: [{ system: SYSTEMS.observationCategory, code }] }];

/**
 * JSON text of a constant fragment, memoised. The writers build high-volume resources from
 * such fragments and template strings: ids, dates and units are plain tokens that need no
 * escaping, and JSON.stringify of a million nested objects is the slowest part otherwise.
 */
function memo<K>(make: (key: K) => unknown): (key: K) => string {
  const cache = new Map<K, string>();
  return (key) => {
    let text = cache.get(key);
    if (text === undefined) {
      text = JSON.stringify(make(key));
      cache.set(key, text);
    }
    return text;
  };
}

const snomedConcept = memo((c: Coded) => concept(SYSTEMS.snomed, c, true));
const loincConcept = memo((c: Coded) => concept(SYSTEMS.loinc, c, false));
const categoryJson = memo((code: string) => category(code));
const encounterClass = memo((cls: SimEncounter['cls']) => ({ system: SYSTEMS.actCode, code: cls === 'emergency' ? 'EMER' : 'AMB' }));
const CONDITION_STATUS = {
  active: JSON.stringify({ coding: [{ system: SYSTEMS.conditionClinical, code: 'active' }] }),
  resolved: JSON.stringify({ coding: [{ system: SYSTEMS.conditionClinical, code: 'resolved' }] }),
};
const CONDITION_FIXED = `"verificationStatus":${JSON.stringify({ coding: [{ system: SYSTEMS.conditionVerification, code: 'confirmed' }] })},"category":${JSON.stringify([{ coding: [{ system: SYSTEMS.conditionCategory, code: 'encounter-diagnosis' }] }])}`;
const valueQuantity = (value: number, unit: string): string => `{"value":${value},"unit":"${unit}","system":"${SYSTEMS.ucum}","code":"${unit}"}`;

const RACE_CODES: Readonly<Record<string, Coded>> = {
  white: { code: '2106-3', display: 'White' },
  black: { code: '2054-5', display: 'Black or African American' },
  asian: { code: '2028-9', display: 'Asian' },
  other: { code: '2131-1', display: 'Other Race' },
};
const ETHNICITY_CODES: Readonly<Record<string, Coded>> = {
  hispanic: { code: '2135-2', display: 'Hispanic or Latino' },
  nonhispanic: { code: '2186-5', display: 'Not Hispanic or Latino' },
};

/** A US Core race/ethnicity extension (OMB category when the key is known, text always). */
function usCoreExtension(kind: 'race' | 'ethnicity', key: string): unknown {
  const omb = (kind === 'race' ? RACE_CODES : ETHNICITY_CODES)[key];
  const parts: unknown[] = [];
  if (omb !== undefined) parts.push({ url: 'ombCategory', valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: omb.code, display: omb.display } });
  parts.push({ url: 'text', valueString: key });
  return { url: `http://hl7.org/fhir/us/core/StructureDefinition/us-core-${kind}`, extension: parts };
}

/** Creates the FHIR ndjson writer for `dir` (created if missing); manifest.json is written on close. */
export async function createFhirWriter(dir: string): Promise<ExportWriter> {
  await mkdir(dir, { recursive: true });
  const sinks = {
    Patient: new LineSink(join(dir, 'Patient.ndjson')),
    Encounter: new LineSink(join(dir, 'Encounter.ndjson')),
    Condition: new LineSink(join(dir, 'Condition.ndjson')),
    Observation: new LineSink(join(dir, 'Observation.ndjson')),
  };
  const all = Object.values(sinks);

  return {
    write(p: SimPatient): void {
      const subject = `"subject":{"reference":"Patient/${p.id}"}`;
      sinks.Patient.push(
        JSON.stringify({
          resourceType: 'Patient',
          id: p.id,
          extension: [usCoreExtension('race', p.race), usCoreExtension('ethnicity', p.ethnicity)],
          name: [{ use: 'official', family: p.last, given: [p.first], prefix: [p.female ? 'Mrs.' : 'Mr.'] }],
          gender: p.female ? 'female' : 'male',
          birthDate: isoDate(p.birthDay),
          address: [{ line: [p.address], state: 'Massachusetts', postalCode: p.zip, country: 'US' }],
        }),
      );
      for (const e of p.encounters) {
        const reason = e.reason === undefined ? '' : `,"reasonCode":[${snomedConcept(e.reason)}]`;
        sinks.Encounter.push(
          `{"resourceType":"Encounter","id":"${e.id}","status":"finished","class":${encounterClass(e.cls)},"type":[${snomedConcept(ENCOUNTER_TYPES[e.cls])}],${subject},"period":{"start":"${e.start}","end":"${e.stop}"}${reason}}`,
        );
      }
      for (const c of p.conditions) {
        const status = c.stopDay === undefined ? CONDITION_STATUS.active : CONDITION_STATUS.resolved;
        const abatement = c.stopDay === undefined ? '' : `,"abatementDateTime":"${isoDate(c.stopDay)}"`;
        sinks.Condition.push(
          `{"resourceType":"Condition","id":"${c.id}","clinicalStatus":${status},${CONDITION_FIXED},"code":${snomedConcept(c.coded)},${subject},"encounter":{"reference":"Encounter/${c.encounter.id}"},"onsetDateTime":"${c.encounter.start}"${abatement}}`,
        );
      }
      for (const o of p.observations) {
        const head = `{"resourceType":"Observation","id":"${o.id}","status":"final"`;
        const context = `${subject},"encounter":{"reference":"Encounter/${o.encounter.id}"},"effectiveDateTime":"${o.encounter.start}"`;
        if (o.kind === 'quantity') {
          const q = o.quantity;
          sinks.Observation.push(
            `${head},"category":${categoryJson(q.category)},"code":${loincConcept(q.loinc)},${context},"valueQuantity":${valueQuantity(q.value, q.unit)}}`,
          );
        } else if (o.kind === 'bp') {
          sinks.Observation.push(
            `${head},"category":${categoryJson('vital-signs')},"code":${loincConcept(LOINC.bpPanel)},${context},"component":[` +
              `{"code":${loincConcept(LOINC.sbp)},"valueQuantity":${valueQuantity(o.sbp, 'mm[Hg]')}},` +
              `{"code":${loincConcept(LOINC.dbp)},"valueQuantity":${valueQuantity(o.dbp, 'mm[Hg]')}}]}`,
          );
        } else {
          sinks.Observation.push(
            `${head},"category":${categoryJson('social-history')},"code":${loincConcept(LOINC.smoking)},${context},"valueCodeableConcept":${snomedConcept(SMOKING_FINDINGS[o.status])}}`,
          );
        }
      }
    },
    async maybeFlush(): Promise<void> {
      for (const s of all) await s.maybeFlush();
    },
    async close(): Promise<void> {
      for (const s of all) await s.close();
      const manifest = {
        transactionTime: TRANSACTION_TIME,
        request: '$export',
        requiresAccessToken: false,
        output: FHIR_RESOURCE_TYPES.map((type) => ({ type, url: `${type}.ndjson` })),
        error: [],
      };
      await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    },
    async abort(): Promise<void> {
      await Promise.all(all.map((s) => s.abort()));
    },
  };
}
