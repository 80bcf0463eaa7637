import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FedlhsError, STRATEGY_NAMES, validateManifest, validateStrategyConfig, type StrategyName } from '@fedlhs/core';
import { readFlatTable, splitDataset } from '@fedlhs/ehr';
import { initBackend } from '@fedlhs/model';
import type { ManagedProcess } from '@fedlhs/testing';
import { asMatrix, concat, normalized, trainCentral, withWeights, zscoreFrom, type Matrix } from './baselines.js';
import { assess } from './evaluation.js';
import { committedSha256, enrolAgent, readCommittedModel, startAgent, startCoordinator, startStudy, waitForStudyEnd, type CoordinatorHandle, type StudyDetail } from './local-network.js';

/** The four hospitals, their files and FLamby's center numbers. */
export const HEART_SITES = [
  { center: 0, name: 'cleveland', title: 'Cleveland Clinic Foundation', file: 'processed.cleveland.data' },
  { center: 1, name: 'hungary', title: 'Hungarian Institute of Cardiology, Budapest', file: 'processed.hungarian.data' },
  { center: 2, name: 'switzerland', title: 'University Hospital, Zurich / Basel', file: 'processed.switzerland.data' },
  { center: 3, name: 'va', title: 'V.A. Medical Center, Long Beach, CA', file: 'processed.va.data' },
] as const;

/** FLamby's 13 features after dropping slope/ca/thal and one-hot encoding cp and restecg (first level dropped). */
export const HEART_FEATURES = ['age', 'sex', 'trestbps', 'chol', 'fbs', 'thalach', 'exang', 'oldpeak', 'cp_2', 'cp_3', 'cp_4', 'restecg_1', 'restecg_2'];

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
  if (!existsSync(splitPath)) throw new FedlhsError('DATA_INVALID', `heart-disease data not found: ${splitPath} is missing (expected ../shared/data/heart-disease)`, { details: { file: splitPath } });
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
      if (kept.some((x) => x === '?')) throw new FedlhsError('DATA_INVALID', `${site.file} line ${i + 1} is in FLamby's split but has a missing value`, { details: { file: site.file, line: i + 1 } });
      const [age, sex, cp, trestbps, chol, fbs, restecg, thalach, exang, oldpeak] = kept.map(Number) as number[];
      const label = Number(v[13]) > 0 ? 1 : 0;
      if (label !== entry.label) {
        throw new FedlhsError('DATA_INVALID', `${site.file} line ${i + 1}: label ${label} disagrees with FLamby's ${entry.label}`, { details: { file: site.file, line: i + 1 } });
      }
      rows.push([`${site.name}-${i + 1}`, age, sex, trestbps, chol, fbs, thalach, exang, oldpeak, cp === 2 ? 1 : 0, cp === 3 ? 1 : 0, cp === 4 ? 1 : 0, restecg === 1 ? 1 : 0, restecg === 2 ? 1 : 0, label, entry.set].join(','));
      if (entry.set === 'train') train++;
      else test++;
    });
    const path = join(outDir, `${site.name}.csv`);
    writeFileSync(path, `${rows.join('\n')}\n`);
    return { site: site.name, path, train, test };
  });
}

/** FLamby's protocol constants (flamby/datasets/fed_heart_disease/common.py and benchmarks/fed_benchmark.py). */
export const HEART_PROTOCOL = {
  /** Local mini-batch updates per round (fed_benchmark.py: run_num_updates = [100]). */
  localSteps: 100,
  /** get_nb_max_rounds(100) = (486 // 4 // 4) · 50 // 100. */
  rounds: 15,
  batchSize: 4,
  /** Pooled and local baselines: Adam, lr 1e-3, 50 epochs. */
  baselineEpochs: 50,
  baselineLearningRate: 0.001,
} as const;

/** A federated run of the benchmark: a core strategy, its parameters and the clinics' SGD learning rate. */
export interface HeartStrategy {
  strategy: StrategyName;
  parameters: Record<string, number>;
  clientLearningRate: number;
}

/**
 * FLamby's tuned hyper-parameters for Fed-Heart-Disease (flamby/config_heart_disease.json, as
 * recorded beside the published results in flamby/results/results_benchmark_fed_heart_disease/
 * heart_seed42..46.csv). Clients train with plain SGD; FedOpt's server_learning_rate is `eta`;
 * FLamby's FedAdagrad carries beta2 but does not use it. Other core strategies run with core's
 * defaults and FLamby's client learning rate 1e-3.
 */
