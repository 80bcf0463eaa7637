import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runSimulation, simulationHtml, type Assessment } from '@fedlhs/simulator';

const out = mkdtempSync(join(tmpdir(), 'fedlhs-sim-'));
afterAll(() => {
  if (process.env.FEDLHS_KEEP_TEST_DIRS !== '1') rmSync(out, { recursive: true, force: true });
});

describe('simulate (synthetic clinics, real gRPC)', () => {
  it('federated beats the smallest clinic alone and comes within 0.05 AUC of pooled', async () => {
    const lines: string[] = [];
    const report = await runSimulation({ clinics: 4, seed: 3, rounds: 8, scale: 0.25, out, log: (l) => lines.push(l) });
    expect(report.study.state).toBe('COMPLETED');
    expect(report.study.roundsCommitted).toBe(8);
    // Federated statistics equal the pooled training statistics.
    expect(report.normalizationMaxAbsDiff).toBeLessThan(1e-6);
    const overall = report.overall;
    expect(overall.federated!.auc!).toBeGreaterThan(overall.pooled!.auc! - 0.05);
    expect(overall.oracle!.auc!).toBeGreaterThan(overall.federated!.auc! - 0.02);
    expect(overall.oracle!.auc!).toBeGreaterThan(0.75);
    expect(overall.oracle!.auc!).toBeLessThan(0.92);
    // The smallest clinic's own model, scored on every clinic's hold-out patients (its own
    // hold-out has too few outcomes for a stable AUC), is beaten by the federated model.
    const participating = report.clinics.filter((c) => c.participated);
    const smallest = participating.reduce((a, b) => (a.eligible <= b.eligible ? a : b));
    expect(overall.federated!.auc!).toBeGreaterThan((smallest.localOnAll?.auc ?? 0.5) + 0.01);
    // All three export formats were read by the agents.
    expect(new Set(report.clinics.map((c) => c.format))).toEqual(new Set(['synthea-csv', 'fhir-ndjson', 'omop-csv']));
    // A clinic the agents' readiness rule keeps out of training still gets the federated model, scored on its patients.
    for (const c of report.clinics.filter((x) => !x.participated)) {
      expect(lines.some((l) => l.startsWith(`${c.name} cannot train here: `))).toBe(true);
      if (c.holdout > 0) expect(c.results.federated).toBeDefined();
    }
    // The federated AUC improved over the rounds.
    expect(report.rounds.at(-1)!.auc!).toBeGreaterThan(report.rounds[0]!.auc! - 0.01);
    // Every AUC carries its 95 % interval and the cases and non-cases it rests on.
    const assessments: Assessment[] = [
      ...Object.values(overall), ...report.rounds.map((r) => r.holdout),
      ...report.clinics.flatMap((c) => [...Object.values(c.results), c.localOnAll]),
    ].filter((a): a is Assessment => a != null);
    expect(report.rounds.every((r) => r.holdout !== null)).toBe(true);
    expect(report.settings.bootstrap).toEqual({ resamples: 2000, seed: 3, minCases: 10 });
    for (const a of assessments) {
      expect(a.positives + a.negatives).toBe(a.n);
      expect(a.aucStable).toBe(a.positives >= 10 && a.negatives >= 10);
      expect(a.noInformationRate).toBe(Math.max(a.positives, a.negatives) / a.n);
      if (a.auc !== null) expect(a.aucCi!.low <= a.auc && a.auc <= a.aucCi!.high, JSON.stringify(a.aucCi)).toBe(true);
    }
    // Gains are paired, with intervals; the headline claims no mean gain and names the clinics whose hold-out has too few cases.
    for (const c of report.clinics.filter((x) => x.gainPaired?.difference != null)) {
      expect(c.gainPaired!.difference).toBeCloseTo(c.gain!, 12);
      expect(c.gainPaired!.ci!.low).toBeLessThanOrEqual(c.gainPaired!.ci!.high);
      expect(c.gainOnAll!.cases).toBe(overall.federated!.positives);
    }
    expect(report.federatedVsPooled!.ci).not.toBeNull();
    expect(report.headline).toMatch(/interval/);
    expect(report.headline).not.toMatch(/mean/i);
    for (const c of report.clinics.filter((x) => x.gainPaired !== null && !x.gainPaired.stable)) expect(report.headline).toContain(`${c.name}: ${c.gainPaired!.cases} case`);
    const html = simulationHtml(report);
    expect(html).toContain('<svg');
    expect(html).toContain(report.headline.replace(/&/g, '&amp;'));
    expect(html).not.toMatch(/https?:\/\//);
    // The real run's report, beside the screenshots of tests/integration/reports-browser.test.ts.
    mkdirSync(join(repoRoot, 'artifacts'), { recursive: true });
    writeFileSync(join(repoRoot, 'artifacts', 'simulation-report.html'), html);
    writeFileSync(join(repoRoot, 'artifacts', 'simulation-report.json'), JSON.stringify(report, null, 1));
    expect(lines.some((l) => /round\s+8 committed/.test(l))).toBe(true);
    // No patient identifier from the exports reached the report.
    const synthea = report.clinics.find((c) => c.format === 'synthea-csv')!;
    expect(existsSync(join(out, 'clinics', synthea.name, 'synthea', 'patients.csv'))).toBe(true);
    const patientsCsv = readFileSync(join(out, 'clinics', synthea.name, 'synthea', 'patients.csv'), 'utf8').split('\n')[1]!.split(',')[0]!;
    expect(JSON.stringify(report)).not.toContain(patientsCsv);
  });
});
