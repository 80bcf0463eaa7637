import { createHash, createPublicKey } from 'node:crypto';
/**
 * Conformance: enrolment, credential and token formats, the authorization header
 * (enrolment.proto "Formats", federation.proto "Authentication"), and the client's imports.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConformanceClient, enrol, failure } from '../src/conformance-client.js';
import { startTestCoordinator } from './harness.js';

const JOIN_TOKEN = /^fjt_[A-Za-z0-9_-]{43}$/;
const NODE_ID = /^node_[0-9a-f]{16}$/;
const CREDENTIAL = /^fnc_(node_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

describe('the conformance client', () => {
  it('imports only the generated stubs, grpc-js and Node built-ins', () => {
    const source = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'conformance-client.ts'), 'utf8');
    const imported = [...source.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms), ...source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!);
    expect(imported.length).toBeGreaterThan(0);
    expect(imported.filter((m) => !m.startsWith('node:') && !['@fedlhs/proto', '@grpc/grpc-js', '@grpc/proto-loader'].includes(m))).toEqual([]);
    expect(imported).toContain('@fedlhs/proto');
  });
});

describe('enrolment and authentication', () => {
  it('issues tokens and credentials in the documented formats, and refuses a malformed token', async () => {
    const c = await startTestCoordinator();
    const token = await c.joinToken('site-a');
    expect(token).toMatch(JOIN_TOKEN);
    const r = await enrol(c.address, token, 'site-a');
    expect(r.nodeId).toMatch(NODE_ID);
    expect(r.nodeCredential).toMatch(CREDENTIAL);
    expect(CREDENTIAL.exec(r.nodeCredential)![1]).toBe(r.nodeId);
    expect(r.siteName).toBe('site-a');
    // The release key to pin: Ed25519 SPKI in PEM, and its fingerprint = SHA-256 of the SPKI DER.
    const releaseKey = createPublicKey(r.releasePublicKey);
    expect(releaseKey.asymmetricKeyType).toBe('ed25519');
    expect(r.releaseKeyFingerprint).toBe(createHash('sha256').update(releaseKey.export({ type: 'spki', format: 'der' })).digest('hex'));
    for (const bad of ['', 'fjt_short', `fjt_${'a'.repeat(129)}`, `fjt_${'a'.repeat(42)}=`, `FJT_${'a'.repeat(43)}`]) {
      expect(await failure(enrol(c.address, bad, 'site-a')), bad).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    // Well-formed but unknown: UNAUTHENTICATED, not INVALID_ARGUMENT.
    expect(await failure(enrol(c.address, `fjt_${'a'.repeat(43)}`, 'site-a'))).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  // RFC 9110 §11.1: the scheme is case-insensitive and followed by one or more spaces (a tab is
  // allowed too, but grpc-js refuses to send one in metadata; the admin API test below covers it).
  it('accepts "Bearer <credential>" in any case and refuses other schemes and malformed credentials', async () => {
    const c = await startTestCoordinator();
    const node = await c.node('site-b');
    for (const auth of [`Bearer ${node.credential}`, `bearer ${node.credential}`, `BEARER  ${node.credential}`]) {
      await expect(node.listStudies(auth), JSON.stringify(auth)).resolves.toMatchObject({ studies: [] });
    }
    for (const auth of ['Basic eDp5', `Bearer${node.credential}`, `Token ${node.credential}`, 'Bearer fnc_malformed']) {
      expect(await failure(node.listStudies(auth)), auth).toMatchObject({ code: 'UNAUTHENTICATED', errorCode: 'CREDENTIAL_INVALID' });
    }
    const forged = new ConformanceClient(c.address, node.nodeId, `fnc_${node.nodeId}.${'A'.repeat(43)}`);
    expect(await failure(forged.listStudies())).toMatchObject({ code: 'UNAUTHENTICATED' });
    forged.close();
  });

  it('the admin API takes the same Bearer forms', async () => {
    const c = await startTestCoordinator();
    for (const auth of [`Bearer ${c.adminToken}`, `bearer ${c.adminToken}`, `BEARER  ${c.adminToken}`, `Bearer\t${c.adminToken}`]) {
      expect((await c.admin('GET', '/api/v1/studies', undefined, auth)).status, JSON.stringify(auth)).toBe(200);
    }
    for (const auth of ['Basic eDp5', `Bearer${c.adminToken}`, 'Bearer wrong-token-0123456789']) {
      expect((await c.admin('GET', '/api/v1/studies', undefined, auth)).status, auth).toBe(401);
    }
  });
});
