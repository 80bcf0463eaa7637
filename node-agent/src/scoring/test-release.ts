/**
 * Test support (not used by the agent): a signed release of a given manifest kept and
 * deployed in a state directory exactly as the agent lays one out, with its own release key,
 * so tests of `score` and the scoring service go through loadDeployedRelease like the agent.
 */
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  RELEASE_FORMAT,
  canonicalManifestJson,
  keyId,
  layersModelJson,
  releasePolicy,
  signRelease,
  studyFeatureNames,
  validateManifest,
  type ReleaseDescriptor,
  type ReleaseFiles,
} from '@fedlhs/core';
import { initialWeights } from '@fedlhs/model';
import { deployedPath, keptDir, readDeployed, type DeployedFile } from '../releases/local-releases.js';

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

/** Options of `writeTestRelease`. */
export interface TestReleaseOptions {
  /** A study manifest (validated here). */
  manifest: unknown;
  version?: number;
  /** Weights; default: the manifest's seeded initial weights. */
  weights?: Float32Array;
  /** Per feature (in order) mean, std, impute of the federated normalisation; default 0, 1, 0. */
  normalization?: { mean: number; std: number; impute: number }[];
  riskBands?: { name: string; upTo: number }[];
  /** The release key to sign with (several releases, one key); default: a new one. */
  privateKey?: KeyObject;
}

/** Writes and deploys a signed release under `stateDir`; returns the pinned key (PEM) and what was written. */
export async function writeTestRelease(stateDir: string, options: TestReleaseOptions): Promise<{ pinnedPem: string; studyName: string; version: number; files: ReleaseFiles; envelope: unknown }> {
  const manifest = validateManifest(options.manifest);
  const manifestJson = canonicalManifestJson(manifest);
  const version = options.version ?? 1;
  const names = studyFeatureNames(manifest);
  const initial = await initialWeights({ topology: manifest.model.topology, loss: manifest.training.loss, optimizer: manifest.training.optimizer, seed: manifest.seed });
  const weights = options.weights ?? initial.weights;
  const weightsBin = new Uint8Array(weights.length * 4);
  const view = new DataView(weightsBin.buffer);
  weights.forEach((w, i) => view.setFloat32(i * 4, w, true));
  const privateKey = options.privateKey ?? generateKeyPairSync('ed25519').privateKey;
  const publicKey = createPublicKey(privateKey);
  const emptyPart = { pooled: null, sites: [], withheldSites: 0, sitesWithoutFigures: [] };
  const descriptor: ReleaseDescriptor = {
    format: RELEASE_FORMAT,
    study: { name: manifest.name, id: 'study-test', manifestSha256: sha256(manifestJson), description: manifest.description },
    version,
    round: 3,
    createdAt: '2026-11-30T00:00:00.000Z',
    selection: { rule: 'best-validation-auc', reason: 'test', warnings: [], candidates: [] },
    model: { format: 'tfjs-layers', inputs: names.length, tensors: initial.specs.map((s) => ({ name: s.name, shape: [...s.shape] })), weightsSha256: sha256(weightsBin), output: 'risk' },
    features: { featureSpec: manifest.data.featureSpec, names, label: manifest.data.label ?? 'outcome', needs: [] },
    normalization: {
      method: 'federated-zscore',
      features: names.map((name, j) => ({ name, ...(options.normalization?.[j] ?? { mean: 0, std: 1, impute: 0 }) })),
      note: 'test',
    },
    riskBands: options.riskBands ?? [...releasePolicy(manifest).riskBands],
    metrics: { validation: emptyPart, test: emptyPart, minCellCount: 10 },
    dataSummary: { sites: 1, sitesThatTrained: 1, perSite: [], features: [], note: '' },
    lineage: { studyId: 'study-test', round: 3, checkpointSha256: sha256(weightsBin), parent: null, signer: keyId(publicKey) },
    modelCard: { intendedUse: 'testing', outcome: 'incident type 2 diabetes within 3 years', population: 'adults', limitations: [] },
  };
  const files: ReleaseFiles = {
    'manifest.json': Buffer.from(manifestJson, 'utf8'),
    'model.json': layersModelJson(manifest.model.topology, initial.specs),
    'weights.bin': weightsBin,
    'release.json': Buffer.from(JSON.stringify(descriptor), 'utf8'),
    'model-card.md': Buffer.from('# test model card\n', 'utf8'),
  };
  const envelope = signRelease(files, { studyName: manifest.name, version, studyId: 'study-test', round: 3, manifestSha256: sha256(manifestJson), createdAt: descriptor.createdAt }, privateKey);
  const dir = keptDir(stateDir, manifest.name, version);
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  writeFileSync(join(dir, 'envelope.json'), JSON.stringify(envelope));
  writeFileSync(join(dir, 'kept.json'), JSON.stringify({ keptAt: descriptor.createdAt, fingerprint: keyId(publicKey), aliases: [] }));
  const deployment = { studyName: manifest.name, version, action: 'deploy' as const, at: descriptor.createdAt, by: 'test' };
  const deployed: DeployedFile = existsSync(deployedPath(stateDir)) ? readDeployed(stateDir) : { format: 'fedlhs.deployed/v1', current: {}, history: [] };
  deployed.current[manifest.name] = deployment;
  deployed.history.push(deployment);
  writeFileSync(deployedPath(stateDir), JSON.stringify(deployed));
  return { pinnedPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), studyName: manifest.name, version, files, envelope };
}

