// vitest globalSetup: one throwaway PostgreSQL server per test run, started only when the first
// suite asks for it (createTestSchema / createTestDatabase from @fedlhs/testing) and stopped here at
// the end of the run, failed tests included. Workers and the processes they spawn find the broker
// through the environment, so the helper works without vitest's inject().
import { createPostgresBroker } from '@fedlhs/testing';

export default async function setup(): Promise<() => Promise<void>> {
  const broker = await createPostgresBroker();
  Object.assign(process.env, broker.env);
  return async () => {
    for (const key of Object.keys(broker.env)) delete process.env[key];
    await broker.close();
  };
}
