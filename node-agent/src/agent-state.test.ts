import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { sha256Hex } from '@fedlhs/core';
import { AgentState, type NodeCredential } from './agent-state.js';

const states: AgentState[] = [];

function newState(): AgentState {
  const state = new AgentState(join(mkdtempSync(join(tmpdir(), 'fedlhs-agent-state-')), 'state'));
  states.push(state);
  return state;
}

const credential: NodeCredential = {
  nodeId: 'node_1',
  siteName: 'clinic-a',
  coordinator: 'coord.example.org:7443',
  credential: `fnc_node_1.${'s'.repeat(43)}`,
  enrolledAt: '2026-01-02T03:04:05.000Z',
};

/** The manifest JSON of a test label, and its real hash (a manifest is only kept under the hash of its bytes). */
const jsonOf = (label: string, name = 'readmit'): string => `{"name":"${name}","tag":"${label}"}`;
const H = (label: string, name = 'readmit'): string => sha256Hex(jsonOf(label, name));
const manifest = (label: string, name = 'readmit', json = jsonOf(label, name)): { hash: string; studyId: string; name: string; json: string } => ({
  hash: sha256Hex(json),
  studyId: `study-${label}`,
  name,
  json,
});

beforeEach(() => {
  // Only Date is faked: timestamps become exact, nothing waits.
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2026-03-01T12:00:00.000Z'));
});

afterEach(() => {
  vi.useRealTimers();
  for (const s of states.splice(0)) s.close();
});

describe('AgentState credential', () => {
  it('creates its directory with mode 0700', () => {
    const state = newState();
    expect(statSync(state.dir).mode & 0o777).toBe(0o700);
  });

  it('saves the credential with mode 0600 and loads it back', () => {
    const state = newState();
    expect(state.loadCredential()).toBeUndefined();
    state.saveCredential(credential);
    expect(state.credentialPath).toBe(join(state.dir, 'node-credential.json'));
    expect(statSync(state.credentialPath).mode & 0o777).toBe(0o600);
    expect(state.loadCredential()).toEqual(credential);
    expect(JSON.parse(readFileSync(state.credentialPath, 'utf8'))).toEqual(credential);
  });

  it('keeps mode 0600 when the credential is saved again', () => {
    const state = newState();
    state.saveCredential(credential);
    state.saveCredential({ ...credential, nodeId: 'node_2' });
    expect(statSync(state.credentialPath).mode & 0o777).toBe(0o600);
    expect(state.loadCredential()?.nodeId).toBe('node_2');
  });

  it.each([0o644, 0o640, 0o604])('refuses a credential file with mode %o, telling the operator to chmod 600', (mode) => {
    const state = newState();
    state.saveCredential(credential);
    chmodSync(state.credentialPath, mode);
    expect(() => state.loadCredential()).toThrow(
      `${state.credentialPath} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${state.credentialPath}`,
    );
    expect(() => state.loadCredential()).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('refuses a file that is not a credential', () => {
    const state = newState();
    writeFileSync(state.credentialPath, JSON.stringify({ nodeId: 'n1', siteName: 'x' }), { mode: 0o600 });
    expect(() => state.loadCredential()).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: `${state.credentialPath} is not a fedlhs node credential file` }));
    writeFileSync(state.credentialPath, '{"nodeId":', { mode: 0o600 });
    expect(() => state.loadCredential()).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/is not a fedlhs node credential file \(.*JSON/) }));
  });
});

