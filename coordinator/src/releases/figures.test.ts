import { describe, expect, it } from 'vitest';
import { applyNormalization, parseManifest, type ClinicStats, type Normalization } from '@fedlhs/core';
import type { MetricRecord, StatisticsRecord } from '../store.js';
import { featureSummary, metricsPart, normalizationOf, perSite } from './figures.js';

const manifest = (normalization: string, extra: Record<string, unknown> = {}) => parseManifest(JSON.stringify({
  apiVersion: 'fedlhs.v1', kind: 'Study', name: 'fig',
  model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
  training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 8 },
  rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
  data: { featureSpec: 'flat-table/v1', features: ['a', 'b'], normalization, minCellCount: 5, ...extra },
  aggregation: { strategy: 'fedavg' }, updateValidation: {},
}));

describe('normalizationOf', () => {
  it('carries the study\'s federated parameters, with impute and excluded features that score as the constant 0', () => {
    const normalization: Normalization = {
      method: 'zscore', clinics: 3,
      features: [{ name: 'a', mean: 10, std: 2, source: 'federated' }, { name: 'b', mean: 0, std: 1, excluded: true, source: 'excluded', withheldAt: 3 }],
    };
    const n = normalizationOf(manifest('federated-zscore', { normalizationFallback: 'exclude' }), JSON.stringify({ normalization }));
    expect(n.method).toBe('federated-zscore');
    expect(n.features).toEqual([{ name: 'a', mean: 10, std: 2, impute: 10 }, { name: 'b', mean: 0, std: 1, impute: 0, excluded: true }]);
    expect(n.note).toMatch(/3 clinic\(s\).*b \(excluded: the constant 0\)/);
    // What an agent does with it: the excluded feature is 0 whatever its value.
    expect([...applyNormalization(new Float32Array([12, 7]), ['a', 'b'], { method: 'zscore', features: n.features })]).toEqual([1, 0]);
  });

  it('refuses a federated-zscore study without parameters; none and local-zscore carry a note and no features', () => {
    expect(() => normalizationOf(manifest('federated-zscore'), null)).toThrow(/no normalisation parameters/);
    expect(normalizationOf(manifest('none'), null)).toMatchObject({ method: 'none', features: [] });
    expect(normalizationOf(manifest('local-zscore'), null).note).toMatch(/its own training split/);
  });
});

describe('featureSummary', () => {
  const stats = (rows: number, a: { count: number; sum: number; ss: number }, suppressedB: boolean): ClinicStats => ({
    rows, positives: 0, suppressed: false,
    features: [
      { name: 'a', count: a.count, sum: a.sum, sumOfSquares: a.ss, missing: 0, suppressed: false, missingSuppressed: false, histogram: [], histogramMin: 0, histogramMax: 0 },
      { name: 'b', count: 0, sum: 0, sumOfSquares: 0, missing: 0, suppressed: suppressedB, missingSuppressed: false, histogram: [], histogramMin: 0, histogramMax: 0 },
    ],
  });
  const rec = (s: ClinicStats, nodeId: string): StatisticsRecord => ({ studyId: 's', taskId: `t-${nodeId}`, nodeId, report: JSON.stringify(s), receivedAt: 1 });

  it('pools the clinics\' statistics; a feature withheld everywhere is null', () => {
    const out = featureSummary([rec(stats(10, { count: 10, sum: 20, ss: 50 }, true), 'n1'), rec(stats(10, { count: 10, sum: 40, ss: 170 }, true), 'n2')], manifest('federated-zscore'));
    expect(out.features[0]).toMatchObject({ name: 'a', mean: 3 });
    expect(out.features[0]!.std).toBeCloseTo(Math.sqrt(220 / 20 - 9));
    expect(out.features[1]).toEqual({ name: 'b', mean: null, std: null });
    expect(out.note).toMatch(/2 clinic\(s\)/);
    expect(featureSummary([], manifest('none'))).toMatchObject({ features: [], note: expect.stringMatching(/No statistics phase/) });
  });
});

describe('metricsPart and perSite', () => {
  const row = (nodeId: string | null, phase: 'evaluation' | 'test', n: number, performance: string | null, roundId = 7): MetricRecord & { round: number } => ({
    roundId, round: 1, nodeId, phase, numExamples: n, loss: 0.5, accuracy: 0.7, auc: 0.75, performance,
  });
  const p = (n: number, positives = 10) => JSON.stringify({ numExamples: n, positives, auc: 0.7, aucStandardError: 0.1, brier: 0.2, calibration: [] });
  const input = (rows: (MetricRecord & { round: number })[]) => ({ rows, roundId: 7, evaluated: ['n1', 'n2', 'n3', 'n4'], siteName: (id: string) => `site-${id}`, minCellCount: 5 });

  it('publishes sites with figures (small cells null), names sites without figures, counts withheld ones', () => {
    const rows = [
      row('n1', 'evaluation', 30, p(30)), row('n1', 'test', 30, p(30)),
      row('n2', 'evaluation', 30, null), // a third-party agent: no Performance at all
      row('n3', 'evaluation', 30, p(30)), // sent validation figures; its test part was withheld
      row(null, 'evaluation', 95, p(95)), row(null, 'test', 40, null),
      row('n4', 'evaluation', 99, p(99), 6), // another attempt: ignored
    ];
    const v = metricsPart('evaluation', input(rows));
    expect(v.sites.map((s) => s.site)).toEqual(['site-n1', 'site-n3']);
    expect(v.sites[0]!.performance).toMatchObject({ numExamples: 30, positives: 10, auc: 0.7 });
    expect(v).toMatchObject({ withheldSites: 1, sitesWithoutFigures: ['site-n2'], pooled: { numExamples: 95, auc: 0.7 } });
    const t = metricsPart('test', input(rows));
    expect(t).toMatchObject({ withheldSites: 2, sitesWithoutFigures: ['site-n2'], pooled: { numExamples: 40, auc: 0.75, brier: null } });
    expect(perSite(input(rows))).toEqual([
      { site: 'site-n1', validationExamples: 30, testExamples: 30 }, { site: 'site-n2', validationExamples: 30, testExamples: null },
      { site: 'site-n3', validationExamples: 30, testExamples: null }, { site: 'site-n4', validationExamples: null, testExamples: null },
    ]);
    expect(metricsPart('test', input([])).pooled).toBeNull();
  });

  it('withholds a stored site with fewer than minCellCount cases and the next smallest with it, counted as withheld (review hospital HIGH 1, LOW 8)', () => {
    // Rows as stored before the evaluation phase withheld by cases: n1 has 2 cases, so its AUC
    // must not be published, nor n3's (pooled − n3 would give n1's cases away).
    const rows = [
      row('n1', 'evaluation', 30, p(30, 2)), row('n2', 'evaluation', 30, null), row('n3', 'evaluation', 40, p(40, 10)),
      row(null, 'evaluation', 100, p(100, 12)),
    ];
    const v = metricsPart('evaluation', input(rows));
    expect(v.sites).toEqual([]);
    expect(v).toMatchObject({ withheldSites: 3, sitesWithoutFigures: ['site-n2'] });
    // Non-cases too: 28 of 30 are cases.
    const w = metricsPart('evaluation', input([row('n1', 'evaluation', 30, p(30, 28)), row('n3', 'evaluation', 40, p(40, 10)), row('n4', 'evaluation', 400, p(400, 80))]));
    expect(w.sites.map((s) => s.site)).toEqual(['site-n4']);
    expect(w.withheldSites).toBe(3); // n1, n3 and n2 (no row: withheld when stored)
  });
});
