import { deriveSeriesRun, seriesRunChanges } from '@fedlhs/core';
import { DEFAULT_DRIFT, INDEX_WINDOW_END_DAY, INDEX_WINDOW_START_DAY } from '@fedlhs/synth';
import { describe, expect, it } from 'vitest';
import type { Assessment, PairedAucDifference } from './evaluation.js';
import { lhsFindings, lhsMarkdown, lhsNotHolding, lhsVerdicts } from './lhs-report.js';
import { GLUCOSE_CODES, INSULIN, lhsTemplate } from './lhs-series.js';
import type { LhsClinicYear, LhsReport, LhsRun } from './lhs-types.js';

const diff = (difference: number, low: number, high: number, cases = 30): PairedAucDifference => ({ a: 0.7, b: 0.7 - difference, difference, ci: { low, high }, cases, nonCases: 200, stable: cases >= 10 });
const auc = (value: number, n = 100, positives = 20): Assessment => ({
  n, positives, negatives: n - positives, auc: value, aucCi: { low: value - 0.1, high: value + 0.05 }, aucStable: true, accuracy: 0.8, noInformationRate: 0.8, brier: 0.1, ece: 0.02, calibration: [],
});
const clinicYear = (clinic: string, year: number, over: Partial<LhsClinicYear> = {}): LhsClinicYear => ({
  clinic, year, format: 'synthea-csv', joined: year === 1, eligible: 500, prevalence: 0.1, test: { n: 100, cases: 20 }, glucoseMissing: 0.1, insulinMissing: 1, warnings: [], agentWarnings: [],
  frozen: auc(0.7), continuous: auc(0.72), inUse: null, challenger: auc(0.72), local: auc(0.65), continuousVsFrozen: diff(0, 0, 0), continuousVsLocal: diff(0.07, 0.02, 0.12), challengerVsFrozen: null, ...over,
});
const run = (year: number, championAfter: number): LhsRun => ({
  year, run: year, studyId: `s${year}`, state: 'COMPLETED', manifestSha256: 'x', trigger: 'schedule', scheduledAt: `${2019 + year}-01-01T00:00:00.000Z`, window: { from: '2018-01-01', to: '2021-12-31' }, clinics: ['a', 'b'], trained: ['a'],
  championBefore: year === 1 ? null : year - 1, warmStart: year > 1, release: { version: year, round: 3, rule: 'best' },
  decision: { promote: championAfter === year, reasons: ['r'], pooled: year === 1 ? null : { difference: 0.01, standardError: 0.01, interval: [-0.01, 0.03], sites: 2, excluded: 0 }, tooSmall: ['b'], worse: [] }, championAfter, agentWarnings: [], staleExports: [],
});

function report(over: Partial<LhsReport> = {}): LhsReport {
  return {
    kind: 'lhs', createdAt: '2026-01-01T00:00:00Z',
    settings: { years: 3, scale: 1, seed: 1, rounds: 3, founders: 2, backend: 'cpu', drift: { ...DEFAULT_DRIFT }, firstCalendarYear: 2019, bootstrap: { resamples: 2000, seed: 1, minCases: 10 } },
    series: { name: 't2d-lhs', templateSha256: 'ab'.repeat(32) },
    runs: [run(1, 1), run(2, 1), run(3, 3)],
    clinicYears: [
      clinicYear('a', 1), clinicYear('b', 1, { continuousVsLocal: diff(0.01, -0.04, 0.06) }),
      clinicYear('a', 2, { continuousVsLocal: diff(-0.09, -0.15, -0.03) }), clinicYear('b', 2, { continuousVsLocal: diff(0.05, -0.2, 0.3, 3) }),
      clinicYear('a', 3, { continuousVsFrozen: diff(0.04, 0.01, 0.07) }), clinicYear('b', 3, { continuousVsFrozen: diff(-0.01, -0.05, 0.03), glucoseMissing: 1, warnings: ['no eligible patient has a value for glucose'] }),
      clinicYear('new', 3, { joined: true, local: null, continuousVsLocal: null }),
    ],
    firstDay: { clinic: 'new', year: 3, championVersion: 1, championOnAll: auc(0.74, 60, 12), championOnTest: auc(0.7, 20, 10), localOnTest: auc(0.6, 20, 10), championVsLocal: diff(0.1, -0.05, 0.25, 10) },
    verdicts: [], notHolding: [], findings: [], timings: {},
    ...over,
  };
}

