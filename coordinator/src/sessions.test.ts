import type { AgentInfo__Output, CoordinatorMessage, Readiness } from '@fedlhs/proto';
import { describe, expect, it } from 'vitest';
import { SessionRegistry, type NodeSession, type ReadinessEntry } from './sessions.js';

let nextId = 1;

/** A session that only records what it is sent. */
function fake(nodeId: string, readiness: [string, ReadinessEntry][] = []): NodeSession & { sent: CoordinatorMessage[]; closed: boolean } {
  return {
    id: nextId++, nodeId, siteName: nodeId, agent: {} as AgentInfo__Output, connectedAt: 0, lastHeardAt: 0,
    readiness: new Map(readiness), progress: new Map(), sent: [], closed: false,
    send(m) {
      this.sent.push(m);
    },
    close() {
      this.closed = true;
    },
  };
}

/** Deterministic PRNG (mulberry32), so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What today's readyFor did: a scan of every online session. */
function bruteForce(sessions: SessionRegistry, studyId: string, hash: string): string[] {
  return sessions
    .online()
    .filter((s) => {
      const r = s.readiness.get(studyId);
      return r !== undefined && r.manifestSha256 === hash && r.readiness === 'READINESS_READY';
    })
    .map((s) => s.nodeId)
    .sort();
}

const READINESS: Readiness[] = ['READINESS_READY', 'READINESS_READY', 'READINESS_NOT_APPROVED', 'READINESS_COHORT_TOO_SMALL'];

describe('SessionRegistry ready index', () => {
  it('stays exact through attach, supersede, detach and readiness flips of 10 000 sessions', () => {
    const rnd = prng(10);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const sessions = new SessionRegistry();
    const studies = ['s1', 's2', 's3'];
    const hashes = ['h1', 'h2'];
    const live: NodeSession[] = [];
    const nodes = Array.from({ length: 10_000 }, (_, i) => `n${i}`);
    const check = (): void => {
      expect(sessions.size).toBe(sessions.online().length);
      for (const st of studies) {
        for (const h of hashes) {
          const want = bruteForce(sessions, st, h);
          expect(sessions.readyFor(st, h).map((s) => s.nodeId).sort()).toEqual(want);
          expect(sessions.readyCount(st, h)).toBe(want.length);
        }
      }
    };
    // Sessions attach with readiness already declared (as readiness.test.ts does), or none.
    for (const n of nodes) {
      const s = fake(n, rnd() < 0.5 ? [[pick(studies), { manifestSha256: pick(hashes), readiness: pick(READINESS), detail: '' }]] : []);
      sessions.attach(s, 10);
      live.push(s);
    }
    check();
    for (let step = 0; step < 30_000; step++) {
      const r = rnd();
      const s = pick(live);
      if (r < 0.6) {
        sessions.setReadiness(s, pick(studies), { manifestSha256: pick(hashes), readiness: pick(READINESS), detail: `d${step}` });
      } else if (r < 0.75) {
        sessions.detach(s); // may be detached already, or replaced: both are no-ops
      } else if (r < 0.9) {
        const next = fake(s.nodeId, rnd() < 0.3 ? [[pick(studies), { manifestSha256: pick(hashes), readiness: 'READINESS_READY', detail: '' }]] : []);
        sessions.attach(next, 10); // reconnect or supersede
        live[live.indexOf(s)] = next;
      } else {
        // A message on a session that was already replaced or detached must not touch the index.
        const stale = fake(s.nodeId);
        sessions.setReadiness(stale, pick(studies), { manifestSha256: pick(hashes), readiness: 'READINESS_READY', detail: '' });
      }
      if (step % 3000 === 0) check();
    }
    check();
    expect(sessions.readyCount('s1', 'h1')).toBeGreaterThan(0);
    for (const s of sessions.online()) sessions.detach(s);
    check();
    expect(sessions.size).toBe(0);
    expect(sessions.readyCount('s1', 'h1')).toBe(0);
  });

  it('counts a detail change as no change, and a hash or readiness change as one', () => {
    const sessions = new SessionRegistry();
    const s = fake('n1');
    sessions.attach(s, 10);
    expect(sessions.setReadiness(s, 's1', { manifestSha256: 'h', readiness: 'READINESS_READY', detail: '' })).toBe(true);
    expect(sessions.setReadiness(s, 's1', { manifestSha256: 'h', readiness: 'READINESS_READY', detail: 'with warnings' })).toBe(false);
    expect(sessions.setReadiness(s, 's1', { manifestSha256: 'h2', readiness: 'READINESS_READY', detail: '' })).toBe(true);
    expect([sessions.readyCount('s1', 'h'), sessions.readyCount('s1', 'h2')]).toEqual([0, 1]);
    expect(sessions.readySample('s1', 'h2', 5)).toEqual(['n1']);
  });
});