export const FLAMBY_TUNED: Readonly<Record<string, HeartStrategy>> = {
  fedavg: { strategy: 'fedavg', parameters: {}, clientLearningRate: 0.001 },
  fedprox: { strategy: 'fedprox', parameters: { mu: 0.01 }, clientLearningRate: 0.001 },
  fedadagrad: { strategy: 'fedadagrad', parameters: { eta: 0.316228, beta1: 0.9, tau: 1e-8 }, clientLearningRate: 0.003162 },
  fedadam: { strategy: 'fedadam', parameters: { eta: 0.01, beta1: 0.9, beta2: 0.999, tau: 1e-8 }, clientLearningRate: 0.01 },
  fedyogi: { strategy: 'fedyogi', parameters: { eta: 0.01, beta1: 0.9, beta2: 0.999, tau: 1e-8 }, clientLearningRate: 0.003162 },
};

/** The strategies FLamby's table and this benchmark compare by default. */
export const HEART_DEFAULT_STRATEGIES: readonly string[] = ['fedavg', 'fedprox', 'fedadagrad', 'fedadam', 'fedyogi'];

/** A published figure: FLamby's five seeds (42–46) and their mean and population sd (numpy's std, as FLamby reports). */
export interface PublishedFigure {
  mean: number;
  sd: number;
  perSeed: number[];
}

const figure = (perSeed: number[]): PublishedFigure => ({ mean: mean(perSeed), sd: populationSd(perSeed), perSeed });

/**
 * FLamby's published Fed-Heart-Disease results: mean per-site test accuracy for each of its
 * seeds 42–46, from flamby/results/results_benchmark_fed_heart_disease/heart_seed42..46.csv
 * (their means are the paper's table: pooled 0.735, FedAvg 0.685 ± 0.025, FedYogi 0.731 …).
 */
export const FLAMBY_PUBLISHED = {
  source: 'owkin/FLamby, flamby/results/results_benchmark_fed_heart_disease/heart_seed42..46.csv',
  methods: {
    pooled: figure([0.739142, 0.734334, 0.736738, 0.734334, 0.731930]),
    'local cleveland': figure([0.709436, 0.732678, 0.693811, 0.748303, 0.726374]),
    'local hungary': figure([0.628480, 0.630933, 0.633288, 0.648962, 0.602087]),
    'local switzerland': figure([0.626787, 0.610116, 0.496351, 0.585895, 0.515716]),
    'local va': figure([0.674655, 0.606697, 0.655242, 0.585174, 0.661434]),
    fedavg: figure([0.691492, 0.719848, 0.642743, 0.694287, 0.676468]),
    fedprox: figure([0.691492, 0.719848, 0.642743, 0.694287, 0.676468]),
    scaffold: figure([0.689088, 0.719848, 0.642743, 0.691883, 0.676468]),
    cyclic: figure([0.723971, 0.729464, 0.675097, 0.752768, 0.708688]),
    fedadam: figure([0.721162, 0.711484, 0.746130, 0.732210, 0.716710]),
    fedadagrad: figure([0.723971, 0.719443, 0.751343, 0.735019, 0.727073]),
    fedyogi: figure([0.723971, 0.719443, 0.751343, 0.735019, 0.727073]),
  } as Record<string, PublishedFigure>,
};

/**
 * PyTorch's nn.Linear(13, 1) initialisation, which FLamby's Baseline uses: the weight by
 * kaiming_uniform(a=√5), i.e. U(±1/√fan_in) (VarianceScaling fan_in uniform with scale 1/3:
 * limit √(3·scale/fan_in)), and the bias U(±1/√fan_in). tfjs' Dense default (GlorotUniform,
 * limit √(6/14) ≈ 0.65, and a zero bias) starts 2.4× wider, and at lr 1e-3 × 1500 steps the
 * weights never travel far from where they start.
 */
export const TORCH_LINEAR_INIT = {
  kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 1 / 3, mode: 'fan_in', distribution: 'uniform' } },
  bias_initializer: { class_name: 'RandomUniform', config: { minval: -1 / Math.sqrt(HEART_FEATURES.length), maxval: 1 / Math.sqrt(HEART_FEATURES.length) } },
};

