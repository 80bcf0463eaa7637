import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { RELEASE_FILES, RELEASE_FORMAT, canonicalManifestJson, keyId, validateManifest, layersModelJson, signRelease, type ReleaseDescriptor, type ReleaseFiles, type ReleasePredicate } from '@fedlhs/core';
import type { ListedRelease } from './fetch.js';

/**
 * Test support for the release code (unit and integration tests; not used by the agent):
 * a signed release bundle built here with core's signRelease and a fresh Ed25519 key, and a
 * fake federation client serving it.
 */

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A generated release key and its pinned form. */
export function releaseKeyPair(): { privateKey: KeyObject; publicKey: KeyObject; pinned: { publicPem: string; fingerprint: string } } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, pinned: { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), fingerprint: keyId(publicKey) } };
}

/** The manifest of the test study: three features x1..x3, one sigmoid unit. */
export function testManifest(name: string, normalization: 'none' | 'federated-zscore' | 'local-zscore' = 'federated-zscore'): Record<string, unknown> {
  return {
    apiVersion: 'fedlhs.v1', kind: 'Study', name, description: 'release test study',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid', batch_input_shape: [null, 3] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
    rounds: 2, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
    data: { featureSpec: 'flat-table/v1', features: ['x1', 'x2', 'x3'], label: 'label', holdoutFraction: 0.5, normalization, minCellCount: 5 },
    aggregation: { strategy: 'fedavg' }, seed: 7,
  };
}

export interface TestRelease {
  studyName: string;
  version: number;
  files: ReleaseFiles;
  envelope: Buffer;
  predicate: ReleasePredicate;
  manifestSha256: string;
}

/** A signed release of `studyName` version `version` (weights: `weights`, default a fixed small model). */
export function buildRelease(o: { studyName: string; version: number; privateKey: KeyObject; normalization?: 'none' | 'federated-zscore' | 'local-zscore'; weights?: number[]; round?: number; patchDescriptor?: (d: ReleaseDescriptor) => void }): TestRelease {
  const manifestText = canonicalManifestJson(validateManifest(testManifest(o.studyName, o.normalization)));
  const manifest = Buffer.from(manifestText, 'utf8');
  const manifestSha256 = sha256(manifest);
  const tensors = [{ name: 'output/kernel', shape: [3, 1] }, { name: 'output/bias', shape: [1] }];
  const values = Float32Array.from(o.weights ?? [1.2, -0.8, 0.5, -0.2]);
  const weights = Buffer.alloc(values.length * 4);
  values.forEach((x, i) => weights.writeFloatLE(x, i * 4));
  const round = o.round ?? 2;
  const studyId = `st-${o.studyName}-${o.version}`;
  const createdAt = '2026-11-30T06:00:00.000Z';
  const perf = { numExamples: 120, positives: 40, auc: 0.78, aucInterval: [0.7, 0.86] as [number, number], brier: 0.18, calibrationSlope: 0.95, calibrationIntercept: -0.05, calibration: [] };
  const part = { pooled: perf, sites: [{ site: 'north', performance: perf }], withheldSites: 0, sitesWithoutFigures: [] };
  const descriptor: ReleaseDescriptor = {
    format: RELEASE_FORMAT,
    study: { name: o.studyName, id: studyId, manifestSha256, description: 'release test study' },
    version: o.version, round, createdAt,
    selection: { rule: 'best-validation-auc', reason: `best validation AUC 0.780 of 2 rounds (round ${round})`, warnings: [], candidates: [{ round, validationAuc: 0.78, validationLoss: 0.5, evaluatedSites: 1 }] },
    model: { format: 'tfjs-layers', inputs: 3, tensors, weightsSha256: sha256(weights), output: 'risk' },
    features: { featureSpec: 'flat-table/v1', names: ['x1', 'x2', 'x3'], label: 'label', needs: ['x1: a number per patient', 'x2: a number per patient', 'x3: a number per patient'] },
    normalization: (o.normalization ?? 'federated-zscore') === 'federated-zscore'
      ? { method: 'federated-zscore', features: ['x1', 'x2', 'x3'].map((name) => ({ name, mean: 0, std: 1, impute: 0 })), note: 'the study\'s federated parameters' }
      : { method: o.normalization as 'none' | 'local-zscore', features: [], note: 'derived by each clinic from its own training split' },
    riskBands: [{ name: 'low', upTo: 0.1 }, { name: 'moderate', upTo: 0.2 }, { name: 'high', upTo: 1 }],
    metrics: { validation: part, test: part, minCellCount: 5 },
    dataSummary: { sites: 1, sitesThatTrained: 1, perSite: [{ site: 'north', validationExamples: 60, testExamples: 60 }], features: [], note: '' },
    lineage: { studyId, round, checkpointSha256: sha256(weights), parent: null, signer: 'test' },
    modelCard: { intendedUse: 'tests only', outcome: 'label', population: 'synthetic', limitations: ['synthetic data'] },
  };
  o.patchDescriptor?.(descriptor);
  const files: ReleaseFiles = {
    'manifest.json': manifest,
    'model.json': layersModelJson((testManifest(o.studyName).model as { topology: Record<string, unknown> }).topology, tensors),
    'weights.bin': weights,
    'release.json': Buffer.from(JSON.stringify(descriptor), 'utf8'),
    'model-card.md': Buffer.from(`# ${o.studyName} v${o.version}\n\nTests only.\n`, 'utf8'),
  };
  const predicate: ReleasePredicate = { studyName: o.studyName, version: o.version, studyId, round, manifestSha256, createdAt };
  const envelope = Buffer.from(JSON.stringify(signRelease(files, predicate, o.privateKey)), 'utf8');
  return { studyName: o.studyName, version: o.version, files, envelope, predicate, manifestSha256 };
}

