import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, type Assessment } from '@fedlhs/simulator';

const execFileAsync = promisify(execFile);
const main = join(repoRoot, 'simulator', 'bin', 'fedlhs-simulate.js');
const out = mkdtempSync(join(tmpdir(), 'fedlhs-lhs-'));
afterAll(() => {
  if (process.env.FEDLHS_KEEP_TEST_DIRS !== '1') rmSync(out, { recursive: true, force: true });
});

/** The parts of lhs-report.json (simulator/src/lhs-types.ts) this test reads. */
interface Difference { difference: number | null; ci: { low: number; high: number } | null; cases: number; nonCases: number }
interface Report {
  settings: { years: number; firstCalendarYear: number };
  runs: {
    year: number; run: number; state: string; trigger: string; staleExports: string[]; scheduledAt: string; clinics: string[]; trained: string[]; championBefore: number | null; warmStart: boolean;
    release: { version: number } | null; championAfter: number | null; window: { from: string; to: string };
    decision: { promote: boolean; reasons: string[]; pooled: { difference: number; interval: [number, number]; sites: number } | null } | null;
  }[];
  clinicYears: {
    clinic: string; year: number; joined: boolean; test: { n: number; cases: number }; glucoseMissing: number; insulinMissing: number; agentWarnings: string[];
    frozen: Assessment | null; continuous: Assessment | null; inUse: Assessment | null; challenger: Assessment | null; local: Assessment | null;
    continuousVsFrozen: Difference | null; continuousVsLocal: Difference | null; challengerVsFrozen: Difference | null;
  }[];
  firstDay: { clinic: string; year: number; championVersion: number | null; championOnAll: Assessment | null; championVsLocal: Difference | null } | null;
  verdicts: string[];
  notHolding: string[];
  findings: string[];
}

