import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parse } from 'csv-parse';
import { FedlhsError, type ErrorDetails } from '@fedlhs/core';
import type { TextEncoding } from './events.js';
import type { FileRole, SkipLedger, SkipPass } from './skip-ledger.js';

/** U+FFFD: what a byte sequence that is not valid UTF-8 decodes to. */
export const REPLACEMENT_CHAR = '\uFFFD';

/** The reason a record is dropped for invalid bytes in `where`, with the fix when the export may be Latin-1. */
export function invalidBytesReason(where: string): string {
  return `bytes not valid UTF-8 in ${where} (if the export is Latin-1, set data.encoding to latin1)`;
}

/** DATA_INVALID for unusable input; messages and `details` name files and lines, never contents. */
export function dataError(message: string, cause?: unknown, details?: ErrorDetails['DATA_INVALID']): FedlhsError<'DATA_INVALID'> {
  return new FedlhsError('DATA_INVALID', message, { cause, details });
}

/**
 * Path of the first file in `dir` whose name equals one of `names` ignoring case, or undefined.
 * Listing the directory each time keeps a re-read honest if the export was replaced.
 */
export async function findFile(dir: string, names: readonly string[]): Promise<string | undefined> {
  const entries = await listExport(dir);
  for (const name of names) {
    const hit = entries.find((e) => e.toLowerCase() === name.toLowerCase());
    if (hit !== undefined) return join(dir, hit);
  }
  return undefined;
}

/** What an archive's first bytes say it is, if it is one. */
async function archiveKind(path: string): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    const magic = Buffer.alloc(6);
    const { bytesRead } = await handle.read(magic, 0, magic.length, 0);
    const head = magic.subarray(0, bytesRead);
    if (head.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) return 'a zip archive';
    if (head.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))) return 'a gzip-compressed file';
    if (head.subarray(0, 6).equals(Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]))) return 'a 7-zip archive';
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * The names in an export directory. A path that is an archive or a single file says so (an
 * export must be unpacked into a directory first); one that cannot be listed says why.
 */
