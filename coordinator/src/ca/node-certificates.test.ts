import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../sqlite-store.js';
import type { NodeRecord } from '../store.js';
import type { Logger } from '@fedlhs/service';
import { NodeCertificates } from './node-certificates.js';
import { ECDSA_WITH_SHA256, commonName, spkiOf, toPem } from './x509.js';

function csr(): string {
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const info = new CertificationRequestInfo({ version: 0, subject: commonName('x'), subjectPKInfo: spkiOf(keys.publicKey) });
  const sig = sign('sha256', Buffer.from(AsnConvert.serialize(info)), { key: keys.privateKey, dsaEncoding: 'der' });
  return toPem(Buffer.from(AsnConvert.serialize(new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signature: new Uint8Array(sig).buffer }))), 'CERTIFICATE REQUEST');
}

const A = 'node_aaaaaaaaaaaaaaaa';
const B = 'node_bbbbbbbbbbbbbbbb';
const node = (id: string): NodeRecord => ({ id, siteName: 's', credentialHash: 'h', createdAt: 0, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '' });

/** A server call whose TLS connection presented (and verified) `pem`, or none; `session` records a graceful close. */
function callWith(pem?: string) {
  const session = { closed: false, close: vi.fn(function (this: { closed: boolean }) { this.closed = true; }) };
  const peer = (p: string): PeerCertificate => {
    const x = new X509Certificate(p);
    return { subjectaltname: x.subjectAltName, serialNumber: x.serialNumber, valid_from: x.validFrom, valid_to: x.validTo } as PeerCertificate;
  };
  return {
    session,
    call: { stream: { session } },
    getAuthContext: () => (pem === undefined ? {} : { sslPeerCertificate: peer(pem) }),
  };
}

const quiet = { info: vi.fn(), warn: vi.fn() } as unknown as Logger;

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** A CA (lifetime 60 s) bound to a fresh store holding nodes A and B, at the clock `clock.now`. */
async function setup(graceMs = 0) {
  const clock = { now: Date.now() };
  const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'nc-')), 'coordinator.db'));
  stores.push(store);
  for (const id of [A, B]) {
    await store.insertJoinToken({ id: `jt-${id}`, tokenHash: `h-${id}`, siteName: 's', createdAt: 0, expiresAt: 1e15, usedAt: null, usedByNode: null, createdBy: 't' });
    await store.redeemJoinToken(`jt-${id}`, node(id));
  }
  const log = { warn: vi.fn(), error: vi.fn(), info: vi.fn() };
  const metrics = new Registry();
  const opened = NodeCertificates.open({ dataDir: mkdtempSync(join(tmpdir(), 'nc-')), caValidityDays: 30, nodeCertificateSeconds: 60, now: () => clock.now, supersededGraceMs: graceMs, log });
  const certificates = opened.bind(store, metrics);
  return { clock, store, certificates, opened, log, metrics };
}

