import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import { CertificateAuthority } from '../ca/authority.js';
import { NodeCertificates } from '../ca/node-certificates.js';
import type { CoordinatorConfig } from '../config.js';
import type { CoordinatorStore, NodeCaRecord } from '../store.js';

function pairError(message: string): FedlhsError {
  return new FedlhsError('CONFIG_INVALID', message, { details: { key: 'tls.clientCertificates' } });
}

/** Removes the CA files this process just wrote (its CA was not recorded), and their directory if it made it. */
function removeCa(dir: string, keepDir: boolean): void {
  if (keepDir) for (const f of ['ca.key', 'ca.crt']) rmSync(join(dir, f), { force: true });
  else rmSync(dir, { recursive: true, force: true });
}

const recordOf = (ca: CertificateAuthority, at: number): NodeCaRecord => ({ fingerprint: ca.fingerprint, certificatePem: ca.certificatePem, recordedAt: at });

/**
 * The node CA of an active/standby pair (tls.clientCertificates 'issued' with ha.enabled), opened
 * when the process starts, before its gRPC port is bound (the port asks clients for certificates
 * of this CA whether the process is standby or active).
 *
 * The CA's private key lives only in each coordinator's <dataDir>/ca/ca.key (mode 0600), which
 * the operator provisions on both, as the release key: never in the database, which more roles
 * and backups can read. The database records the pair's CA certificate (public) once, so that a
 * coordinator with another CA refuses to start instead of issuing certificates the other would
 * refuse:
 * - files and a record: they must be the same CA;
 * - files, no record: this CA becomes the pair's (recorded);
 * - no files, a record: refused: copy the other coordinator's ca.key and ca.crt here;
 * - neither (first start of the pair): a CA is made and written, then recorded; its files are
 *   removed again if the record is another's (two coordinators starting at once: the other one
 *   is refused).
 * Renewing or replacing the pair's CA: `fedlhs-coordinator ca reset` (resetPairCa).
 */
export async function openPairNodeCertificates(
  config: Pick<CoordinatorConfig, 'dataDir' | 'tls'>, store: Pick<CoordinatorStore, 'getNodeCa' | 'recordNodeCa'>, logger: Logger, now: () => number = Date.now,
): Promise<NodeCertificates | undefined> {
  if (config.tls.clientCertificates !== 'issued') return undefined;
  const log = logger.child({ component: 'ca' });
  const opts = { dataDir: config.dataDir, caValidityDays: config.tls.caValidityDays ?? 3650, nodeCertificateSeconds: config.tls.nodeCertificateSeconds ?? 604_800, now };
  const dir = join(config.dataDir, 'ca');
  const recorded = await store.getNodeCa();
  const loaded = CertificateAuthority.load(opts);
  const certificatesOf = (ca: CertificateAuthority, created: boolean): NodeCertificates =>
    NodeCertificates.of(ca, created, { supersededGraceMs: (config.tls.supersededGraceSeconds ?? 60) * 1000, log });
  if (loaded === undefined) {
    if (recorded !== undefined) {
      throw pairError(`ha.enabled: ${dir} holds no node CA, but the pair's node CA (fingerprint ${recorded.fingerprint}, recorded ${new Date(recorded.recordedAt).toISOString()}) exists: copy ca.key (mode 0600) and ca.crt from the other coordinator's <dataDir>/ca here (a new CA would refuse every enrolled node); if no coordinator has them any more, or to renew the CA, run \`fedlhs-coordinator ca reset --config <file> --confirm ${recorded.fingerprint}\` (every node then enrols again)`);
    }
    const made = CertificateAuthority.generate(opts);
    // The files first (each written whole, then renamed), the record after: a crash or a failed
    // write in between leaves files without a record (recorded at the next start), never a
    // record of a CA whose key exists nowhere.
    const dirExisted = existsSync(dir);
    made.save(config.dataDir);
    // A failed record keeps the files: it may have been written all the same (a connection lost
    // at COMMIT), and files without a record are recorded at the next start.
    const winner = await store.recordNodeCa(recordOf(made.ca, now()));
    if (winner.fingerprint !== made.ca.fingerprint) {
      removeCa(dir, dirExisted);
      throw pairError(`ha.enabled: the other coordinator made the pair's node CA (fingerprint ${winner.fingerprint}) while this one started: copy ca.key (mode 0600) and ca.crt from its <dataDir>/ca to ${dir}`);
    }
    log.info({ event: 'ca.created', fingerprint: made.ca.fingerprint, notAfter: new Date(made.ca.notAfter).toISOString() }, `created the pair's node CA in ${dir} (ca.key mode 0600): copy both files to the other coordinator's <dataDir>/ca`);
    return certificatesOf(made.ca, true);
  }
  const pair = recorded ?? (await store.recordNodeCa(recordOf(loaded, now())));
  if (pair.fingerprint !== loaded.fingerprint) {
    throw pairError(`ha.enabled: the node CA in ${dir} (fingerprint ${loaded.fingerprint}) is not the pair's (fingerprint ${pair.fingerprint}, recorded ${new Date(pair.recordedAt).toISOString()}): copy ca.key (mode 0600) and ca.crt from the other coordinator's <dataDir>/ca here`);
  }
  if (recorded === undefined) log.info({ event: 'ca.recorded', fingerprint: loaded.fingerprint }, `recorded the node CA in ${dir} as the pair's (fingerprint ${loaded.fingerprint})`);
  return certificatesOf(loaded, false);
}

/**
 * At a takeover, on the new term's store: the pair's recorded CA must still be this process's
 * (checked at start; the record cannot change, but a restored database could carry another).
 */
export async function checkPairCa(store: Pick<CoordinatorStore, 'getNodeCa'>, certificates: NodeCertificates): Promise<void> {
  const recorded = await store.getNodeCa();
  if (recorded?.fingerprint !== certificates.authority.fingerprint) {
    throw pairError(`ha.enabled: the database records ${recorded === undefined ? 'no node CA' : `node CA ${recorded.fingerprint}`}, but this coordinator's is ${certificates.authority.fingerprint}: it does not take over (restart it to check its <dataDir>/ca against the database)`);
  }
}
