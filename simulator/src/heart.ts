import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateManifest, type StudyManifest } from '@fedlhs/core';
import { readFlatTable, splitDataset } from '@fedlhs/ehr';
import { initBackend } from '@fedlhs/model';
import type { ManagedProcess } from '@fedlhs/testing';
import { asMatrix, concat, normalized, trainCentral, withWeights, zscoreFrom, type Matrix } from './baselines.js';
import { assess } from './evaluation.js';
import { enrolAgent, readCommittedModel, startAgent, startCoordinator, startStudy, waitForStudyEnd } from './local-network.js';

/** The four hospitals, their files and FLamby's center numbers. */
export const HEART_SITES = [
  { center: 0, name: 'cleveland', title: 'Cleveland Clinic Foundation', file: 'processed.cleveland.data' },
  { center: 1, name: 'hungary', title: 'Hungarian Institute of Cardiology, Budapest', file: 'processed.hungarian.data' },
  { center: 2, name: 'switzerland', title: 'University Hospital, Zurich / Basel', file: 'processed.switzerland.data' },
  { center: 3, name: 'va', title: 'V.A. Medical Center, Long Beach, CA', file: 'processed.va.data' },
] as const;

/** FLamby's 13 features after dropping slope/ca/thal and one-hot encoding cp and restecg (first level dropped). */
export const HEART_FEATURES = ['age', 'sex', 'trestbps', 'chol', 'fbs', 'thalach', 'exang', 'oldpeak', 'cp_2', 'cp_3', 'cp_4', 'restecg_1', 'restecg_2'];

/** Published FLamby Fed-Heart-Disease results (mean per-site test accuracy). */
export const FLAMBY_PUBLISHED = {
  pooled: 0.735,
  local: { cleveland: 0.722, hungary: 0.629, switzerland: 0.567, va: 0.637 } as Record<string, number>,
  fedavg: 0.685,
  fedavgSd: 0.025,
};

export const HEART_CREDIT =
  'UCI Heart Disease data (CC BY 4.0). Principal investigators: Andras Janosi, M.D. (Hungarian Institute of Cardiology, Budapest); ' +
  'William Steinbrunn, M.D. (University Hospital, Zurich); Matthias Pfisterer, M.D. (University Hospital, Basel); ' +
  'Robert Detrano, M.D., Ph.D. (V.A. Medical Center, Long Beach and Cleveland Clinic Foundation). Benchmark protocol: FLamby (owkin/FLamby, NeurIPS 2022).';

/**
 * Writes each hospital's flat table following FLamby: attributes 11-13 dropped, rows with a
 * missing value dropped, cp and restecg one-hot encoded, label num > 0, and FLamby's own
 * train/test assignment (by file line) in a `set` column. Fails loudly if the data is absent.
 */