describe('fedlhs-simulate lhs (drifting clinics, a yearly series on the coordinator\'s simulated clock, real agents)', () => {
  it('runs every year by the schedule, warm-starts from the champion, records decisions and reports the joining clinic\'s first day', async () => {
    const { stdout } = await execFileAsync(process.execPath, [main, 'lhs', '--years', '3', '--scale', '0.2', '--rounds', '3', '--seed', '1', '--out', out], { maxBuffer: 1 << 24, timeout: 280_000 });
    const r = JSON.parse(readFileSync(join(out, 'lhs-report.json'), 'utf8')) as Report;
    expect(stdout).toContain(`report: ${join(out, 'lhs-report.md')}`);

    // Every year's run was started by the series' cron schedule on the simulated clock (never run-now), on 1 January after the year.
    expect(r.runs.map((x) => [x.year, x.run, x.state, x.trigger])).toEqual([[1, 1, 'COMPLETED', 'schedule'], [2, 2, 'COMPLETED', 'schedule'], [3, 3, 'COMPLETED', 'schedule']]);
    expect(r.runs.map((x) => x.scheduledAt)).toEqual([1, 2, 3].map((y) => new Date(Date.UTC(r.settings.firstCalendarYear + y, 0, 1)).toISOString()));
    // Each run's index window moves a year with the clock.
    expect(new Set(r.runs.map((x) => x.window.to.slice(4))).size).toBe(1);
    expect(r.runs.map((x) => Number(x.window.to.slice(0, 4)) - Number(r.runs[0]!.window.to.slice(0, 4)))).toEqual([0, 1, 2]);
    // Runs 2+ warm-start from the champion of their time; every release has the coordinator's decision with reasons.
    expect(r.runs[0]!.championBefore).toBeNull();
    expect(r.runs[0]!.warmStart).toBe(false);
    for (const [i, x] of r.runs.entries()) {
      expect(x.release, `year ${x.year}`).not.toBeNull();
      expect(x.decision, `year ${x.year}`).not.toBeNull();
      expect(x.decision!.reasons.length).toBeGreaterThan(0);
      expect(x.championAfter).toBe(x.decision!.promote ? x.release!.version : x.championBefore);
      if (i > 0) {
        expect(x.championBefore).toBe(r.runs[i - 1]!.championAfter);
        expect(x.warmStart, `year ${x.year} starts from v${x.championBefore}`).toBe(true);
        const p = x.decision!.pooled;
        if (p !== null) expect(p.interval[0] <= p.difference && p.difference <= p.interval[1] && p.sites >= 1, JSON.stringify(p)).toBe(true);
      }
      expect(x.trained.length).toBeGreaterThanOrEqual(2);
      // The agents kept running; each trained on the export swapped in for this year, not a cached older one.
      expect(x.staleExports, `year ${x.year}`).toEqual([]);
    }
    // The first release becomes champion: there is nothing to compare it with.
    expect(r.runs[0]!.decision!.promote).toBe(true);

    // The new small clinic exists only from year 3, and its first day is measured.
    const joining = 'clinic-small-new';
    expect(r.runs.map((x) => x.clinics.includes(joining))).toEqual([false, false, true]);
    expect(r.clinicYears.filter((x) => x.clinic === joining).map((x) => x.year)).toEqual([3]);
    expect(r.firstDay).toMatchObject({ clinic: joining, year: 3, championVersion: r.runs[1]!.championAfter });
    const onAll = r.firstDay!.championOnAll!;
    expect(onAll.n).toBeGreaterThan(0);
    expect(r.verdicts.some((v) => v.startsWith(`${joining}'s first day (year 3): champion v${r.runs[1]!.championAfter}`))).toBe(true);

    // The glucose unit and code switch (year 2) is absorbed by the template's LOINC glucose concept set.
    const switching = r.clinicYears.filter((x) => x.clinic === 'clinic-large-1');
    expect(switching[0]!.glucoseMissing).toBeLessThan(0.5);
    expect(Math.abs(switching[1]!.glucoseMissing - switching[0]!.glucoseMissing)).toBeLessThan(0.1);
    expect(r.findings.some((f) => f.includes('LOINC 14749-6') && f.includes('was absorbed'))).toBe(true);
    // The new assay: insulin is missing everywhere in year 1 and appears at the medium clinic in year 2; the agents that lack it say so.
    const assay = r.clinicYears.filter((x) => x.clinic === 'clinic-medium');
    expect(assay[0]!.insulinMissing).toBe(1);
    expect(assay[1]!.insulinMissing).toBeLessThan(0.9);
    expect(r.clinicYears.filter((x) => x.clinic === 'clinic-large-2').every((x) => x.insulinMissing === 1 && x.agentWarnings.some((w) => w.includes('insulin')))).toBe(true);
    expect(r.findings.some((f) => f.includes('LOINC 20448-7'))).toBe(true);

    // Every figure is finite and carries its interval; every clinic-year has its models' figures.
    const founders = ['clinic-large-1', 'clinic-large-2', 'clinic-medium', 'clinic-small-1'];
    for (const year of [1, 2, 3]) for (const c of founders) expect(r.clinicYears.some((x) => x.clinic === c && x.year === year), `${c} in year ${year}`).toBe(true);
    const assessments = [onAll, ...r.clinicYears.flatMap((x) => [x.frozen, x.continuous, x.inUse, x.challenger, x.local])].filter((a): a is Assessment => a !== null);
    expect(r.clinicYears.every((x) => x.test.n === 0 || (x.frozen !== null && x.continuous !== null && x.challenger !== null))).toBe(true);
    expect(r.clinicYears.filter((x) => x.year > 1 && x.test.n > 0).every((x) => x.inUse !== null && x.challengerVsFrozen !== null)).toBe(true);
    expect(r.clinicYears.some((x) => x.local !== null && x.continuousVsLocal?.ci != null)).toBe(true);
    for (const a of assessments) {
      expect(a.positives + a.negatives).toBe(a.n);
      expect(Number.isFinite(a.brier) && Number.isFinite(a.accuracy)).toBe(true);
      if (a.auc !== null) expect(a.aucCi !== null && a.aucCi.low <= a.auc && a.auc <= a.aucCi.high, JSON.stringify(a.aucCi)).toBe(true);
    }
    for (const d of r.clinicYears.flatMap((x) => [x.continuousVsFrozen, x.continuousVsLocal, x.challengerVsFrozen]).filter((x): x is Difference => x !== null && x.difference !== null)) {
      expect(Number.isFinite(d.difference!)).toBe(true);
      expect(d.ci!.low).toBeLessThanOrEqual(d.ci!.high);
    }
    // The report says where the hypothesis is not shown or does not hold, never a mean gain.
    expect(r.verdicts.join(' ')).not.toMatch(/mean/i);
    expect(r.notHolding.length).toBeGreaterThan(0);
    const md = readFileSync(join(out, 'lhs-report.md'), 'utf8');
    for (const c of [...founders, joining]) expect(md).toContain(`| ${c}`);
    expect(md).toContain('## Where the equity hypothesis does not hold');
    expect(md).toContain('## What the agents reported');
  });
});
