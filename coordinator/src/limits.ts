import { totalmem } from 'node:os';

/**
 * The bounds that keep one node (or one credential in the wrong hands) from exhausting the
 * coordinator (issue 11). Every bound has a config key (`limits.*`, `transfer.uploadIdleSeconds`)
 * and is listed with its default and what happens past it in the README section "Limits and
 * what happens past them".
 */
export interface CoordinatorLimits {
  /** Model downloads one node may have open at once; more are refused (RESOURCE_LIMIT). */
  downloadStreamsPerNode: number;
  /** Model downloads all nodes together may have open at once; more are refused (RESOURCE_LIMIT). */
  downloadStreamsTotal: number;
  /** Sustained messages per second one control session may send (token bucket refill). */
  sessionMessagesPerSecond: number;
  /** Messages one control session may send in a burst (token bucket size); past it the session ends (RATE_LIMITED). */
  sessionMessageBurst: number;
  /** The most examples one update may claim, whatever the clinic reported. */
  maxExamplesPerUpdate: number;
  /** Memory a study's model may need in the coordinator (size × the strategy's factor); larger studies are refused at start. */
  modelMemoryBytes: number;
  /** Failed credential checks (node credentials, operator logins) one source address may make per minute before it is throttled. */
  authFailuresPerMinute: number;
  /** An upload that sends nothing for this long is ended (UPLOAD_STALLED), in ms. */
  uploadIdleMs: number;
  /** A download whose client takes no data for this long is ended (DOWNLOAD_STALLED) and its memory given back, in ms. */
  downloadIdleMs: number;
}

/** `limits.modelMemoryBytes` 0 means automatic: a quarter of the machine's memory. */
export function automaticModelMemoryBytes(): number {
  return Math.floor(totalmem() / 4);
}

/** Defaults of every bound (the config schema's defaults, in the same units). */
export const DEFAULT_LIMITS: Readonly<CoordinatorLimits> = {
  downloadStreamsPerNode: 2,
  downloadStreamsTotal: 256,
  sessionMessagesPerSecond: 20,
  sessionMessageBurst: 200,
  maxExamplesPerUpdate: 10_000_000,
  modelMemoryBytes: automaticModelMemoryBytes(),
  authFailuresPerMinute: 30,
  uploadIdleMs: 120_000,
  downloadIdleMs: 120_000,
};

/** `DEFAULT_LIMITS` with the given overrides. */
export function resolveLimits(overrides: Partial<CoordinatorLimits> = {}): CoordinatorLimits {
  const out: CoordinatorLimits = { ...DEFAULT_LIMITS };
  for (const [k, v] of Object.entries(overrides) as [keyof CoordinatorLimits, number | undefined][]) if (v !== undefined) out[k] = v;
  return out;
}
