/**
 * Node certificates from the coordinator on an active/standby pair (issue 15): both coordinators
 * hold the pair's node CA (the operator copies <dataDir>/ca, as the release key), and the serials
 * live in the shared PostgreSQL store. A node enrolled on A keeps working on B after A is
 * SIGKILLed and renews its certificate there; the certificate it replaced is refused, on B and
 * then on A once A has taken over again, and revoking the node on A refuses its renewed one.
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { randomBytes, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFedlhsProto } from '@fedlhs/proto';
import { createTestDatabase, createTestPki, learnableManifest, testPostgresUnavailable, writeLearnableCsv, type TestPostgresScope } from '@fedlhs/testing';
import { enrolAgent, startAgent, startStudy, waitForStudyEnd, type AgentOptions } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';
import { query, startHaCoordinator, type HaCoordinator } from './failover-helpers.js';

const ws = useWorkspace();
const postgresUnavailable = await testPostgresUnavailable();
const databases: TestPostgresScope[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
});

/** ListStudies with a node's credential over a fresh connection presenting `client`: the status code and message. */
async function listStudies(address: string, caCert: string, credential: string, client: { cert: string; key: string }): Promise<{ code: number; details: string }> {
  const proto = loadFedlhsProto();
  const federation = new proto.fedlhs.v1.Federation(address, grpc.credentials.createSsl(readFileSync(caCert), Buffer.from(client.key), Buffer.from(client.cert)));
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${credential}`);
  try {
    return await new Promise((resolve) => {
      federation.ListStudies({ includeEnded: false }, md, { deadline: new Date(Date.now() + 15_000) }, (err) => resolve(err === null ? { code: 0, details: '' } : { code: err.code, details: err.details }));
    });
  } finally {
    federation.close();
  }
}

describe("node certificates on an active/standby pair (tls.clientCertificates 'issued', ha.enabled)", () => {
  if (postgresUnavailable !== undefined) {
    it('needs PostgreSQL', () => {
      throw postgresUnavailable;
    });
    return;
  }

  it('a node enrolled on A works on B after A is SIGKILLed and renews there; the replaced certificate is refused by both, and revocation on A refuses the renewed one', async () => {
    const db = await createTestDatabase('failover_certs');
    databases.push(db);
    const pki = createTestPki(ws.dir());
    const adminToken = `fat_${randomBytes(24).toString('base64url')}`;
    const env = {
      FEDLHS_TLS_MODE: 'tls', FEDLHS_TLS_CERT: pki.serverCert, FEDLHS_TLS_KEY: pki.serverKey, FEDLHS_TLS_CLIENT_CERTIFICATES: 'issued',
      // Renewal at 40 s, after the failover; the test ends well before the renewed certificate expires.
      FEDLHS_TLS_NODE_CERTIFICATE_SECONDS: '60', FEDLHS_TLS_SUPERSEDED_GRACE_SECONDS: '0',
    };
    const start = (name: 'a' | 'b'): Promise<HaCoordinator> =>
      startHaCoordinator({ name: `coordinator-${name}`, dataDir: join(ws.dir(), name), storeUrl: db.url, leaseSeconds: 3, adminToken, env: { ...env, FEDLHS_HA_ADVERTISE_ADDRESS: `${name}.invalid:7443` } });
    const a = ws.track(await start('a'));
    await a.proc.waitForEvent('coordinator.ready', { role: 'active' }, 60_000);
    const created = a.proc.events('ca.created');
    expect(created).toHaveLength(1);
    // The operator provisions b with a's release key and node CA (key mode 0600).
    mkdirSync(join(ws.dir(), 'b', 'ca'), { recursive: true });
    copyFileSync(join(a.dataDir, 'release-key.pem'), join(ws.dir(), 'b', 'release-key.pem'));
    for (const f of ['ca.key', 'ca.crt']) copyFileSync(join(a.dataDir, 'ca', f), join(ws.dir(), 'b', 'ca', f));
    chmodSync(join(ws.dir(), 'b', 'ca', 'ca.key'), 0o600);
    const b = ws.track(await start('b'));
    expect(b.proc.events('ha.started')[0]).toMatchObject({ role: 'standby' });

    const dir = join(ws.dir(), 'clinic');
    mkdirSync(dir, { recursive: true });
    writeLearnableCsv(join(dir, 'data.csv'), { rows: 200, seed: 3 });
    const clinic: AgentOptions = { name: 'clinic', stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: `${b.address},${a.address}`, autoApprove: true, tls: { caCert: pki.caCert, serverCert: pki.serverCert, serverKey: pki.serverKey } };
    const nodeId = await enrolAgent(a, clinic);
    const credential = (JSON.parse(readFileSync(join(clinic.stateDir, 'node-credential.json'), 'utf8')) as { credential: string }).credential;
    const files = (): { cert: string; key: string } => ({ cert: readFileSync(join(clinic.stateDir, 'node-cert.pem'), 'utf8'), key: readFileSync(join(clinic.stateDir, 'node-key.pem'), 'utf8') });
    const enrolled = files();
    expect(new X509Certificate(enrolled.cert).fingerprint256).not.toBe('');
    expect(await listStudies(a.address, pki.caCert, credential, enrolled)).toEqual({ code: 0, details: '' });

    const agent = ws.track(startAgent(clinic));
    await agent.waitForEvent('agent.coordinator_selected', { address: a.address }, 60_000);
    await agent.waitForEvent('agent.connected', undefined, 60_000);
    a.proc.kill('SIGKILL');
    await a.proc.exited;
    await b.proc.waitForEvent('coordinator.ready', { role: 'active', nodeCaFingerprint: created[0]!.fingerprint }, 60_000);
    await agent.waitForEvent('agent.coordinator_selected', { address: b.address }, 60_000);

    // The certificate A issued works on B, and the agent renews it there by itself.
    expect(await listStudies(b.address, pki.caCert, credential, enrolled)).toEqual({ code: 0, details: '' });
    const renewal = await agent.waitForEvent('agent.certificate_renewed', undefined, 90_000);
    expect(b.proc.events('node.certificate_renewed', { nodeId, serial: renewal.serial })).toHaveLength(1);
    // A study on B: downloads and uploads over the renewed certificate (the agent's connections move to it).
    const study = await startStudy(b, learnableManifest({ name: 'paired', rounds: 1, min: 1, max: 1, quorum: 1 }));
    expect((await waitForStudyEnd(b, study.id)).state).toBe('COMPLETED');
    await agent.stop();
    const renewed = files();
    expect(new X509Certificate(renewed.cert).serialNumber).toBe(renewal.serial);

    const enrolledSerial = new X509Certificate(enrolled.cert).serialNumber;
    const superseded = await listStudies(b.address, pki.caCert, credential, enrolled);
    expect(superseded.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(superseded.details).toMatch(new RegExp(`^the client certificate \\(serial ${enrolledSerial}\\) was superseded on .* by a renewed one`));
    expect(await listStudies(b.address, pki.caCert, credential, renewed)).toEqual({ code: 0, details: '' });

    // A comes back (standby), B is SIGKILLed: A takes over and knows what B recorded.
    const a2 = ws.track(await start('a'));
    expect(a2.proc.events('ha.started')[0]).toMatchObject({ role: 'standby' });
    b.proc.kill('SIGKILL');
    await b.proc.exited;
    await a2.proc.waitForEvent('coordinator.ready', { role: 'active' }, 60_000);
    const stillSuperseded = await listStudies(a2.address, pki.caCert, credential, enrolled);
    expect(stillSuperseded.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(stillSuperseded.details).toMatch(/was superseded on/);
    expect(await listStudies(a2.address, pki.caCert, credential, renewed)).toEqual({ code: 0, details: '' });

    // Revoked on A: every certificate of the node is refused, and the store says so.
    expect((await a2.admin('POST', `/api/v1/nodes/${nodeId}/revoke`)).status).toBe(200);
    const revoked = await listStudies(a2.address, pki.caCert, credential, renewed);
    expect(revoked.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(revoked.details).toMatch(/^node credential was revoked on /);
    const rows = await query<{ serial: string; superseded_at: string | null; revoked_at: string | null }>(db.connection, `SELECT serial, superseded_at, revoked_at FROM node_certificates WHERE node_id = $1 ORDER BY issued_at`, [nodeId]);
    expect(rows.map((r) => r.serial)).toEqual(expect.arrayContaining([enrolledSerial, renewal.serial]));
    expect(rows.every((r) => r.revoked_at !== null)).toBe(true);
    expect(rows.find((r) => r.serial === enrolledSerial)?.superseded_at).not.toBeNull();
  }, 240_000);
});
