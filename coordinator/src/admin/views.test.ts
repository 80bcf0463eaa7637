import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Coordinator } from '../coordinator.js';
import { siteReadiness } from '../readiness.js';
import { SessionRegistry } from '../sessions.js';
import { SqliteStore } from '../sqlite-store.js';
import type { NodeRecord, StudyRecord } from '../store.js';
import { FakeSession } from '../test-support.js';
import { nodeCounts, nodePage, nodeViews, studyReadiness } from './views.js';

const N = 1205;
let dir: string;
let store: SqliteStore;
let sessions: SessionRegistry;
let coordinator: Coordinator;

const study: StudyRecord = {
  id: 'st_1', name: 'paging', manifestJson: JSON.stringify({ clients: { min: 2 } }), manifestHash: 'h'.repeat(64), state: 'RUNNING', reason: null,
  lastCommittedRound: 0, strategyState: null, parameters: null, createdAt: 1, endedAt: null,
};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlhs-views-'));
  store = new SqliteStore(join(dir, 'state.db'));
  sessions = new SessionRegistry();
  const nodes: NodeRecord[] = Array.from({ length: N }, (_, i) => ({
    id: `node_${String(i).padStart(16, '0')}`, siteName: `site-${i}`, credentialHash: 'x', createdAt: 1000 + Math.floor(i / 7), revokedAt: i % 100 === 0 ? 5000 : null,
    lastSeenAt: null, agentVersion: '', trainingBackend: '',
  }));
  await store.write(nodes.map((n) => ({ op: 'node.insert' as const, n })), 'test.nodes');
  // Online sessions for the first 300 nodes; every third of them READY for the study.
  for (const n of nodes.slice(0, 300)) {
    const s = new FakeSession(n.id, n.siteName);
    sessions.attach(s, 10);
    if (Number(n.id.slice(5)) % 3 === 0) sessions.setReadiness(s, study.id, { manifestSha256: study.manifestHash, readiness: 'READINESS_READY', detail: '' });
  }
  // The views read these four members of the coordinator; a full one needs gRPC and a data dir.
  coordinator = {
    store, sessions, runner: () => undefined, nodes: { get: () => undefined, values: () => nodes },
    siteReadiness: async (s: StudyRecord) => siteReadiness(await store.listNodes(), sessions, s.id, s.manifestHash),
  } as unknown as Coordinator;
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('status view at scale', () => {
  it('pages every node exactly once, in enrolment order, with counts of all of them', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await nodePage(coordinator, { limit: 500, ...(after === undefined ? {} : { after }) });
      expect(page.nodes.length).toBeLessThanOrEqual(500);
      seen.push(...page.nodes.map((n) => n.id as string));
      after = page.next ?? undefined;
      pages++;
    } while (after !== undefined);
    expect(pages).toBe(3);
    expect(seen).toEqual((await store.listNodes()).map((n) => n.id));
    expect(new Set(seen).size).toBe(N);
    expect(await nodeCounts(coordinator)).toEqual({ total: N, revoked: 13, online: 300 });
    expect((await nodeViews(coordinator)).map((n) => n.id)).toEqual(seen);
  });

  it('shows live session fields on the page and no history that is not there', async () => {
    const { nodes } = await nodePage(coordinator, { limit: 2 });
    expect(nodes[0]).toMatchObject({ online: true, roundsContributed: 0, lastError: null, revoked: true });
    expect(nodes[1]).toMatchObject({ online: true, revoked: false });
  });

  it('caps the readiness list of the status view, not-READY sites first, and counts every site', async () => {
    const full = (await studyReadiness(coordinator, study))!;
    const unrevoked = N - 13;
    expect(full.sites).toHaveLength(unrevoked);
    expect(full.sitesOmitted).toBe(0);
    const capped = (await studyReadiness(coordinator, study, { maxSites: 100 }))!;
    expect(capped.sites).toHaveLength(100);
    expect(capped.sitesOmitted).toBe(unrevoked - 100);
    expect(capped.sites.every((s) => s.readiness !== 'READY')).toBe(true);
    expect(Object.values(capped.counts).reduce((a, b) => a + b, 0)).toBe(unrevoked);
    expect(capped.ready).toBe(full.sites.filter((s) => s.readiness === 'READY').length);
    expect(capped.ready).toBeGreaterThan(0);
  });
});