export function prepareHeartData(dataDir: string, outDir: string): { site: string; path: string; train: number; test: number }[] {
  const splitPath = join(dataDir, 'flamby_heart_split.csv');
  if (!existsSync(splitPath)) throw new Error(`heart-disease data not found: ${splitPath} is missing (expected ../shared/data/heart-disease)`);
  const split = new Map<string, { set: string; label: number }>();
  for (const line of readFileSync(splitPath, 'utf8').trim().split('\n').slice(1)) {
    const [center, , fileLine, set, label] = line.split(',');
    split.set(`${center}:${fileLine}`, { set: set!, label: Number(label) });
  }
  mkdirSync(outDir, { recursive: true });
  return HEART_SITES.map((site) => {
    const lines = readFileSync(join(dataDir, site.file), 'utf8').split('\n');
    const rows = [['record_id', ...HEART_FEATURES, 'label', 'set'].join(',')];
    let train = 0;
    let test = 0;
    lines.forEach((line, i) => {
      const entry = split.get(`${site.center}:${i + 1}`);
      if (entry === undefined || line.trim() === '') return;
      const v = line.trim().split(',');
      const kept = v.slice(0, 10);
      if (kept.some((x) => x === '?')) throw new Error(`${site.file} line ${i + 1} is in FLamby's split but has a missing value`);
      const [age, sex, cp, trestbps, chol, fbs, restecg, thalach, exang, oldpeak] = kept.map(Number) as number[];
      const label = Number(v[13]) > 0 ? 1 : 0;
      if (label !== entry.label) throw new Error(`${site.file} line ${i + 1}: label ${label} disagrees with FLamby's ${entry.label}`);
      rows.push([`${site.name}-${i + 1}`, age, sex, trestbps, chol, fbs, thalach, exang, oldpeak, cp === 2 ? 1 : 0, cp === 3 ? 1 : 0, cp === 4 ? 1 : 0, restecg === 1 ? 1 : 0, restecg === 2 ? 1 : 0, label, entry.set].join(','));
      if (entry.set === 'train') train++;
      else test++;
    });
    const path = join(outDir, `${site.name}.csv`);
    writeFileSync(path, `${rows.join('\n')}\n`);
    return { site: site.name, path, train, test };
  });
}

