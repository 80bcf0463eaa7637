import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { FedlhsError } from '@fedlhs/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeCertificates, useNodeCertificates } from '../ca/node-certificates.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { ECDSA_WITH_SHA256, commonName, spkiOf, toPem } from '../ca/x509.js';
import { NodeCalls } from '../node-calls.js';
import { SqliteStore } from '../sqlite-store.js';
import type { NodeRecord } from '../store.js';
import type { HandlerContext } from './context.js';
import { endStreamWithNode } from './node-auth.js';

const A = 'node_aaaaaaaaaaaaaaaa';
const node: NodeRecord = { id: A, siteName: 's', credentialHash: 'h', createdAt: 0, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '' };

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** A server call whose TLS connection presented `pem`. */
function callWith(pem: string) {
  const x = new X509Certificate(pem);
  const peer = { subjectaltname: x.subjectAltName, serialNumber: x.serialNumber, valid_from: x.validFrom, valid_to: x.validTo } as PeerCertificate;
  const session = { closed: false, close: vi.fn() };
  return { call: { stream: { session } }, getAuthContext: () => ({ sslPeerCertificate: peer }) };
}

describe('endStreamWithNode', () => {
  it('ends an open transfer stream on revocation, and with CERTIFICATE_ROTATED (UNAVAILABLE: the agent retries) when its certificate expires', async () => {
    const clock = { now: Date.now() };
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'na-')), 'coordinator.db'));
    stores.push(store);
    await store.insertJoinToken({ id: 'jt', tokenHash: 'h', siteName: 's', createdAt: 0, expiresAt: 1e15, usedAt: null, usedByNode: null, createdBy: 't' });
    await store.redeemJoinToken('jt', node);
    const log = { warn: vi.fn(), error: vi.fn(), info: vi.fn() };
    const certificates = NodeCertificates.open({ dataDir: mkdtempSync(join(tmpdir(), 'na-')), caValidityDays: 30, nodeCertificateSeconds: 60, now: () => clock.now, supersededGraceMs: 0, log });
    const coordinator = { store, calls: new NodeCalls() };
    useNodeCertificates(coordinator, certificates);
    const ctx = { coordinator } as unknown as HandlerContext;
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const info = new CertificationRequestInfo({ version: 0, subject: commonName('x'), subjectPKInfo: spkiOf(keys.publicKey) });
    const sig = sign('sha256', Buffer.from(AsnConvert.serialize(info)), { key: keys.privateKey, dsaEncoding: 'der' });
    const csr = toPem(Buffer.from(AsnConvert.serialize(new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signature: new Uint8Array(sig).buffer }))), 'CERTIFICATE REQUEST');
    const issued = certificates.ca.issue(A, csr);

    // Revocation: the abort the node's calls get.
    const revoked = vi.fn();
    const undoRevoked = endStreamWithNode(ctx, node, callWith(issued.certificatePem), revoked);
    coordinator.calls.abortAll(A, new FedlhsError('UNAUTHENTICATED', 'revoked'));
    expect(revoked).toHaveBeenCalledWith(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    undoRevoked();

    // Expiry while the stream is open.
    const notAfter = Math.floor(issued.notAfter / 1000) * 1000;
    clock.now = notAfter - 30;
    const expired = vi.fn();
    const stopped = vi.fn();
    endStreamWithNode(ctx, node, callWith(issued.certificatePem), expired);
    endStreamWithNode(ctx, node, callWith(issued.certificatePem), stopped)();
    clock.now = notAfter;
    await vi.waitFor(() => expect(expired).toHaveBeenCalledTimes(1));
    expect(expired.mock.calls[0]![0]).toMatchObject({ code: 'CERTIFICATE_ROTATED', message: expect.stringMatching(/^the client certificate this stream was opened with can no longer be used \(.*expired on/) as unknown });
    expect(stopped).not.toHaveBeenCalled();
    expect(coordinator.calls.count(A)).toBe(1);
  });
});
