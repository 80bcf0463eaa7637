import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  WeightedSum,
  bundleLength,
  concatTensors,
  createStrategy,
  float32Bytes,
  mulberry32,
  splitTensors,
  type Strategy,
  type StrategyConfig,
  type TensorSpec,
  type UpdateValidation,
} from '@fedlhs/core';
import { RoundAggregator, type RoundAggregatorOptions } from './aggregation.js';
import { CheckpointStore, type StoredModel } from './checkpoints.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const NO_BOUND: UpdateValidation = { normBound: { type: 'none' }, onExceed: 'reject' };

/** Three tensors, so slices of the flat model cross tensor boundaries. */
const SMALL: TensorSpec[] = [
  { name: 'dense_0/kernel', shape: [37, 29] },
  { name: 'dense_0/bias', shape: [29] },
  { name: 'dense_1/kernel', shape: [29, 3] },
];
/** Over one default 4 MiB slice (1 048 576 values), so finish() streams two. */
const LARGE: TensorSpec[] = [
  { name: 'dense_0/kernel', shape: [1100, 1000] },
  { name: 'dense_0/bias', shape: [1000] },
];

const sha = (values: Float32Array): string => createHash('sha256').update(float32Bytes(values)).digest('hex');

/** One clinic's update in a round: its weights, example count and clipping factor. */
interface Contribution {
  weights: Float32Array;
  numExamples: number;
  scale: number;
}

/** Deterministic contributions near `base`; the third is clipped to half its distance. */
function contributionsFor(base: Float32Array, round: number): Contribution[] {
  const random = mulberry32(1000 + round);
  return [13, 250, 7, 99].map((numExamples, k) => ({
    weights: Float32Array.from(base, (v) => v + (random() - 0.5) * 0.1 * (k + 1)),
    numExamples,
    scale: k === 2 ? 0.5 : 1,
  }));
}

interface Run {
  models: string[];
  states: string[];
  outputs: Float32Array[];
}

/**
 * Runs `rounds` rounds through the coordinator's RoundAggregator with a real CheckpointStore:
 * spooled updates, add(), finish() into writeCandidate, the next round based on the candidate.
 */
async function viaAggregator(strategy: Strategy, specs: TensorSpec[], rounds: number, options: RoundAggregatorOptions = {}): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-aggregation-'));
  dirs.push(dir);
  const checkpoints = new CheckpointStore(dir);
  const random = mulberry32(7);
  let base: StoredModel = await checkpoints.writeCandidate('s', 0, 1, [Float32Array.from({ length: bundleLength(specs) }, () => random() - 0.5)]);
  let baseValues = await checkpoints.readAll(base.path);
  const run: Run = { models: [], states: [], outputs: [] };
  for (let round = 1; round <= rounds; round++) {
    const aggregator = new RoundAggregator(strategy, specs, base, checkpoints, join(dir, 'held'), NO_BOUND, 100, options);
    for (const [k, c] of contributionsFor(baseValues, round).entries()) {
      const spool = checkpoints.spoolPath(`r${round}-u${k}`);
      writeFileSync(spool, float32Bytes(c.weights));
      await aggregator.add(spool, c.numExamples, c.scale, `r${round}-u${k}`);
    }
    base = await checkpoints.writeCandidate('s', round, 1, await aggregator.finish(round));
    aggregator.dispose();
    baseValues = await checkpoints.readAll(base.path);
    expect(base.sha256).toBe(sha(baseValues));
    run.models.push(base.sha256);
    run.states.push(sha(concatTensors(strategy.exportState())));
    run.outputs.push(baseValues);
  }
  return run;
}

/**
 * The same rounds without the coordinator: clipping as add() does it, the example-weighted mean
 * in a float64 WeightedSum, then `aggregate` on the one pre-averaged update.
 */
function viaAggregate(strategy: Strategy, specs: TensorSpec[], rounds: number): Run {
  const random = mulberry32(7);
  let base: Float32Array = Float32Array.from({ length: bundleLength(specs) }, () => random() - 0.5);
  const run: Run = { models: [], states: [], outputs: [] };
  for (let round = 1; round <= rounds; round++) {
    const sum = new WeightedSum(base.length);
    for (const c of contributionsFor(base, round)) {
      const values = c.weights.slice();
      if (c.scale !== 1) for (let i = 0; i < values.length; i++) values[i] = base[i]! + c.scale * (values[i]! - base[i]!);
      sum.addChunk(0, values, c.numExamples);
      sum.commit(c.numExamples);
    }
    base = concatTensors(strategy.aggregate(splitTensors(specs, base), [{ weights: splitTensors(specs, sum.mean()), numExamples: sum.totalWeight }], round));
    run.models.push(sha(base));
    run.states.push(sha(concatTensors(strategy.exportState())));
    run.outputs.push(base);
  }
  return run;
}

