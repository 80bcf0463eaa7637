import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { FedlhsError } from '@fedlhs/core';
import type { NodeCaRecord } from '../store.js';
import { pgNodeCertificates } from '../store/postgres/node-certificates.js';

/** What `ca reset` found and did. */
export interface PairCaResetResult {
  /** The pair's CA the database recorded before (undefined: none). */
  recorded: NodeCaRecord | undefined;
  /** Whether this run cleared that record (it was the confirmed CA). */
  cleared: boolean;
  /** The fingerprint of <dataDir>/ca's CA, if it holds one. */
  local: string | undefined;
  /** Where <dataDir>/ca was moved (undefined: not moved, or dry run). */
  movedTo: string | undefined;
}

/** A fingerprint as typed by an operator: case and colons do not matter. */
const same = (a: string, b: string): boolean => a.replace(/:/g, '').toUpperCase() === b.replace(/:/g, '').toUpperCase();

function resetError(message: string): FedlhsError {
  return new FedlhsError('CONFIG_INVALID', message, { details: { key: 'tls.clientCertificates' } });
}

/** The fingerprint of the CA certificate in `dir` (not its key: a CA too close to expiry to load must still be reset). */
function localCa(dir: string): string | undefined {
  const cert = join(dir, 'ca.crt');
  const key = join(dir, 'ca.key');
  if (!existsSync(cert)) {
    if (existsSync(key)) throw resetError(`${dir} holds ca.key without ca.crt: cannot tell which CA it is; move the directory away by hand`);
    return undefined;
  }
  try {
    return new X509Certificate(readFileSync(cert)).fingerprint256;
  } catch (err) {
    throw resetError(`cannot read ${cert}: ${(err as Error).message}`);
  }
}

/**
 * `fedlhs-coordinator ca reset` for an active/standby pair: retires the pair's node CA
 * `confirm` (its fingerprint, as the start-up errors print it), so that the next coordinator to
 * start makes a new one (ha/pair-ca.ts). Run with this machine's coordinator stopped (the
 * caller holds its data directory lock), on each machine of the pair:
 * - <dataDir>/ca, if it holds the confirmed CA, is moved to <dataDir>/ca.retired-<time> (kept,
 *   not deleted: an operator may still need to read what it signed);
 * - the database's record of the pair's CA, if it is the confirmed one, is cleared, in one
 *   transaction with an audited admin action `ca.reset` (audit chain).
 * Idempotent: the second machine finds the record cleared and only moves its files. Refused if
 * the local files or the record hold another CA than the confirmed one (a CA made after the
 * reset is never cleared by a repeated command). Every certificate of the old CA stops
 * verifying once the coordinators run with the new one: every node enrols again with a new
 * join token. `dryRun`: only reports what it would do.
 */
export async function resetPairCa(opts: { dataDir: string; confirm: string; operator: string; pool: pg.Pool; now?: () => number; dryRun?: boolean }): Promise<PairCaResetResult> {
  const now = opts.now ?? Date.now;
  const dir = join(opts.dataDir, 'ca');
  const local = localCa(dir);
  if (local !== undefined && !opts.dryRun && !same(local, opts.confirm)) {
    throw resetError(`${dir} holds node CA ${local}, not the confirmed ${opts.confirm}: nothing was changed (a CA made after a reset is never retired by repeating it)`);
  }
  const client = await opts.pool.connect();
  try {
    await client.query('BEGIN');
    const recorded = await pgNodeCertificates.lockCa(client);
    const clears = recorded !== undefined && same(recorded.fingerprint, opts.confirm);
    if (opts.dryRun) {
      await client.query('ROLLBACK');
      return { recorded, cleared: false, local, movedTo: undefined };
    }
    if (!clears && local === undefined) {
      throw resetError(`the database records ${recorded === undefined ? 'no node CA' : `node CA ${recorded.fingerprint}`} and ${dir} holds none: nothing to reset for ${opts.confirm}`);
    }
    // The files first: if the transaction then fails, this machine holds no CA and the record
    // remains, which the next start refuses, naming this command (run it again).
    let movedTo: string | undefined;
    if (local !== undefined) {
      movedTo = join(opts.dataDir, `ca.retired-${new Date(now()).toISOString().replace(/[:.]/g, '-')}`);
      renameSync(dir, movedTo);
    }
    let cleared = false;
    if (clears) {
      cleared = await pgNodeCertificates.resetCa(client, recorded.fingerprint, {
        at: now(), operator: opts.operator, action: 'ca.reset', target: recorded.fingerprint,
        detail: `pair node CA recorded ${new Date(recorded.recordedAt).toISOString()} cleared${movedTo === undefined ? '' : `; ${dir} moved to ${movedTo}`}`,
      });
    }
    await client.query('COMMIT');
    return { recorded, cleared, local, movedTo };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