describe('lhs report', () => {
  it('counts where the equity hypothesis is shown, and lists every clinic-year where it is not', () => {
    const v = lhsVerdicts(report());
    const local = v.find((x) => x.startsWith('Continuous learning vs local-only'))!;
    expect(local).toContain('better at 3 of 5 clinic-years');
    expect(local).toContain('Not shown at 1 (the interval includes 0)');
    expect(local).toContain('WORSE at a in year 2 (-0.090 [-0.150, -0.030])');
    expect(local).toContain('Too few cases to judge at 1.');
    // Year 2 kept the year-1 champion: not tallied as a comparison of a model with itself.
    const frozen = v.find((x) => x.startsWith('Continuous learning vs the model frozen'))!;
    expect(frozen).toContain('better at 1 of 3 clinic-years');
    expect(frozen).not.toContain('in year 2');
    expect(v).toContain('In year 2 the champion was still the year-1 model (no release was promoted): continuous learning and the frozen model are the same model there, and continuous learning gained nothing.');
    expect(v.find((x) => x.startsWith("new's first day"))).toMatch(/champion v1.*AUC 0\.740 \[0\.640, 0\.790\] on all its 60 labelled patients.*\+0\.100 \[-0\.050, \+0\.250\], the hypothesis is NOT shown/);
    expect(v.at(-1)).toBe("3 yearly runs, every one started by the series' schedule on the simulated clock; 3 releases judged by the coordinator, 2 promoted, 1 kept out.");
    const not = lhsNotHolding(report());
    expect(not).toContain('a, year 2: the network\'s model vs its own local-only model DOES NOT HOLD: -0.090 [-0.150, -0.030], the interval lies below 0.');
    expect(not).toContain('b, year 1: the network\'s model vs its own local-only model not shown: +0.010 [-0.040, +0.060], the interval includes 0.');
    expect(not).toContain('b, year 2: the network\'s model vs its own local-only model cannot be judged: 3 cases and 200 non-cases in its test part (too few cases for a stable AUC).');
    expect(not).toContain('new, year 3: the network\'s model vs its own local-only model cannot be judged: no local-only model (too few training patients or one class).');
    expect(not.some((x) => x.startsWith("new's first day (year 3): the champion vs its own local-only model not shown"))).toBe(true);
    expect(not.some((x) => x.startsWith('a, year 1'))).toBe(false);
  });

  it('names the joining clinic that got no model, and a network nobody joined', () => {
    expect(lhsVerdicts(report({ firstDay: null }))).toContain('No clinic joined during the simulated years: there is no first day to report.');
    const none = report({ firstDay: { ...report().firstDay!, championVersion: null } });
    expect(lhsVerdicts(none)).toContain('new joined in year 3 before there was any champion: it got no model on its first day.');
  });

  it('reports a glucose switch that lost values, one that was absorbed, and the new assay', () => {
    const r = report({ clinicYears: [clinicYear('b', 1, { glucoseMissing: 0.15 }), clinicYear('b', 2, { glucoseMissing: 1, agentWarnings: ['no eligible patient has a value for glucose'] })] });
    const f = lhsFindings(r, 'b', 'a', new Map());
    expect(f[0]).toContain('went from 15 % to 100 %');
    expect(f[0]).toContain('NOT absorbed');
    expect(f[0]).toContain('Its agent reported: no eligible patient has a value for glucose.');
    const kept = lhsFindings(report({ clinicYears: [clinicYear('b', 1), clinicYear('b', 2)] }), 'b', undefined, new Map());
    expect(kept).toEqual([expect.stringContaining('The switch was absorbed')]);
    const assay = report({
      clinicYears: [
        clinicYear('a', 1), clinicYear('a', 2, { insulinMissing: 0.4, challengerVsFrozen: diff(0.05, 0.01, 0.09) }),
        clinicYear('b', 2, { agentWarnings: ['no eligible patient has a value for insulin: check the codes'] }),
      ],
    });
    const g = lhsFindings(assay, undefined, 'a', new Map([[2, 57]]));
    expect(g[0]).toContain('fasting insulin (LOINC 20448-7), from year 2 (57 values');
    expect(g[0]).toContain('went from 100 % to 40 %');
    expect(g[0]).toContain('year 2 +0.050 [+0.010, +0.090]');
    expect(g[0]).toContain('Promoted after it appeared: v3 (year 3).');
    expect(g[1]).toContain('Insulin stays missing at b. The agents of b reported it');
  });

  it('renders markdown with every run, decision, clinic-year, agent warning and the first day', () => {
    const r = report();
    r.clinicYears[1]!.agentWarnings = ['no eligible patient has a value for insulin'];
    r.verdicts = lhsVerdicts(r);
    r.notHolding = lhsNotHolding(r);
    const md = lhsMarkdown(r);
    expect(md).toContain('| 2 | s2 | schedule | 2021-01-01 | COMPLETED | 2018-01-01..2021-12-31 | 2 | a | v1 (warm start) | v2 (round 3) | v1 |');
    expect(md).toContain('| 2 | v2 | v1 | +0.010 [-0.010, +0.030] over 2 clinics | keep | r | b | – |');
    expect(md).toContain('| b | 1 | no eligible patient has a value for insulin |');
    expect(md).toContain('## Where the equity hypothesis does not hold');
    expect(md).toContain('| new (joins) | 3 |');
    expect(md).toContain('| champion − local (paired) | 20 | +0.100 [-0.050, +0.250] |');
    expect(md.split('\n').filter((l) => /^\| [a-z]+( \(joins\))? \| \d \| \d+ \|/.test(l))).toHaveLength(7);
  });
});

