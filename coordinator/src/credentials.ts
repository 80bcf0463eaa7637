import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Secrets are 256-bit random values; only their SHA-256 is stored. (A slow password hash
 * adds nothing for secrets of full entropy, and every call is authenticated, so this stays fast.)
 */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(a) || !/^[0-9a-fA-F]{64}$/.test(b)) return false;
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Join tokens: "fjt_<secret>". */
export function newJoinToken(): string {
  return `fjt_${newSecret()}`;
}

/** Node credentials: "fnc_<node id>.<secret>"; the id lets the server find the hash to compare. */
export function formatNodeCredential(nodeId: string, secret: string): string {
  return `fnc_${nodeId}.${secret}`;
}

export function parseNodeCredential(value: string): { nodeId: string; secret: string } | undefined {
  const m = /^fnc_([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{16,128})$/.exec(value);
  return m === null ? undefined : { nodeId: m[1]!, secret: m[2]! };
}
