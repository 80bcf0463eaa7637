import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ClinicalEvent, EhrSource, EventKind } from './events.js';
import { toCondition, toEncounter, toMedicationRequest, toObservations, toPatient, type FhirResourceType, type Json } from './fhir-resources.js';
import { dataError } from './read-csv.js';
import { SkipLedger } from './skip-ledger.js';

const TYPES: readonly FhirResourceType[] = ['Patient', 'Condition', 'Observation', 'Encounter', 'MedicationRequest'];
type Skip = (why: string) => undefined;

/** Event resource types in the order `events` reads them, with the kind each yields. */
const EVENT_TYPES: ReadonlyArray<[FhirResourceType, EventKind, (r: Json, skip: Skip) => ClinicalEvent | ClinicalEvent[] | undefined]> = [
  ['Encounter', 'encounter', toEncounter],
  ['Condition', 'condition', toCondition],
  ['Observation', 'observation', toObservations],
  ['MedicationRequest', 'medication', toMedicationRequest],
];

interface ExportFile {
  type: FhirResourceType;
  path: string;
}

/**
 * Opens a FHIR R4 Bulk Data export directory. Files are found through the export manifest
 * (manifest.json, or another .json file with an `output` list) when there is one — an output
 * `url` may be a file name or a URL whose last path segment is the file name — and otherwise by
 * file name: `Patient.ndjson`, `Patient.000.ndjson`, `1.Patient.ndjson` and the like. At least
 * one Patient file is required. Each line is one resource; malformed lines, resources marked
 * entered-in-error and resources that cannot be mapped are skipped and counted by resource type.
 */
export function openFhirBulk(dir: string): EhrSource {
  const ledger = new SkipLedger();

  async function* resources(file: ExportFile): AsyncGenerator<[Json, Skip]> {
    const pass = ledger.pass(file.path);
    const skip: Skip = (why) => {
      pass.skip(`${file.type}: ${why}`);
      return undefined;
    };
    const input = createReadStream(file.path);
    const lines = createInterface({ input, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        let resource: unknown;
        try {
          resource = JSON.parse(line);
        } catch {
          skip('malformed JSON line');
          continue;
        }
        if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) skip('malformed JSON line');
        else if ((resource as Json).resourceType !== file.type) skip('unexpected resourceType');
        else yield [resource as Json, skip];
      }
    } finally {
      lines.close();
      input.destroy();
    }
    pass.done();
  }

  return {
    format: 'fhir-ndjson',
    get skipped() {
      return ledger.totals();
    },
    async *patients() {
      const files = (await exportFiles(dir)).filter((f) => f.type === 'Patient');
      if (files.length === 0) throw dataError('Patient.ndjson: no Patient file in the FHIR bulk export');
      for (const file of files) {
        for await (const [resource, skip] of resources(file)) {
          const patient = toPatient(resource, skip);
          if (patient !== undefined) yield patient;
        }
      }
    },
    async *events(kinds: ReadonlySet<EventKind>) {
      const files = await exportFiles(dir);
      for (const [type, kind, map] of EVENT_TYPES) {
        if (!kinds.has(kind)) continue;
        for (const file of files.filter((f) => f.type === type)) {
          for await (const [resource, skip] of resources(file)) {
            const out = map(resource, skip);
            if (Array.isArray(out)) yield* out;
            else if (out !== undefined) yield out;
          }
        }
      }
    },
  };
}

/** Resource type named by an ndjson file name ("Patient.ndjson", "Patient.000.ndjson", "1.Patient.ndjson"). */
export function resourceTypeOfFile(name: string): FhirResourceType | undefined {
  if (!/\.ndjson$/i.test(name)) return undefined;
  const parts = name.slice(0, -'.ndjson'.length).split(/[._-]/).map((p) => p.toLowerCase());
  return TYPES.find((t) => parts.includes(t.toLowerCase()));
}

const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

async function exportFiles(dir: string): Promise<ExportFile[]> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).sort();
  } catch (err) {
    throw dataError('FHIR bulk export directory cannot be listed', err);
  }
  const manifest = await findManifest(dir, entries);
  if (manifest === undefined) {
    return entries.flatMap((name) => {
      const type = resourceTypeOfFile(name);
      return type === undefined ? [] : [{ type, path: join(dir, name) }];
    });
  }
  const files: ExportFile[] = [];
  for (const item of manifest.output) {
    const type = TYPES.find((t) => t === item.type);
    if (type === undefined || typeof item.url !== 'string') continue;
    const name = lastSegment(item.url);
    const found = entries.find((e) => e === name);
    if (found === undefined) throw dataError(`${manifest.name}: listed output file ${JSON.stringify(name)} (${type}) not found`);
    files.push({ type, path: join(dir, found) });
  }
  return files;
}

function lastSegment(url: string): string {
  const path = url.replace(/[?#].*$/, '');
  const name = path.slice(path.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

interface Manifest {
  name: string;
  output: Array<{ type?: unknown; url?: unknown }>;
}

/** manifest.json if present (it must then be a valid manifest), else the first .json file with an `output` list. */
async function findManifest(dir: string, entries: readonly string[]): Promise<Manifest | undefined> {
  const named = entries.find((e) => e.toLowerCase() === 'manifest.json');
  const candidates = [...(named === undefined ? [] : [named]), ...entries.filter((e) => e !== named && /(?<!nd)\.json$/i.test(e))];
  for (const name of candidates) {
    const path = join(dir, name);
    if ((await stat(path)).size > MAX_MANIFEST_BYTES) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
    } catch (err) {
      if (name === named) throw dataError(`${name}: not valid JSON`, err);
      continue;
    }
    const output = (parsed as { output?: unknown } | null)?.output;
    if (Array.isArray(output)) return { name, output: output.filter((o): o is Json => typeof o === 'object' && o !== null) };
    if (name === named) throw dataError(`${name}: missing "output" list`);
  }
  return undefined;
}
