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
  settings: { years: number; adapter: 'coordinator' | 'studies' };
  runs: { year: number; run: number; state: string; clinics: string[]; trained: string[]; championBefore: number | null; warmStart: boolean; release: { version: number } | null; decision: { promote: boolean; reasons: string[]; by: string } | null; championAfter: number | null; window: { from: string; to: string } }[];
  clinicYears: { clinic: string; year: number; joined: boolean; test: { n: number; cases: number }; glucoseMissing: number; frozen: Assessment | null; continuous: Assessment | null; inUse: Assessment | null; local: Assessment | null; continuousVsFrozen: Difference | null; continuousVsLocal: Difference | null }[];
  firstDay: { clinic: string; year: number; championVersion: number | null; championOnAll: Assessment | null; championVsLocal: Difference | null } | null;
  verdicts: string[];
  findings: string[];
}

describe('fedlhs-simulate lhs (drifting clinics, a series run a year, real coordinator and agents)', () => {
  it('runs every year, warm-starts from the champion, records decisions and reports the joining clinic\'s first day', async () => {
    const { stdout } = await execFileAsync(process.execPath, [main, 'lhs', '--years', '3', '--scale', '0.2', '--rounds', '3', '--seed', '1', '--series', 'coordinator', '--out', out], { maxBuffer: 1 << 24, timeout: 280_000 });
    const r = JSON.parse(readFileSync(join(out, 'lhs-report.json'), 'utf8')) as Report;
    expect(stdout).toContain(`report: ${join(out, 'lhs-report.md')}`);

    // The coordinator ran the series and decided every promotion (not the simulator's interim stand-in).
    expect(r.settings.adapter).toBe('coordinator');
    expect(r.runs.map((x) => x.decision?.by)).toEqual(['coordinator', 'coordinator', 'coordinator']);
    // Every year has a completed run of the series, each warm-started from the champion of its time.
    expect(r.runs.map((x) => [x.year, x.run, x.state])).toEqual([[1, 1, 'COMPLETED'], [2, 2, 'COMPLETED'], [3, 3, 'COMPLETED']]);
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
      }
      expect(x.trained.length).toBeGreaterThanOrEqual(2);
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

    // The glucose unit and code switch is visible in year 2 (the study's codes do not cover the new code).
    const switching = r.clinicYears.filter((x) => x.clinic === 'clinic-large-1');
    expect(switching[1]!.glucoseMissing - switching[0]!.glucoseMissing).toBeGreaterThan(0.5);
    expect(r.findings.some((f) => f.includes('LOINC 14749-6'))).toBe(true);
    expect(r.findings.some((f) => f.includes('LOINC 20448-7'))).toBe(true);

    // Every figure is finite and carries its interval; every clinic-year has its models' figures.
    const founders = ['clinic-large-1', 'clinic-large-2', 'clinic-medium', 'clinic-small-1'];
    for (const year of [1, 2, 3]) for (const c of founders) expect(r.clinicYears.some((x) => x.clinic === c && x.year === year), `${c} in year ${year}`).toBe(true);
    const assessments = [onAll, ...r.clinicYears.flatMap((x) => [x.frozen, x.continuous, x.inUse, x.local])].filter((a): a is Assessment => a !== null);
    expect(r.clinicYears.every((x) => x.test.n === 0 || (x.frozen !== null && x.continuous !== null))).toBe(true);
    expect(r.clinicYears.filter((x) => x.year > 1 && x.test.n > 0).every((x) => x.inUse !== null)).toBe(true);
    expect(r.clinicYears.some((x) => x.local !== null && x.continuousVsLocal?.ci != null)).toBe(true);
    for (const a of assessments) {
      expect(a.positives + a.negatives).toBe(a.n);
      expect(Number.isFinite(a.brier) && Number.isFinite(a.accuracy)).toBe(true);
      if (a.auc !== null) expect(a.aucCi !== null && a.aucCi.low <= a.auc && a.auc <= a.aucCi.high, JSON.stringify(a.aucCi)).toBe(true);
    }
    for (const d of r.clinicYears.flatMap((x) => [x.continuousVsFrozen, x.continuousVsLocal]).filter((x): x is Difference => x !== null && x.difference !== null)) {
      expect(Number.isFinite(d.difference!)).toBe(true);
      expect(d.ci!.low).toBeLessThanOrEqual(d.ci!.high);
    }
    // The report says where the hypothesis is not shown or does not hold, never a mean gain.
    expect(r.verdicts.join(' ')).not.toMatch(/mean/i);
    const md = readFileSync(join(out, 'lhs-report.md'), 'utf8');
    for (const c of [...founders, joining]) expect(md).toContain(`| ${c}`);
    expect(md).toContain('The coordinator ran the series');
  });
});