/** FLamby's federated protocol as a fedlhs manifest: logistic regression, `rounds` × 100 local SGD steps, batch 4. */
export function heartManifest(seed: number, options: { strategy?: HeartStrategy; rounds?: number } = {}): Record<string, unknown> {
  const s = options.strategy ?? FLAMBY_TUNED['fedavg']!;
  return {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: `fed-heart-disease-${s.strategy}-seed-${seed}`,
    description: `FLamby Fed-Heart-Disease: logistic regression (PyTorch nn.Linear initialisation), ${s.strategy}, per-site z-scoring, FLamby train/test split.`,
    model: {
      format: 'tfjs-layers',
      topology: { class_name: 'Sequential', config: { name: 'logreg', layers: [{ class_name: 'Dense', config: { name: 'logit', units: 1, activation: 'sigmoid', batch_input_shape: [null, HEART_FEATURES.length], ...structuredClone(TORCH_LINEAR_INIT) } }] } },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: s.clientLearningRate }, localEpochs: 1, localSteps: HEART_PROTOCOL.localSteps, batchSize: HEART_PROTOCOL.batchSize },
    rounds: options.rounds ?? HEART_PROTOCOL.rounds,
    clients: { min: 4, max: 4, quorum: 4 },
    deadlines: { roundSeconds: 300, evaluationSeconds: 120, maxRoundAttempts: 3 },
    data: { featureSpec: 'flat-table/v1', features: HEART_FEATURES, label: 'label', splitColumn: 'set', normalization: 'local-zscore', holdoutFraction: 0.34, minCellCount: 0 },
    aggregation: { strategy: s.strategy, parameters: { ...s.parameters } },
    seed,
  };
}

/** What the `heart` command was asked to run, as its options arrive. */
export interface HeartStrategyOptions {
  /** One strategy (`--strategy`), tunable with `params` / `paramsJson`. */
  strategy?: string | undefined;
  /** Several strategies (`--strategies a,b`), each with FLamby's tuned values or core's defaults. */
  strategies?: string | undefined;
  /** `--strategy-param key=value`, repeatable; `clientLearningRate` sets the clinics' SGD rate. */
  params?: readonly string[];
  /** `--strategy-params '{"mu": 0.1}'`, applied before `params`. */
  paramsJson?: string | undefined;
}

/** CONFIG_INVALID for an invalid `heart` option, with the message to show as is. */
const optionError = (message: string, cause?: unknown): FedlhsError<'CONFIG_INVALID'> => new FedlhsError('CONFIG_INVALID', message, { cause });

const strategyName = (name: string): StrategyName => {
  if (!(STRATEGY_NAMES as readonly string[]).includes(name)) throw optionError(`unknown strategy ${JSON.stringify(name)} (expected one of ${STRATEGY_NAMES.join(', ')})`);
  return name as StrategyName;
};
const tunedOrDefault = (name: string): HeartStrategy => structuredClone(FLAMBY_TUNED[name] ?? { strategy: strategyName(name), parameters: {}, clientLearningRate: 0.001 });

/**
 * Turns the `heart` command's strategy options into the runs to make, each checked by core
 * (unknown parameters and out-of-range values are refused with core's message). Without any
 * option: FedAvg, FedProx, FedAdagrad, FedAdam and FedYogi with FLamby's tuned values.
 */