describe('lhs series template', () => {
  const t = lhsTemplate({ name: 't2d-lhs', rounds: 3, seed: 1, maxClinics: 5 });

  it('derives runs whose index window spans the generator\'s four index years, ending a year plus the horizon before the run', () => {
    const at = Date.UTC(2026, 10, 30, 9);
    const m = deriveSeriesRun(t, 2, at);
    const day = (iso: string): number => Date.parse(`${iso}T00:00:00Z`) / 86_400_000;
    const { from, to } = m.data.cohort!.index;
    expect(day(to) - day(from)).toBe(INDEX_WINDOW_END_DAY - INDEX_WINDOW_START_DAY);
    expect(Math.floor(at / 86_400_000) - day(to)).toBe(365 + 1095);
    expect(m.model.initialWeights).toBeUndefined();
    expect(t.start).toBe('champion');
    expect(t.promotion).toEqual({ rule: 'auto', minDelta: 0, maxSiteLoss: 0.05, minSites: 2 });
  });

  it('reads glucose under the whole LOINC concept set and has fasting insulin as a feature from the start', () => {
    const m = deriveSeriesRun(t, 1, Date.UTC(2020, 0, 1));
    const features = m.data.cohort!.features as { name: string; codes?: string[]; unit?: string }[];
    expect(features.find((f) => f.name === 'glucose')!.codes).toEqual([...GLUCOSE_CODES]);
    expect(features.find((f) => f.name === 'insulin')).toMatchObject({ codes: [INSULIN.code], unit: INSULIN.unit });
    expect(m.data.normalizationFallback).toBe('exclude');
    expect(JSON.stringify(m.model.topology)).toContain(`"batch_input_shape":[null,${features.length}]`);
  });

  it('lets a warm-started run vary only in what the series approval covers', () => {
    const m = deriveSeriesRun(t, 3, Date.UTC(2027, 0, 1), { version: 2, weightsSha256: 'c'.repeat(64) });
    expect(m.model.initialWeights?.release).toEqual({ studyName: 't2d-lhs', version: 2, weightsSha256: 'c'.repeat(64) });
    expect(seriesRunChanges(t, m, Date.UTC(2027, 0, 1))).toEqual([]);
  });
});