/** The release as ListReleases lists it. */
export function listed(r: TestRelease, aliases: string[] = []): ListedRelease {
  return {
    studyName: r.studyName, version: r.version, studyId: r.predicate.studyId, round: r.predicate.round, manifestSha256: r.manifestSha256, envelope: r.envelope,
    files: RELEASE_FILES.map((name) => ({ name, sha256: sha256(r.files[name]), size: r.files[name].length })), aliases, createdAtMs: 0,
  };
}

/**
 * A fake federation client: ListReleases answers `releases()`, DownloadReleaseFile streams
 * `served(studyName, version, file)` in 7-byte chunks (or fails with `error`). Calls are counted.
 */
export function fakeClient(o: { releases: () => ListedRelease[]; served: (studyName: string, version: number, file: string) => Buffer | undefined; listError?: grpc.status; downloadFails?: (file: string) => boolean }) {
  const calls = { list: 0, download: [] as string[], reports: [] as Record<string, unknown>[] };
  const client = {
    ListReleases(_req: unknown, _md: unknown, _opts: unknown, cb: (err: grpc.ServiceError | null, r?: { releases: ListedRelease[] }) => void) {
      calls.list++;
      if (o.listError !== undefined) {
        const err = Object.assign(new Error(`${o.listError} fake`), { code: o.listError, details: 'fake', metadata: new grpc.Metadata() });
        setImmediate(() => cb(err));
      } else setImmediate(() => cb(null, { releases: o.releases() }));
      return {};
    },
    DownloadReleaseFile(req: { studyName: string; version: number; fileName: string }) {
      calls.download.push(`${req.studyName}@${req.version}/${req.fileName}`);
      if (o.downloadFails?.(req.fileName) === true) {
        const failing = new Readable({ read() { this.destroy(Object.assign(new Error('14 UNAVAILABLE: fake connection lost'), { code: grpc.status.UNAVAILABLE })); } });
        return Object.assign(failing, { cancel: () => undefined });
      }
      const bytes = o.served(req.studyName, req.version, req.fileName) ?? Buffer.alloc(0);
      const chunks: { data: Buffer }[] = [];
      for (let i = 0; i < bytes.length; i += 7) chunks.push({ data: bytes.subarray(i, i + 7) });
      return Object.assign(Readable.from(chunks), { cancel: () => undefined });
    },
    ReportReleasePerformance(req: Record<string, unknown>, _md: unknown, _opts: unknown, cb: (err: grpc.ServiceError | null, r?: { duplicate: boolean }) => void) {
      calls.reports.push(req);
      setImmediate(() => cb(null, { duplicate: false }));
      return {};
    },
  };
  return { client: client as never, calls };
}

/** Writes `r` as a kept release into `stateDir` (what the fetcher writes after verifying it). */
export function writeKept(stateDir: string, r: TestRelease, o: { aliases?: string[]; fingerprint?: string } = {}): string {
  const dir = join(stateDir, 'releases', r.studyName, String(r.version));
  mkdirSync(dir, { recursive: true });
  for (const name of RELEASE_FILES) writeFileSync(join(dir, name), r.files[name]);
  writeFileSync(join(dir, 'envelope.json'), r.envelope);
  writeFileSync(join(dir, 'kept.json'), JSON.stringify({ keptAt: '2026-11-30T06:10:00.000Z', fingerprint: o.fingerprint ?? 'test', aliases: o.aliases ?? [], envelopeSha256: sha256(r.envelope) }));
  return dir;
}

/** A flat-table CSV of the test study's shape (record_id, x1..x3, label) whose label follows the test model. */
export function writeTestCsv(path: string, rows: number, seed = 1): void {
  let s = seed >>> 0;
  const random = (): number => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x1_0000_0000;
  };
  const lines = ['record_id,x1,x2,x3,label'];
  for (let i = 0; i < rows; i++) {
    const x = [random() * 4 - 2, random() * 4 - 2, random() * 4 - 2];
    const z = 1.2 * x[0]! - 0.8 * x[1]! + 0.5 * x[2]! - 0.2;
    lines.push([`p${seed}-${i}`, ...x.map((v) => v.toFixed(4)), random() < 1 / (1 + Math.exp(-z)) ? 1 : 0].join(','));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}
