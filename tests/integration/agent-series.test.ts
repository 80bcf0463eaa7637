// A study series at the clinic's command line, as clinic IT staff use it: `review` lists the
// series (what may vary between runs) and its runs (covered by the series approval or not, and
// why), `approve` takes a series template hash as well as a manifest hash and says which it
// approved, the audit log records the series approval, and `status` counts a covered run as
// approved.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seriesTemplateHash, verifyManifestJson } from '@fedlhs/core';
import { AgentState } from '@fedlhs/node-agent';
import { agentMain } from '@fedlhs/tests';
import { checkAnnouncedTemplate } from '../../node-agent/src/series-approval.js';
import { runStudy, testTemplate } from '../../node-agent/src/series-test-support.js';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();

describe('fedlhs-agent review and approve with a study series', () => {
  it('approves a series once for the runs that change only what may vary; a run changing more still needs its own approval', async () => {
    const stateDir = join(ws.dir(), 'clinic');
    const t = testTemplate();
    const hash = seriesTemplateHash(t);
    const run1 = runStudy(t, 1);
    const run2 = runStudy(t, 2, { change: (m) => ((m.training as Record<string, unknown>).localEpochs = 3) });
    // What the running agent records from the announcements (studies.ts).
    const state = new AgentState(stateDir);
    for (const s of [run1, run2]) {
      const m = verifyManifestJson(s.manifestJson, s.manifestSha256);
      state.recordManifest({ hash: s.manifestSha256, studyId: s.studyId, name: m.name, json: s.manifestJson });
      const check = checkAnnouncedTemplate(s, m);
      if (check.kind !== 'ok') throw new Error(`test template refused: ${JSON.stringify(check)}`);
      state.recordSeriesTemplate({ hash: check.hash, name: check.template.name, json: check.json });
    }
    state.close();
    const cli = (...args: string[]) => runCli(agentMain, [...args, '--state-dir', stateDir]);

    const before = await cli('review');
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain('study series: 1 seen, 0 approved\n');
    expect(before.stdout).toContain(`Series lhs\n  template sha256  ${hash}\n`);
    expect(before.stdout).toContain('  may vary by run  series.run: the run number\n');
    expect(before.stdout).toContain(`  status           PENDING — approve every run of this series that changes only the fields above with: fedlhs-agent approve ${hash}\n`);
    expect(before.stdout).toContain('  runs (2):\n  run 1 of lhs  (study id st-lhs-1)\n');
    expect(before.stdout).toContain(`    status           NOT APPROVED: waiting for this clinic's operator to review and approve the manifest, or series lhs (template ${hash.slice(0, 12)})\n`);

    const approved = await cli('approve', hash.slice(0, 12));
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`approved: series template of lhs (${hash})`);

    const after = await cli('review');
    expect(after.stdout).toContain('study series: 1 seen, 1 approved\n');
    expect(after.stdout).toContain('    status           approved: covered by the series approval (changes only what the series lets vary)\n');
    expect(after.stdout).toContain('    changes          training.localEpochs: 1 → 3\n');
    expect(after.stdout).toContain(`    status           NOT APPROVED: series lhs approved, but this run changes training.localEpochs: needs approval of manifest ${run2.manifestSha256}\n`);
    // The pending list names run 2 only: run 1 is covered.
    expect(after.stdout).toContain(`  status           PENDING — series lhs approved, but this run changes training.localEpochs: needs approval of manifest ${run2.manifestSha256}; approve with: fedlhs-agent approve ${run2.manifestSha256}\n`);
    expect(after.stdout).not.toContain(`approve with: fedlhs-agent approve ${run1.manifestSha256}`);

    const audit = new AgentState(stateDir);
    expect(audit.readAudit().filter((a) => a.event === 'series_approved')).toEqual([expect.objectContaining({ sha256: hash, series: { name: 'lhs', templateSha256: hash } })]);
    audit.close();

    const status = await cli('status');
    expect(status.stdout).toContain('manifests: 1 approved, 1 pending\n');
    expect(status.stdout).toMatch(/approved {2}[0-9a-f]{16} {2}lhs {2}\(st-lhs-1\) {2}through its series\n/);

    const one = await cli('approve', run2.manifestSha256);
    expect(one.stdout).toContain(`approved: study manifest of lhs (${run2.manifestSha256}) for study st-lhs-2`);
    expect((await cli('status')).stdout).toContain('manifests: 2 approved, 0 pending\n');
  });
});
