// Node certificates from the coordinator (issue 15, "Identity"): with tls.clientCertificates
// 'issued' the coordinator's own CA issues each agent a short-lived client certificate at
// enrolment, every Federation call needs it (mutual TLS) and its node id must be the
// credential's; the agent renews it before expiry by itself, and the session opened with the old
// certificate ends once the renewed one is in use; revoking the node refuses its next call and
// closes its open session; a certificate that expires while its connection is open is refused at
// the next call on it.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
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

/** A Federation client on one connection presenting `client` (kept open across calls, until `close`). */
function openClient(c: CoordinatorHandle, caCert: string, credential: string, client: { cert: string; key: string }) {
  const proto = loadFedlhsProto();
  const federation = new proto.fedlhs.v1.Federation(c.address, grpc.credentials.createSsl(readFileSync(caCert), readFileSync(client.key), readFileSync(client.cert)));
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${credential}`);
  return {
    listStudies: (): Promise<{ code: number; details: string }> => new Promise((resolve) => {
      federation.ListStudies({ includeEnded: false }, md, { deadline: new Date(Date.now() + 15_000) }, (err) => resolve(err === null ? { code: 0, details: '' } : { code: err.code, details: err.details }));
    }),
    close: () => federation.close(),
  };
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
      env: { FEDLHS_TLS_CLIENT_CERTIFICATES: 'issued', FEDLHS_TLS_NODE_CERTIFICATE_SECONDS: '30', FEDLHS_TLS_SUPERSEDED_GRACE_SECONDS: '2' },
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

    // One connection of south's, kept open: it outlives south's certificate (checked at the end).
    const southConnection = openClient(c, pki.caCert, s.credential, { cert: s.cert, key: s.key });
    const southCertificate = new X509Certificate(readFileSync(s.cert));
    expect(await southConnection.listStudies()).toEqual({ code: 0, details: '' });

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
    // The session the agent opened with its first certificate does not outlive it: once the
    // renewed one was presented and the grace (2 s) has passed, it ends UNAVAILABLE naming why,
    // and the agent reconnects, on a new connection that presents the renewed certificate.
    const ended = await c.proc.waitForEvent('session.certificate_ended', { nodeId: northId, reason: 'superseded' }, 30_000);
    expect(ended.msg).toMatch(new RegExp(`^session ended: the client certificate \\(serial ${issued.serialNumber}\\) of this session was superseded on .* tls.supersededGraceSeconds \\(2 s\\) has passed`));
    const sessionEnd = await agent.waitForEvent('agent.session_ended', { code: 'UNAVAILABLE' }, 30_000);
    expect(sessionEnd.details).toMatch(/of this session was superseded on/);
    await vi.waitFor(() => expect(agent.events('agent.connected').length).toBeGreaterThanOrEqual(2), { timeout: 30_000, interval: 200 });
    expect(agent.events('agent.credential_rejected')).toHaveLength(0);

    // Revocation: the open session ends now, and the next call with the renewed certificate is refused.
    expect((await c.admin('POST', `/api/v1/nodes/${northId}/revoke`)).status).toBe(200);
    await agent.waitForEvent('agent.credential_rejected');
    const revoked = await listStudies(c, pki.caCert, n.credential, { cert: n.cert, key: n.key });
    expect(revoked.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(revoked.details).toMatch(/^node credential was revoked on /);
    // The other node is unaffected.
    expect(await listStudies(c, pki.caCert, s.credential, { cert: s.cert, key: s.key })).toEqual({ code: 0, details: '' });

    // South's certificate expires (30 s, never renewed: its agent does not run) while its
    // connection is open: the next call on that connection is refused, naming the expiry.
    let expired = { code: 0, details: '' };
    await vi.waitFor(async () => {
      expired = await southConnection.listStudies();
      expect(expired.code).toBe(grpc.status.UNAUTHENTICATED);
    }, { timeout: 60_000, interval: 1000 });
    southConnection.close();
    expect(expired.details).toBe(`the client certificate (serial ${southCertificate.serialNumber}) expired on ${new Date(southCertificate.validTo).toISOString()}: agents renew at two thirds of its lifetime; this one must enrol again with a new join token`);
  }, 150_000);
});