/** A small cohort/v1 study (4 features, logistic model) for scoring tests. */
export function testCohortManifest(name = 'test-t2d'): Record<string, unknown> {
  return {
    apiVersion: 'fedlhs.v1', kind: 'Study', name, description: 'Scoring test study.',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid', batch_input_shape: [null, 4] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
    rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
    data: {
      featureSpec: 'cohort/v1',
      cohort: {
        index: { classes: ['outpatient'], from: '2015-01-01', to: '2018-12-31' },
        eligibility: { minAge: 18, maxAge: 90 },
        lookbackDays: 1095,
        features: [
          { name: 'age', type: 'age' },
          { name: 'female', type: 'sex', value: 'female' },
          { name: 'glucose', type: 'latest', system: 'LOINC', codes: ['2345-7'], unit: 'mg/dL', range: [20, 600] },
          { name: 'visits', type: 'count', kind: 'encounter' },
        ],
        label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 1095 },
      },
      normalization: 'federated-zscore',
    },
    aggregation: { strategy: 'fedavg' }, seed: 7,
  };
}

/** Weights and normalisation that make risk rise with age and glucose, for `testCohortManifest`. */
export const TEST_MODEL = {
  weights: Float32Array.from([0.8, -0.2, 1.2, 0.1, -1.5]),
  normalization: [{ mean: 50, std: 15, impute: 50 }, { mean: 0.5, std: 0.5, impute: 0.5 }, { mean: 100, std: 20, impute: 100 }, { mean: 2, std: 2, impute: 2 }],
};

/**
 * One patient's FHIR R4 resources: a wellness visit on `visit`, a glucose measurement a month
 * before (in `unit`, default mg/dL; undefined: none), the outcome on `outcome` if given.
 */
export function testPatientResources(id: string, o: { birthDate: string; gender: 'female' | 'male'; visit?: string; glucose?: number; unit?: string; outcome?: string }): Record<string, unknown>[] {
  const subject = { reference: `Patient/${id}` };
  const out: Record<string, unknown>[] = [{ resourceType: 'Patient', id, birthDate: o.birthDate, gender: o.gender }];
  if (o.visit !== undefined) {
    out.push({ resourceType: 'Encounter', id: `${id}-e1`, status: 'finished', subject, class: { code: 'AMB' }, type: [{ coding: [{ system: 'http://snomed.info/sct', code: '162673000' }] }], period: { start: `${o.visit}T09:00:00Z` } });
    if (o.glucose !== undefined) {
      const day = new Date(Date.parse(`${o.visit}T00:00:00Z`) - 30 * 86_400_000).toISOString().slice(0, 10);
      const unit = o.unit ?? 'mg/dL';
      out.push({ resourceType: 'Observation', id: `${id}-o1`, status: 'final', subject, effectiveDateTime: day, code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] }, valueQuantity: { value: o.glucose, unit, code: unit, system: 'http://unitsofmeasure.org' } });
    }
  }
  if (o.outcome !== undefined) {
    out.push({ resourceType: 'Condition', id: `${id}-c1`, subject, onsetDateTime: o.outcome, code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] } });
  }
  return out;
}
