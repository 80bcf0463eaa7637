import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { FederationClient } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import { describe, expect, it } from 'vitest';
import { AgentState } from './agent-state.js';
import { NodeCertificateFiles, NodeCertificateProvider, checkIssued, newKeyAndCsr } from './certificates.js';
import { CertificateRenewer } from './certificates-renewal.js';

const NODE = 'node_0123456789abcdef';

/** Signs CSRs with an OpenSSL CA for `nodeId` (the coordinator's side, independently). */
function signer(dir: string): { caPem: string; sign(csrPem: string): string } {
  const p = (f: string): string => join(dir, f);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=ca', '-keyout', p('ca.key'), '-out', p('ca.pem')], { stdio: 'pipe' });
  writeFileSync(p('ext'), `subjectAltName=URI:urn:fedlhs:node:${NODE}\nextendedKeyUsage=clientAuth\n`);
  return {
    caPem: readFileSync(p('ca.pem'), 'utf8'),
    sign(csrPem) {
      writeFileSync(p('r.csr'), csrPem);
      execFileSync('openssl', ['x509', '-req', '-in', p('r.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', p('ext'), '-out', p('n.pem')], { stdio: 'pipe' });
      return readFileSync(p('n.pem'), 'utf8');
    },
  };
}

describe('CertificateRenewer', () => {
  it('retries a failed renewal, then keeps, audits, logs and presents the new certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'renew-'));
    const ca = signer(dir);
    const first = newKeyAndCsr(NODE);
    const current = checkIssued(ca.sign(first.csrPem), first.keyPem, ca.caPem, NODE);
    const files = new NodeCertificateFiles(dir);
    files.save(current);
    writeFileSync(join(dir, 'server-ca.pem'), ca.caPem);
    const provider = new NodeCertificateProvider(join(dir, 'server-ca.pem'), current);
    const presented: string[] = [];
    provider.addIdentityCertificateListener((u) => presented.push(String(u?.certificate)));
    const lines: Record<string, unknown>[] = [];
    const log = { info: (o: Record<string, unknown>) => void lines.push(o), warn: (o: Record<string, unknown>) => void lines.push(o) } as unknown as Logger;
    let calls = 0;
    const federation = {
      RenewCertificate(req: { certificateSigningRequest: string }, md: grpc.Metadata, _o: unknown, cb: (err: grpc.ServiceError | null, res?: unknown) => void) {
        calls++;
        expect(md.get('authorization')).toEqual(['Bearer fnc_x']);
        if (calls === 1) cb(Object.assign(new Error('down'), { code: grpc.status.UNAVAILABLE, details: 'down', metadata: new grpc.Metadata() }));
        else cb(null, { clientCertificate: ca.sign(req.certificateSigningRequest), clientCaCertificate: 'ignored: the pinned CA counts', notAfterUnixMs: 0 });
      },
    } as unknown as FederationClient;
    const state = new AgentState(join(dir, 'state'));
    const renewer = new CertificateRenewer({ nodeId: NODE, credential: 'fnc_x', coordinator: 'c:1', files, provider, current, federation: () => federation, state, log });
    try {
      await renewer.renew();
      expect(lines.map((l) => l.event)).toEqual(['agent.certificate_renew_failed']);
      expect(readFileSync(files.certificatePath, 'utf8')).toBe(current.certificatePem);
      await renewer.renew();
      expect(lines.map((l) => l.event)).toEqual(['agent.certificate_renew_failed', 'agent.certificate_renewed']);
      const renewed = files.load(NODE);
      expect(renewed.serial).not.toBe(current.serial);
      expect(renewed.serial).toBe(lines[1]!.serial);
      expect(renewed.keyPem).not.toBe(current.keyPem);
      expect(presented).toEqual([current.certificatePem, renewed.certificatePem]);
      expect(readFileSync(join(dir, 'state', 'audit.jsonl'), 'utf8')).toContain('"event":"certificate_renewed"');
    } finally {
      renewer.stop();
      state.close();
    }
  });
});
