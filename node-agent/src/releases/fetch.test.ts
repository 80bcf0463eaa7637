import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { RELEASE_FILES, type ReleaseFileName } from '@fedlhs/core';
import { AgentState } from '../agent-state.js';
import { ReleaseFetcher, type ListedRelease } from './fetch.js';
import { listKept, loadKept } from './local-releases.js';
import { buildRelease, fakeClient, listed, releaseKeyPair, type TestRelease } from './test-support.js';

const key = releaseKeyPair();

function setup(o: { releases: TestRelease[]; approve?: boolean; pinned?: { publicPem: string; fingerprint: string } | null; served?: (r: TestRelease, file: string) => Buffer | undefined; listing?: (r: TestRelease) => ListedRelease; listError?: grpc.status; downloadFails?: (file: string) => boolean }) {
  const stateDir = mkdtempSync(join(tmpdir(), 'fedlhs-fetch-'));
  const state = new AgentState(stateDir);
  for (const r of o.releases) {
    state.recordManifest({ hash: r.manifestSha256, studyId: r.predicate.studyId, name: r.studyName, json: r.files['manifest.json'].toString() });
    if (o.approve !== false) state.approve(r.manifestSha256, 'operator:test');
  }
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const find = (name: string, version: number): TestRelease | undefined => o.releases.find((r) => r.studyName === name && r.version === version);
  const fake = fakeClient({
    releases: () => o.releases.map((r) => (o.listing ?? ((x) => listed(x)))(r)),
    served: (name, version, file) => {
      const r = find(name, version);
      if (r === undefined) return undefined;
      return o.served === undefined ? Buffer.from(r.files[file as ReleaseFileName]) : o.served(r, file);
    },
    ...(o.listError === undefined ? {} : { listError: o.listError }),
    ...(o.downloadFails === undefined ? {} : { downloadFails: o.downloadFails }),
  });
  const fetcher = new ReleaseFetcher({ stateDir, state, client: fake.client, credential: 'c', releaseKey: o.pinned === null ? undefined : (o.pinned ?? key.pinned), coordinator: 'coord:1', log });
  const events = (name: string) => lines.filter((l) => l.event === name);
  return { stateDir, state, fetcher, calls: fake.calls, events };
}

