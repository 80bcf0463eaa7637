import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointStore } from './checkpoints.js';
import { CoordinatorMetrics } from './metrics.js';
import { SessionRegistry } from './sessions.js';
import { SqliteStore } from './sqlite-store.js';
import { Studies, type InitialModelBuilder } from './studies.js';
import { LogSink } from './test-support.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A manifest whose model is Dense(inputs → units) → Dense(1): inputs·units + 2·units + 1 parameters. */
function manifest(inputs: number, units: number, strategy = 'fedavg'): string {
  return JSON.stringify({
    apiVersion: 'fedlhs.v1', kind: 'Study', name: 'memory',
    model: {
      format: 'tfjs-layers',
      topology: { class_name: 'Sequential', config: { name: 'm', layers: [
        { class_name: 'Dense', config: { name: 'hidden', units, activation: 'relu', batch_input_shape: [null, inputs] } },
        { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
      ] } },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
    rounds: 1, clients: { min: 2, max: 2, quorum: 2 }, deadlines: { roundSeconds: 600, evaluationSeconds: 600 },
    data: { featureSpec: 'flat-table/v1', features: Array.from({ length: inputs }, (_, i) => `x${i}`) },
    aggregation: { strategy },
  });
}

function studies(modelMemoryBytes: number) {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-studies-'));
  const store = new SqliteStore(join(dir, 'coordinator.db'));
  const log = new LogSink();
  const logger = pino({ level: 'info' }, log);
  const metrics = new CoordinatorMetrics();
  const built: number[] = [];
  // The real builder is TF.js; this one allocates exactly the model, and says it was called.
  const buildInitialModel: InitialModelBuilder = async (m) => {
    const layers = (m.model.topology as { config: { layers: { config: { units: number; batch_input_shape?: number[] } }[] } }).config.layers;
    const inputs = layers[0]!.config.batch_input_shape![1]!;
    const units = layers[0]!.config.units;
    built.push(inputs * units + 2 * units + 1);
    return {
      specs: [{ name: 'hidden/kernel', shape: [inputs, units] }, { name: 'hidden/bias', shape: [units] }, { name: 'out/kernel', shape: [units, 1] }, { name: 'out/bias', shape: [1] }],
      weights: new Float32Array(inputs * units + 2 * units + 1),
    };
  };
  const s = new Studies({
    store, checkpoints: new CheckpointStore(dir), sessions: new SessionRegistry(), logger, log: logger, now: Date.now, metrics, events: new EventEmitter(),
    selectionGraceMs: 0, maxHeldUpdateBytes: 1 << 30, modelMemoryBytes, buildInitialModel, announce: async () => undefined,
  });
  cleanups.push(async () => {
    for (const st of await s.listStudies(false)) await s.stopStudy(st.id, 'test').catch(() => undefined);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { s, log, metrics, built };
}

const refusal = async (p: Promise<unknown>) => p.then(() => { throw new Error('expected the study to be refused'); }, (err: unknown) => err as { code: string; message: string; details: unknown });

describe('Studies: limits.modelMemoryBytes at study start (issue 11)', () => {
  it('refuses a 420M-parameter model before building it, loudly', async () => {
    const { s, log, metrics, built } = studies(6 * 1024 ** 3);
    const err = await refusal(s.startStudy(manifest(10_000, 42_000), 'operator'));
    expect(built).toEqual([]);
    expect({ code: err.code, details: err.details }).toEqual({ code: 'RESOURCE_LIMIT', details: { limit: 'limits.modelMemoryBytes', value: 420_084_001 * 4 * 6, max: 6 * 1024 ** 3 } });
    expect(err.message).toMatchInlineSnapshot(`"the study's model does not fit this coordinator: 420084001 parameters × 4 bytes × 6 (aggregation.strategy fedavg) = 9615 MiB exceeds limits.modelMemoryBytes (6144 MiB)"`);
    expect(log.lines.find((l) => l.event === 'study.refused')).toMatchObject({ level: 40, parameters: 420_084_001, factor: 6, budgetBytes: 6 * 1024 ** 3, by: 'operator' });
    expect((await metrics.registry.getSingleMetric('fedlhs_studies_refused_total')!.get()).values[0]!.value).toBe(1);
    expect(await s.listStudies(true)).toEqual([]);
  });

  it("takes the strategy's needs and the running studies into account", async () => {
    // 1M parameters: fedavg needs 6 × 4 MB = 24 MB, fedadam 11 × 4 MB = 44 MB.
    const { s, built } = studies(40_000_000);
    expect((await refusal(s.startStudy(manifest(998, 1000, 'fedadam'), 'op'))).message).toContain('× 11 (aggregation.strategy fedadam)');
    await s.startStudy(manifest(998, 1000), 'op');
    const second = await refusal(s.startStudy(manifest(998, 1000), 'op'));
    expect(second.message).toContain('beside 23 MiB for the running studies exceeds limits.modelMemoryBytes (38 MiB)');
    expect(built).toEqual([1_000_001]);
  });
});
