import { describe, expect, it } from 'vitest';
import { LARGE_BYTES, collectGarbage, releaseIfLarge } from './release.js';

/** Registers an array nothing else references; the flag flips when V8 has collected it. */
function dropped(): { collected: () => boolean; registry: FinalizationRegistry<string> } {
  let collected = false;
  const registry = new FinalizationRegistry(() => {
    collected = true;
  });
  registry.register(new Float32Array(1 << 16), 'dropped');
  // The registry must outlive the array, or its callback never runs.
  return { collected: () => collected, registry };
}

/** Lets queued finalization callbacks run (they are tasks, after the collection). */
async function settle(until: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !until(); i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('releasing dead arrays of large models', () => {
  it('collects an unreachable array on demand, with or without --expose-gc', async () => {
    const probe = dropped();
    collectGarbage();
    await settle(probe.collected);
    expect(probe.collected()).toBe(true);
  });

  it('collects only for sizes of LARGE_BYTES and more', async () => {
    const small = dropped();
    releaseIfLarge(LARGE_BYTES - 1);
    await settle(small.collected);
    // Nothing asked for a collection; a young array this small survives a few ticks.
    const survived = !small.collected();
    const large = dropped();
    releaseIfLarge(LARGE_BYTES);
    await settle(large.collected);
    expect(large.collected()).toBe(true);
    expect(survived).toBe(true);
  });
});
