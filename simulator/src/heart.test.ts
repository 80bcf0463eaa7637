import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFedlhsError, validateManifest } from '@fedlhs/core';
import { initialWeights } from '@fedlhs/model';
import { heartHtml, heartSummary, heartVerdict } from './heart-report.js';
import { FLAMBY_PUBLISHED, FLAMBY_TUNED, HEART_FEATURES, heartManifest, parseHeartStrategies, populationSd, prepareHeartData, type HeartReport } from './heart.js';

const dataDir = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'heart-disease');

/** The message parseHeartStrategies refuses these options with. */
function refusal(o: Parameters<typeof parseHeartStrategies>[0]): string {
  try {
    parseHeartStrategies(o);
  } catch (err) {
    if (isFedlhsError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('accepted');
}

describe('Fed-Heart-Disease preparation (real data in ../shared)', () => {
  it('needs the shared data', () => {
    expect(existsSync(join(dataDir, 'flamby_heart_split.csv')), `missing ${dataDir}: the real heart-disease files must be beside the checkout in ../shared`).toBe(true);
  });

  it("reproduces FLamby's 740 rows, 13 features and per-site train/test split", () => {
    const sites = prepareHeartData(dataDir, mkdtempSync(join(tmpdir(), 'fedlhs-heart-')));
    expect(sites.map((s) => [s.site, s.train, s.test])).toEqual([
      ['cleveland', 199, 104],
      ['hungary', 172, 89],
      ['switzerland', 30, 16],
      ['va', 85, 45],
    ]);
    const header = readFileSync(sites[0]!.path, 'utf8').split('\n')[0]!.split(',');
    expect(header).toEqual(['record_id', ...HEART_FEATURES, 'label', 'set']);
    expect(HEART_FEATURES).toHaveLength(13);
    const swiss = readFileSync(sites[2]!.path, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const test = swiss.filter((r) => r.at(-1) === 'test');
    expect(test.filter((r) => r.at(-2) === '1')).toHaveLength(15);
  });
});

describe("FLamby's protocol as manifests", () => {
  it('trains 15 rounds × 100 local SGD steps of batch 4 with per-site z-scoring, FedAvg at lr 1e-3 by default', () => {
    const m = validateManifest(heartManifest(0));
    expect(m.training).toMatchObject({ localSteps: 100, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.001 } });
    expect(m.rounds).toBe(15);
    expect(m.data.normalization).toBe('local-zscore');
    expect(m.aggregation).toMatchObject({ strategy: 'fedavg', parameters: {} });
    // FLamby's Switzerland training split holds no non-case: with the default minimum cell count its agent would refuse the study.
    expect(m.data.minCellCount).toBe(0);
  });

  it("declares PyTorch's nn.Linear initialisation, so the initial weights lie in ±1/√13 with a non-zero bias", async () => {
    const m = validateManifest(heartManifest(2));
    const { weights } = await initialWeights({ topology: m.model.topology, loss: m.training.loss, optimizer: m.training.optimizer, seed: m.seed });
    const bound = 1 / Math.sqrt(13);
    expect(weights).toHaveLength(14);
    expect(Array.from(weights).every((w) => Math.abs(w) <= bound + 1e-7)).toBe(true);
    expect(weights[13]).not.toBe(0);
  });

  it("carries each strategy's client learning rate and server parameters (FLamby's tuned values)", () => {
    const adam = validateManifest(heartManifest(1, { strategy: FLAMBY_TUNED['fedadam']!, rounds: 3 }));
    expect(adam.training.optimizer).toEqual({ name: 'sgd', learningRate: 0.01 });
    expect(adam.aggregation).toMatchObject({ strategy: 'fedadam', parameters: { eta: 0.01, beta1: 0.9, beta2: 0.999, tau: 1e-8 } });
    expect(adam.rounds).toBe(3);
    const prox = validateManifest(heartManifest(1, { strategy: FLAMBY_TUNED['fedprox']! }));
    expect(prox.aggregation.parameters).toEqual({ mu: 0.01 });
  });
});

describe('heart strategy options', () => {
  it("defaults to FedAvg, FedProx, FedAdagrad, FedAdam and FedYogi with FLamby's tuned values", () => {
    const runs = parseHeartStrategies({});
    expect(runs.map((r) => [r.strategy, r.clientLearningRate, r.parameters])).toEqual([
      ['fedavg', 0.001, {}],
      ['fedprox', 0.001, { mu: 0.01 }],
      ['fedadagrad', 0.003162, { eta: 0.316228, beta1: 0.9, tau: 1e-8 }],
      ['fedadam', 0.01, { eta: 0.01, beta1: 0.9, beta2: 0.999, tau: 1e-8 }],
      ['fedyogi', 0.003162, { eta: 0.01, beta1: 0.9, beta2: 0.999, tau: 1e-8 }],
    ]);
    expect(parseHeartStrategies({ strategies: ' fedyogi, fedavgm ' }).map((r) => [r.strategy, r.clientLearningRate, r.parameters])).toEqual([
      ['fedyogi', 0.003162, { eta: 0.01, beta1: 0.9, beta2: 0.999, tau: 1e-8 }],
      ['fedavgm', 0.001, {}],
    ]);
  });

  it('tunes one --strategy with a JSON object, then key=value pairs, clientLearningRate setting the clinics\' rate', () => {
    const [run] = parseHeartStrategies({ strategy: 'fedadam', paramsJson: '{"eta": 0.1, "beta1": 0.5}', params: ['eta=0.03', 'clientLearningRate = 1e-2', 'tau=1e-6'] });
    expect(run).toEqual({ strategy: 'fedadam', clientLearningRate: 0.01, parameters: { eta: 0.03, beta1: 0.5, beta2: 0.999, tau: 1e-6 } });
    expect(FLAMBY_TUNED['fedadam']!.parameters['eta']).toBe(0.01);
    expect(parseHeartStrategies({ strategy: 'fedprox', params: ['mu=0.1'] })).toEqual([{ strategy: 'fedprox', clientLearningRate: 0.001, parameters: { mu: 0.1 } }]);
  });

  it('refuses unknown strategies and parameters, malformed values and conflicting options with exact messages', () => {
    expect(refusal({ strategy: 'fedsgd' })).toMatchInlineSnapshot(
      `"unknown strategy "fedsgd" (expected one of fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, fedmedian, trimmed-mean, krum, multi-krum, bulyan)"`,
    );
    expect(refusal({ strategy: 'fedadam', params: ['momentum=0.9'] })).toMatchInlineSnapshot(
      `"fedadam: unknown parameter "momentum" (fedadam accepts eta, beta1, beta2, tau) (clientLearningRate sets the clinics' SGD rate)"`,
    );
    expect(refusal({ strategy: 'fedyogi', params: ['beta2=1'] })).toMatchInlineSnapshot(`"fedyogi: beta2 must be in [0, 1), got 1 (clientLearningRate sets the clinics' SGD rate)"`);
    expect(refusal({ strategy: 'fedprox', params: ['mu'] })).toMatchInlineSnapshot(`"--strategy-param must be key=number (e.g. mu=0.01), got "mu""`);
    expect(refusal({ strategy: 'fedprox', params: ['mu=abc'] })).toMatch(/must be key=number/);
    expect(refusal({ strategy: 'fedprox', paramsJson: '[0.1]' })).toMatchInlineSnapshot(`"--strategy-params must be a JSON object of numbers, got "[0.1]""`);
    expect(refusal({ strategy: 'fedprox', paramsJson: '{"mu": "0.1"}' })).toMatchInlineSnapshot(`"--strategy-params: mu must be a finite number, got "0.1""`);
    expect(refusal({ strategy: 'fedavg', params: ['clientLearningRate=0'] })).toMatchInlineSnapshot(`"clientLearningRate must be in (0, 10], got 0"`);
    expect(refusal({ strategy: 'fedavg', strategies: 'fedprox' })).toMatchInlineSnapshot(`"give --strategy or --strategies, not both"`);
    expect(refusal({ strategies: 'fedavg', params: ['mu=1'] })).toMatchInlineSnapshot(`"--strategy-param and --strategy-params tune the one strategy named by --strategy"`);
    expect(refusal({ strategies: 'fedavg,fedavg' })).toMatchInlineSnapshot(`"--strategies names fedavg twice"`);
    expect(refusal({ strategies: ' , ' })).toMatchInlineSnapshot(`"--strategies needs at least one strategy name"`);
  });
});

describe('heart report', () => {
  it("holds FLamby's published table: the means of its five seeds, ± numpy's population sd", () => {
    const m = FLAMBY_PUBLISHED.methods;
    expect(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Number(v.mean.toFixed(3))]))).toEqual({
      pooled: 0.735, 'local cleveland': 0.722, 'local hungary': 0.629, 'local switzerland': 0.567, 'local va': 0.637,
      fedavg: 0.685, fedprox: 0.685, scaffold: 0.684, cyclic: 0.718, fedadam: 0.726, fedadagrad: 0.731, fedyogi: 0.731,
    });
    expect(m['fedavg']!.sd).toBeCloseTo(0.025, 3);
    expect(populationSd([1, 3])).toBe(1);
  });

  it('sets each strategy beside its published figure and reads off both goals', () => {
    const sites = ['cleveland', 'hungary', 'switzerland', 'va'];
    const entry = (method: string, average: number[]) => ({ method, perSite: Object.fromEntries(sites.map((s) => [s, average])), average });
    const report: HeartReport = {
      kind: 'heart', createdAt: '2026-01-01T00:00:00Z', seeds: [0, 1], backend: 'cpu', rounds: 15, localSteps: 100, batchSize: 4,
      sites: sites.map((site) => ({ site, train: 1, test: 1 })),
      strategies: [FLAMBY_TUNED['fedavg']!, FLAMBY_TUNED['fedyogi']!],
      accuracy: [entry('pooled', [0.74, 0.73]), entry('fedavg', [0.70, 0.66]), entry('fedyogi', [0.73, 0.735]), entry('local va', [0.6, 0.62])],
      published: FLAMBY_PUBLISHED, credit: 'Andras Janosi, Robert Detrano',
    };
    const rows = heartSummary(report);
    expect(rows.map((r) => [r.method, r.kind, Number(r.mean.toFixed(4)), Number(r.sd.toFixed(4)), r.published?.mean.toFixed(3)])).toEqual([
      ['fedavg', 'federated', 0.68, 0.02, '0.685'],
      ['fedyogi', 'federated', 0.7325, 0.0025, '0.731'],
      ['pooled', 'pooled', 0.735, 0.005, '0.735'],
      ['local va', 'local', 0.61, 0.01, '0.637'],
    ]);
    expect(heartVerdict(report)).toMatchObject({ fedavg: { inside: true }, best: { method: 'fedyogi', flambyBest: 0.731, reached: true } });
    const html = heartHtml(report);
    expect(html).toContain('client SGD lr 0.003162, eta 0.01, beta1 0.9, beta2 0.999, tau 1e-8');
    expect(html).toContain('0.680 ± 0.020');
    expect(html).toContain('Robert Detrano');
    expect(html).not.toMatch(/https?:\/\//);
    report.accuracy[1] = entry('fedavg', [0.62, 0.64]);
    expect(heartVerdict(report).fedavg?.inside).toBe(false);
  });
});