export function parseHeartStrategies(o: HeartStrategyOptions): HeartStrategy[] {
  const params = o.params ?? [];
  if (o.strategy !== undefined && o.strategies !== undefined) throw optionError('give --strategy or --strategies, not both');
  if (o.strategy === undefined && (params.length > 0 || o.paramsJson !== undefined)) {
    throw optionError('--strategy-param and --strategy-params tune the one strategy named by --strategy');
  }
  let runs: HeartStrategy[];
  if (o.strategy !== undefined) {
    const run = tunedOrDefault(o.strategy.trim());
    const given: Record<string, number> = {};
    if (o.paramsJson !== undefined) {
      let json: unknown;
      try {
        json = JSON.parse(o.paramsJson);
      } catch {
        throw optionError(`--strategy-params must be a JSON object of numbers, got ${JSON.stringify(o.paramsJson)}`);
      }
      if (typeof json !== 'object' || json === null || Array.isArray(json)) throw optionError(`--strategy-params must be a JSON object of numbers, got ${JSON.stringify(o.paramsJson)}`);
      for (const [k, v] of Object.entries(json)) {
        if (typeof v !== 'number' || !Number.isFinite(v)) throw optionError(`--strategy-params: ${k} must be a finite number, got ${JSON.stringify(v)}`);
        given[k] = v;
      }
    }
    for (const p of params) {
      const m = /^\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(\S+)\s*$/.exec(p);
      const value = m === null ? Number.NaN : Number(m[2]);
      if (m === null || !Number.isFinite(value)) throw optionError(`--strategy-param must be key=number (e.g. mu=0.01), got ${JSON.stringify(p)}`);
      given[m[1]!] = value;
    }
    for (const [k, v] of Object.entries(given)) {
      if (k === 'clientLearningRate') {
        if (!(v > 0 && v <= 10)) throw optionError(`clientLearningRate must be in (0, 10], got ${v}`);
        run.clientLearningRate = v;
      } else {
        run.parameters[k] = v;
      }
    }
    runs = [run];
  } else {
    const names = (o.strategies ?? HEART_DEFAULT_STRATEGIES.join(',')).split(',').map((n) => n.trim()).filter((n) => n !== '');
    if (names.length === 0) throw optionError('--strategies needs at least one strategy name');
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) throw optionError(`--strategies names ${twice} twice`);
    runs = names.map(tunedOrDefault);
  }
  for (const run of runs) {
    try {
      validateStrategyConfig({ name: run.strategy, ...run.parameters });
    } catch (err) {
      throw optionError(`${(err as Error).message}${run.strategy === o.strategy?.trim() ? ' (clientLearningRate sets the clinics\' SGD rate)' : ''}`, err);
    }
  }
  return runs;
}

export interface HeartReport {
  kind: 'heart';
  createdAt: string;
  seeds: number[];
  backend: string;
  rounds: number;
  localSteps: number;
  batchSize: number;
  sites: { site: string; train: number; test: number }[];
  /** The federated runs, in order, with the hyper-parameters they used. */
  strategies: HeartStrategy[];
  /** Accuracy per method (a strategy name, 'pooled' or 'local <site>'), per site test set, one entry per seed. */
  accuracy: { method: string; perSite: Record<string, number[]>; average: number[] }[];
  published: typeof FLAMBY_PUBLISHED;
  credit: string;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
}

/** Population standard deviation (numpy's default, which FLamby's ± uses). */
export function populationSd(xs: readonly number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, xs.length));
}

/** Readiness verdicts on a hospital's data that do not change while the study waits. */
const UNUSABLE = new Set(['READINESS_COHORT_TOO_SMALL', 'READINESS_FEATURE_SPEC_UNSUPPORTED', 'READINESS_DATA_ERROR']);

/**
 * Waits for a study to end. The study needs every hospital (clients.min 4), so a hospital whose
 * data it cannot use ends the wait at once with the agent's reason, rather than after the timeout.
 */
async function waitForHeartStudy(coordinator: CoordinatorHandle, studyId: string, sites: ReadonlyMap<string, string>): Promise<StudyDetail> {
  const line = await coordinator.proc.waitFor(
    (l) => l.studyId === studyId && (l.event === 'study.completed' || l.event === 'study.failed' || l.event === 'study.stopped' || (l.event === 'node.readiness' && UNUSABLE.has(String(l.readiness)))),
    3_600_000,
    `end of study ${studyId}`,
  );
  if (line.event === 'node.readiness') {
    throw new FedlhsError('STUDY_FAILED', `${sites.get(String(line.nodeId)) ?? String(line.nodeId)} cannot take part in study ${studyId}: ${String(line.readiness)} (${String(line.detail)}); the benchmark needs all four hospitals`);
  }
  return waitForStudyEnd(coordinator, studyId);
}

export interface HeartBenchmarkOptions {
  dataDir: string;
  out: string;
  seeds: number[];
  /** Federated rounds (FLamby: 15). */
  rounds?: number;
  /** The federated runs (default: FedAvg with FLamby's settings). */
  strategies?: HeartStrategy[];
  log: (s: string) => void;
}

/**
 * Reproduces the FLamby Fed-Heart-Disease protocol through the real coordinator and agents
 * (each hospital an agent reading its own flat table): every strategy × seed is one study of
 * `rounds` × 100 local SGD steps (batch 4), FedAvg-style weighting by training-set size. Pooled
 * and local baselines are trained centrally (Adam, lr 1e-3, batch 4, 50 epochs; pooled on data
 * scaled with the pooled training statistics, as FLamby's pooled dataset is). Every model is
 * scored by accuracy on each site's test set scaled with that site's training statistics.
 */