const WEIGHTED_MEAN: StrategyConfig[] = [
  { name: 'fedavg' },
  { name: 'fedprox', mu: 0.1 },
  { name: 'fedavgm', serverLearningRate: 0.7, momentum: 0.9 },
  { name: 'fedadagrad', eta: 0.1 },
  { name: 'fedadam', eta: 0.01 },
  { name: 'fedyogi', eta: 0.05 },
];

describe('RoundAggregator.finish, weighted-mean strategies', () => {
  // Digests of the candidates (and server state) the coordinator wrote before aggregation went
  // through Strategy.stepSlice (commit 42db9ba): the streamed step must reproduce them exactly.
  it('reproduces the candidates of the previous coordinator bit for bit (small model, three rounds)', async () => {
    const digests: Record<string, { models: string[]; states: string[] }> = {};
    for (const config of WEIGHTED_MEAN) {
      const { models, states } = await viaAggregator(createStrategy(config), SMALL, 3);
      digests[config.name] = { models: models.map((m) => m.slice(0, 16)), states: states.map((s) => s.slice(0, 16)) };
    }
    expect(digests).toMatchInlineSnapshot(`
      {
        "fedadagrad": {
          "models": [
            "c8d010531877ca03",
            "32c22e6caebde31d",
            "4cc0770df6ece22c",
          ],
          "states": [
            "a168f9a74c303447",
            "1302b8b1e9e21573",
            "7c15527bea54865f",
          ],
        },
        "fedadam": {
          "models": [
            "6270308c9735cb33",
            "c2f0a2c55e1106af",
            "03b951b71ec65222",
          ],
          "states": [
            "866ed9ae85af624b",
            "dd2ca24714864abb",
            "ba8a8bda005e5613",
          ],
        },
        "fedavg": {
          "models": [
            "7382c64bc65adebc",
            "53e1060e7d40364c",
            "247a2844c6a21ce5",
          ],
          "states": [
            "e3b0c44298fc1c14",
            "e3b0c44298fc1c14",
            "e3b0c44298fc1c14",
          ],
        },
        "fedavgm": {
          "models": [
            "f318ffa86e8f207c",
            "df4ca2b0ee8cad6e",
            "7716a51aa353ea99",
          ],
          "states": [
            "1f53af48ac348c3d",
            "dda8d6af3853dae6",
            "993107d5f377ace0",
          ],
        },
        "fedprox": {
          "models": [
            "7382c64bc65adebc",
            "53e1060e7d40364c",
            "247a2844c6a21ce5",
          ],
          "states": [
            "e3b0c44298fc1c14",
            "e3b0c44298fc1c14",
            "e3b0c44298fc1c14",
          ],
        },
        "fedyogi": {
          "models": [
            "8f2793f4b8cb1b32",
            "f70e5f90b683e596",
            "f502f616723c8b93",
          ],
          "states": [
            "866ed9ae85af624b",
            "1655565ff2828ba0",
            "3692f2e296d6b771",
          ],
        },
      }
    `);
  });

  it('reproduces the previous candidates bit for bit over two default slices (fedavg, fedadam)', async () => {
    const fedavg = await viaAggregator(createStrategy({ name: 'fedavg' }), LARGE, 2);
    const fedadam = await viaAggregator(createStrategy({ name: 'fedadam', eta: 0.01 }), LARGE, 2);
    expect({ fedavg: fedavg.models.map((m) => m.slice(0, 16)), fedadam: [...fedadam.models, ...fedadam.states].map((m) => m.slice(0, 16)) }).toMatchInlineSnapshot(`
      {
        "fedadam": [
          "6b68be7d6be154ac",
          "063e52e485de9bc5",
          "d00ff93e9faa0f12",
          "c3cf5a0f6282c8d0",
        ],
        "fedavg": [
          "615130c100fed313",
          "51542bb3bf57d7de",
        ],
      }
    `);
  });

  it.each(WEIGHTED_MEAN)('$name: equals aggregate() on the pre-averaged update, model and server state', async (config) => {
    const streamed = await viaAggregator(createStrategy(config), SMALL, 3);
    const whole = viaAggregate(createStrategy(config), SMALL, 3);
    expect(streamed.models).toEqual(whole.models);
    expect(streamed.states).toEqual(whole.states);
  });

  it.each(WEIGHTED_MEAN)('$name: slices of 1, 7 and 500 values give the same candidates and state as one slice', async (config) => {
    const reference = await viaAggregator(createStrategy(config), SMALL, 2);
    for (const sliceValues of [1, 7, 500]) {
      const run = await viaAggregator(createStrategy(config), SMALL, 2, { sliceValues });
      expect(run.models, `slices of ${sliceValues}`).toEqual(reference.models);
      expect(run.states, `slices of ${sliceValues}`).toEqual(reference.states);
    }
  });
});

