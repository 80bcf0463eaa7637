export interface BackoffOptions {
  /** First delay before jitter, in ms. */
  baseMs: number;
  /** Largest delay before jitter, in ms. */
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 30_000 };

/**
 * Delay before reconnect attempt `attempt` (0-based): random(0.5, 1) · min(cap, base · 2^attempt).
 * The jitter spreads a network's agents out after a coordinator restart.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return ceiling * (0.5 + 0.5 * random());
}
