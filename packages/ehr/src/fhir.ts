import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EhrSource, EventKind, SourceInventory, SourceOptions } from './events.js';
import { EVENT_TYPES, toPatient, type FhirResourceType, type Json } from './fhir-resources.js';
import { REPLACEMENT_CHAR, archiveHint, dataError, invalidBytesReason, listExport } from './read-csv.js';
import { SkipLedger } from './skip-ledger.js';

const TYPES: readonly FhirResourceType[] = ['Patient', 'Condition', 'Observation', 'Encounter', 'MedicationRequest'];
type Skip = (why: string) => undefined;


/**
 * One ndjson file of the export: of one resource type (named by the export manifest or by
 * the file name), or `mixed` when neither names it, so each line's resourceType decides.
 */
interface ExportFile {
  type: FhirResourceType | 'mixed';
  name: string;
  path: string;
}

interface ExportLayout {
  files: ExportFile[];
  /** Files or manifest outputs not read: other resource types, compressed files. */
  unread: string[];
}

/** True if any string in a mapped record holds U+FFFD (a byte sequence invalid in UTF-8). */
function mangled(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(REPLACEMENT_CHAR);
  if (Array.isArray(value)) return value.some(mangled);
  if (typeof value === 'object' && value !== null) return Object.values(value).some(mangled);
  return false;
}

/**
 * Opens a FHIR R4 Bulk Data export directory, laid out as the Bulk Data Access specification
 * has it. With an export manifest (manifest.json, or another .json file with an `output` list)
 * the files are those its `output[]` entries name, each with the entry's `type`; a `url` may be
 * a file name or a URL whose last path segment is the file name, and a type may have several
 * files. Without a manifest every `.ndjson` file is read: one whose name names a resource type
 * (`Patient.ndjson`, `Patient.000.ndjson`, `1.Patient.ndjson`) holds that type, any other is
 * read line by line with each line's `resourceType` deciding. At least one Patient file is
 * required. Malformed lines, resources marked entered-in-error and resources that cannot be
 * mapped are skipped and counted by resource type.
 */
export function openFhirBulk(dir: string, options: SourceOptions = {}): EhrSource {
  const ledger = new SkipLedger();
  const encoding = options.encoding === 'latin1' ? 'latin1' : 'utf8';

  /** The resources of `wanted` types in one file, each with its skip counter. */
  async function* resources(file: ExportFile, wanted: readonly FhirResourceType[]): AsyncGenerator<[Json, Skip, FhirResourceType, (why: string) => void, boolean]> {
    const pass = ledger.pass(`${file.path}|${wanted.join(',')}`, wanted.length === 1 && wanted[0] === 'Patient' ? 'patients' : 'events');
    const label = file.type === 'mixed' ? file.name : file.type;
    const skipAs = (type: string) => (why: string): undefined => {
      pass.skip(`${type}: ${why}`);
      return undefined;
    };
    const input = createReadStream(file.path, { encoding });
    const lines = createInterface({ input, crlfDelay: Infinity });
    let first = true;
    try {
      for await (const raw of lines) {
        const line = first ? raw.replace(/^\uFEFF/, '') : raw;
        first = false;
        if (line.trim() === '') continue;
        // A file of mixed types is read once for patients and again for events: its unreadable
        // lines are counted in the patient pass only (they may have been patients).
        const countUnreadable = file.type !== 'mixed' || wanted.includes('Patient');
        let resource: unknown;
        try {
          resource = JSON.parse(line);
        } catch {
          if (countUnreadable) skipAs(label)('malformed JSON line');
          continue;
        }
        if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
          if (countUnreadable) skipAs(label)('malformed JSON line');
          continue;
        }
        const type = (resource as Json).resourceType;
        if (file.type !== 'mixed') {
          if (type !== file.type) skipAs(file.type)('unexpected resourceType');
          else if (wanted.includes(file.type)) yield [resource as Json, skipAs(file.type), file.type, (why) => pass.note(`${file.type}: ${why}`), line.includes(REPLACEMENT_CHAR)];
          continue;
        }
        if (typeof type !== 'string') {
          if (countUnreadable) skipAs(label)('line without resourceType');
        }
        else if (wanted.includes(type as FhirResourceType)) {
          yield [resource as Json, skipAs(type), type as FhirResourceType, (why) => pass.note(`${type}: ${why}`), line.includes(REPLACEMENT_CHAR)];
        }
      }
    } finally {
      lines.close();
      input.destroy();
    }
    pass.done();
  }

  /** Maps each resource, dropping one whose mapped values hold invalid bytes (a mangled id or code). */
  async function* mapped<T>(file: ExportFile, wanted: readonly FhirResourceType[], map: (r: Json, skip: Skip, type: FhirResourceType) => T | T[] | undefined): AsyncGenerator<T> {
    for await (const [resource, skip, type, note, invalidBytes] of resources(file, wanted)) {
      const out = map(resource, skip, type);
      if (out === undefined || (Array.isArray(out) && out.length === 0)) continue;
      if (invalidBytes && mangled(out)) {
        skip(invalidBytesReason('a field read'));
        continue;
      }
      if (invalidBytes) note(`${invalidBytesReason('a field not read')}; resource kept`);
      if (Array.isArray(out)) yield* out;
      else yield out;
    }
  }

  return {
    format: 'fhir-ndjson',
    get skipped() {
      return ledger.totals();
    },
    get patientLosses() {
      return ledger.totals('patients');
    },
    get notes() {
      return ledger.notes();
    },
    async *patients() {
      const { files } = await exportLayout(dir);
      const patientFiles = files.filter((f) => f.type === 'Patient' || f.type === 'mixed');
      if (patientFiles.length === 0) throw dataError(`no Patient file in the FHIR bulk export${await archiveHint(dir)}`);
      for (const file of patientFiles) yield* mapped(file, ['Patient'], (r, skip) => toPatient(r, skip));
    },
    async *events(kinds: ReadonlySet<EventKind>) {
      const { files } = await exportLayout(dir);
      const wanted = EVENT_TYPES.filter(([, kind]) => kinds.has(kind));
      const mappers = new Map(wanted.map(([type, , map]) => [type, map]));
      for (const [type, , map] of wanted) {
        for (const file of files.filter((f) => f.type === type)) yield* mapped(file, [type], map);
      }
      // Unnamed files hold any mix of types: one pass over each for all wanted types.
      for (const file of files.filter((f) => f.type === 'mixed')) {
        yield* mapped(file, [...mappers.keys()], (r, skip, type) => mappers.get(type)!(r, skip));
      }
    },
    inventory: async (): Promise<SourceInventory> => {
      const { files, unread } = await exportLayout(dir);
      const found = new Map<string, Set<string>>();
      const add = (type: string, name: string): void => {
        if (!found.has(type)) found.set(type, new Set());
        found.get(type)!.add(name);
      };
      for (const file of files) {
        if (file.type !== 'mixed') add(file.type, file.name);
        else for (const type of await typesIn(file.path, encoding)) add(type, file.name);
      }
      const filesOf = (type: string): string[] => [...(found.get(type) ?? [])].sort();
      const otherTypes = [...found.keys()].filter((t) => !TYPES.includes(t as FhirResourceType)).sort();
      return {
        files: Object.fromEntries(EVENT_TYPES.map(([type, kind]) => [kind, filesOf(type)])) as Record<EventKind, string[]>,
        expected: Object.fromEntries(EVENT_TYPES.map(([type, kind]) => [kind, `${type} resources`])) as Record<EventKind, string>,
        unread: [...unread, ...otherTypes.map((t) => `${t} resources in ${filesOf(t).join(', ')}`)],
      };
    },
  };
}