describe('AgentState manifests', () => {
  it('records a manifest once; a second record changes nothing', () => {
    const state = newState();
    state.recordManifest(manifest('h1'));
    vi.setSystemTime(new Date('2026-03-01T12:05:00.000Z'));
    state.recordManifest({ ...manifest('h1'), name: 'renamed' });
    // Never kept under a hash its bytes do not have (a coordinator showing one manifest and running another).
    expect(() => state.recordManifest({ ...manifest('h1'), json: '{}' })).toThrow(expect.objectContaining({ code: 'DATA_LOSS', message: expect.stringMatching(/hashes to [0-9a-f]{64}, not the [0-9a-f]{64} it was given with: not kept/) }));
    expect(state.listManifests()).toEqual([
      {
        hash: H('h1'),
        studyId: 'study-h1',
        name: 'readmit',
        json: jsonOf('h1'),
        firstSeenAt: Date.parse('2026-03-01T12:00:00.000Z'),
        approvedAt: null,
        approvedBy: null,
      },
    ]);
    expect(state.isManifestApproved(H('h1'))).toBe(false);
  });

  it('approves a manifest, recording when and by whom, and keeps the first approval', () => {
    const state = newState();
    state.recordManifest(manifest('h1'));
    vi.setSystemTime(new Date('2026-03-02T08:30:00.000Z'));
    const approved = state.approve(H('h1'), 'dr.smith');
    expect(approved).toMatchObject({ hash: H('h1'), approvedAt: Date.parse('2026-03-02T08:30:00.000Z'), approvedBy: 'dr.smith' });
    expect(state.isManifestApproved(H('h1'))).toBe(true);

    vi.setSystemTime(new Date('2026-03-03T00:00:00.000Z'));
    expect(state.approve(H('h1'), 'someone-else')).toMatchObject({ approvedAt: Date.parse('2026-03-02T08:30:00.000Z'), approvedBy: 'dr.smith' });
  });

  it("refuses to approve an unknown hash, pointing to 'fedlhs-agent review'", () => {
    const state = newState();
    expect(() => state.approve('deadbeef', 'dr.smith')).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: no manifest with hash deadbeef; run \`fedlhs-agent review\` to fetch pending studies]`);
    expect(() => state.approve('deadbeef', 'dr.smith')).toThrow(expect.objectContaining({ code: 'NOT_FOUND', details: { what: 'manifest', id: 'deadbeef' } }));
    expect(state.isManifestApproved('deadbeef')).toBe(false);
    expect(state.getManifest('deadbeef')).toBeUndefined();
  });

  it('previousApproved returns the latest other approved manifest of the same study name', () => {
    const state = newState();
    state.recordManifest(manifest('h1'));
    state.recordManifest(manifest('h2'));
    state.recordManifest(manifest('h3'));
    state.recordManifest(manifest('other', 'sepsis'));
    vi.setSystemTime(new Date('2026-03-02T00:00:00.000Z'));
    state.approve(H('h1'), 'a');
    state.approve(H('other', 'sepsis'), 'a');
    vi.setSystemTime(new Date('2026-03-03T00:00:00.000Z'));
    state.approve(H('h2'), 'b');

    expect(state.previousApproved('readmit', H('h3'))?.hash).toBe(H('h2'));
    expect(state.previousApproved('readmit', H('h2'))?.hash).toBe(H('h1'));
    expect(state.previousApproved('sepsis', 'new')?.hash).toBe(H('other', 'sepsis'));
    expect(state.previousApproved('sepsis', H('other', 'sepsis'))).toBeUndefined();
    expect(state.previousApproved('unknown', H('h1'))).toBeUndefined();
  });

  it('persists manifests and approvals across reopening', () => {
    const first = newState();
    first.recordManifest(manifest('h1'));
    first.approve(H('h1'), 'dr.smith');
    first.close();
    const second = new AgentState(first.dir);
    states.push(second);
    expect(second.getManifest(H('h1'))).toMatchObject({ approvedBy: 'dr.smith' });
  });
});

describe('AgentState audit log', () => {
  it('appends one JSON line per entry, readable by readAudit, in a 0600 file', () => {
    const state = newState();
    expect(state.readAudit()).toEqual([]);
    state.audit({ event: 'enrolled', coordinator: 'c:1' });
    vi.setSystemTime(new Date('2026-03-01T12:00:01.500Z'));
    state.audit({ event: 'update_sent', coordinator: 'c:1', studyId: 's1', round: 2, taskId: 't9', bytes: 1024, sha256: 'ab', numExamples: 40, metrics: { loss: 0.5, auc: undefined } });

    const lines = readFileSync(state.auditPath, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    // Each line is hash-chained (audit-chain.ts; audit-chain.test.ts checks the chain itself).
    expect(JSON.parse(lines[0]!)).toEqual({ time: '2026-03-01T12:00:00.000Z', event: 'enrolled', coordinator: 'c:1', seq: 1, prev: '0'.repeat(64), hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(statSync(state.auditPath).mode & 0o777).toBe(0o600);

    expect(state.readAudit()).toEqual([
      { time: '2026-03-01T12:00:00.000Z', event: 'enrolled', coordinator: 'c:1' },
      { time: '2026-03-01T12:00:01.500Z', event: 'update_sent', coordinator: 'c:1', studyId: 's1', round: 2, taskId: 't9', bytes: 1024, sha256: 'ab', numExamples: 40, metrics: { loss: 0.5 } },
    ]);
  });

  it('keeps earlier lines when another AgentState appends to the same directory', () => {
    const state = newState();
    state.audit({ event: 'readiness_sent', coordinator: 'c:1' });
    const again = new AgentState(state.dir);
    states.push(again);
    again.audit({ event: 'task_declined', coordinator: 'c:1', detail: 'not approved' });
    expect(state.readAudit().map((e) => e.event)).toEqual(['readiness_sent', 'task_declined']);
  });
});
