import { FedlhsError, type SeriesChampion } from '@fedlhs/core';
import type { CoordinatorStore, PromotionRecord } from '../store.js';

/** The release alias that names a series' champion (a series' name is its runs' study name). */
export const CHAMPION_ALIAS = 'champion';

/** The version the `champion` alias of a series names, or null. */
export async function championVersion(store: CoordinatorStore, name: string): Promise<number | null> {
  return (await store.listReleaseAliases(name)).find((a) => a.alias === CHAMPION_ALIAS)?.version ?? null;
}

/**
 * The series' champion as a run is derived with: the alias' version and the SHA-256 of that
 * release's weights.bin; undefined while there is none. DATA_LOSS if the alias names a release
 * without weights (a damaged row: a run must not start against it).
 */
export async function currentChampion(store: CoordinatorStore, name: string): Promise<SeriesChampion | undefined> {
  const version = await championVersion(store, name);
  if (version === null) return undefined;
  const release = await store.getRelease(name, version);
  const weights = release?.files.find((f) => f.name === 'weights.bin');
  if (weights === undefined) throw new FedlhsError('DATA_LOSS', `the champion of series ${name} (release v${version}) ${release === undefined ? 'does not exist' : 'lists no weights.bin'}`);
  return { version, weightsSha256: weights.sha256 };
}

/**
 * The champions in the order they took over, replayed from the promotion history: a promotion
 * pushes its version, a rollback pops back to the one before. The last entry is the champion
 * the history says is current; the one before it is where a rollback goes.
 */
export function championStack(history: readonly PromotionRecord[]): number[] {
  const stack: number[] = [];
  for (const p of history) {
    if (p.action === 'promote') stack.push(p.toVersion);
    else if (p.action === 'rollback') {
      stack.pop();
      // A history that does not match (an alias moved outside the series) still ends at its target.
      if (stack.at(-1) !== p.toVersion) stack.push(p.toVersion);
    }
  }
  return stack;
}
