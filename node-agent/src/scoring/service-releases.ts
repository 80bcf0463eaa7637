/**
 * The scoring service's view of the deployed releases: each read and verified again from the
 * state directory on every request (a deploy or rollback takes effect at once, and files
 * changed on disk are refused), with the built model kept per study until its release changes.
 */
import { createHash } from 'node:crypto';
import { FedlhsError } from '@fedlhs/core';
import { loadDeployedRelease, readDeployed, type DeployedRelease } from '../releases/local-releases.js';
import { createScorer, type Scorer } from './pipeline.js';

interface Entry {
  fingerprint: string;
  scorer: Promise<Scorer>;
  inflight: number;
  retired: boolean;
}

/** What identifies a loaded release's model and scaling: a change means a new scorer. */
function fingerprintOf(release: DeployedRelease): string {
  return createHash('sha256')
    .update(`${release.studyName}\u0000${release.version}\u0000${release.descriptor.model.weightsSha256}\u0000${JSON.stringify(release.normalization ?? null)}`)
    .digest('hex');
}

/** Deployed releases and their models, for the scoring service. */
export class ServiceReleases {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly stateDir: string, private readonly pinnedPem: string) {}

  /** Study names with a deployed release (deployed.json; not verified here). */
  deployedNames(): string[] {
    return Object.keys(readDeployed(this.stateDir).current).sort();
  }

  /** The deployed release of `studyName` (or the only one), verified again; NOT_FOUND / INVALID_ARGUMENT / SIGNATURE_INVALID as loadDeployedRelease. */
  load(studyName: string | undefined): DeployedRelease {
    return loadDeployedRelease(this.stateDir, studyName, this.pinnedPem);
  }

  /** Runs `use` with the release's scorer, built once per release and disposed once replaced and idle. */
  async withScorer<T>(release: DeployedRelease, use: (scorer: Scorer) => Promise<T>): Promise<T> {
    const fingerprint = fingerprintOf(release);
    let entry = this.entries.get(release.studyName);
    if (entry === undefined || entry.fingerprint !== fingerprint) {
      if (entry !== undefined) this.retire(entry);
      const scorer = createScorer(release);
      entry = { fingerprint, scorer, inflight: 0, retired: false };
      const created = entry;
      // A model that fails to build is not cached: the next request tries again and says why.
      scorer.catch(() => {
        if (this.entries.get(release.studyName) === created) this.entries.delete(release.studyName);
      });
      this.entries.set(release.studyName, entry);
    }
    entry.inflight++;
    try {
      return await use(await entry.scorer);
    } finally {
      entry.inflight--;
      if (entry.retired && entry.inflight === 0) void this.dispose(entry);
    }
  }

  /** Disposes every model (the service is stopping). */
  async close(): Promise<void> {
    for (const entry of this.entries.values()) this.retire(entry);
    this.entries.clear();
  }

  private retire(entry: Entry): void {
    entry.retired = true;
    if (entry.inflight === 0) void this.dispose(entry);
  }

  private async dispose(entry: Entry): Promise<void> {
    try {
      (await entry.scorer).dispose();
    } catch {
      // it never built: nothing to free
    }
  }
}

/** The 4xx/5xx an error thrown while loading a release answers with. */
export function releaseErrorStatus(err: unknown): number {
  if (err instanceof FedlhsError) {
    if (err.code === 'NOT_FOUND') return 404;
    if (err.code === 'INVALID_ARGUMENT') return 400;
  }
  return 500;
}