describe('SessionRegistry notifications', () => {
  it('coalesces ready wake-ups into one microtask per study', async () => {
    const sessions = new SessionRegistry();
    const calls: string[] = [];
    sessions.onReady('s1', () => calls.push('s1'));
    const off = sessions.onReady('s2', () => calls.push('s2'));
    sessions.onReady('s3', () => calls.push('s3'));
    for (let i = 0; i < 100; i++) {
      const s = fake(`n${i}`);
      sessions.attach(s, 10);
      sessions.setReadiness(s, 's1', { manifestSha256: 'h', readiness: 'READINESS_READY', detail: '' });
      sessions.setReadiness(s, 's2', { manifestSha256: 'h', readiness: 'READINESS_READY', detail: '' });
      // Not READY: the ready set of s3 does not change, so s3 is not woken.
      sessions.setReadiness(s, 's3', { manifestSha256: 'h', readiness: 'READINESS_NOT_APPROVED', detail: '' });
    }
    expect(calls).toEqual([]); // nothing synchronously
    await Promise.resolve();
    expect(calls.sort()).toEqual(['s1', 's2']);

    calls.length = 0;
    off();
    for (const s of sessions.online().slice(0, 10)) sessions.detach(s); // shrinks s1 and s2
    await Promise.resolve();
    expect(calls).toEqual(['s1']);
  });

  it('reports online and offline once per node, not for a superseded session', () => {
    const sessions = new SessionRegistry();
    const events: string[] = [];
    sessions.onOnline((id) => events.push(`online ${id}`));
    sessions.onOffline((id) => events.push(`offline ${id}`));
    let changes = 0;
    sessions.on('change', () => changes++);
    const a1 = fake('a');
    const a2 = fake('a');
    sessions.attach(a1, 10);
    sessions.attach(a2, 10);
    expect(a1.closed).toBe(true);
    sessions.detach(a1); // the old one's close arrives after the new one attached
    expect(sessions.get('a')).toBe(a2);
    sessions.detach(a2);
    expect(events).toEqual(['online a', 'offline a']);
    expect(changes).toBe(3); // the generic event still fires on attach, attach, detach
  });
});

describe('SessionRegistry.sendInSlices', () => {
  it('yields to the event loop every 500 sessions and skips sessions replaced meanwhile', async () => {
    const sessions = new SessionRegistry();
    const all = Array.from({ length: 1200 }, (_, i) => fake(`n${i}`));
    for (const s of all) sessions.attach(s, 10);
    const sentCount = (): number => all.reduce((n, s) => n + s.sent.length, 0);
    const done = sessions.sendInSlices(sessions.onlineIds(), () => ({ heartbeat: { sentUnixMs: 1 } }));
    expect(sentCount()).toBe(500); // the first slice, synchronously
    const replaced = fake('n1100');
    sessions.attach(replaced, 10);
    expect(await done).toBe(1199);
    expect(sentCount()).toBe(1199);
    expect(replaced.sent).toEqual([]);
  });
});

describe('SessionRegistry training rows and forgetting (issue 11)', () => {
  const READY = (hash: string): ReadinessEntry => ({ manifestSha256: hash, readiness: 'READINESS_READY', detail: '' });

  it('keeps the latest READY training rows per node and study across session ends', () => {
    const reg = new SessionRegistry();
    const s = fake('n1');
    reg.attach(s, 10);
    reg.setTrainingRows('n1', 'study-a', 120);
    reg.setTrainingRows('n1', 'study-a', 150);
    reg.setTrainingRows('n1', 'study-b', 7);
    reg.detach(s);
    expect(reg.trainingRows('n1', 'study-a')).toBe(150); // an upload may finish while its node reconnects
    reg.setTrainingRows('n1', 'study-b', 0); // 0 = not stated
    expect(reg.trainingRows('n1', 'study-b')).toBeUndefined();
    expect(reg.trainingRows('n2', 'study-a')).toBeUndefined();
    reg.forgetNode('n1');
    expect(reg.trainingRows('n1', 'study-a')).toBeUndefined();
  });

  it('forgets an ended study: readiness of online sessions (and the ready index) and every node\'s rows', async () => {
    const reg = new SessionRegistry();
    const a = fake('a');
    const b = fake('b');
    reg.attach(a, 10);
    reg.attach(b, 10);
    reg.setReadiness(a, 's1', READY('h1'));
    reg.setReadiness(b, 's1', READY('h1'));
    reg.setReadiness(b, 's2', READY('h2'));
    reg.setTrainingRows('a', 's1', 10);
    reg.setTrainingRows('b', 's2', 20);
    let notified = 0;
    reg.onReady('s1', () => notified++);
    reg.forgetStudy('s1');
    await Promise.resolve();
    expect(notified).toBe(1);
    expect(reg.readyCount('s1', 'h1')).toBe(0);
    expect(a.readiness.size).toBe(0);
    expect([...b.readiness.keys()]).toEqual(['s2']);
    expect(reg.readyCount('s2', 'h2')).toBe(1);
    expect(reg.trainingRows('a', 's1')).toBeUndefined();
    expect(reg.trainingRows('b', 's2')).toBe(20);
  });
});
