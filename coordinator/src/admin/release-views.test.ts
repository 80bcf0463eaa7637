import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Performance } from '@fedlhs/core';
import type { Coordinator } from '../coordinator.js';
import { FileBlobStore } from '../blobs/file-blob-store.js';
import { ReleaseRegistry } from '../releases/registry.js';
import { descriptorFixture } from '../releases/test-support.js';
import { SqliteStore } from '../sqlite-store.js';
import type { ReleaseRecord, StudyRecord } from '../store.js';
import { LogSink } from '../test-support.js';
import { releaseDetail, releaseList, type ReleaseViewContext } from './release-views.js';

let dir: string;
let store: SqliteStore;
let blobs: FileBlobStore;
let ctx: ReleaseViewContext;

const bins = (n: number, pos: number, meanPredicted: number): Performance['calibration'] =>
  Array.from({ length: 10 }, (_, b) => (b === 1 ? { count: n, predictedSum: meanPredicted * n, observed: pos } : { count: 0, predictedSum: 0, observed: 0 }));

async function release(studyName: string, version: number, withDescriptor = true): Promise<ReleaseRecord> {
  const ref = await blobs.put([Buffer.from(JSON.stringify(withDescriptor ? descriptorFixture(studyName, version) : { format: 'other' }))], { kind: 'release' });
  const r: ReleaseRecord = {
    studyName, version, studyId: `${studyName}-s${version}`, round: 3, manifestSha256: 'a'.repeat(64), envelope: '{}',
    files: [{ name: 'release.json', sha256: ref.sha256, size: ref.length }], createdAt: 1000 + version, parentVersion: version > 1 ? version - 1 : null,
  };
  const study: StudyRecord = {
    id: r.studyId, name: studyName, manifestJson: '{}', manifestHash: 'a'.repeat(64), state: 'COMPLETED', reason: null, lastCommittedRound: 3, strategyState: null, parameters: null, createdAt: 1, endedAt: 2,
  };
  await store.write([{ op: 'study.insert', s: study }, { op: 'release.insert', r }], 'test.release');
  return r;
}

async function report(studyName: string, version: number, nodeId: string, p: Performance, at: number): Promise<void> {
  await store.write([{ op: 'release.performance', p: { studyName, version, nodeId, exportFingerprint: `fp-${at}`, performance: JSON.stringify(p), measuredAt: at, receivedAt: at } }], 'test.performance');
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlhs-release-views-'));
  store = new SqliteStore(join(dir, 'state.db'));
  blobs = new FileBlobStore(join(dir, 'blobs'));
  await store.write(['north', 'south', 'tiny'].map((site) => ({
    op: 'node.insert' as const, n: { id: `node_${site}`, siteName: site, credentialHash: 'x', createdAt: 1, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '' },
  })), 'test.nodes');
  const registry = new ReleaseRegistry({ store, blobs, log: pino({ level: 'silent' }, new LogSink()), chunkBytes: 1 << 16 });
  // The views read the store and node names of the coordinator.
  ctx = { coordinator: { store, nodes: { list: () => store.listNodes() } } as unknown as Coordinator, registry };
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('release views', () => {
  it("lists releases with their aliases, published figures and each site's latest live verdict, small sites withheld", async () => {
    await release('sepsis', 1);
    await release('sepsis', 2);
    await ctx.registry.setAlias('sepsis', 'champion', 2, 'olivia');
    await report('sepsis', 2, 'node_north', { numExamples: 400, positives: 60, auc: 0.9, aucStandardError: 0.02, brier: 0.1, calibrationSlope: 1, calibrationIntercept: 0, calibration: bins(400, 60, 0.15) }, 10);
    // North's later report has drifted: its AUC interval is below the release's test interval [0.76, 0.84].
    await report('sepsis', 2, 'node_north', { numExamples: 400, positives: 60, auc: 0.65, aucStandardError: 0.02, brier: 0.2, calibrationSlope: 1, calibrationIntercept: 0, calibration: bins(400, 60, 0.15) }, 20);
    await report('sepsis', 2, 'node_south', { numExamples: 300, positives: 50, auc: 0.8, aucStandardError: 0.03, brier: 0.1, calibrationSlope: 1.1, calibrationIntercept: 0, calibration: bins(300, 50, 0.17) }, 15);
    await report('sepsis', 2, 'node_tiny', { numExamples: 30, positives: 3, auc: 0.1, aucStandardError: 0.1, brier: 0.3, calibration: bins(30, 3, 0.5) }, 15);

    const list = await releaseList(ctx, 'sepsis', 10);
    expect(list.releases.map((r) => [r.version, r.aliases])).toEqual([[2, ['champion']], [1, []]]);
    expect(list.aliases).toEqual([expect.objectContaining({ alias: 'champion', version: 2, setBy: 'olivia', setAt: expect.stringMatching(/Z$/) })]);
    const v2 = list.releases[0]!;
    expect(v2).toMatchObject({ error: null, selection: { rule: 'best-validation-auc' }, test: { auc: 0.8, aucInterval: [0.76, 0.84] } });
    const sites = Object.fromEntries(v2.live!.sites.map((s) => [s.siteName, s]));
    expect(sites.north).toMatchObject({ status: 'drift', live: { auc: 0.65 }, measuredAt: new Date(20).toISOString() });
    expect(sites.tiny).toMatchObject({ status: 'insufficient', live: { auc: null, positives: null } });
    // Tiny's 3 cases would follow from the pooled count minus south's: south is withheld too (still judged).
    expect(sites.south).toMatchObject({ status: 'ok', withheld: true, live: { auc: null, numExamples: null } });
    expect(v2.live!.pooled).toMatchObject({ sites: 3, live: { numExamples: 730 } });
    expect(list.releases[1]!.live).toMatchObject({ pooled: null, sites: [] });
  });

  it('shows the detail with files, the descriptor and the test figures by site; a damaged release.json is an error in the view, not a failed list', async () => {
    await release('sepsis', 1);
    const d = await releaseDetail(ctx, 'sepsis', 1);
    expect(d.files.map((f) => [f.name, f.url])).toEqual([
      ['release.json', '/api/v1/releases/sepsis/1/files/release.json'], ['envelope.json', '/api/v1/releases/sepsis/1/files/envelope.json'],
    ]);
    expect(d.descriptor?.modelCard.intendedUse).toBe('tests');
    expect(Object.keys(d.testBySite)).toEqual(['north']);
    expect(d.reports).toBe(0);

    await release('broken', 1, false);
    const list = await releaseList(ctx, undefined, 10);
    const broken = list.releases.find((r) => r.studyName === 'broken')!;
    expect(broken).toMatchObject({ selection: null, test: null, live: null, error: expect.stringContaining('release.json cannot be read: ') });
    await expect(releaseDetail(ctx, 'sepsis', 7)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
