import { describe, expect, it } from 'vitest';
import { isFedlhsError } from '@fedlhs/core';
import type { BlobStore } from '../blobs/blob-store.js';
import type { CoordinatorStore, ReleasePerformanceRecord, ReleaseRecord } from '../store.js';
import type { WriteOp } from '../store/write-ops.js';
import { ReleaseDistribution } from './distribution.js';

const release = (studyName: string, version: number, studyId: string): ReleaseRecord => ({
  studyName, version, studyId, round: 1, manifestSha256: 'a'.repeat(64), envelope: '{}', createdAt: version, parentVersion: version > 1 ? version - 1 : null,
  files: [{ name: 'weights.bin', sha256: 'b'.repeat(64), size: 8 }],
});

function fixture(blobLength = 8) {
  const releases = [release('sepsis', 2, 's2'), release('sepsis', 1, 's1'), release('other', 1, 'o1')];
  const performance: ReleasePerformanceRecord[] = [];
  const writes: WriteOp[] = [];
  const store = {
    listReleases: async (name: string | undefined, limit: number) => releases.filter((r) => name === undefined || r.studyName === name).slice(0, limit),
    getRelease: async (name: string, version: number) => releases.find((r) => r.studyName === name && r.version === version),
    listReleaseAliases: async (name: string | undefined) => [{ studyName: 'sepsis', alias: 'champion', version: 2, setBy: 'op', setAt: 1 }, { studyName: 'sepsis', alias: 'baseline', version: 2, setBy: 'op', setAt: 1 }].filter((a) => name === undefined || a.studyName === name),
    // By name (a series' runs share it): n1 took part in study s1 only, and sees every sepsis release.
    nodeTookPartInName: async (nodeId: string, name: string) => nodeId === 'n1' && name === 'sepsis',
    listReleasePerformance: async () => performance,
    // As both stores do: a repeated (release, node, export) is kept once and counted in `duplicates`.
    write: async (ops: WriteOp[]) => {
      let duplicates = 0;
      for (const op of ops) {
        if (op.op !== 'release.performance') continue;
        if (performance.some((p) => p.studyName === op.p.studyName && p.version === op.p.version && p.nodeId === op.p.nodeId && p.exportFingerprint === op.p.exportFingerprint)) {
          duplicates++;
          continue;
        }
        writes.push(op);
        performance.push(op.p);
      }
      return { roundIds: [], cancelled: [], ...(duplicates > 0 ? { duplicates } : {}) };
    },
  } as unknown as CoordinatorStore;
  const blobs = {
    stat: async (sha256: string) => (sha256 === 'b'.repeat(64) && blobLength >= 0 ? { sha256, length: blobLength } : undefined),
    read: async function* () {
      yield Buffer.from('12345678');
    },
  } as unknown as BlobStore;
  return { dist: new ReleaseDistribution({ store, blobs, now: () => 42 }), writes };
}

const codeOf = (p: Promise<unknown>): Promise<string | undefined> => p.then(() => undefined, (err: unknown) => (isFedlhsError(err) ? err.code : String(err)));

