import { describe, expect, it } from 'vitest';
import { describeSitePrivacy, siteReadiness, sitePrivacyOf, type ReadinessWithPrivacy } from './readiness.js';
import { SessionRegistry, type NodeSession } from './sessions.js';
import type { NodeRecord } from './store.js';

const nodeRec = (id: string, siteName: string): NodeRecord => ({ id, siteName, credentialHash: '', createdAt: 0, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '' });

function session(nodeId: string, siteName: string, entry: ReadinessWithPrivacy): NodeSession {
  return {
    id: 1, nodeId, siteName, agent: { agentVersion: '', trainingBackend: '', platform: '' }, connectedAt: 0, lastHeardAt: 5000,
    readiness: new Map([['s1', entry]]) as NodeSession['readiness'], progress: new Map(), send: () => undefined, close: () => undefined,
  };
}

describe("a site's PrivacyBudget with its readiness", () => {
  const budget = { epsilonSpent: 1.25, epsilonStudyLimit: 2, epsilonLifetimeSpent: 3.5, epsilonLifetimeLimit: 0, delta: 1e-6 };

  it('is kept from the readiness and shown with the site', () => {
    const sessions = new SessionRegistry();
    const privacy = sitePrivacyOf(budget)!;
    sessions.attach(session('n1', 'a', { manifestSha256: 'h', readiness: 'READINESS_WITHDRAWN', detail: 'privacy budget: no further round fits', privacy }), 10);
    sessions.attach(session('n2', 'b', { manifestSha256: 'h', readiness: 'READINESS_READY', detail: '' }), 10);
    const sites = siteReadiness([nodeRec('n1', 'a'), nodeRec('n2', 'b')], sessions, 's1', 'h');
    expect(sites[0]).toMatchObject({ readiness: 'WITHDRAWN', privacy: budget });
    expect(sites[1]!.privacy).toBeUndefined();
    expect(describeSitePrivacy(privacy)).toBe('privacy ε 1.25 of 2 (lifetime 3.5 of no limit), δ 0.000001');
  });

  it('reads the largest double as an unbounded spend, and drops values that make no sense', () => {
    expect(sitePrivacyOf({ ...budget, epsilonSpent: Number.MAX_VALUE })!.epsilonSpent).toBe(Infinity);
    expect(describeSitePrivacy(sitePrivacyOf({ ...budget, epsilonSpent: Number.MAX_VALUE })!)).toMatch(/^privacy ε ∞ of 2/);
    expect(sitePrivacyOf({ ...budget, epsilonSpent: -1 })).toBeUndefined();
    expect(sitePrivacyOf({ ...budget, delta: 0 })).toBeUndefined();
    expect(sitePrivacyOf({ ...budget, epsilonLifetimeSpent: Number.NaN })).toBeUndefined();
    expect(sitePrivacyOf(null)).toBeUndefined();
  });
});
