import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileBlobStore } from '../blobs/file-blob-store.js';
import { SqliteStore } from '../sqlite-store.js';
import type { ReleaseRecord, StudyRecord } from '../store.js';
import { LogSink } from '../test-support.js';
import { ReleaseRegistry, checkAlias, checkVersion } from './registry.js';
import { descriptorFixture } from './test-support.js';

const H = (c: string): string => c.repeat(64);

let dir: string;
let store: SqliteStore;
let blobs: FileBlobStore;
let sink: LogSink;
let registry: ReleaseRegistry;
let clock = 1_000;

/** Inserts release `version` of `studyName` with its release.json in the blob store. */
async function insertRelease(studyName: string, version: number): Promise<ReleaseRecord> {
  const bytes = Buffer.from(JSON.stringify(descriptorFixture(studyName, version)));
  const ref = await blobs.put([bytes], { kind: 'release' });
  const r: ReleaseRecord = {
    studyName, version, studyId: `${studyName}-${version}`, round: 3, manifestSha256: H('a'), envelope: '{"payloadType":"x","payload":"","signatures":[]}',
    files: [{ name: 'release.json', sha256: ref.sha256, size: ref.length }], createdAt: 500 + version, parentVersion: version > 1 ? version - 1 : null,
  };
  const study: StudyRecord = {
    id: r.studyId, name: studyName, manifestJson: '{}', manifestHash: H('a'), state: 'COMPLETED', reason: null, lastCommittedRound: 3, strategyState: null, parameters: null, createdAt: 1, endedAt: 2,
  };
  await store.write([{ op: 'study.insert', s: study }, { op: 'release.insert', r }], 'test.release');
  return r;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedlhs-registry-'));
  store = new SqliteStore(join(dir, 'state.db'));
  blobs = new FileBlobStore(join(dir, 'blobs'));
  sink = new LogSink();
  registry = new ReleaseRegistry({ store, blobs, log: pino({ level: 'info' }, sink), chunkBytes: 64, now: () => ++clock });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('alias, version and name checks', () => {
  it('accepts 1-32 lowercase letters, digits and "-" that are not a number', () => {
    for (const ok of ['champion', 'challenger', 'a', 'v2', 'prod-2026', 'x'.repeat(32), '-', '1a']) expect(checkAlias(ok)).toBe(ok);
    for (const bad of ['', 'Champion', 'x'.repeat(33), 'a_b', 'a b', '7', '-1', '1e5', '0x1f', 'é', 7, null]) {
      expect(() => checkAlias(bad), String(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'alias' } }));
    }
  });

  it('takes a version as a whole number from 1, or its decimal text', () => {
    expect(checkVersion(3)).toBe(3);
    expect(checkVersion('12')).toBe(12);
    for (const bad of [0, -1, 1.5, '1.5', 'abc', '', null, '1e3']) expect(() => checkVersion(bad), String(bad)).toThrow(/^version: /);
  });
});

describe('ReleaseRegistry aliases', () => {
  it('sets, moves and removes an alias, each change audited with the operator in the same unit', async () => {
    await insertRelease('sepsis', 1);
    await insertRelease('sepsis', 2);
    const set = await registry.setAlias('sepsis', 'champion', 1, 'olivia');
    expect(set).toMatchObject({ studyName: 'sepsis', alias: 'champion', version: 1, previous: null, operator: 'olivia' });
    const moved = await registry.setAlias('sepsis', 'champion', 2, 'paul');
    expect(moved.previous).toBe(1);
    expect((await registry.aliases('sepsis')).map((a) => [a.alias, a.version, a.setBy])).toEqual([['champion', 2, 'paul']]);
    const removed = await registry.removeAlias('sepsis', 'champion', 'olivia');
    expect(removed).toMatchObject({ version: null, previous: 2 });
    expect(await registry.aliases('sepsis')).toEqual([]);

    const audit = (await store.listAdminActions(10)).sort((a, b) => a.at - b.at).map((a) => [a.operator, a.action, a.target, a.detail]);
    expect(audit).toEqual([
      ['olivia', 'release.alias', 'sepsis@champion', 'version 1'],
      ['paul', 'release.alias', 'sepsis@champion', 'version 2 (was version 1)'],
      ['olivia', 'release.unalias', 'sepsis@champion', 'was version 2'],
    ]);
    expect(sink.lines.filter((l) => l.event === 'release.alias_set').map((l) => [l.alias, l.version, l.operator])).toEqual([['champion', 1, 'olivia'], ['champion', 2, 'paul']]);
    expect(sink.lines.filter((l) => l.event === 'release.alias_removed')).toHaveLength(1);
  });

  it('refuses a version that was never released, an unset alias and bad names, and records nothing', async () => {
    await insertRelease('sepsis', 1);
    await expect(registry.setAlias('sepsis', 'champion', 2, 'olivia')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'release sepsis v2 does not exist' });
    await expect(registry.setAlias('other', 'champion', 1, 'olivia')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(registry.removeAlias('sepsis', 'champion', 'olivia')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('is not set') });
    await expect(registry.setAlias('sepsis', '2', 1, 'olivia')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'alias' } });
    await expect(registry.setAlias('Sepsis!', 'champion', 1, 'olivia')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'name' } });
    await expect(registry.setAlias('sepsis', 'champion', 0, 'olivia')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'version' } });
    expect(await store.listAdminActions(10)).toEqual([]);
    expect(await registry.aliases()).toEqual([]);
  });

  it('keeps aliases per study name', async () => {
    await insertRelease('a', 1);
    await insertRelease('b', 1);
    await registry.setAlias('a', 'champion', 1, 'x');
    await registry.setAlias('b', 'champion', 1, 'x');
    await registry.removeAlias('a', 'champion', 'x');
    expect((await registry.aliases()).map((a) => `${a.studyName}@${a.alias}`)).toEqual(['b@champion']);
  });
});

describe('ReleaseRegistry reads', () => {
  it('reads release.json through the blob store, checked, and serves the files it lists and the envelope', async () => {
    const r = await insertRelease('sepsis', 1);
    expect((await registry.descriptor(r)).metrics.test.pooled?.aucInterval).toEqual([0.76, 0.84]);
    const f = registry.file(r, 'release.json');
    const parts: Uint8Array[] = [];
    for await (const c of f.chunks) parts.push(c);
    expect(createHash('sha256').update(Buffer.concat(parts)).digest('hex')).toBe(f.sha256);
    const env = registry.file(r, 'envelope.json');
    expect(env.size).toBe(Buffer.byteLength(r.envelope));
    expect(() => registry.file(r, '../coordinator.db')).toThrow(expect.objectContaining({ details: { field: 'file' } }));
    expect(() => registry.file(r, 'weights.bin')).toThrow(expect.objectContaining({ code: 'DATA_LOSS' }));
    await expect(registry.get('sepsis', 9)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a release.json that does not match its digest or the format, loudly', async () => {
    const bad = await blobs.put([Buffer.from('{"format":"nope"}')], { kind: 'release' });
    const r: ReleaseRecord = { ...(await insertRelease('sepsis', 1)), files: [{ name: 'release.json', sha256: bad.sha256, size: bad.length }] };
    await expect(registry.descriptor(r)).rejects.toMatchObject({ code: 'DATA_LOSS', message: expect.stringContaining('does not match the release format') });
    const lying: ReleaseRecord = { ...r, files: [{ name: 'release.json', sha256: H('e'), size: bad.length }] };
    await expect(registry.descriptor(lying)).rejects.toMatchObject({ code: 'DATA_LOSS' });
  });
});
