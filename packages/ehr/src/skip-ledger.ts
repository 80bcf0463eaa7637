import type { SkipCounts } from './events.js';

/** Counts skips for one streaming pass over one file. */
export interface SkipPass {
  /** A record was dropped for `reason`. */
  skip(reason: string): void;
  /** A record was kept, but something in it was not read (for example bytes invalid in the encoding in a column not used). */
  note(reason: string): void;
  /** Marks the pass complete: its counts replace the file's counts from earlier passes. */
  done(): void;
}

/** What a file holds: patient records (whose losses are reported per reason) or events. */
export type FileRole = 'patients' | 'events';

interface FileCounts {
  role: FileRole;
  skipped: SkipCounts;
  notes: SkipCounts;
}

const sortedSum = (parts: Iterable<SkipCounts>): SkipCounts => {
  const sum = new Map<string, number>();
  for (const counts of parts) for (const [reason, n] of Object.entries(counts)) sum.set(reason, (sum.get(reason) ?? 0) + n);
  return Object.fromEntries([...sum].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
};

/**
 * Skip counts of a source, kept per file so that re-reading a file (`events` is called once per
 * kind set, `patients` may be called again) does not count the same bad row twice. A file's
 * counts are those of its last complete pass; the first pass over a file is visible while it
 * runs, so a consumer that stops early still sees what was skipped so far.
 */
export class SkipLedger {
  private readonly byFile = new Map<string, FileCounts>();

  /** Starts a pass over the file identified by `fileKey` (its path). */
  pass(fileKey: string, role: FileRole = 'events'): SkipPass {
    const counts: FileCounts = { role, skipped: {}, notes: {} };
    if (!this.byFile.has(fileKey)) this.byFile.set(fileKey, counts);
    const add = (into: SkipCounts, reason: string): void => {
      into[reason] = (into[reason] ?? 0) + 1;
    };
    return {
      skip: (reason) => add(counts.skipped, reason),
      note: (reason) => add(counts.notes, reason),
      done: () => {
        this.byFile.set(fileKey, counts);
      },
    };
  }

  /** Records dropped, summed over files (of one role, if given), reasons sorted for stable output. */
  totals(role?: FileRole): SkipCounts {
    return sortedSum([...this.byFile.values()].filter((f) => role === undefined || f.role === role).map((f) => f.skipped));
  }

  /** Records kept with something unread, summed over files. */
  notes(): SkipCounts {
    return sortedSum([...this.byFile.values()].map((f) => f.notes));
  }
}
