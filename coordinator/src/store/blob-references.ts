import { FedlhsError } from '@fedlhs/core';
import { releaseFiles } from './rows.js';

const DIGEST = /^[0-9a-f]{64}$/;

/**
 * The blob digest in a study's `strategy_state` JSON (`{"path", "sha256", "round"}`, written by
 * the round engine at commit). Anything else is DATA_LOSS: blob collection must not run on
 * references it cannot read (it would delete the state a resume needs).
 */
export function strategyStateDigest(studyId: string, json: string): string {
  let sha256: unknown;
  try {
    sha256 = (JSON.parse(json) as { sha256?: unknown } | null)?.sha256;
  } catch (err) {
    throw new FedlhsError('DATA_LOSS', `study ${studyId} has a strategy_state that is not JSON`, { cause: err });
  }
  if (typeof sha256 !== 'string' || !DIGEST.test(sha256)) {
    throw new FedlhsError('DATA_LOSS', `study ${studyId} has a strategy_state without a sha256 digest; blob references cannot be listed`);
  }
  return sha256;
}

/** A release's row as `referencedBlobs` reads it: its files list, still JSON. */
export interface ReleaseFilesRow {
  studyName: string;
  version: number;
  files: string;
}

/**
 * Collects `referencedBlobs` from the row sources (same on every store). Release files are kept
 * forever (agents fetch them long after the study); a files list that cannot be read is
 * DATA_LOSS (rows.ts releaseFiles), like a strategy state without its digest.
 */
export function blobReferenceSet(
  checkpoints: Iterable<string>,
  strategyStates: Iterable<{ studyId: string; json: string }>,
  openTaskModels: Iterable<string>,
  releases: Iterable<ReleaseFilesRow>,
): Set<string> {
  const set = new Set<string>(checkpoints);
  for (const s of strategyStates) set.add(strategyStateDigest(s.studyId, s.json));
  for (const m of openTaskModels) set.add(m);
  for (const r of releases) for (const f of releaseFiles(r.files, r.studyName, r.version)) set.add(f.sha256);
  return set;
}
