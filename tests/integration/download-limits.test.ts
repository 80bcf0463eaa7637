/**
 * Issue 11, the download-stall hole: any enrolled node could open downloads of any committed
 * model and never read them, each pinning a model in the coordinator. A real coordinator process
 * (port 0) and protocol-level rogue nodes (raw HTTP/2 streams that stop reading). To see these fail
 * on older code: FEDLHS_COORDINATOR_MAIN=/path/to/old/coordinator/dist/main.js.
 */
import http2 from 'node:http2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CoordinatorHandle } from '@fedlhs/tests';
import {
  MIB, connect, enrolOnly, metricValue, rawDownload, rogues, rssOf, startAttackCoordinator, studyWithParticipants, wideManifest, wideModelBytes, type RawDownload, type Rogue,
} from '../src/download-attack.js';

const RESOURCE_EXHAUSTED = 8;
const PERMISSION_DENIED = 7;
const UNAUTHENTICATED = 16;

describe('download bounds, participation and revocation', () => {
  let dir: string;
  let c: CoordinatorHandle;
  let nodes: Rogue[];
  let studyId: string;
  const sessions: http2.ClientHttp2Session[] = [];
  const open: RawDownload[] = [];
  const session = (): http2.ClientHttp2Session => {
    const s = connect(c);
    sessions.push(s);
    return s;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlhs-it-'));
    // Per node 2 (the default), 3 in all: a second node reaches the total.
    c = await startAttackCoordinator({ dataDir: dir, env: { FEDLHS_LIMITS_DOWNLOAD_STREAMS_PER_NODE: '2', FEDLHS_LIMITS_DOWNLOAD_STREAMS_TOTAL: '3' } });
    nodes = await rogues(c, 2);
    // A 4 MiB model: far more than one HTTP/2 window, so a stream nobody reads stays open.
    studyId = await studyWithParticipants(c, wideManifest('limits', 1000, 2), nodes);
  }, 120_000);

  afterEach(() => {
    for (const d of open.splice(0)) d.close();
  });

  afterAll(async () => {
    for (const s of sessions) s.destroy();
    for (const r of nodes ?? []) r.node.close();
    await c?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a stream past limits.downloadStreamsPerNode and limits.downloadStreamsTotal with RESOURCE_EXHAUSTED naming the key', async () => {
    const [a, b] = nodes as [Rogue, Rogue];
    const sa = session();
    const sb = session();
    const committed = { committed: { studyId, round: 0 } };
    open.push(await rawDownload(sa, a.credential, committed), await rawDownload(sa, a.credential, committed));
    const third = await rawDownload(sa, a.credential, committed);
    open.push(third);
    // Refused at once (trailers only), not a stream left open.
    const perNode = third.refusal();
    expect(perNode?.code).toBe(RESOURCE_EXHAUSTED);
    expect(perNode?.message).toContain('limits.downloadStreamsPerNode');
    await c.proc.waitForEvent('download.refused', { reason: 'per_node', limit: 'limits.downloadStreamsPerNode', max: 2 });

    open.push(await rawDownload(sb, b.credential, committed));
    const fourth = await rawDownload(sb, b.credential, committed);
    open.push(fourth);
    const total = fourth.refusal();
    expect(total?.code).toBe(RESOURCE_EXHAUSTED);
    expect(total?.message).toContain('limits.downloadStreamsTotal');
    await c.proc.waitForEvent('download.refused', { reason: 'total', limit: 'limits.downloadStreamsTotal', max: 3 });
    expect(await metricValue(c, 'fedlhs_download_streams')).toBe(3);
    expect(await metricValue(c, 'fedlhs_download_streams_refused_total', 'reason="per_node"')).toBe(1);
    expect(await metricValue(c, 'fedlhs_download_streams_refused_total', 'reason="total"')).toBe(1);

    // A slot comes back when its stream ends: a reset stream of node A lets node B in.
    const first = open[0]!;
    first.close();
    await first.ended;
    await expect.poll(() => metricValue(c, 'fedlhs_download_streams'), { timeout: 10_000 }).toBe(2);
    const again = await rawDownload(sb, b.credential, committed);
    open.push(again);
    expect(again.refusal()).toBeUndefined();
    expect(await metricValue(c, 'fedlhs_download_streams')).toBe(3);
  });

  it("refuses a study's committed model to a node that took no part in it (PERMISSION_DENIED, not_participant)", async () => {
    const outsider = await enrolOnly(c, 'outsider');
    // Read in full: older code sends the model (status 0) rather than leave the test waiting.
    const refused = await (await rawDownload(session(), outsider.credential, { committed: { studyId, round: 0 } }, Number.MAX_SAFE_INTEGER)).ended;
    expect(refused.code).toBe(PERMISSION_DENIED);
    expect(refused.message).toContain('took no part');
    expect(await metricValue(c, 'fedlhs_download_streams_refused_total', 'reason="not_participant"')).toBe(1);
  });

  it('revoking a node ends its open download with UNAUTHENTICATED; nothing more is sent', async () => {
    const a = nodes[0]!;
    const d = await rawDownload(session(), a.credential, { committed: { studyId, round: 0 } });
    open.push(d);
    const res = await c.admin('POST', `/api/v1/nodes/${a.nodeId}/revoke`, {});
    expect(res.status).toBeLessThan(300);
    d.resume();
    const ended = await d.ended;
    expect(ended.code).toBe(UNAUTHENTICATED);
    expect(ended.bytes).toBeLessThan(wideModelBytes(1000));
  });
});