/** A test-only wrapper: forwards everything to `inner`, counts calls, and scales each stepped slice. */
function counting(inner: Strategy, factor: number, options: { slices: boolean }) {
  const calls = { beginRound: 0, stepSlice: 0, endRound: 0, aggregate: 0 };
  const scale = (values: Float32Array): Float32Array => values.map((v) => v * factor);
  const strategy: Strategy = {
    name: inner.name,
    config: inner.config,
    input: inner.input,
    minUpdates: inner.minUpdates,
    aggregate(global, updates, round) {
      calls.aggregate++;
      return inner.aggregate(global, updates, round).map((t) => ({ shape: t.shape, data: scale(t.data) }));
    },
    exportState: () => inner.exportState(),
    importState: (state) => inner.importState(state),
    ...(options.slices
      ? {
          ...(inner.readsGlobal === undefined ? {} : { readsGlobal: inner.readsGlobal }),
          beginRound(round: number, shapes: readonly (readonly number[])[]) {
            calls.beginRound++;
            inner.beginRound?.(round, shapes);
          },
          stepSlice(offset: number, global: Float32Array, mean: Float32Array, round: number) {
            calls.stepSlice++;
            return scale(inner.stepSlice!(offset, global, mean, round));
          },
          endRound() {
            calls.endRound++;
            inner.endRound?.();
          },
        }
      : {}),
  };
  return { strategy, calls };
}

describe('RoundAggregator.finish applies the strategy object, FedAvg included', () => {
  const halved = (run: Run): number[] => run.outputs.flatMap((o) => Array.from(o, (v) => Math.fround(v * 0.5)));

  it('a wrapper around fedavg (still named fedavg) runs slice by slice, without reading the base model', async () => {
    const plain = await viaAggregator(createStrategy({ name: 'fedavg' }), SMALL, 1);
    const { strategy, calls } = counting(createStrategy({ name: 'fedavg' }), 0.5, { slices: true });
    expect(strategy.name).toBe('fedavg');
    const wrapped = await viaAggregator(strategy, SMALL, 1, { sliceValues: 100 });
    expect(calls).toEqual({ beginRound: 1, stepSlice: Math.ceil(bundleLength(SMALL) / 100), endRound: 1, aggregate: 0 });
    expect(wrapped.outputs.flatMap((o) => Array.from(o))).toEqual(halved(plain));
  });

  it('a weighted-mean wrapper without stepSlice goes through aggregate() on the pre-averaged update', async () => {
    const plain = await viaAggregator(createStrategy({ name: 'fedprox', mu: 0.1 }), SMALL, 1);
    const { strategy, calls } = counting(createStrategy({ name: 'fedprox', mu: 0.1 }), 0.5, { slices: false });
    const wrapped = await viaAggregator(strategy, SMALL, 1);
    expect(calls).toEqual({ beginRound: 0, stepSlice: 0, endRound: 0, aggregate: 1 });
    expect(wrapped.outputs.flatMap((o) => Array.from(o))).toEqual(halved(plain));
  });

  it('a wrapper around a server optimizer reads the base and steps its state once per round', async () => {
    const plain = createStrategy({ name: 'fedavgm' });
    const reference = await viaAggregator(plain, SMALL, 2);
    const { strategy, calls } = counting(createStrategy({ name: 'fedavgm' }), 1, { slices: true });
    const wrapped = await viaAggregator(strategy, SMALL, 2, { sliceValues: 256 });
    expect(calls).toEqual({ beginRound: 2, stepSlice: 2 * Math.ceil(bundleLength(SMALL) / 256), endRound: 2, aggregate: 0 });
    expect(wrapped.models).toEqual(reference.models);
    expect(wrapped.states).toEqual(reference.states);
  });
});

