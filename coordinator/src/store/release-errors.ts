import { FedlhsError } from '@fedlhs/core';
import type { ReleaseRecord } from './records.js';
import type { WriteOp } from './write-ops.js';

/** The release write ops (write-ops.ts), applied by store/sqlite/releases.ts and store/postgres/releases.ts. */
export type ReleaseOp = Extract<WriteOp, { op: 'release.insert' | 'release.alias' | 'release.performance' }>;

/**
 * The guard errors of the release ops, worded the same by every store.
 * `release.insert` that finds its version (or its study) already released: STALE, two builders raced.
 */
export function releaseTaken(r: ReleaseRecord, versionTaken: boolean): FedlhsError {
  return versionTaken
    ? new FedlhsError('STALE', `release ${r.studyName} v${r.version} already exists`)
    : new FedlhsError('STALE', `study ${r.studyId} already has a release`);
}

/** `release.alias` naming a version that was never released (NOT_FOUND has no 'release' kind: a release is a model). */
export function releaseNotFound(studyName: string, version: number): FedlhsError {
  return new FedlhsError('NOT_FOUND', `release ${studyName} v${version} does not exist`, { details: { what: 'release', id: `${studyName}@${version}` } });
}

/** `release.alias` removing an alias that is not set: the operator asked for something that is not there. */
export function aliasNotFound(studyName: string, alias: string): FedlhsError {
  return new FedlhsError('NOT_FOUND', `release alias ${studyName}:${alias} is not set`, { details: { what: 'alias', id: `${studyName}:${alias}` } });
}

/** The files list as stored (JSON). */
export const filesJson = (r: ReleaseRecord): string => JSON.stringify(r.files.map((f) => ({ name: f.name, sha256: f.sha256, size: f.size })));