export async function runHeartBenchmark(options: HeartBenchmarkOptions): Promise<HeartReport> {
  rmSync(options.out, { recursive: true, force: true });
  const strategies = options.strategies ?? [FLAMBY_TUNED['fedavg']!];
  const rounds = options.rounds ?? HEART_PROTOCOL.rounds;
  const backend = await initBackend('auto');
  const sites = prepareHeartData(options.dataDir, join(options.out, 'sites'));
  options.log(`prepared ${sites.map((s) => `${s.site} ${s.train}/${s.test}`).join(', ')} (train/test rows)`);
  const names = HEART_FEATURES;
  const data = await Promise.all(sites.map(async (s) => splitDataset(await readFlatTable(s.path, { features: names, label: 'label', keyColumn: 'record_id', splitColumn: 'set' }), 0, 0.34)));
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
  const show = (xs: number[]): string => `${mean(xs).toFixed(3)} [${xs.map((a) => a.toFixed(3)).join(', ')}]`;

  // Federated: one coordinator, four hospital agents, one study per strategy and seed.
  const net = join(options.out, 'network');
  const coordinator = await startCoordinator({ dataDir: join(net, 'coordinator'), heartbeatIntervalMs: 1000, selectionGraceMs: 200, env: { FEDLHS_LOG_LEVEL: 'info' } });
  const agents: ManagedProcess[] = [];
  const nodeSites = new Map<string, string>();
  try {
    for (const s of sites) {
      const agent = { name: s.site, stateDir: join(net, s.site), dataPath: s.path, coordinator: coordinator.address, autoApprove: true, minCohort: 20, env: { FEDLHS_LOG_LEVEL: 'info', FEDLHS_DATA_KEY_COLUMN: 'record_id' } };
      nodeSites.set(await enrolAgent(coordinator, agent), s.site);
      agents.push(startAgent(agent));
    }
    for (const strategy of strategies) {
      for (const seed of options.seeds) {
        const manifest = heartManifest(seed, { strategy, rounds });
        const study = await startStudy(coordinator, manifest);
        const detail = await waitForHeartStudy(coordinator, study.id, nodeSites);
        if (detail.state !== 'COMPLETED') throw new FedlhsError('STUDY_FAILED', `${strategy.strategy} study for seed ${seed} ended ${detail.state}`);
        const model = await withWeights(validateManifest(manifest), readCommittedModel(coordinator, study.id, detail.lastCommittedRound, committedSha256(detail, detail.lastCommittedRound)));
        const perSite = await scoreEverySite(model.predict);
        model.dispose();
        add(strategy.strategy, perSite);
        options.log(`seed ${seed}: ${strategy.strategy} (${detail.lastCommittedRound} rounds over gRPC) mean accuracy ${show(perSite)}`);
      }
    }
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await coordinator.stop();
  }

  // Pooled and local baselines, FLamby's centralised settings, the same initialisation.
  const adam = { name: 'adam' as const, learningRate: HEART_PROTOCOL.baselineLearningRate };
  const train = { epochs: HEART_PROTOCOL.baselineEpochs, batchSize: HEART_PROTOCOL.batchSize, optimizer: adam };
  const pooledData = normalized(concat(trains, names.length), names, zscoreFrom(trains, names));
  for (const seed of options.seeds) {
    const manifest = validateManifest(heartManifest(seed, { rounds }));
    const pooled = await trainCentral(manifest, pooledData, { ...train, seed });
    const pooledAcc = await scoreEverySite(pooled.predict);
    pooled.dispose();
    add('pooled', pooledAcc);
    for (const [i, s] of sites.entries()) {
      const local = await trainCentral(manifest, normalized(trains[i]!, names, own[i]), { ...train, seed });
      add(`local ${s.site}`, await scoreEverySite(local.predict));
      local.dispose();
    }
    options.log(`seed ${seed}: pooled mean accuracy ${show(pooledAcc)}`);
  }
  return {
    kind: 'heart',
    createdAt: new Date().toISOString(),
    seeds: options.seeds,
    backend: backend.backend,
    rounds,
    localSteps: HEART_PROTOCOL.localSteps,
    batchSize: HEART_PROTOCOL.batchSize,
    sites: sites.map((s) => ({ site: s.site, train: s.train, test: s.test })),
    strategies,
    accuracy: [...results].map(([method, r]) => ({ method, ...r })),
    published: FLAMBY_PUBLISHED,
    credit: HEART_CREDIT,
  };
}
