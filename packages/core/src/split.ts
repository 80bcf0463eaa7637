import { createHash } from 'node:crypto';

/**
 * Deterministic train/hold-out assignment: a record goes to the hold-out split when the
 * SHA-256 of (seed, key) falls below `fraction`. The same key always lands in the same split
 * for a study, independent of row order and of other rows, so a re-export or appended data
 * keeps earlier records where they were.
 */
export function isHoldout(key: string, seed: number, fraction: number): boolean {
  const digest = createHash('sha256').update(`${seed}\u0000${key}`).digest();
  return digest.readUInt32BE(0) / 0x1_0000_0000 < fraction;
}

/**
 * Within the hold-out split: whether a record is in the test part (figures published with a
 * release) rather than the validation part (used to choose the released round). Independent of
 * isHoldout's draw (another domain byte), deterministic per study and key (proto: "Validation
 * and test parts").
 */
export function isTestPart(key: string, seed: number, testFraction: number): boolean {
  const digest = createHash('sha256').update(`${seed}\u0002${key}`).digest();
  return digest.readUInt32BE(0) / 0x1_0000_0000 < testFraction;
}