describe('an unread download costs a chunk, not a model', () => {
  let dir: string;
  let c: CoordinatorHandle;
  let nodes: Rogue[] = [];
  const sessions: http2.ClientHttp2Session[] = [];

  afterAll(async () => {
    for (const s of sessions) s.destroy();
    for (const r of nodes) r.node.close();
    await c?.stop('SIGKILL');
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('N streams that read a little of rotating models and stop: coordinator RSS grows by less than N × model / 2', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlhs-it-'));
    const N = 24;
    const INPUTS = 2000;
    const model = wideModelBytes(INPUTS);
    // Bounds raised so that every stream gets going (the cost per stream is what is measured
    // here; the bounds are the other test's subject).
    c = await startAttackCoordinator({ dataDir: dir, env: {
      FEDLHS_LIMITS_DOWNLOAD_STREAMS_PER_NODE: String(N), FEDLHS_TRANSFER_INFLIGHT_BYTES: String(4 * N * MIB),
    } });
    nodes = await rogues(c, 2);
    const studies: string[] = [];
    for (let k = 0; k < 3; k++) studies.push(await studyWithParticipants(c, wideManifest(`stall-${k}`, INPUTS, 2, k + 1), nodes));
    const conns = nodes.map(() => connect(c));
    sessions.push(...conns);
    // Warm-up: each model downloaded once in full (the cache and the buffer pool as in use).
    for (const studyId of studies) {
      const d = await rawDownload(conns[0]!, nodes[0]!.credential, { committed: { studyId, round: 0 } }, Number.MAX_SAFE_INTEGER);
      expect((await d.ended).code).toBe(0);
    }
    const before = rssOf(c.proc.pid);
    // Each stream reads its first chunk and a little more, then stops; models in rotation, so
    // the coordinator's two-model cache keeps reloading them.
    for (let i = 0; i < N; i++) {
      const k = i % nodes.length;
      await rawDownload(conns[k]!, nodes[k]!.credential, { committed: { studyId: studies[i % studies.length]!, round: 0 } }, MIB + 64 * 1024);
    }
    // Every stream is stalled now (each holds its next chunk); the steady state is what counts.
    const samples: number[] = [];
    for (let i = 0; i < 20; i++) {
      samples.push(rssOf(c.proc.pid));
      await new Promise((r) => setTimeout(r, 100));
    }
    const growth = Math.min(...samples) - before;
    process.stdout.write(`download stall: ${N} streams of a ${(model / MIB).toFixed(1)} MiB model: RSS ${(before / MIB).toFixed(0)} MiB + ${(growth / MIB).toFixed(1)} MiB\n`);
    // Before the fix each unread stream kept a whole model (growth ≈ N × model). Now it holds a
    // chunk, but RSS also carries the garbage of the rotating cache reloads until V8 collects it:
    // measured 0.14-0.29 × N × model here, the highest beside a CPU hog. Half a model per stream
    // still tells the two apart with room on both sides.
    expect(growth).toBeLessThan((N * model) / 2);
  }, 240_000);
});

describe('a download whose client takes nothing is ended after the idle bound', () => {
  it('gives its budget back (logged download.stalled) so that other downloads are not starved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-it-'));
    // The whole budget is one chunk: one stalled stream holds it all.
    const c = await startAttackCoordinator({ dataDir: dir, env: { FEDLHS_TRANSFER_DOWNLOAD_IDLE_SECONDS: '1', FEDLHS_TRANSFER_INFLIGHT_BYTES: String(MIB) } });
    const nodes = await rogues(c, 2);
    const conns = [connect(c), connect(c)];
    try {
      const studyId = await studyWithParticipants(c, wideManifest('idle', 1000, 2), nodes);
      const stalled = await rawDownload(conns[0]!, nodes[0]!.credential, { committed: { studyId, round: 0 } }, 64 * 1024);
      await c.proc.waitForEvent('download.stalled', { nodeId: nodes[0]!.nodeId }, 60_000);
      expect(await metricValue(c, 'fedlhs_download_streams_refused_total', 'reason="idle"')).toBe(1);
      const other = await rawDownload(conns[1]!, nodes[1]!.credential, { committed: { studyId, round: 0 } }, Number.MAX_SAFE_INTEGER);
      const done = await other.ended;
      expect(done.code).toBe(0);
      expect(done.bytes).toBeGreaterThan(wideModelBytes(1000));
      stalled.close();
    } finally {
      for (const s of conns) s.destroy();
      for (const r of nodes) r.node.close();
      await c.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
