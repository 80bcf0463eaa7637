import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  RELEASE_FILES, canonicalManifestJson, isFedlhsError, manifestHash, parseManifest, verifyRelease,
  type Performance, type ReleaseFileName, type ReleaseFiles,
} from '@fedlhs/core';
import { CheckpointStore } from '../checkpoints.js';
import { loadOrCreateReleaseKey } from '../release-key.js';
import { SqliteStore } from '../sqlite-store.js';
import type { MetricRecord, ReleaseRecord, TaskRecord } from '../store.js';
import { LogSink } from '../test-support.js';
import { ReleaseBuilder } from './builder.js';
import { ReleaseDistribution } from './distribution.js';

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const SPECS = [{ name: 'dense/kernel', shape: [2, 1] }, { name: 'dense/bias', shape: [1] }];

function manifestOf(name: string, release?: unknown) {
  return parseManifest(JSON.stringify({
    apiVersion: 'fedlhs.v1', kind: 'Study', name, description: 'test study',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'dense', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 8 },
    rounds: 2, clients: { min: 1, max: 3, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
    data: { featureSpec: 'flat-table/v1', features: ['x0', 'x1'], label: 'y', minCellCount: 5 },
    aggregation: { strategy: 'fedavg' }, updateValidation: {},
    ...(release === undefined ? {} : { release }),
  }));
}

