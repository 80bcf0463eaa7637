import { afterEach, beforeEach, describe } from 'vitest';
import type { CoordinatorStore } from '../../store.js';
import { storeKinds, type OpenedStore, type StoreKind } from './store-kinds.js';

/** What a contract body sees: the kind under test and, inside each test, a fresh store. */
export interface StoreContext {
  readonly kind: StoreKind;
  /** The current test's store (fresh per test). */
  readonly store: CoordinatorStore;
  /** The current test's opened store (reopen, schema). */
  readonly opened: OpenedStore;
  /** Closes this context's store early (e.g. to reopen its database); cleanup still runs. */
  track(store: CoordinatorStore): CoordinatorStore;
}

/**
 * Runs `body` once per registered store kind, each test with a fresh store (design §2.5), like
 * connect-es's describeTransports. No kind is ever skipped: a kind that cannot run here (no
 * PostgreSQL binaries) fails its tests with a message naming what to install.
 */
export function describeStores(title: string, body: (ctx: StoreContext) => void): void {
  for (const kind of storeKinds) {
    describe(`${title} [${kind.kind}]`, () => {
      let current: OpenedStore | undefined;
      const extra: CoordinatorStore[] = [];
      beforeEach(async () => {
        current = await kind.open();
      });
      afterEach(async () => {
        for (const s of extra.splice(0)) await s.close().catch(() => undefined);
        await current?.cleanup();
        current = undefined;
      });
      const opened = (): OpenedStore => {
        if (current === undefined) throw new Error('the store is only open inside a test');
        return current;
      };
      body({
        kind,
        get store() {
          return opened().store;
        },
        get opened() {
          return opened();
        },
        track(store) {
          extra.push(store);
          return store;
        },
      });
    });
  }
}
