import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One throwaway PostgreSQL server per run, started when the first suite asks for it
    // (packages/testing/src/postgres.ts); a run without such a suite never starts it.
    globalSetup: ['tests/setup/postgres.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'coordinator/src/**/*.test.ts', 'node-agent/src/**/*.test.ts', 'simulator/src/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts', 'tests/conformance/**/*.test.ts'],
          environment: 'node',
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // Integration tests start real coordinators and agent processes; on a 2-core
          // machine running files one at a time keeps timing-sensitive paths honest.
          fileParallelism: false,
        },
      },
      {
        // The conformance suite again with every coordinator on PostgreSQL (a fresh schema each,
        // on the run's throwaway server): the protocol must not depend on the store.
        test: {
          name: 'conformance-postgres',
          include: ['tests/conformance/**/*.test.ts'],
          environment: 'node',
          env: { FEDLHS_CONFORMANCE_STORE: 'postgres' },
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