export async function listExport(dir: string): Promise<string[]> {
  const name = JSON.stringify(basename(dir));
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw dataError(code === 'ENOENT' ? `export directory ${name} does not exist` : `export directory ${name} cannot be read (${code ?? 'error'})`, err);
  }
  if (!info.isDirectory()) {
    const kind = await archiveKind(dir).catch(() => undefined);
    if (kind !== undefined) throw dataError(`${name} is ${kind}: unpack it first and set data.path to the unpacked export directory`);
    throw dataError(`${name} is a file, not an export directory: set data.path to the directory that holds the export's files`);
  }
  try {
    return await readdir(dir);
  } catch (err) {
    throw dataError(`export directory ${name} cannot be listed (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
}

/** A hint to add when a required file is missing: archives found in the directory, which may hold it. */
export async function archiveHint(dir: string): Promise<string> {
  const archives = (await listExport(dir)).filter((e) => /\.(zip|gz|tgz|tar|7z)$/i.test(e)).sort();
  return archives.length === 0 ? '' : ` (the directory holds ${archives.map((a) => JSON.stringify(a)).join(', ')}: unpack it first)`;
}

/** Tab if the header line has more tabs than commas, else comma. Reads only the first 64 KiB. */
async function sniffDelimiter(path: string): Promise<',' | '\t'> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const header = buf.toString('utf8', 0, bytesRead).split(/\r?\n/, 1)[0] ?? '';
    const count = (ch: string): number => header.split(ch).length - 1;
    return count('\t') > count(',') ? '\t' : ',';
  } finally {
    await handle.close();
  }
}

/** Column roles → accepted header names (matched ignoring case and surrounding space). */
export type ColumnAliases<K extends string> = Readonly<Record<K, readonly string[]>>;

/** One data row by role; empty cells are undefined. */
export type CsvRow<K extends string> = Partial<Record<K, string>>;

/**
 * Streams the rows of a delimited file (`file` is the name used in messages) as objects keyed by column role, finding columns by
 * header name so column order and header case do not matter. Throws DATA_INVALID
 * naming the file and column if a `required` role has no column, or if the file has no header.
 * Records the parser cannot read (e.g. an unclosed quote) are skipped and counted.
 */
export async function* readCsvRows<K extends string>(
  path: string,
  file: string,
  columns: ColumnAliases<K>,
  required: readonly K[],
  pass: SkipPass,
  encoding: TextEncoding = 'utf-8',
): AsyncGenerator<CsvRow<K>> {
  const delimiter = await sniffDelimiter(path);
  const input = createReadStream(path);
  const parser = input.pipe(
    parse({
      delimiter,
      // A UTF-8 byte-order mark overrides a declared Latin-1 (csv-parse switches to UTF-8).
      bom: true,
      encoding: encoding === 'latin1' ? 'latin1' : 'utf8',
      // Cells are trimmed below: csv-parse's `trim` turns `"a" b` into an error that swallows the rest of the file.
      skip_empty_lines: true,
      relax_column_count: true,
      relax_quotes: true,
      skip_records_with_error: true,
      on_skip: (err) => {
        // An opening quote that never closes makes the rest of the file one field; say so.
        pass.skip(err?.code === 'CSV_QUOTE_NOT_CLOSED' ? `${file}: unclosed quote, rest of file unreadable` : `${file}: unreadable CSV record`);
        return undefined;
      },
    }),
  );
  let index: Array<[K, number]> | undefined;
  let header: string[] = [];
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (index === undefined) {
        index = resolveHeader(file, record, columns, required);
        header = record.map((h) => h.trim());
        continue;
      }
      const row: CsvRow<K> = {};
      let invalidIn: string | undefined;
      for (const [role, i] of index) {
        const cell = record[i]?.trim();
        if (cell !== undefined && cell.includes(REPLACEMENT_CHAR)) invalidIn ??= header[i] ?? role;
        if (cell !== undefined && cell !== '') row[role] = cell;
      }
      if (invalidIn !== undefined) {
        // A mangled id or code would become another patient or code: drop the row, say why.
        pass.skip(`${file}: ${invalidBytesReason(`column ${invalidIn}`)}`);
        continue;
      }
      if (record.some((cell) => cell.includes(REPLACEMENT_CHAR))) pass.note(`${file}: ${invalidBytesReason('a column not read')}; row kept`);
      yield row;
    }
  } catch (err) {
    if (err instanceof FedlhsError) throw err;
    throw dataError(`${file}: cannot be read as CSV`, err, { file });
  } finally {
    // pipe() does not close the file when the consumer stops early.
    parser.destroy();
    input.destroy();
  }
  if (index === undefined) throw dataError(`${file}: file is empty (no header row)`, undefined, { file });
}

function resolveHeader<K extends string>(file: string, header: string[], columns: ColumnAliases<K>, required: readonly K[]): Array<[K, number]> {
  const names = header.map((h) => h.trim().toLowerCase());
  const index: Array<[K, number]> = [];
  const missing: string[] = [];
  for (const role of Object.keys(columns) as K[]) {
    const aliases = columns[role];
    const i = aliases.map((a) => names.indexOf(a.toLowerCase())).find((at) => at >= 0);
    if (i !== undefined) index.push([role, i]);
    else if (required.includes(role)) missing.push(aliases.map((a) => JSON.stringify(a)).join(' or '));
  }
  if (missing.length > 0) throw dataError(`${file}: missing required column ${missing.join(', ')}`, undefined, { file });
  return index;
}

/** Turns a row into an output value, or calls `skip(why)` and returns undefined. */
export type RowMapper<K extends string, T> = (row: CsvRow<K>, skip: (why: string) => undefined) => T | undefined;

/**
 * One counted pass over a delimited file: rows go through `map`; skips are counted under
 * "<file>: <why>" in `ledger`, and the pass is marked complete at the end of the file.
 */
export async function* mapCsvFile<K extends string, T>(
  path: string,
  file: string,
  columns: ColumnAliases<K>,
  required: readonly K[],
  ledger: SkipLedger,
  map: RowMapper<K, T>,
  options: { role?: FileRole | undefined; encoding?: TextEncoding | undefined } = {},
): AsyncGenerator<T> {
  const pass = ledger.pass(path, options.role);
  const skip = (why: string): undefined => {
    pass.skip(`${file}: ${why}`);
    return undefined;
  };
  for await (const row of readCsvRows(path, file, columns, required, pass, options.encoding)) {
    const out = map(row, skip);
    if (out !== undefined) yield out;
  }
  pass.done();
}