/** The resource types of the lines of an unnamed ndjson file (one streaming pass, no resource kept). */
async function typesIn(path: string, encoding: BufferEncoding): Promise<Set<string>> {
  const types = new Set<string>();
  const input = createReadStream(path, { encoding });
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      const m = /"resourceType"\s*:\s*"([A-Za-z]+)"/.exec(line);
      if (m?.[1] !== undefined) types.add(m[1]);
    }
  } finally {
    lines.close();
    input.destroy();
  }
  return types;
}

/** Resource type named by an ndjson file name ("Patient.ndjson", "Patient.000.ndjson", "1.Patient.ndjson"). */
export function resourceTypeOfFile(name: string): FhirResourceType | undefined {
  if (!/\.ndjson$/i.test(name)) return undefined;
  const parts = name.slice(0, -'.ndjson'.length).split(/[._-]/).map((p) => p.toLowerCase());
  return TYPES.find((t) => parts.includes(t.toLowerCase()));
}

/** A FHIR resource type name other than ours in an ndjson file name (e.g. "Procedure.ndjson"), so the file is not read. */
function otherTypeOfFile(name: string): string | undefined {
  if (!/\.ndjson$/i.test(name)) return undefined;
  const parts = name.slice(0, -'.ndjson'.length).split(/[._-]/);
  return parts.find((p) => /^[A-Z][a-z]+(?:[A-Z][a-z]+)*$/.test(p));
}

const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

async function exportLayout(dir: string): Promise<ExportLayout> {
  const entries = (await listExport(dir)).sort();
  const manifest = await findManifest(dir, entries);
  const compressed = entries.filter((e) => /\.ndjson\.(gz|zip|bz2)$/i.test(e)).map((e) => `${e} (compressed: unpack it first)`);
  if (manifest === undefined) {
    const files: ExportFile[] = [];
    const unread: string[] = [...compressed];
    for (const name of entries) {
      if (!/\.ndjson$/i.test(name)) continue;
      const type = resourceTypeOfFile(name);
      const other = type === undefined ? otherTypeOfFile(name) : undefined;
      if (other !== undefined) unread.push(`${name} (${other} resources)`);
      else files.push({ type: type ?? 'mixed', name, path: join(dir, name) });
    }
    return { files, unread };
  }
  const files: ExportFile[] = [];
  const unread: string[] = [...compressed];
  for (const item of manifest.output) {
    if (typeof item.url !== 'string' || typeof item.type !== 'string') continue;
    const name = lastSegment(item.url);
    const type = TYPES.find((t) => t === item.type);
    if (type === undefined) {
      unread.push(`${name} (${item.type} resources)`);
      continue;
    }
    const found = entries.find((e) => e === name);
    if (found === undefined) throw dataError(`${manifest.name}: listed output file ${JSON.stringify(name)} (${type}) not found${await archiveHint(dir)}`, undefined, { file: manifest.name });
    files.push({ type, name: found, path: join(dir, found) });
  }
  const listed = new Set(files.map((f) => f.name));
  for (const name of entries) {
    if (/\.ndjson$/i.test(name) && !listed.has(name) && !unread.some((u) => u.startsWith(`${name} `))) unread.push(`${name} (not in ${manifest.name})`);
  }
  return { files, unread };
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
      parsed = JSON.parse((await readFile(path, 'utf8')).replace(/^\uFEFF/, ''));
    } catch (err) {
      if (name === named) throw dataError(`${name}: not valid JSON`, err, { file: name });
      continue;
    }
    const output = (parsed as { output?: unknown } | null)?.output;
    if (Array.isArray(output)) return { name, output: output.filter((o): o is Json => typeof o === 'object' && o !== null) };
    if (name === named) throw dataError(`${name}: missing "output" list`, undefined, { file: name });
  }
  return undefined;
}