const perf = (n: number, auc: number): Performance => ({
  numExamples: n, positives: n / 2, auc, aucStandardError: 0.05, brier: 0.2, calibrationSlope: 1, calibrationIntercept: 0,
  calibration: Array.from({ length: 10 }, (_, b) => (b === 2 ? { count: n / 2, predictedSum: n / 10, observed: n / 4 } : b === 7 ? { count: n / 2, predictedSum: n * 0.35, observed: n / 4 } : { count: 0, predictedSum: 0, observed: 0 })),
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-release-'));
  dirs.push(dir);
  const store = new SqliteStore(join(dir, 'coordinator.db'));
  const checkpoints = new CheckpointStore(dir);
  closers.push(async () => {
    await checkpoints.blobs.close();
    await store.close();
  });
  const { key } = loadOrCreateReleaseKey(dir);
  const sink = new LogSink();
  let t = 1_700_000_000_000;
  const builder = new ReleaseBuilder({ store, checkpoints, releaseKey: key, log: pino(sink), now: () => t++, chunkBytes: 7 });
  const nodes = [['n1', 'site-a'], ['n2', 'site-b'], ['n3', 'site-c']] as const;
  for (const [id, siteName] of nodes) {
    await store.write([{ op: 'node.insert', n: { id, siteName, credentialHash: `h-${id}`, createdAt: 1, revokedAt: null, lastSeenAt: null, agentVersion: 'a', trainingBackend: 'cpu' } }], 'test');
  }
  /** A COMPLETED study of `rounds` committed rounds with the given global validation AUC per round (index = round - 1). */
  let clock = 0;
  const study = async (name: string, aucs: (number | undefined)[], state: 'COMPLETED' | 'FAILED' = 'COMPLETED', release?: unknown) => {
    const m = manifestOf(name, release);
    const id = `${name}-${Math.random().toString(16).slice(2, 8)}`;
    const began = ++clock;
    checkpoints.rememberSpecs(id, JSON.stringify(SPECS));
    await store.write([{ op: 'study.insert', s: { id, name, manifestJson: canonicalManifestJson(m), manifestHash: manifestHash(m), state: 'RUNNING', reason: null, lastCommittedRound: 0, strategyState: null, parameters: null, createdAt: began, endedAt: null, modelSpec: JSON.stringify(SPECS) } }], 'test');
    for (let round = 0; round <= aucs.length; round++) {
      const cp = checkpoints.promote(id, round, await checkpoints.writeCandidate(id, round, 1, [new Float32Array([round, round + 0.5, -round])]));
      const roundId = await store.insertRound({ studyId: id, round, attempt: 1, state: round === 0 ? 'COMMITTED' : 'EVALUATING', reason: null, startedAt: 1, endedAt: null, participants: 3, checkpointPath: round === 0 ? cp.path : null, checkpointSha256: round === 0 ? cp.sha256 : null });
      if (round === 0) continue;
      const task = (nodeId: string, kind: TaskRecord['kind']): TaskRecord => ({ id: `${id}-${round}-${kind}-${nodeId}`, roundId, studyId: id, round, attempt: 1, nodeId, kind, state: 'ASSIGNED', detail: null, modelSha256: cp.sha256, deadline: 9, createdAt: 1, endedAt: null });
      const tasks = [task('n1', 'TRAIN'), task('n2', 'TRAIN'), task('n1', 'EVALUATE'), task('n2', 'EVALUATE'), task('n3', 'EVALUATE')];
      await store.write([{ op: 'task.insert', tasks }, ...tasks.map((x) => ({ op: 'task.end' as const, id: x.id, to: 'ACCEPTED' as const, detail: null, at: 2 }))], 'test');
      const auc = aucs[round - 1];
      const metrics: MetricRecord[] = [
        { roundId, nodeId: 'n1', phase: 'evaluation', numExamples: 40, loss: 0.5, accuracy: 0.7, auc: 0.7, performance: JSON.stringify(perf(40, 0.7)) },
        { roundId, nodeId: 'n2', phase: 'evaluation', numExamples: 60, loss: 0.5, accuracy: 0.7, auc: 0.6, performance: JSON.stringify(perf(60, 0.6)) },
        ...(auc === undefined ? [] : [{ roundId, nodeId: null, phase: 'evaluation' as const, numExamples: 103, loss: 0.5, accuracy: 0.7, auc, performance: JSON.stringify(perf(100, auc)) }]),
        // A test figure that would choose another round if test rows were read to choose.
        { roundId, nodeId: 'n1', phase: 'test', numExamples: 40, loss: 0.1, accuracy: 0.9, auc: 0.99 - round * 0.01, performance: JSON.stringify(perf(40, 0.99 - round * 0.01)) },
        { roundId, nodeId: null, phase: 'test', numExamples: 103, loss: 0.1, accuracy: 0.9, auc: 0.99, performance: JSON.stringify(perf(100, 0.98)) },
      ];
      await store.commitRound(roundId, { path: cp.path, sha256: cp.sha256 }, metrics, null, 3);
    }
    await store.setStudyState(id, state, null, 100 + began);
    return id;
  };
  const filesOf = async (r: ReleaseRecord): Promise<ReleaseFiles> => {
    const dist = new ReleaseDistribution({ store, blobs: checkpoints.blobs, now: () => t });
    const out: Partial<ReleaseFiles> = {};
    for (const name of RELEASE_FILES) {
      const parts: Buffer[] = [];
      for await (const c of (await dist.readFile(r, name, 5)).chunks) parts.push(Buffer.from(c));
      out[name] = Buffer.concat(parts);
    }
    return out as ReleaseFiles;
  };
  return { store, checkpoints, key, sink, builder, study, filesOf };
}

describe('ReleaseBuilder', () => {
  it('releases the best-validation round, signed, and every file verifies; one byte changed in any file is refused (digest)', async () => {
    const { store, key, sink, builder, study, filesOf } = await setup();
    const id = await study('sepsis', [0.8, 0.7]);
    // A clinic too small to train: it approved the study (readiness COHORT_TOO_SMALL) and had no task.
    await store.write([
      { op: 'node.insert', n: { id: 'n4', siteName: 'site-d', credentialHash: 'h-n4', createdAt: 1, revokedAt: null, lastSeenAt: null, agentVersion: 'a', trainingBackend: 'cpu' } },
      { op: 'approval.record', studyId: id, nodeId: 'n4', manifestSha256: (await store.getStudy(id))!.manifestHash, at: 2 },
    ], 'test');
    const made = await builder.ensure(id);
    expect(made).toMatchObject({ studyName: 'sepsis', version: 1, studyId: id, round: 1, parentVersion: null });
    expect(made!.files.map((f) => f.name)).toEqual([...RELEASE_FILES]);
    expect(await store.releaseOfStudy(id)).toMatchObject({ version: 1, round: 1 });

    const files = await filesOf(made!);
    const envelope = JSON.parse(made!.envelope) as unknown;
    const { descriptor, predicate } = verifyRelease(envelope, files, key.publicKey, { studyName: 'sepsis', version: 1 });
    expect(predicate).toMatchObject({ studyName: 'sepsis', version: 1, studyId: id, round: 1 });
    expect(Buffer.from(files['manifest.json']).toString('utf8')).toBe((await store.getStudy(id))!.manifestJson);
    expect([...new Float32Array(Uint8Array.from(files['weights.bin']).buffer)]).toEqual([1, 1.5, -1]);
    expect(JSON.parse(Buffer.from(files['model.json']).toString('utf8'))).toMatchObject({ format: 'layers-model', weightsManifest: [{ paths: ['weights.bin'], weights: [{ name: 'dense/kernel', shape: [2, 1] }, { name: 'dense/bias', shape: [1] }] }] });
    expect(descriptor.selection).toMatchObject({ rule: 'best-validation-auc', warnings: [] });
    expect(descriptor.selection.candidates.map((c) => c.validationAuc)).toEqual([0.8, 0.7]);
    expect(descriptor.metrics.validation.sites.map((s) => s.site)).toEqual(['site-a', 'site-b']);
    expect(descriptor.metrics.validation.pooled).toMatchObject({ auc: 0.8, numExamples: 100 });
    expect(descriptor.metrics.validation.withheldSites).toBe(1);
    expect(descriptor.metrics.test.sites.map((s) => s.site)).toEqual(['site-a']);
    expect(descriptor.metrics.test.withheldSites).toBe(2);
    expect(descriptor.dataSummary).toMatchObject({ sites: 4, sitesThatTrained: 2 });
    expect(descriptor.dataSummary.perSite).toEqual([
      { site: 'site-a', validationExamples: 40, testExamples: 40 }, { site: 'site-b', validationExamples: 60, testExamples: null }, { site: 'site-c', validationExamples: null, testExamples: null },
    ]);
    expect(descriptor.normalization).toMatchObject({ method: 'none', features: [] });
    expect(descriptor.features).toMatchObject({ names: ['x0', 'x1'], label: 'y' });
    expect(descriptor.features.needs[0]).toMatch(/x0/);
    expect(descriptor.modelCard.intendedUse).toMatch(/Decision support.*"sepsis"/);
    expect(descriptor.modelCard.limitations.join(' ')).toMatch(/2 site\(s\) \(4 took part\)/);
    expect(descriptor.lineage).toMatchObject({ round: 1, parent: null, signer: key.fingerprint });
    expect(Buffer.from(files['model-card.md']).toString('utf8')).toMatch(/^# Model card: sepsis, release 1/);
    expect(sink.lines.find((l) => l['event'] === 'release.created')).toMatchObject({ studyName: 'sepsis', version: 1, round: 1, rule: 'best-validation-auc', fingerprint: key.fingerprint });

    for (const name of RELEASE_FILES as readonly ReleaseFileName[]) {
      const tampered = { ...files, [name]: Buffer.from(files[name]) };
      tampered[name][Math.floor(tampered[name].length / 2)]! ^= 1;
      let why: unknown;
      try {
        verifyRelease(envelope, tampered, key.publicKey);
      } catch (err) {
        why = isFedlhsError(err) ? (err.details as { why?: string; file?: string }) : err;
      }
      expect(why, name).toEqual({ why: 'digest', file: name });
    }
  });

  it('numbers versions per study name with the previous release as parent, and makes each study\'s release once', async () => {
    const { builder, study, store } = await setup();
    const first = await study('sepsis', [0.6, 0.7]);
    const second = await study('sepsis', [0.9, 0.9]);
    expect(await builder.ensureReleases()).toEqual({ released: 2, failed: 0 });
    const v2 = await store.releaseOfStudy(second);
    expect(v2).toMatchObject({ version: 2, parentVersion: 1, round: 2 });
    expect((await store.releaseOfStudy(first))!.version).toBe(1);
    expect(await builder.ensureReleases()).toEqual({ released: 2, failed: 0 });
    expect(await store.listReleases('sepsis', 10)).toHaveLength(2);
  });

  it('falls back loudly to the last round when no round has a validation AUC', async () => {
    const { builder, study, sink, filesOf, key } = await setup();
    const id = await study('nofigures', [undefined, undefined]);
    const made = await builder.ensure(id);
    expect(made).toMatchObject({ round: 2 });
    const { descriptor } = verifyRelease(JSON.parse(made!.envelope), await filesOf(made!), key.publicKey);
    expect(descriptor.selection.warnings[0]).toMatch(/no committed round has a federated validation AUC/);
    expect(descriptor.modelCard.limitations.some((l) => /no committed round has a federated validation AUC/.test(l))).toBe(true);
    expect(sink.lines.find((l) => l['event'] === 'release.selection_fallback')).toMatchObject({ level: 40, round: 2 });
  });

  it('gives a FAILED study no release, and logs a failed build without throwing (retried later)', async () => {
    const { builder, study, store, sink, checkpoints } = await setup();
    const failed = await study('failedstudy', [0.8], 'FAILED');
    expect(await builder.ensure(failed)).toBeUndefined();
    expect(await store.releaseOfStudy(failed)).toBeUndefined();
    const broken = await study('broken', [0.8]);
    checkpoints.rememberSpecs(broken, JSON.stringify([{ name: 'other', shape: [5] }]));
    expect(await builder.ensure(broken)).toBeUndefined();
    expect(sink.lines.find((l) => l['event'] === 'release.failed')).toMatchObject({ level: 50, studyId: broken });
    expect(builder.failure(broken)?.message).toMatch(/the model needs 20/);
    // Tried again (as on storage recovery and the coordinator's timer): still failing, then made once the cause is gone.
    expect(await builder.retryFailed()).toBe(1);
    checkpoints.rememberSpecs(broken, JSON.stringify(SPECS));
    expect(await builder.retryFailed()).toBe(0);
    expect(await store.releaseOfStudy(broken)).toMatchObject({ version: 1 });
    expect(builder.failure(broken)).toBeUndefined();
    expect(await builder.ensureReleases()).toEqual({ released: 1, failed: 0 });
  });
});
