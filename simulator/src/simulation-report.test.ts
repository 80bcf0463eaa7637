import { describe, expect, it } from 'vitest';
import { mulberry32 } from '@fedlhs/core';
import { assess, type Assessment, type PairedAucDifference } from './evaluation.js';
import { simulationHeadline, simulationHtml, tallyGains } from './simulation-report.js';
import type { ClinicResult, SimulationReport } from './simulation-types.js';

/** Seeded scores for n patients with `cases` cases, separated by `shift`. */
function assessed(n: number, cases: number, shift: number, seed: number): Assessment {
  const random = mulberry32(seed);
  const labels = Array.from({ length: n }, (_, i) => (i < cases ? 1 : 0));
  return assess(labels.map((y) => Math.min(0.99, Math.max(0.01, 0.3 * random() + shift * y))), labels);
}

const gain = (difference: number, low: number, high: number, cases: number, nonCases = 200): PairedAucDifference =>
  ({ a: 0.8, b: 0.8 - difference, difference, ci: { low, high }, cases, nonCases, stable: cases >= 10 && nonCases >= 10 });

function clinic(name: string, cases: number, own: PairedAucDifference | null, onAll: PairedAucDifference | null, seed: number): ClinicResult {
  const r = (shift: number, s: number): Assessment => assessed(cases * 10, cases, shift, seed * 10 + s);
  return {
    name, format: 'synthea-csv', patients: cases * 40, eligible: cases * 30, train: cases * 20, holdout: cases * 10, prevalence: 0.1, participated: true,
    cohort: { patients: cases * 40, patientLosses: {}, eligible: cases * 30, excluded: {}, positives: cases * 3, features: [], skipped: {}, eventsForUnknownPatients: 0, notes: {}, indexWindowClasses: {}, warnings: [] },
    results: { federated: r(0.3, 1), local: r(0.2, 2), pooled: r(0.3, 3), oracle: r(0.5, 4) },
    gain: own?.difference ?? null, gainPaired: own, localOnAll: onAll === null ? null : r(0.25, 5), gainOnAll: onAll,
  };
}

function report(clinics: ClinicResult[]): SimulationReport {
  const overall = assessed(2000, 200, 0.3, 7);
  const r: SimulationReport = {
    kind: 'simulation', createdAt: '2026-11-29T00:00:00.000Z',
    settings: { clinics: clinics.length, seed: 1, rounds: 2, scale: 1, backend: 'cpu', bootstrap: { resamples: 2000, seed: 1, minCases: 10 } },
    study: { id: 'st-1', state: 'COMPLETED', manifestSha256: '0'.repeat(64), roundsCommitted: 2 },
    release: { studyName: 't2d', version: 1, round: 2, rule: 'best-validation-auc', testFraction: 0.5 },
    rounds: [{ round: 1, loss: 0.3, accuracy: 0.9, auc: 0.7, holdout: overall }, { round: 2, loss: 0.29, accuracy: 0.9, auc: 0.72, holdout: null }],
    clinics, overall: { federated: overall, pooled: overall },
    federatedVsPooled: gain(-0.004, -0.011, 0.003, 200, 1800),
    headline: '', normalizationMaxAbsDiff: 0, suppressionEffect: 0, timings: {},
  };
  r.headline = simulationHeadline(r);
  return r;
}

describe('simulation headline', () => {
  const clinics = [
    clinic('large', 150, gain(0.002, -0.01, 0.014, 150), gain(0.001, -0.004, 0.006, 200), 1),
    clinic('medium', 30, gain(0.06, 0.01, 0.11, 30), gain(0.02, 0.012, 0.028, 200), 2),
    clinic('dipping', 40, gain(-0.05, -0.09, -0.01, 40), gain(-0.01, -0.015, -0.005, 200), 3),
    clinic('small', 4, gain(0.58, 0.2, 0.9, 4, 54), gain(0.6, 0.58, 0.62, 200), 4),
    clinic('tiny', 2, null, null, 5),
  ];

  it('counts clinics by where their paired interval lies and claims nothing where the cases are too few', () => {
    const t = tallyGains(clinics, (c) => c.gainPaired);
    expect([t.above, t.below, t.includesZero, t.tooFew, t.none].map((g) => g.map((c) => c.name))).toEqual([['medium'], ['dipping'], ['large'], ['small'], ['tiny']]);
    expect(simulationHeadline(report(clinics))).toMatchInlineSnapshot(`"Federated vs local-only on each clinic's own test patients: federated is better at 1 of 3 clinics (95 % interval above 0), worse at 1 (interval below 0); at 1 the interval includes 0. One clinic's test part has too few cases for a stable AUC (small: 4 cases, 54 non-cases; at least 10 of each are needed): no gain is claimed there. Scored on all 2000 test patients (200 cases), the federated model is better than the local-only model at 2 of 4 clinics (95 % interval above 0), worse at 1 (interval below 0); at 1 the interval includes 0. tiny had no local-only model to compare (too few training patients or no outcome among them). Federated vs pooled on all test patients: -0.004 [-0.011, 0.003] (the interval includes 0)."`);
  });

  it('never states a mean gain, even when one unstable clinic would carry it', () => {
    expect(simulationHeadline(report(clinics))).not.toMatch(/mean/i);
  });
});

describe('simulation report HTML', () => {
  it('prints every AUC with its interval and counts, gains with theirs, accuracy beside the no-information rate', () => {
    const r = report([clinic('large', 150, gain(0.002, -0.01, 0.014, 150), gain(0.001, -0.004, 0.006, 200), 1), clinic('small', 4, gain(0.58, 0.2, 0.9, 4, 36), gain(0.6, 0.58, 0.62, 200), 4)]);
    const html = simulationHtml(r);
    const aucs = [...r.clinics.flatMap((c) => [...Object.values(c.results), c.localOnAll]), r.overall.federated!].filter((a): a is Assessment => a != null);
    for (const a of aucs) {
      expect(html).toContain(`${a.auc!.toFixed(3)} <span class="ci">[${a.aucCi!.low.toFixed(3)}, ${a.aucCi!.high.toFixed(3)}]</span><br><span class="counts">${a.positives} cases / ${a.negatives} non-cases</span>`);
    }
    // No AUC cell without its interval: every count of cases follows an AUC and its interval.
    const cells = html.match(/<span class="counts">/g)!.length;
    expect(cells).toBeGreaterThanOrEqual(aucs.length);
    expect(html.match(/\d\.\d{3} <span class="ci">\[\d\.\d{3}, \d\.\d{3}\]<\/span><br><span class="counts">/g)!.length).toBe(cells);
    expect(html).toContain('+0.580 <span class="ci">[0.200, 0.900]</span><br><abbr class="flag"');
    expect(html).toContain('+0.002 <span class="ci">[-0.010, 0.014]</span><br><span class="verdict zero">interval includes 0</span>');
    expect(html).toContain('no-information rate');
    expect(html).toContain(`<p class="headline" id="headline">${r.headline}</p>`);
    expect(html).not.toMatch(/Mean AUC gain/);
  });
});