describe('RoundAggregator.finish, failures', () => {
  /** An aggregator for one round of SMALL with the round's updates added. */
  async function ready(strategy: Strategy, options: RoundAggregatorOptions = {}): Promise<{ aggregator: RoundAggregator; base: StoredModel }> {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-aggregation-'));
    dirs.push(dir);
    const checkpoints = new CheckpointStore(dir);
    const values = Float32Array.from({ length: bundleLength(SMALL) }, (_, i) => Math.cos(i));
    const base = await checkpoints.writeCandidate('s', 0, 1, [values]);
    const aggregator = new RoundAggregator(strategy, SMALL, base, checkpoints, join(dir, 'held'), NO_BOUND, 100, options);
    for (const [k, c] of contributionsFor(values, 1).entries()) {
      const spool = checkpoints.spoolPath(`u${k}`);
      writeFileSync(spool, float32Bytes(c.weights));
      await aggregator.add(spool, c.numExamples, c.scale, `u${k}`);
    }
    return { aggregator, base };
  }

  const drain = async (slices: Iterable<Float32Array> | AsyncIterable<Float32Array>): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    for await (const slice of slices) out.push(slice);
    return out;
  };

  it('the server state changes only once every slice has been taken', async () => {
    const strategy = createStrategy({ name: 'fedadam', eta: 0.01 });
    const { aggregator } = await ready(strategy, { sliceValues: 100 });
    for await (const _slice of await aggregator.finish(1)) break;
    expect(strategy.exportState()).toEqual([]);
    let n = 0;
    for await (const slice of await aggregator.finish(1)) n += slice.length;
    expect(n).toBe(bundleLength(SMALL));
    expect(strategy.exportState()).toHaveLength(2 * SMALL.length);
  });

  it('a base model shorter than the model is DATA_LOSS; fedavg does not read it', async () => {
    const { aggregator, base } = await ready(createStrategy({ name: 'fedavgm' }), { sliceValues: 1000 });
    truncateSync(base.path, 4 * 1100);
    await expect(drain(await aggregator.finish(1))).rejects.toMatchObject({ code: 'DATA_LOSS' });
    const fedavg = await ready(createStrategy({ name: 'fedavg' }));
    rmSync(fedavg.base.path);
    expect((await drain(await fedavg.aggregator.finish(1))).reduce((n, s) => n + s.length, 0)).toBe(bundleLength(SMALL));
  });

  it('finish without contributions is INVALID_STATE (status FAILED_PRECONDITION)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-aggregation-'));
    dirs.push(dir);
    const checkpoints = new CheckpointStore(dir);
    const base = await checkpoints.writeCandidate('s', 0, 1, [new Float32Array(bundleLength(SMALL))]);
    const aggregator = new RoundAggregator(createStrategy({ name: 'fedavg' }), SMALL, base, checkpoints, join(dir, 'held'), NO_BOUND, 100);
    await expect(aggregator.finish(1)).rejects.toMatchObject({ code: 'INVALID_STATE', status: 'FAILED_PRECONDITION' });
  });
});

describe('RoundAggregator.add, limits', () => {
  it('an update beyond the held-updates cap is RESOURCE_LIMIT (not a rejection) and leaves its spool file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-aggregation-'));
    dirs.push(dir);
    const checkpoints = new CheckpointStore(dir);
    const values = new Float32Array(bundleLength(SMALL));
    const base = await checkpoints.writeCandidate('s', 0, 1, [values]);
    const aggregator = new RoundAggregator(createStrategy({ name: 'fedmedian' }), SMALL, base, checkpoints, join(dir, 'held'), NO_BOUND, 2);
    const spool = (k: number): string => {
      const path = checkpoints.spoolPath(`u${k}`);
      writeFileSync(path, float32Bytes(values));
      return path;
    };
    await aggregator.add(spool(0), 10, 1, 'u0');
    await aggregator.add(spool(1), 10, 1, 'u1');
    const err = await aggregator.add(spool(2), 10, 1, 'u2').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RESOURCE_LIMIT', status: 'RESOURCE_EXHAUSTED', isRejection: false, details: { limit: 'heldUpdates', value: 3, max: 2 } });
    expect(aggregator.count).toBe(2);
  });
});

describe('RoundAggregator: held updates end with their round (issue 11)', () => {
  it('dispose removes the held files, and an update arriving after it is refused (STALE) and not held', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-aggregation-'));
    dirs.push(dir);
    const checkpoints = new CheckpointStore(dir);
    const values = new Float32Array(bundleLength(SMALL));
    const base = await checkpoints.writeCandidate('s', 0, 1, [values]);
    const held = checkpoints.heldDir('s', 1, 1);
    const aggregator = new RoundAggregator(createStrategy({ name: 'fedmedian' }), SMALL, base, checkpoints, held, NO_BOUND, 10);
    const spool = (k: number): string => {
      const path = checkpoints.spoolPath(`u${k}`);
      writeFileSync(path, float32Bytes(values));
      return path;
    };
    await aggregator.add(spool(0), 10, 1, 'u0');
    expect(existsSync(join(held, 'u0.f32'))).toBe(true);
    aggregator.dispose();
    expect(existsSync(held)).toBe(false);
    await expect(aggregator.add(spool(1), 10, 1, 'u1')).rejects.toMatchObject({ code: 'STALE' });
    expect(existsSync(held)).toBe(false);
    expect(aggregator.count).toBe(0);
  });
});