describe('ReleaseFetcher', () => {
  it('keeps a verified release of an approved study: five files, envelope.json and kept.json, audited', async () => {
    const r = buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey });
    const t = setup({ releases: [r] });
    const summary = await t.fetcher.check();
    expect(summary.kept).toEqual([{ studyName: 'sepsis', version: 1 }]);
    const dir = join(t.stateDir, 'releases', 'sepsis', '1');
    expect(readdirSync(dir).sort()).toEqual([...RELEASE_FILES, 'envelope.json', 'kept.json'].sort());
    for (const name of RELEASE_FILES) expect(readFileSync(join(dir, name)).equals(Buffer.from(r.files[name]))).toBe(true);
    const kept = loadKept(t.stateDir, 'sepsis', 1).kept;
    expect(kept.fingerprint).toBe(key.pinned.fingerprint);
    // No temp directory is left next to it.
    expect(readdirSync(join(t.stateDir, 'releases', 'sepsis'))).toEqual(['1']);
    const audit = t.state.readAudit().filter((a) => a.event === 'release_kept');
    expect(audit).toHaveLength(1);
    expect(audit[0]!.release).toMatchObject({ studyName: 'sepsis', version: 1 });
    expect(t.events('release.kept')).toHaveLength(1);
    // A second check downloads nothing again.
    const downloads = t.calls.download.length;
    await t.fetcher.check();
    expect(t.calls.download.length).toBe(downloads);
  });

  it('fetches nothing of a study this clinic did not approve', async () => {
    const t = setup({ releases: [buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey })], approve: false });
    const summary = await t.fetcher.check();
    expect(summary.kept).toEqual([]);
    expect(t.calls.download).toEqual([]);
    expect(existsSync(join(t.stateDir, 'releases'))).toBe(false);
  });

  it.each(RELEASE_FILES.map((f) => [f]))('refuses a release whose %s was tampered with (why digest), keeps nothing, and does not retry it', async (file) => {
    const r = buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey });
    const t = setup({
      releases: [r],
      served: (x, name) => {
        const bytes = Buffer.from(x.files[name as ReleaseFileName]);
        if (name === file) bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
        return bytes;
      },
    });
    const summary = await t.fetcher.check();
    expect(summary.refused).toEqual([expect.objectContaining({ studyName: 'sepsis', version: 1, why: 'digest' })]);
    expect(summary.refused[0]!.reason).toContain(file);
    expect(listKept(t.stateDir)).toEqual([]);
    expect(existsSync(join(t.stateDir, 'releases', 'sepsis', '1'))).toBe(false);
    const refused = t.events('release.refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 40, why: 'digest', file });
    const audit = t.state.readAudit().filter((a) => a.event === 'release_refused');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ outcome: 'digest', release: { studyName: 'sepsis', version: 1, why: 'digest', file } });
    // The files after the tampered one were never downloaded: checked as they arrive.
    expect(t.calls.download.at(-1)).toBe(`sepsis@1/${file}`);
    const downloads = t.calls.download.length;
    await t.fetcher.check();
    expect(t.calls.download.length).toBe(downloads);
    expect(t.events('release.refused')).toHaveLength(1);
  });

  it('refuses a release signed with another key (why signature) before downloading any file', async () => {
    const other = releaseKeyPair();
    const t = setup({ releases: [buildRelease({ studyName: 'sepsis', version: 1, privateKey: other.privateKey })] });
    const summary = await t.fetcher.check();
    expect(summary.refused).toEqual([expect.objectContaining({ why: 'signature' })]);
    expect(t.calls.download).toEqual([]);
  });

  it('refuses an envelope listed under another name or version (why predicate)', async () => {
    const r = buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey });
    const t = setup({ releases: [r], listing: (x) => ({ ...listed(x), version: 2 }) });
    const summary = await t.fetcher.check();
    expect(summary.refused).toEqual([expect.objectContaining({ studyName: 'sepsis', version: 2, why: 'predicate' })]);
    expect(summary.refused[0]!.reason).toContain('version 1, not 2');
    expect(t.calls.download).toEqual([]);
  });

  it('refuses a correctly signed bundle whose release.json contradicts the signed predicate (why descriptor), after checking every file', async () => {
    const r = buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey, patchDescriptor: (d) => void (d.round = 9) });
    const t = setup({ releases: [r] });
    const summary = await t.fetcher.check();
    expect(summary.refused).toEqual([expect.objectContaining({ why: 'descriptor' })]);
    expect(t.calls.download).toHaveLength(RELEASE_FILES.length);
    expect(listKept(t.stateDir)).toEqual([]);
  });

  it('refuses a download longer than its declared size as it arrives', async () => {
    const r = buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey });
    const t = setup({ releases: [r], served: (x, name) => (name === 'weights.bin' ? Buffer.concat([Buffer.from(x.files[name]), Buffer.alloc(100)]) : Buffer.from(x.files[name as ReleaseFileName])) });
    const summary = await t.fetcher.check();
    expect(summary.refused).toEqual([expect.objectContaining({ why: 'digest' })]);
    expect(summary.refused[0]!.reason).toContain('exceeds its declared');
  });

  it('refuses everything when no release key was pinned, saying to re-enrol', async () => {
    const t = setup({ releases: [buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey })], pinned: null });
    const summary = await t.fetcher.check();
    expect(summary.refused).toEqual([expect.objectContaining({ why: 'key' })]);
    expect(summary.refused[0]!.reason).toContain('re-enrol');
    expect(t.calls.download).toEqual([]);
  });

  it('says once that an older coordinator serves no releases, and keeps going', async () => {
    const t = setup({ releases: [], listError: grpc.status.UNIMPLEMENTED });
    await t.fetcher.check();
    await t.fetcher.check();
    expect(t.events('release.unsupported')).toHaveLength(1);
  });

  it('keeps nothing visible when a download fails half-way, and fetches the release again at the next check', async () => {
    let fail = true;
    const t = setup({ releases: [buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey })], downloadFails: (file) => fail && file === 'model-card.md' });
    const first = await t.fetcher.check();
    expect(first.kept).toEqual([]);
    expect(first.refused).toEqual([]);
    expect(t.events('release.fetch_failed')).toHaveLength(1);
    expect(listKept(t.stateDir)).toEqual([]);
    expect(existsSync(join(t.stateDir, 'releases', 'sepsis', '1'))).toBe(false);
    fail = false;
    const second = await t.fetcher.check();
    expect(second.kept).toEqual([{ studyName: 'sepsis', version: 1 }]);
    expect(readdirSync(join(t.stateDir, 'releases', 'sepsis'))).toEqual(['1']);
  });

  it('updates the aliases of a kept release from the latest listing', async () => {
    const r = buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey });
    let aliases: string[] = [];
    const t = setup({ releases: [r], listing: (x) => listed(x, aliases) });
    await t.fetcher.check();
    expect(loadKept(t.stateDir, 'sepsis', 1).kept.aliases).toEqual([]);
    aliases = ['champion'];
    await t.fetcher.check();
    expect(loadKept(t.stateDir, 'sepsis', 1).kept.aliases).toEqual(['champion']);
  });

  it('refuses and records, once per envelope, another envelope listed under a name and version kept here; the kept one stays and its listing is not passed on', async () => {
    const first = buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey, weights: [1, 0, 0, 0] });
    const releases = [first];
    const t = setup({ releases, listing: (x) => listed(x, x === first ? [] : ['champion']) });
    expect((await t.fetcher.check()).kept).toEqual([{ studyName: 'sepsis', version: 1 }]);
    // The coordinator now lists a different, validly signed release under the same name and version.
    const other = buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey, weights: [9, 9, 9, 9] });
    releases[0] = other;
    const digest = (r: TestRelease) => createHash('sha256').update(r.envelope).digest('hex');
    const summary = await t.fetcher.check();
    expect(summary.kept).toEqual([]);
    expect(summary.refused).toEqual([{ studyName: 'sepsis', version: 1, why: 'predicate', reason: expect.stringMatching(new RegExp(`envelope SHA-256 ${digest(other)}.*kept here .* envelope SHA-256 ${digest(first)}`)) }]);
    expect(summary.releases).toEqual([]); // its 'champion' alias must not reach the auto policy
    expect(t.events('release.refused')).toEqual([expect.objectContaining({ level: 40, why: 'predicate', studyName: 'sepsis', version: 1 })]);
    const audit = t.state.readAudit().filter((a) => a.event === 'release_refused');
    expect(audit).toEqual([expect.objectContaining({ sha256: digest(other), outcome: 'predicate' })]);
    // The kept bytes and aliases are untouched; the same envelope is not refused (or logged) again.
    expect(loadKept(t.stateDir, 'sepsis', 1).envelope).toEqual(JSON.parse(first.envelope.toString('utf8')));
    expect(loadKept(t.stateDir, 'sepsis', 1).kept.aliases).toEqual([]);
    expect((await t.fetcher.check()).refused).toEqual([]);
    expect(t.events('release.refused')).toHaveLength(1);
    expect(t.state.readAudit().filter((a) => a.event === 'release_refused')).toHaveLength(1);
  });
});