/** FLamby's federated protocol as a fedlhs manifest: logistic regression, 15 rounds × 100 local SGD steps, batch 4. */
export function heartManifest(seed: number, rounds = 15): Record<string, unknown> {
  return {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: `fed-heart-disease-seed-${seed}`,
    description: 'FLamby Fed-Heart-Disease: logistic regression, FedAvg, per-site z-scoring, FLamby train/test split.',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'logreg', layers: [{ class_name: 'Dense', config: { name: 'logit', units: 1, activation: 'sigmoid', batch_input_shape: [null, 13] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.001 }, localEpochs: 1, localSteps: 100, batchSize: 4 },
    rounds,
    clients: { min: 4, max: 4, quorum: 4 },
    deadlines: { roundSeconds: 300, evaluationSeconds: 120, maxRoundAttempts: 3 },
    data: { featureSpec: 'flat-table/v1', features: HEART_FEATURES, label: 'label', splitColumn: 'set', normalization: 'local-zscore', holdoutFraction: 0.34, minCellCount: 0 },
    aggregation: { strategy: 'fedavg' },
    seed,
  };
}

export interface HeartReport {
  kind: 'heart';
  createdAt: string;
  seeds: number[];
  backend: string;
  sites: { site: string; train: number; test: number }[];
  /** Accuracy per method, per site test set, one entry per seed. */
  accuracy: { method: string; perSite: Record<string, number[]>; average: number[] }[];
  published: typeof FLAMBY_PUBLISHED;
  credit: string;
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

/**
 * Reproduces the FLamby Fed-Heart-Disease protocol through the real coordinator and agents
 * (each hospital an agent reading its own flat table), with pooled and local baselines trained
 * centrally (Adam, lr 1e-3, batch 4, 50 epochs), all scored by accuracy on each site's test set.
 */
export async function runHeartBenchmark(options: { dataDir: string; out: string; seeds: number[]; rounds?: number; log: (s: string) => void }): Promise<HeartReport> {
  rmSync(options.out, { recursive: true, force: true });
  const backend = await initBackend('auto');
  const sites = prepareHeartData(options.dataDir, join(options.out, 'sites'));
  options.log(`prepared ${sites.map((s) => `${s.site} ${s.train}/${s.test}`).join(', ')} (train/test rows)`);
  const names = HEART_FEATURES;
  const manifests = options.seeds.map((seed) => validateManifest(heartManifest(seed, options.rounds)));
  const first: StudyManifest = manifests[0]!;
  const data = await Promise.all(sites.map(async (s) => splitDataset(await readFlatTable(s.path, { features: names, label: 'label', keyColumn: 'record_id', splitColumn: 'set' }), first.seed, 0.34)));
  const trains = data.map((d) => asMatrix(d.train));
  const tests = data.map((d) => asMatrix(d.holdout));
  const own = trains.map((t) => zscoreFrom([t], names));
  const accuracy = (scores: Float32Array, m: Matrix): number => assess(scores, m.y).accuracy;

  const results = new Map<string, { perSite: Record<string, number[]>; average: number[] }>();
  const add = (method: string, perSite: number[]): void => {
    const entry = results.get(method) ?? { perSite: Object.fromEntries(sites.map((s) => [s.site, [] as number[]])), average: [] };
    perSite.forEach((a, i) => entry.perSite[sites[i]!.site]!.push(a));
    entry.average.push(mean(perSite));
    results.set(method, entry);
  };
  const scoreEverySite = async (predict: (x: Float32Array) => Promise<Float32Array>): Promise<number[]> =>
    Promise.all(tests.map(async (t, i) => accuracy(await predict(normalized(t, names, own[i]).x), t)));

  // Federated: one coordinator, four hospital agents, one study per seed.
  const net = join(options.out, 'network');
  const coordinator = await startCoordinator({ dataDir: join(net, 'coordinator'), heartbeatIntervalMs: 1000, selectionGraceMs: 200, env: { FEDLHS_LOG_LEVEL: 'info' } });
  const agents: ManagedProcess[] = [];
  try {
    for (const s of sites) {
      const agent = { name: s.site, stateDir: join(net, s.site), dataPath: s.path, coordinator: coordinator.address, autoApprove: true, minCohort: 20, env: { FEDLHS_LOG_LEVEL: 'info', FEDLHS_DATA_KEY_COLUMN: 'record_id' } };
      await enrolAgent(coordinator, agent);
      agents.push(startAgent(agent));
    }
    for (const [k, seed] of options.seeds.entries()) {
      const study = await startStudy(coordinator, heartManifest(seed, options.rounds));
      const detail = await waitForStudyEnd(coordinator, study.id, 3_600_000);
      if (detail.state !== 'COMPLETED') throw new Error(`federated study for seed ${seed} ended ${detail.state}`);
      const model = await withWeights(manifests[k]!, readCommittedModel(coordinator, study.id, detail.lastCommittedRound));
      const perSite = await scoreEverySite(model.predict);
      model.dispose();
      add('fedavg', perSite);
      options.log(`seed ${seed}: FedAvg (${detail.lastCommittedRound} rounds over gRPC) mean accuracy ${mean(perSite).toFixed(3)} [${perSite.map((a) => a.toFixed(3)).join(', ')}]`);
    }
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await coordinator.stop();
  }

  // Pooled and local baselines, FLamby's centralised settings.
  const adam = { name: 'adam' as const, learningRate: 0.001 };
  for (const seed of options.seeds) {
    const pooled = await trainCentral(first, concat(trains.map((t, i) => normalized(t, names, own[i])), names.length), { epochs: 50, batchSize: 4, seed, optimizer: adam });
    const pooledAcc = await scoreEverySite(pooled.predict);
    pooled.dispose();
    add('pooled', pooledAcc);
    for (const [i, s] of sites.entries()) {
      const local = await trainCentral(first, normalized(trains[i]!, names, own[i]), { epochs: 50, batchSize: 4, seed, optimizer: adam });
      add(`local ${s.site}`, await scoreEverySite(local.predict));
      local.dispose();
    }
    options.log(`seed ${seed}: pooled mean accuracy ${mean(pooledAcc).toFixed(3)}`);
  }
  return {
    kind: 'heart',
    createdAt: new Date().toISOString(),
    seeds: options.seeds,
    backend: backend.backend,
    sites: sites.map((s) => ({ site: s.site, train: s.train, test: s.test })),
    accuracy: [...results].map(([method, r]) => ({ method, ...r })),
    published: FLAMBY_PUBLISHED,
    credit: HEART_CREDIT,
  };
}
