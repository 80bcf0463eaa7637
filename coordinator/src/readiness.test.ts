import { describe, expect, it } from 'vitest';
import { capDetail, describeReadiness, siteReadiness, type SiteReadiness } from './readiness.js';
import { SessionRegistry, type NodeSession } from './sessions.js';
import type { NodeRecord } from './store.js';

const nodeRec = (id: string, siteName: string, over: Partial<NodeRecord> = {}): NodeRecord => ({
  id, siteName, credentialHash: '', createdAt: 0, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '', ...over,
});

function session(nodeId: string, siteName: string, readiness: [string, { manifestSha256: string; readiness: string; detail: string }][] = []): NodeSession {
  return {
    id: 1, nodeId, siteName, agent: { agentVersion: '', trainingBackend: '', platform: '' }, connectedAt: 0, lastHeardAt: 5000,
    readiness: new Map(readiness) as NodeSession['readiness'], progress: new Map(), send: () => undefined, close: () => undefined,
  };
}

describe('siteReadiness', () => {
  it("lists every unrevoked site by name with its readiness for the study, or why the coordinator has none", () => {
    const sessions = new SessionRegistry();
    sessions.attach(session('n1', 'b-ready', [['s1', { manifestSha256: 'h', readiness: 'READINESS_READY', detail: '' }]]), 10);
    sessions.attach(session('n2', 'a-small', [['s1', { manifestSha256: 'h', readiness: 'READINESS_COHORT_TOO_SMALL', detail: `fewer than 10 cases\n${'y'.repeat(400)}` }]]), 10);
    sessions.attach(session('n3', 'c-other', [['s1', { manifestSha256: 'ffffffffffffffffff', readiness: 'READINESS_READY', detail: '' }]]), 10);
    sessions.attach(session('n4', 'd-silent'), 10);
    const nodes = [
      nodeRec('n1', 'b-ready'), nodeRec('n2', 'a-small'), nodeRec('n3', 'c-other'), nodeRec('n4', 'd-silent'),
      nodeRec('n5', 'e-offline', { lastSeenAt: Date.parse('2026-11-01T08:00:00Z') }), nodeRec('n6', 'f-revoked', { revokedAt: 1 }),
    ];
    const sites = siteReadiness(nodes, sessions, 's1', 'h');
    expect(sites.map((s) => [s.siteName, s.online, s.readiness, s.lastHeartbeatAt])).toEqual([
      ['a-small', true, 'COHORT_TOO_SMALL', 5000], ['b-ready', true, 'READY', 5000], ['c-other', true, 'OTHER_MANIFEST', 5000],
      ['d-silent', true, 'NOT_REPORTED', 5000], ['e-offline', false, 'OFFLINE', Date.parse('2026-11-01T08:00:00Z')],
    ]);
    expect(sites[0]!.detail).toHaveLength(240);
    expect(sites[0]!.detail.startsWith('fewer than 10 cases y')).toBe(true);
    expect(sites[4]!.detail).toBe('offline since 2026-11-01T08:00:00.000Z');
  });
});

describe('describeReadiness', () => {
  const s = (siteName: string, readiness: SiteReadiness['readiness'], detail = ''): SiteReadiness => ({ nodeId: siteName, siteName, online: readiness !== 'OFFLINE', readiness, detail, lastHeartbeatAt: null });
  it('names each site that is not READY with its reason, then the READY ones', () => {
    expect(describeReadiness([s('a', 'COHORT_TOO_SMALL', 'fewer than 10 cases'), s('b', 'NOT_APPROVED'), s('c', 'OFFLINE', 'offline since x'), s('d', 'READY')], 2)).toBe(
      '1 of 2 READY clinic(s) needed — a: COHORT_TOO_SMALL (fewer than 10 cases); b: NOT_APPROVED; c: offline; READY: d',
    );
    expect(describeReadiness([], 1)).toBe('0 of 1 READY clinic(s) needed; no clinic is enrolled');
    expect(describeReadiness([s('a', 'NOT_APPROVED'), s('b', 'NOT_APPROVED'), s('c', 'NOT_APPROVED')], 3, 2)).toBe('0 of 3 READY clinic(s) needed — a: NOT_APPROVED; b: NOT_APPROVED; and 1 more not READY');
    expect(capDetail('a\n  b', 10)).toBe('a b');
    // Issue 11: what is stored or shown holds no control characters and is capped.
    expect(capDetail('\u001b[32monline\u001b[0m')).toBe('[32monline[0m');
    expect(Array.from(capDetail('x'.repeat(4 * 1024 * 1024)))).toHaveLength(240);
  });
});
