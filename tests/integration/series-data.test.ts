/**
 * Issue 13: a data-triggered series over two real agent processes, with the coordinator in this
 * process. Run 1 starts when the series is created; when it has ended, the clinics report how
 * many newly labelled patients they have since (nothing yet: suppressed); rows are then
 * appended to their exports, the agents see the change and report the counts, and run 2 starts
 * on those reports alone: the series' clock never moves.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CoordinatorApp } from '@fedlhs/coordinator';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { enrolAgent, startAgent, type AgentOptions } from '@fedlhs/tests';
import { afterAll, describe, expect, it } from 'vitest';
import { useWorkspace } from './helpers.js';
import { startInProcessCoordinator } from './in-process-coordinator.js';

const ws = useWorkspace();
const NAME = 'new-data-risk';
const NEEDED = 100;
const APPENDED = 60;

function template(): Record<string, unknown> {
  const study = learnableManifest({ rounds: 1, min: 2, max: 2, quorum: 2, roundSeconds: 120, evaluationSeconds: 120 }) as Record<string, unknown> & { data: Record<string, unknown> };
  delete study['name'];
  study['seed'] = 11;
  study.data = { ...study.data, minCellCount: 5 };
  return { apiVersion: 'fedlhs.v1', kind: 'StudySeries', name: NAME, schedule: { type: 'data', newLabelled: NEEDED }, start: 'champion', study };
}

/** Appends `rows` new labelled records (keys of their own) to a clinic's CSV. */
function appendRows(path: string, seed: number, rows: number): void {
  const extra = `${path}.extra`;
  writeLearnableCsv(extra, { rows, seed, features: 6 });
  const lines = readFileSync(extra, 'utf8').trimEnd().split('\n').slice(1).map((l) => `new-${l}`);
  appendFileSync(path, `${lines.join('\n')}\n`);
}

let app: CoordinatorApp | undefined;
afterAll(async () => {
  await app?.shutdown();
});

describe('a data-triggered series runs when the clinics report enough newly labelled patients', () => {
  it('run 1 at creation → reports (suppressed) → rows appended → reports → run 2 without any clock move', async () => {
    const root = ws.dir();
    const c = await startInProcessCoordinator(root);
    app = c.app;
    const { clock, admin, handle, event } = c;
    const coordinator = app.coordinator;
    const runStarted = async (run: number): Promise<string> => {
      await event((e) => e.kind === 'series' && e.seriesName === NAME && e.run === run);
      const r = (await coordinator.store.listSeriesRuns(NAME)).find((x) => x.run === run);
      expect(r).toBeDefined();
      return r!.studyId;
    };

    // Two clinics (auto-approve: the series' template is approved with its first run).
    const clinics = [['east', 1401], ['west', 1402]] as const;
    const agents = [];
    const options: AgentOptions[] = [];
    for (const [name, seed] of clinics) {
      mkdirSync(join(root, name), { recursive: true });
      writeLearnableCsv(join(root, name, 'data.csv'), { rows: 400, seed, features: 6 });
      const o: AgentOptions = {
        name, stateDir: join(root, `${name}-state`), dataPath: join(root, name, 'data.csv'), coordinator: `127.0.0.1:${app.grpcPort}`, autoApprove: true,
        // Once a second rather than the protocol's minute, so the test takes seconds (warned by the agent).
        env: { FEDLHS_BACKEND: 'cpu', FEDLHS_SERIES_REPORT_SECONDS: '1' },
      };
      await enrolAgent(handle, o);
      options.push(o);
      agents.push(ws.track(startAgent(o)));
    }
    const frozenAt = clock.now();

    // ---- run 1 starts at creation ----
    const created = await admin<{ templateSha256: string }>('POST', '/api/v1/series', template());
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const run1 = await runStarted(1);
    await coordinator.waitForStudy(run1);
    expect((await coordinator.store.getStudy(run1))?.state).toBe('COMPLETED');

    // When run 1 ends each clinic reports: nothing new yet (0, below minCellCount: suppressed).
    for (const a of agents) await a.waitForEvent('series.data_sent', { series: NAME, afterRun: 1, suppressed: true }, 60_000);
    const list = await admin<{ series: { name: string; nextRunNote: string | null }[] }>('GET', '/api/v1/series');
    expect(list.body.series.find((s) => s.name === NAME)?.nextRunNote).toMatch(/^0 of 100 newly labelled reported by [12] clinic\(s\) \([12] suppressed\)$/);
    expect((await coordinator.store.listSeriesRuns(NAME)).map((r) => r.run)).toEqual([1]);

    // ---- new labelled patients at both clinics: their reports start run 2 ----
    for (const [name, seed] of clinics) appendRows(join(root, name, 'data.csv'), seed + 100, APPENDED);
    for (const a of agents) await a.waitForEvent('series.data_sent', { series: NAME, afterRun: 1, newLabelled: APPENDED }, 60_000);
    const run2 = await runStarted(2);
    const runs = await coordinator.store.listSeriesRuns(NAME);
    expect(runs.map((r) => [r.run, r.trigger])).toEqual([[1, 'data'], [2, 'data']]);
    // The series' clock never moved: the data alone started run 2.
    expect(clock.now() - frozenAt).toBeLessThan(10 * 60_000);
    const manifest2 = JSON.parse((await coordinator.store.getStudy(run2))!.manifestJson) as { series: { run: number; champion?: { version: number } } };
    expect(manifest2.series).toMatchObject({ run: 2, champion: { version: 1 } });
    await coordinator.waitForStudy(run2);
    expect((await coordinator.store.getStudy(run2))?.state).toBe('COMPLETED');
    expect(readFileSync(join(root, 'coordinator.log'), 'utf8')).toContain('"event":"series.data_triggered"');

    // Each clinic's audit log lists what left: "suppressed", then the count.
    for (const o of options) {
      const audit = readFileSync(join(o.stateDir, 'audit.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { event: string; outcome?: string });
      const sent = audit.filter((e) => e.event === 'series_data_sent').map((e) => e.outcome);
      expect(sent).toContain('suppressed');
      expect(sent).toContain(String(APPENDED));
    }
  }, 600_000);
});
