import { describe, expect, it } from 'vitest';
import type { ReleaseDetailView, ReleaseSummaryView } from './admin/release-views.js';
import { releaseDetailText, releaseListText } from './release-lines.js';
import { descriptorFixture } from './releases/test-support.js';

const verdict = { status: 'drift' as const, withheld: false, reason: 'drift: calibration slope 0.500 is outside [0.8, 1.25]\u001b[2J', live: {
  numExamples: 200, positives: 40, auc: 0.9, aucInterval: [0.86, 0.94] as [number, number], brier: 0.1, calibrationSlope: 0.5, calibrationIntercept: 0, meanPredicted: 0.2, observedRate: 0.2,
} };
const summary: ReleaseSummaryView = {
  studyName: 'sepsis', version: 2, studyId: 'sepsis-abc', round: 7, createdAt: '2026-11-30T00:00:00.000Z', parentVersion: 1, aliases: ['champion'],
  selection: { rule: 'best-validation-auc', reason: 'best', warnings: [] }, validation: { numExamples: 100, auc: 0.8, aucInterval: [0.7, 0.9] }, test: null,
  live: { reference: { testAuc: 0.8, testAucInterval: [0.76, 0.84] }, pooled: { ...verdict, sites: 1 }, sites: [{ ...verdict, nodeId: 'n1', siteName: 'evil\u001b[31mclinic', measuredAt: '2026-11-30T01:00:00.000Z', exportFingerprint: 'aa' }] },
  error: null,
};

describe('release CLI text', () => {
  it('lists releases with their figures, aliases and a live summary', () => {
    const text = releaseListText([summary, { ...summary, version: 1, aliases: [], live: null, error: 'release.json cannot be read: gone' }]);
    expect(text).toMatch(/sepsis\s+v2\s+7\s+best-validation-auc\s+0\.800 \[0\.700, 0\.900\]\s+-\s+champion\s+1 site\(s\): 1 drift/);
    expect(text).toMatch(/sepsis\s+v1\s+.*unavailable/);
    expect(text).toContain('sepsis v1: release.json cannot be read: gone');
    expect(releaseListText([])).toContain('no releases yet');
  });

  it('shows a release with its verdicts, and escapes what clinics chose (site names, reasons)', () => {
    const detail: ReleaseDetailView = { ...summary, manifestSha256: 'a'.repeat(64), files: [{ name: 'release.json', sha256: 'b'.repeat(64), size: 10, url: '' }], descriptor: descriptorFixture('sepsis', 2), testBySite: {}, reports: 3 };
    const text = releaseDetailText(detail);
    expect(text).not.toContain('\u001b');
    expect(text).toMatch(/DRIFT\s+200\s+0\.900 \[0\.860, 0\.940\]\s+0\.500\s+20\.0% \/ 20\.0%/);
    expect(text).toContain('3 report(s) received');
    expect(text).toContain('aliases: champion');
    expect(text).toMatch(/test\s+north\s+500\s+0\.800 \[0\.760, 0\.840\]/);
  });
});
