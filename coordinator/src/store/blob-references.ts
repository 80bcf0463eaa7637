import { FedlhsError } from '@fedlhs/core';

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

/** Collects `referencedBlobs` from the three row sources (same on every store). */
export function blobReferenceSet(checkpoints: Iterable<string>, strategyStates: Iterable<{ studyId: string; json: string }>, openTaskModels: Iterable<string>): Set<string> {
  const set = new Set<string>(checkpoints);
  for (const s of strategyStates) set.add(strategyStateDigest(s.studyId, s.json));
  for (const m of openTaskModels) set.add(m);
  return set;
}
