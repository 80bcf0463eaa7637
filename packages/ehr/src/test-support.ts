// Helpers shared by this package's reader tests (excluded from the build).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isoToDay, type EventKind } from './events.js';

export const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const ALL: ReadonlySet<EventKind> = new Set(['encounter', 'condition', 'observation', 'medication']);

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export function day(iso: string): number {
  const d = isoToDay(iso);
  if (d === undefined) throw new Error(`bad test date ${iso}`);
  return d;
}

/** A temporary export directory holding `files`. */
export function exportDir(files: Record<string, string>, prefix = 'fedlhs-export-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
