/**
 * Conformance: releases (federation.proto "Releases", ListReleases, DownloadReleaseFile,
 * ReportReleasePerformance). A one-round study completes with one clinic; the coordinator makes
 * its signed release; the participant lists it, downloads every file over gRPC and verifies
 * the bundle with the release key it pinned at enrolment; a node that took no part is refused;
 * live performance is recorded once per export.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { RELEASE_FILES, verifyRelease, type ReleaseFiles } from '@fedlhs/core';
import type { EnrolResponse__Output } from '@fedlhs/proto';
import { ConformanceClient, enrol, failure, fromFloat32Le } from '../src/conformance-client.js';
import { manifest, startTestCoordinator, type TestCoordinator } from './harness.js';

type Listed = { studyName: string; version: number; studyId: string; round: number; manifestSha256: string; envelope: Buffer; files: { name: string; sha256: string; size: number }[]; aliases: string[]; createdAtMs: number };

let c: TestCoordinator;
let site: ConformanceClient;
let creds: EnrolResponse__Output;
let outsider: ConformanceClient;
let studyId: string;

function listReleases(node: ConformanceClient, studyName = ''): Promise<Listed[]> {
  return new Promise((resolve, reject) => {
    node.client.ListReleases({ studyName }, node.metadata(), (err: grpc.ServiceError | null, r?: { releases: Listed[] }) => (err === null && r !== undefined ? resolve(r.releases) : reject(err)));
  });
}

async function downloadFile(node: ConformanceClient, studyName: string, version: number, fileName: string): Promise<{ bytes: Buffer; chunks: number }> {
  const call = node.client.DownloadReleaseFile({ studyName, version, fileName }, node.metadata());
  const parts: Buffer[] = [];
  for await (const m of call as AsyncIterable<{ data: Buffer }>) parts.push(m.data);
  return { bytes: Buffer.concat(parts), chunks: parts.length };
}

function reportPerformance(node: ConformanceClient, report: Record<string, unknown>): Promise<{ duplicate: boolean }> {
  return new Promise((resolve, reject) => {
    node.client.ReportReleasePerformance(report, node.metadata(), (err: grpc.ServiceError | null, r?: { duplicate: boolean }) => (err === null && r !== undefined ? resolve(r) : reject(err)));
  });
}

beforeAll(async () => {
  c = await startTestCoordinator({ perFile: true });
  creds = await enrol(c.address, await c.joinToken('site-a'), 'site-a');
  site = new ConformanceClient(c.address, creds.nodeId, creds.nodeCredential);
  outsider = await c.node('site-b');
  await site.openSession();
  const study = await c.startStudy(manifest({ rounds: 1 }));
  studyId = study.id;
  const train = await site.task('TASK_KIND_TRAIN', 1, study.id);
  const model = await site.download({ taskId: train.taskId });
  await site.upload(site.uploadOf(train, model, fromFloat32Le(model.payload).map((v, i) => v + (i % 2 === 0 ? 0.01 : -0.01)), 0, 40));
  // The release is made when the study completes, with no call from anyone: its 'change' event says so.
  const released = new Promise<void>((resolve) => {
    const onChange = (e: { kind: string; studyId?: string }): void => {
      if (e.kind !== 'release' || e.studyId !== study.id) return;
      c.app.coordinator.events.off('change', onChange);
      resolve();
    };
    c.app.coordinator.events.on('change', onChange);
  });
  const evaluate = await site.task('TASK_KIND_EVALUATE', 1, study.id);
  await site.reportEvaluation({ taskId: evaluate.taskId, studyId: study.id, round: 1, metrics: { numExamples: 40, loss: 0.6, accuracy: 0.7, auc: 0.72 } });
  await site.next((m) => m.study?.study?.studyId === study.id && m.study.study.state === 'STUDY_STATE_COMPLETED');
  await released;
  // Nothing left to make: the study has its release.
  expect(await c.app.coordinator.ensureReleases()).toEqual({ released: 1, failed: 0 });
}, 60_000);

afterAll(() => site?.close());

describe('ListReleases', () => {
  it('lists the release of a study the node took part in, with its envelope and files', async () => {
    const releases = await listReleases(site);
    expect(releases).toHaveLength(1);
    const r = releases[0]!;
    expect(r).toMatchObject({ studyName: 'conformance', version: 1, studyId, round: 1, aliases: [] });
    expect(r.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.files.map((f) => f.name)).toEqual([...RELEASE_FILES]);
    expect(JSON.parse(r.envelope.toString('utf8'))).toMatchObject({ payloadType: 'application/vnd.in-toto+json' });
    expect(await listReleases(site, 'conformance')).toHaveLength(1);
    expect(await listReleases(site, 'another-study')).toEqual([]);
  });

  it('lists nothing to a node that took no part in the study', async () => {
    expect(await listReleases(outsider)).toEqual([]);
  });

  it('refuses a study name that is not an identifier (INVALID_ARGUMENT) and a wrong credential (UNAUTHENTICATED)', async () => {
    expect(await failure(listReleases(site, 'Not A Name!'))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const bad = new ConformanceClient(c.address, site.nodeId, 'fnc_wrong');
    try {
      expect(await failure(listReleases(bad))).toMatchObject({ code: 'UNAUTHENTICATED' });
    } finally {
      bad.close();
    }
  });
});

describe('DownloadReleaseFile', () => {
  it('streams every file in chunks; the bundle verifies with the release key pinned at enrolment', async () => {
    const [r] = await listReleases(site);
    const files: Partial<ReleaseFiles> = {};
    for (const f of r!.files) {
      const { bytes } = await downloadFile(site, r!.studyName, r!.version, f.name);
      expect(bytes.length, f.name).toBe(f.size);
      expect(createHash('sha256').update(bytes).digest('hex'), f.name).toBe(f.sha256);
      files[f.name as keyof ReleaseFiles] = bytes;
    }
    const pinned = createPublicKey(creds.releasePublicKey);
    const { descriptor } = verifyRelease(JSON.parse(r!.envelope.toString('utf8')), files as ReleaseFiles, pinned, { studyName: 'conformance', version: 1 });
    expect(descriptor).toMatchObject({ round: 1, study: { id: studyId }, lineage: { signer: creds.releaseKeyFingerprint } });
    expect(createHash('sha256').update(files['manifest.json']!).digest('hex')).toBe(r!.manifestSha256);
  });

  it('answers NOT_FOUND for an unknown release or file, PERMISSION_DENIED to a node that took no part', async () => {
    expect(await failure(downloadFile(site, 'conformance', 9, 'model.json'))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await failure(downloadFile(site, 'conformance', 1, 'secrets.txt'))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await failure(downloadFile(outsider, 'conformance', 1, 'weights.bin'))).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(await failure(downloadFile(site, 'conformance', 1, '../etc/passwd'))).toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('ReportReleasePerformance', () => {
  const performance = { numExamples: 50, positives: 20, auc: 0.71, aucStandardError: 0.06, brier: 0.2, calibration: [] };
  const report = { studyName: 'conformance', version: 1, exportFingerprint: 'ab'.repeat(32), performance, measuredAtMs: Date.now() };

  it('records a report once per export: the same report again is a duplicate', async () => {
    expect(await reportPerformance(site, report)).toEqual({ duplicate: false });
    expect(await reportPerformance(site, report)).toEqual({ duplicate: true });
    expect(await reportPerformance(site, { ...report, exportFingerprint: 'cd'.repeat(32) })).toEqual({ duplicate: false });
    const stored = await c.app.coordinator.store.listReleasePerformance('conformance', 1);
    expect(stored.map((p) => p.exportFingerprint)).toEqual(['ab'.repeat(32), 'cd'.repeat(32)]);
  });

  it('refuses impossible figures (INVALID_ARGUMENT [INVALID_METRICS]), unknown releases (NOT_FOUND) and non-participants (PERMISSION_DENIED)', async () => {
    expect(await failure(reportPerformance(site, { ...report, performance: { ...performance, positives: 80 } }))).toMatchObject({ code: 'INVALID_ARGUMENT', errorCode: 'INVALID_METRICS' });
    expect(await failure(reportPerformance(site, { ...report, performance: undefined }))).toMatchObject({ code: 'INVALID_ARGUMENT', errorCode: 'INVALID_METRICS' });
    expect(await failure(reportPerformance(site, { ...report, version: 5 }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await failure(reportPerformance(outsider, report))).toMatchObject({ code: 'PERMISSION_DENIED' });
  });
});

describe('warm start from a release (manifest model.initialWeights)', () => {
  it('makes round 0 of a new study the pinned release weights, and refuses an unknown release or other weights, naming the field', async () => {
    const [r] = await listReleases(site);
    const weights = r!.files.find((f) => f.name === 'weights.bin')!;
    const { bytes } = await downloadFile(site, 'conformance', 1, 'weights.bin');
    const warm = (release: Record<string, unknown>) => {
      const m = manifest({ rounds: 1 });
      (m['model'] as Record<string, unknown>)['initialWeights'] = { release };
      return m;
    };
    const study = await c.startStudy(warm({ studyName: 'conformance', version: 1, weightsSha256: weights.sha256 }));
    // Round 0 as the admin API serves a committed model (the site has not taken part in this study yet).
    const res0 = await fetch(`${c.adminUrl}/api/v1/studies/${study.id}/rounds/0/model`, { headers: { authorization: `Bearer ${c.adminToken}` } });
    expect(res0.status).toBe(200);
    expect(Buffer.from(await res0.arrayBuffer()).equals(bytes)).toBe(true);
    expect(res0.headers.get('x-fedlhs-sha256')).toBe(weights.sha256);
    for (const [release, why] of [
      [{ studyName: 'conformance', version: 7, weightsSha256: weights.sha256 }, 'no release conformance v7'],
      [{ studyName: 'conformance', version: 1, weightsSha256: '0'.repeat(64) }, `has weights ${weights.sha256}, not the ${'0'.repeat(64)}`],
    ] as const) {
      const res = await c.admin<{ error: { code: string; message: string; details?: { path?: string } } }>('POST', '/api/v1/studies', { manifest: warm(release) });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'MANIFEST_INVALID', details: { path: 'model.initialWeights' } });
      expect(res.body.error.message).toContain(why);
    }
  });
});
