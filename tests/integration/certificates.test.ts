// Node certificates from the coordinator (issue 15, "Identity"): with tls.clientCertificates
// 'issued' the coordinator's own CA issues each agent a short-lived client certificate at
// enrolment, every Federation call needs it (mutual TLS) and its node id must be the
// credential's; the agent renews it before expiry by itself; revoking the node refuses its next
// call and closes its open session.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { loadFedlhsProto } from '@fedlhs/proto';
import { createTestPki, learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { agentCli, enrolAgent, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions, type CoordinatorHandle } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

/** ListStudies with a credential over a connection presenting `cert`/`key` (none if undefined): the status code and message. */
async function listStudies(c: CoordinatorHandle, caCert: string, credential: string, client?: { cert: string; key: string }): Promise<{ code: number; details: string }> {
  const proto = loadFedlhsProto();
  const creds = grpc.credentials.createSsl(readFileSync(caCert), client === undefined ? null : readFileSync(client.key), client === undefined ? null : readFileSync(client.cert));
  const federation = new proto.fedlhs.v1.Federation(c.address, creds);
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

function stateOf(o: AgentOptions) {
  const credential = (JSON.parse(readFileSync(join(o.stateDir, 'node-credential.json'), 'utf8')) as { credential: string }).credential;
  return { credential, cert: join(o.stateDir, 'node-cert.pem'), key: join(o.stateDir, 'node-key.pem') };
}

describe("node certificates issued by the coordinator (tls.clientCertificates 'issued')", () => {
  it('issues a certificate at enrolment, requires it and its node id, renews it unattended, and revocation ends the next call and the open session', async () => {
    const pki = createTestPki(ws.dir());
    const c = ws.track(await startCoordinator({
      dataDir: join(ws.dir(), 'coordinator'), tls: { caCert: pki.caCert, serverCert: pki.serverCert, serverKey: pki.serverKey },
      env: { FEDLHS_TLS_CLIENT_CERTIFICATES: 'issued', FEDLHS_TLS_NODE_CERTIFICATE_SECONDS: '30' },
    }));
    expect(c.proc.events('ca.created')).toHaveLength(1);
    expect(statSync(join(c.dataDir, 'ca', 'ca.key')).mode & 0o777).toBe(0o600);
    const nodeCa = new X509Certificate(readFileSync(join(c.dataDir, 'ca', 'ca.crt')));

    const agents: AgentOptions[] = [];
    for (const name of ['north', 'south']) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 120, seed: name.length });
      agents.push({ name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true, tls: { caCert: pki.caCert, serverCert: pki.serverCert, serverKey: pki.serverKey } });
    }
    const [north, south] = agents as [AgentOptions, AgentOptions];
    const northId = await enrolAgent(c, north);
    const southId = await enrolAgent(c, south);
    const n = stateOf(north);
    const s = stateOf(south);

    // Enrolment: a certificate for the node id (CN and URI SAN) from the coordinator's CA, for client auth only, 30 s.
    const issued = new X509Certificate(readFileSync(n.cert));
    expect(issued.subject).toBe(`CN=${northId}`);
    expect(issued.subjectAltName).toBe(`URI:urn:fedlhs:node:${northId}`);
    expect(issued.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(issued.checkIssued(nodeCa) && issued.verify(nodeCa.publicKey)).toBe(true);
    expect(Date.parse(issued.validTo) - Date.parse(issued.validFrom)).toBe(30_000 + 5 * 60_000); // backdated 5 minutes for clock skew
    expect(statSync(n.key).mode & 0o777).toBe(0o600);
    expect(c.proc.events('node.certificate_issued', { nodeId: northId })).toHaveLength(1);

    // Mutual TLS is required, and the certificate must be the credential's node's.
    expect(await listStudies(c, pki.caCert, n.credential, { cert: n.cert, key: n.key })).toEqual({ code: 0, details: '' });
    const none = await listStudies(c, pki.caCert, n.credential);
    expect(none.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(none.details).toContain('requires a client certificate issued by its node CA');
    const foreign = await listStudies(c, pki.caCert, n.credential, { cert: pki.clientCert, key: pki.clientKey });
    expect(foreign.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(foreign.details).toContain('requires a client certificate issued by its node CA');
    const swapped = await listStudies(c, pki.caCert, n.credential, { cert: s.cert, key: s.key });
    expect(swapped).toEqual({ code: grpc.status.UNAUTHENTICATED, details: `the client certificate is for ${southId}, but the node credential is ${northId}'s` });

    // The agent's session runs on its certificate, and it renews before expiry without anyone.
    const agent = ws.track(startAgent(north));
    await agent.waitForEvent('agent.connected');
    // Downloads and uploads too: a one-round study completes over the issued certificate.
    const study = await startStudy(c, learnableManifest({ name: 'certified', rounds: 1, min: 1, max: 1, quorum: 1 }));
    expect((await waitForStudyEnd(c, study.id)).state).toBe('COMPLETED');
    const renewed = await agent.waitForEvent('agent.certificate_renewed', undefined, 60_000);
    const next = new X509Certificate(readFileSync(n.cert));
    expect(next.serialNumber).toBe(renewed.serial);
    expect(next.serialNumber).not.toBe(issued.serialNumber);
    expect(Date.parse(next.validTo)).toBeLessThan(Date.parse(issued.validTo) + 30_000);
    expect(Date.parse(next.validTo)).toBeGreaterThan(Date.parse(issued.validTo));
    expect(c.proc.events('node.certificate_renewed', { nodeId: northId })).toHaveLength(1);
    expect(readFileSync(join(north.stateDir, 'audit.jsonl'), 'utf8')).toContain('"event":"certificate_renewed"');
    expect((await agentCli(north, ['status'])).stdout).toContain(`client certificate from the coordinator: serial ${next.serialNumber}, valid until `);
    expect(await listStudies(c, pki.caCert, n.credential, { cert: n.cert, key: n.key })).toEqual({ code: 0, details: '' });

    // Revocation: the open session ends now, and the next call with the renewed certificate is refused.
    expect((await c.admin('POST', `/api/v1/nodes/${northId}/revoke`)).status).toBe(200);
    await agent.waitForEvent('agent.credential_rejected');
    const revoked = await listStudies(c, pki.caCert, n.credential, { cert: n.cert, key: n.key });
    expect(revoked.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(revoked.details).toMatch(/^node credential was revoked on /);
    // The other node is unaffected.
    expect(await listStudies(c, pki.caCert, s.credential, { cert: s.cert, key: s.key })).toEqual({ code: 0, details: '' });
  }, 120_000);
});
