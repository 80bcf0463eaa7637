import { FedlhsError } from '../errors.js';

/** The FedlhsError `fn` throws (tests of refusals); rethrows anything else, and fails if it does not throw. */
export function thrown(fn: () => unknown): FedlhsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FedlhsError) return err;
    throw err;
  }
  throw new Error('did not throw');
}
