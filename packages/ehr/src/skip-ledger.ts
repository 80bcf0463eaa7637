import type { SkipCounts } from './events.js';

/** Counts skips for one streaming pass over one file. */
export interface SkipPass {
  skip(reason: string): void;
  /** Marks the pass complete: its counts replace the file's counts from earlier passes. */
  done(): void;
}

/**
 * Skip counts of a source, kept per file so that re-reading a file (`events` is called once per
 * kind set, `patients` may be called again) does not count the same bad row twice. A file's
 * counts are those of its last complete pass; the first pass over a file is visible while it
 * runs, so a consumer that stops early still sees what was skipped so far.
 */
export class SkipLedger {
  private readonly byFile = new Map<string, SkipCounts>();

  /** Starts a pass over the file identified by `fileKey` (its path). */
  pass(fileKey: string): SkipPass {
    const counts: SkipCounts = {};
    if (!this.byFile.has(fileKey)) this.byFile.set(fileKey, counts);
    return {
      skip: (reason) => {
        counts[reason] = (counts[reason] ?? 0) + 1;
      },
      done: () => {
        this.byFile.set(fileKey, counts);
      },
    };
  }

  /** Sum over files, reasons sorted for stable output. */
  totals(): SkipCounts {
    const sum = new Map<string, number>();
    for (const counts of this.byFile.values()) {
      for (const [reason, n] of Object.entries(counts)) sum.set(reason, (sum.get(reason) ?? 0) + n);
    }
    return Object.fromEntries([...sum].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}