describe('ReleaseDistribution', () => {
  it('lists a node only the releases of studies it took part in, newest first, with sorted aliases', async () => {
    const { dist } = fixture();
    const mine = await dist.list({ node: { id: 'n1' } });
    expect(mine.map((r) => [r.studyName, r.version, r.aliases])).toEqual([['sepsis', 2, ['baseline', 'champion']], ['sepsis', 1, []]]);
    expect(await dist.list({ node: { id: 'n2' } })).toEqual([]);
    expect((await dist.list({})).map((r) => r.studyName)).toEqual(['sepsis', 'sepsis', 'other']);
    expect(await dist.list({ studyName: 'sepsis', limit: 1 })).toHaveLength(1);
  });

  it('gets a release: NOT_FOUND when absent, NOT_ASSIGNED for a node that took no part', async () => {
    const { dist } = fixture();
    expect((await dist.get('sepsis', 2, { id: 'n1' })).aliases).toEqual(['baseline', 'champion']);
    expect(await codeOf(dist.get('sepsis', 3, { id: 'n1' }))).toBe('NOT_FOUND');
    expect(await codeOf(dist.get('other', 1, { id: 'n1' }))).toBe('NOT_ASSIGNED');
  });

  it('reads a bundle file; an unknown name is NOT_FOUND, a missing or short blob DATA_LOSS', async () => {
    const r = release('sepsis', 1, 's1');
    const { chunks, file } = await fixture().dist.readFile(r, 'weights.bin', 4);
    expect(file.size).toBe(8);
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c);
    expect(Buffer.concat(parts).toString()).toBe('12345678');
    expect(await codeOf(fixture().dist.readFile(r, 'model.json', 4))).toBe('NOT_FOUND');
    expect(await codeOf(fixture().dist.readFile(r, 'notes.txt', 4))).toBe('NOT_FOUND');
    expect(await codeOf(fixture(4).dist.readFile(r, 'weights.bin', 4))).toBe('DATA_LOSS');
  });

  it('records live performance once per export, refusing impossible figures as INVALID_METRICS', async () => {
    const { dist, writes } = fixture();
    const report = { studyName: 'sepsis', version: 2, exportFingerprint: 'ff', measuredAt: 7, performance: { numExamples: 30, positives: 10, auc: 0.7, brier: 0.2, calibration: [] } };
    expect(await dist.recordPerformance({ id: 'n1' }, report)).toEqual({ duplicate: false });
    expect(await dist.recordPerformance({ id: 'n1' }, report)).toEqual({ duplicate: true });
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ op: 'release.performance', p: { nodeId: 'n1', exportFingerprint: 'ff', measuredAt: 7, receivedAt: 42 } });
    expect(await codeOf(dist.recordPerformance({ id: 'n1' }, { ...report, performance: { ...report.performance, positives: 31 } }))).toBe('INVALID_METRICS');
    expect(await codeOf(dist.recordPerformance({ id: 'n1' }, { ...report, performance: null }))).toBe('INVALID_METRICS');
    expect(await codeOf(dist.recordPerformance({ id: 'n2' }, report))).toBe('NOT_ASSIGNED');
  });

  it('refuses other figures for an export already reported, and a measured_at_ms far ahead of the clock (review hospital LOW 7)', async () => {
    const { dist, writes } = fixture();
    const report = { studyName: 'sepsis', version: 2, exportFingerprint: 'ff', measuredAt: 7, performance: { numExamples: 30, positives: 10, auc: 0.7, brier: 0.2, calibration: [] } };
    await dist.recordPerformance({ id: 'n1' }, report);
    const other = dist.recordPerformance({ id: 'n1' }, { ...report, performance: { ...report.performance, auc: 0.9 } });
    await expect(other).rejects.toMatchObject({ code: 'DUPLICATE_CONFLICT', message: expect.stringMatching(/sepsis version 2 .*node n1 for export ff with other figures/) });
    // The same figures measured later are still the same export: a duplicate.
    expect(await dist.recordPerformance({ id: 'n1' }, { ...report, measuredAt: 8 })).toEqual({ duplicate: true });
    // now is 42: up to 10 minutes ahead is clock skew, beyond it refused naming the field.
    expect(await dist.recordPerformance({ id: 'n1' }, { ...report, exportFingerprint: 'f2', measuredAt: 42 + 600_000 })).toEqual({ duplicate: false });
    const future = dist.recordPerformance({ id: 'n1' }, { ...report, exportFingerprint: 'f3', measuredAt: 42 + 600_001 });
    await expect(future).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('measured_at_ms') });
    expect(writes.map((w) => (w.op === 'release.performance' ? w.p.exportFingerprint : ''))).toEqual(['ff', 'f2']);
  });
});