describe('NodeCertificates', () => {
  it("lets a call through only with a verified certificate naming the credential's node", async () => {
    const { certificates } = await setup();
    const a = certificates.ca.issue(A, csr()).certificatePem;
    await expect(certificates.checkCall(callWith(a), node(A))).resolves.toBeUndefined();
    await expect(certificates.checkCall(callWith(a), node(B))).rejects.toThrow(`the client certificate is for ${A}, but the node credential is ${B}'s`);
    await expect(certificates.checkCall(callWith(), node(A))).rejects.toThrow(/requires a client certificate issued by its node CA/);
    await expect(certificates.checkCall({}, node(A))).rejects.toThrow(/requires a client certificate/);
  });

  it('records the certificates it issues at enrolment and at renewal in the store', async () => {
    const { certificates, store, clock } = await setup();
    const first = certificates.ca.issue(A, csr());
    clock.now += 20_000;
    const renewed = await certificates.renew(callWith(first.certificatePem), node(A), csr(), quiet);
    await vi.waitFor(async () => expect((await store.listNodeCertificates(0)).map((c) => c.serial).sort()).toEqual([first.serial, renewed.serial].sort()));
  });

  it('refuses a certificate that expired while its connection stayed open, naming the expiry', async () => {
    const { certificates, clock, metrics } = await setup();
    const issued = certificates.ca.issue(A, csr());
    clock.now = issued.notAfter;
    await expect(certificates.checkCall(callWith(issued.certificatePem), node(A))).rejects.toThrow(
      `the client certificate (serial ${issued.serial}) expired on ${new Date(Math.floor(issued.notAfter / 1000) * 1000).toISOString()}: agents renew at two thirds of its lifetime; this one must enrol again with a new join token`,
    );
    expect(await metrics.getSingleMetricAsString('fedlhs_node_certificate_refusals_total')).toContain('reason="expired"} 1');
  });

  it('after a renewal, drains the connection of the old certificate, then refuses it once the new one was presented', async () => {
    const { certificates, clock } = await setup();
    const old = certificates.ca.issue(A, csr());
    await certificates.checkCall(callWith(old.certificatePem), node(A));
    clock.now += 20_000;
    const renewed = await certificates.renew(callWith(old.certificatePem), node(A), csr(), quiet);
    // Not yet presented: the old one still works, and its connection is closed gracefully.
    const onOld = callWith(old.certificatePem);
    await certificates.checkCall(onOld, node(A));
    expect(onOld.session.close).toHaveBeenCalledTimes(1);
    const onNew = callWith(renewed.certificatePem);
    await certificates.checkCall(onNew, node(A));
    expect(onNew.session.close).not.toHaveBeenCalled();
    await expect(certificates.checkCall(callWith(old.certificatePem), node(A))).rejects.toThrow(`the client certificate (serial ${old.serial}) was superseded on ${new Date(clock.now).toISOString()} by a renewed one`);
  });

  it('accepts (and drains) a superseded certificate within the grace', async () => {
    const { certificates, clock } = await setup(30_000);
    const old = certificates.ca.issue(A, csr());
    clock.now += 20_000;
    const renewed = await certificates.renew(callWith(old.certificatePem), node(A), csr(), quiet);
    await certificates.checkCall(callWith(renewed.certificatePem), node(A));
    clock.now += 29_999;
    const within = callWith(old.certificatePem);
    await certificates.checkCall(within, node(A));
    expect(within.session.close).toHaveBeenCalled();
    clock.now += 1;
    await expect(certificates.checkCall(callWith(old.certificatePem), node(A))).rejects.toThrow(/was superseded on/);
  });

  it('a second coordinator on the same store refuses what the first superseded, and a revoked node\'s serials', async () => {
    const { certificates, clock, store, opened } = await setup();
    const old = certificates.ca.issue(A, csr());
    const b = certificates.ca.issue(B, csr());
    clock.now += 20_000;
    const renewed = await certificates.renew(callWith(old.certificatePem), node(A), csr(), quiet);
    await certificates.checkCall(callWith(renewed.certificatePem), node(A));
    await vi.waitFor(async () => expect(await store.listNodeCertificates(0)).toHaveLength(3));
    expect(await store.revokeNode(B, clock.now)).toBe(true);
    const other = opened.bind(store);
    await expect(other.checkCall(callWith(old.certificatePem), node(A))).rejects.toThrow(/was superseded on/);
    await other.checkCall(callWith(renewed.certificatePem), node(A));
    await expect(other.checkCall(callWith(b.certificatePem), node(B))).rejects.toThrow(`the client certificate (serial ${b.serial}) was revoked on ${new Date(clock.now).toISOString()}`);
  });

  it('adopts an unrecorded certificate of its CA only when it is the newest of its node', async () => {
    const { certificates, opened, store, clock, log } = await setup();
    // Issued by the CA without a record (the unbound CA), as before the table existed.
    const older = opened.ca.issue(A, csr());
    clock.now += 1000;
    const newer = opened.ca.issue(A, csr());
    await certificates.checkCall(callWith(newer.certificatePem), node(A));
    expect(log.warn).toHaveBeenCalledWith(expect.objectContaining({ event: 'node.certificate_adopted', serial: newer.serial }), expect.any(String));
    expect((await store.listNodeCertificates(0)).map((c) => c.serial)).toEqual([newer.serial]);
    await expect(certificates.checkCall(callWith(older.certificatePem), node(A))).rejects.toThrow(/is not on record and older than/);
  });

  it('needs a valid CSR at enrolment, before the token is spent', async () => {
    const { certificates } = await setup();
    expect(() => certificates.checkEnrolmentCsr('')).toThrow('certificate_signing_request: this coordinator issues node certificates and needs one at enrolment');
    expect(() => certificates.checkEnrolmentCsr('nonsense')).toThrow(/not a PEM/);
    expect(() => certificates.checkEnrolmentCsr(csr())).not.toThrow();
  });

  it('warns when the CA nears the end of what it can issue, and refuses to issue past it', async () => {
    const { certificates, clock, log, metrics } = await setup();
    // The CA lives 30 days and certificates 60 s: it is within the 30-day warning from the start.
    expect(log.warn).toHaveBeenCalledWith(expect.objectContaining({ event: 'ca.expiring' }), expect.stringMatching(/cannot issue or renew node certificates/));
    expect(await metrics.getSingleMetricAsString('fedlhs_node_ca_expiry_timestamp_seconds')).toMatch(/fedlhs_node_ca_expiry_timestamp_seconds \d+/);
    clock.now += 30 * 86_400_000 - 30_000;
    expect(() => certificates.ca.issue(A, csr())).toThrow(/^the node CA certificate expires on .* before a certificate issued now would/);
    await expect(certificates.renew(callWith(), node(A), csr(), quiet)).rejects.toMatchObject({ code: 'NODE_CA_EXPIRED' });
    // Enrolment asks before it spends the join token.
    expect(() => certificates.checkEnrolmentCsr(csr())).toThrow(expect.objectContaining({ code: 'NODE_CA_EXPIRED' }));
  });

  it('ends a watched stream when its certificate is superseded and the grace has passed, naming why', async () => {
    const { certificates, clock } = await setup(50);
    const old = certificates.ca.issue(A, csr());
    const onOld = callWith(old.certificatePem);
    await certificates.checkCall(onOld, node(A));
    const ended = vi.fn();
    certificates.watchCall(onOld, ended);
    clock.now += 20_000;
    const renewed = await certificates.renew(onOld, node(A), csr(), quiet);
    expect(ended).not.toHaveBeenCalled();
    // The renewed certificate is presented: the old one is superseded now, its stream ends 50 ms later.
    await certificates.checkCall(callWith(renewed.certificatePem), node(A));
    clock.now += 50;
    await vi.waitFor(() => expect(ended).toHaveBeenCalledTimes(1));
    expect(ended.mock.calls[0]![0]).toMatchObject({ code: 'CREDENTIAL_INVALID', message: expect.stringMatching(new RegExp(`^the client certificate \\(serial ${old.serial}\\) of this session was superseded on .* tls.supersededGraceSeconds \\(0.05 s\\) has passed`)) });
  });

  it('ends a watched stream when its certificate expires, and not once stopped', async () => {
    const { certificates, clock } = await setup();
    const issued = certificates.ca.issue(A, csr());
    await certificates.checkCall(callWith(issued.certificatePem), node(A));
    // The peer's notAfter has whole seconds: 30 ms before it.
    const notAfter = Math.floor(issued.notAfter / 1000) * 1000;
    clock.now = notAfter - 30;
    const ended = vi.fn();
    const stopped = vi.fn();
    certificates.watchCall(callWith(issued.certificatePem), ended);
    certificates.watchCall(callWith(issued.certificatePem), stopped)();
    clock.now = notAfter;
    await vi.waitFor(() => expect(ended).toHaveBeenCalledTimes(1));
    expect(ended.mock.calls[0]![0].message).toMatch(/^the client certificate \(serial [0-9A-F]+\) of this session expired on .*: the session ends/);
    expect(stopped).not.toHaveBeenCalled();
  });

  it('refuses a renewal while the newest certificate is young, and keeps the per-call list short', async () => {
    const { certificates, clock, records } = await (async () => { const s = await setup(); return { ...s, records: s.certificates.records! }; })();
    const first = certificates.ca.issue(A, csr());
    // Presenting its newest certificate: not before a third of its lifetime (60 s / 3).
    clock.now += 19_000;
    await expect(certificates.renew(callWith(first.certificatePem), node(A), csr(), quiet)).rejects.toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterMs: 1000 } });
    clock.now += 1000;
    const second = await certificates.renew(callWith(first.certificatePem), node(A), csr(), quiet);
    // The answer was lost: the old certificate asks again, at once refused, after min(10 min, a third) accepted.
    await expect(certificates.renew(callWith(first.certificatePem), node(A), csr(), quiet)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    clock.now += 20_000;
    const third = await certificates.renew(callWith(first.certificatePem), node(A), csr(), quiet);
    expect(records.openCountOf(A)).toBe(3);
    await certificates.checkCall(callWith(third.certificatePem), node(A));
    // Presenting the newest superseded the others: they leave the per-call list.
    expect(records.openCountOf(A)).toBe(1);
    expect(records.certificatesOf(A).map((c) => c.serial)).toEqual([first.serial, second.serial, third.serial]);
  });

  it('two first uses of one unrecorded certificate at once both pass, adopting it once', async () => {
    const { certificates, opened, store, log } = await setup();
    const unrecorded = opened.ca.issue(A, csr());
    const results = await Promise.allSettled([certificates.checkCall(callWith(unrecorded.certificatePem), node(A)), certificates.checkCall(callWith(unrecorded.certificatePem), node(A))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(log.warn.mock.calls.filter((c) => (c[0] as { event?: string }).event === 'node.certificate_adopted')).toHaveLength(1);
    expect((await store.listNodeCertificates(0)).map((c) => c.serial)).toEqual([unrecorded.serial]);
  });

  it('warns once when grpc-js internals do not lead to the HTTP/2 session, and the call still passes', async () => {
    const { certificates, clock, log } = await setup();
    const old = certificates.ca.issue(A, csr());
    clock.now += 20_000;
    await certificates.renew(callWith(old.certificatePem), node(A), csr(), quiet);
    const bare = { getAuthContext: callWith(old.certificatePem).getAuthContext };
    await certificates.checkCall(bare, node(A));
    await certificates.checkCall(bare, node(A));
    const warned = log.warn.mock.calls.filter((c) => (c[0] as { event?: string }).event === 'node.certificate_drain_unavailable');
    expect(warned).toHaveLength(1);
    expect(warned[0]![1]).toMatch(/grpc-js internals changed/);
  });
});
