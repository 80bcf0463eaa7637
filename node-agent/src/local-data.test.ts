import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateManifest } from '@fedlhs/core';
import { LocalData } from './local-data.js';

describe('LocalData readiness', () => {
  it('is what the running agent sends: a flat table without cases is not READY, with the same detail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-ready-'));
    const path = join(dir, 'data.csv');
    const names = ['x1', 'x2'];
    writeFileSync(path, [['record_id', ...names, 'label'].join(','), ...Array.from({ length: 200 }, (_, i) => [`r${i}`, ...names.map((_, j) => String((i * (j + 1)) % 7)), '0'].join(','))].join('\n'));
    const manifest = validateManifest({
      apiVersion: 'fedlhs.v1', kind: 'Study', name: 'no-cases',
      model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
      training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
      rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
      data: { featureSpec: 'flat-table/v1', features: names, label: 'label' }, aggregation: { strategy: 'fedavg' },
    });
    const data = new LocalData({ format: 'flat-table', path, keyColumn: 'record_id', minCohort: 20 });
    const check = await data.check(manifest);
    expect(check).toEqual({ ok: false, readiness: 'READINESS_COHORT_TOO_SMALL', detail: 'no eligible patient has the outcome (no cases): nothing to learn from or evaluate on here' });
  });

  it('reads a refreshed export again (a series run after new patients): the cache follows the export', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-refresh-'));
    const path = join(dir, 'data.csv');
    const names = ['x1', 'x2'];
    const write = (rows: number): void =>
      writeFileSync(path, [['record_id', ...names, 'label'].join(','), ...Array.from({ length: rows }, (_, i) => [`r${i}`, String(i % 7), String(i % 5), String(i % 3 === 0 ? 1 : 0)].join(','))].join('\n'));
    write(200);
    const manifest = validateManifest({
      apiVersion: 'fedlhs.v1', kind: 'Study', name: 'refresh',
      model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
      training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
      rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
      data: { featureSpec: 'flat-table/v1', features: names, label: 'label' }, aggregation: { strategy: 'fedavg' },
    });
    const data = new LocalData({ format: 'flat-table', path, keyColumn: 'record_id', minCohort: 20 });
    const rows = async (): Promise<number> => {
      const d = await data.require(manifest);
      return d.train.rows + d.holdout.rows;
    };
    expect(await rows()).toBe(200);
    expect(await rows()).toBe(200);
    write(260);
    expect(await rows()).toBe(260);
  });
});
