import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalManifestJson, deriveSeriesRun, seriesTemplateHash, sha256Hex, validateSeriesTemplate, type SeriesTemplate } from '@fedlhs/core';
import type { AgentMessage, SeriesDataReport, Study__Output } from '@fedlhs/proto';
import { AgentState } from './agent-state.js';
import { LocalData } from './local-data.js';
import { SeriesDataReporter, countNewLabelled, dataSeriesTargets } from './series-data.js';
import { canonicalJson, runStudy, testTemplate } from './series-test-support.js';
import { StudyTracker, type StudyTrackerOptions } from './studies.js';

/*
 * Data-triggered series at the clinic: the count of newly labelled patients since the last run
 * (with a moving window: through the cohort extraction over the new index window; without: rows
 * now minus those at READY), suppressed below minCellCount, audited, and sent at most once per
 * interval on a new session, a run's end or an export change.
 */

const states: AgentState[] = [];
afterEach(() => {
  for (const s of states.splice(0)) s.close();
});
const tmp = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));
const quietLog = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as never;

/** The release tests' flat-table study (x1..x3, label), as a data-triggered series without a window. */
const flatTemplate = testTemplate('lhs', (t) => {
  t['schedule'] = { type: 'data', newLabelled: 20 };
});

function csvRows(n: number, offset = 0): string {
  let out = '';
  for (let i = 0; i < n; i++) out += `${(i + offset) % 7},${(i * 3 + offset) % 5},${i % 2},${(i + offset) % 2}\n`;
  return out;
}

function flatClinic() {
  const dir = tmp('fedlhs-series-data-');
  const csv = join(dir, 'data.csv');
  writeFileSync(csv, `x1,x2,x3,label\n${csvRows(40)}`);
  const state = new AgentState(join(dir, 'state'));
  states.push(state);
  const data = new LocalData({ format: 'flat-table', path: csv, keyColumn: '', minCohort: 10 });
  const sent: AgentMessage[] = [];
  let now = Date.UTC(2026, 2, 1);
  const reporter = new SeriesDataReporter({ state, data, log: quietLog, send: (m) => void sent.push(m), coordinator: 'coordinator:1', dataPath: csv, intervalMs: 60_000, now: () => now });
  const tracker = new StudyTracker({
    config: { autoApprove: false, coordinator: { address: 'coordinator:1' } }, state, credential: { credential: 'x' }, clients: {}, data, log: quietLog,
    send: (m: AgentMessage) => void sent.push(m), onStudyEnded: (s: Study__Output) => reporter.studyEnded(s.manifestSha256),
  } as unknown as StudyTrackerOptions);
  const reports = (): SeriesDataReport[] => sent.flatMap((m) => (m.seriesData == null ? [] : [m.seriesData]));
  return { csv, state, data, reporter, tracker, sent, reports, advance: (ms: number) => (now += ms) };
}

describe('data-triggered series: flat table (no window)', () => {
  it('counts rows now minus those at READY for the last run, suppresses small counts, audits, and sends at most once per interval', async () => {
    const c = flatClinic();
    const hash = seriesTemplateHash(flatTemplate);
    const run1 = runStudy(flatTemplate, 1);
    // Before approval: nothing to report for (the template is not approved here).
    await c.tracker.onStudy(run1 as unknown as Study__Output);
    expect(dataSeriesTargets(c.state)).toEqual([]);
    c.state.approveSeriesTemplate(hash, 'op');
    c.tracker.recheckApprovals();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 50));
    expect(c.sent.map((m) => m.readiness?.readiness).filter(Boolean)).toEqual(['READINESS_NOT_APPROVED', 'READINESS_READY']);
    expect(c.state.getSeriesCount('lhs', 1)).toEqual({ templateSha256: hash, labelled: 40 });
    expect(dataSeriesTargets(c.state).map((t) => [t.name, t.run, t.templateSha256])).toEqual([['lhs', 1, hash]]);

    // The run ends: a report at once; nothing new yet, so 0 (below minCellCount 5: suppressed).
    await c.tracker.onStudy({ ...run1, state: 'STUDY_STATE_COMPLETED' } as unknown as Study__Output);
    await c.reporter.idle();
    expect(c.reports()).toEqual([{ seriesName: 'lhs', templateSha256: hash, afterRun: 1, newLabelled: 0, suppressed: true }]);

    // Three new rows: still suppressed; the export change is seen on a heartbeat, but within the minute nothing goes out.
    c.reporter.heartbeat(); // the fingerprint's baseline
    appendFileSync(c.csv, csvRows(3, 40));
    c.advance(30_000);
    c.reporter.heartbeat();
    await c.reporter.idle();
    expect(c.reports()).toHaveLength(1);
    c.advance(30_000);
    c.reporter.heartbeat();
    await c.reporter.idle();
    expect(c.reports().at(-1)).toEqual({ seriesName: 'lhs', templateSha256: hash, afterRun: 1, newLabelled: 0, suppressed: true });

    // 25 new rows in all: the count itself, once the minute has passed (a new session owes a report too; the export change names it).
    appendFileSync(c.csv, csvRows(22, 43));
    c.reporter.welcomed();
    c.advance(60_000);
    c.reporter.heartbeat();
    await c.reporter.idle();
    expect(c.reports().at(-1)).toEqual({ seriesName: 'lhs', templateSha256: hash, afterRun: 1, newLabelled: 25, suppressed: false });
    expect(c.reports()).toHaveLength(3);

    // The audit log holds exactly what left: the count, or "suppressed" (never the small count).
    const audit = c.state.readAudit().filter((a) => a.event === 'series_data_sent');
    expect(audit.map((a) => [a.outcome, a.detail])).toEqual([['suppressed', 'run_ended'], ['suppressed', 'export_changed'], ['25', 'export_changed']]);
    expect(audit[2]).toMatchObject({ series: { name: 'lhs', templateSha256: hash }, sent: { seriesData: { newLabelled: 25, suppressed: false, afterRun: 1 } } });
    expect(JSON.stringify(audit[0])).not.toMatch(/"newLabelled":[1-9]/);
  });

  it('does not report for a series it took no part in, nor for cron series', async () => {
    const c = flatClinic();
    // A data series whose last run this clinic never sent READY for: no count to compare with.
    const run1 = runStudy(flatTemplate, 1);
    c.state.recordManifest({ hash: run1.manifestSha256, studyId: run1.studyId, name: 'lhs', json: run1.manifestJson });
    c.state.recordSeriesTemplate({ hash: seriesTemplateHash(flatTemplate), name: 'lhs', json: canonicalJson(flatTemplate) });
    c.state.approveSeriesTemplate(seriesTemplateHash(flatTemplate), 'op');
    const [target] = dataSeriesTargets(c.state);
    expect(await countNewLabelled(target!, c.data, c.state, Date.now())).toMatchObject({ skip: expect.stringContaining('did not take part in run 1') });
    // A cron series, approved: no target.
    const cron = testTemplate('yearly');
    const r = runStudy(cron, 1);
    c.state.recordManifest({ hash: r.manifestSha256, studyId: r.studyId, name: 'yearly', json: r.manifestJson });
    c.state.recordSeriesTemplate({ hash: seriesTemplateHash(cron), name: 'yearly', json: canonicalJson(cron) });
    c.state.approveSeriesTemplate(seriesTemplateHash(cron), 'op');
    expect(dataSeriesTargets(c.state).map((t) => t.name)).toEqual(['lhs']);
    c.reporter.welcomed();
    c.reporter.heartbeat();
    await c.reporter.idle();
    expect(c.reports()).toEqual([]);
  });
});

/** A cohort/v1 series over a Synthea (v1) export: index = first wellness visit in the window, outcome T2D within 30 days. */
function cohortTemplate(): SeriesTemplate {
  return validateSeriesTemplate({
    apiVersion: 'fedlhs.v1', kind: 'StudySeries', name: 'cohort-lhs', schedule: { type: 'data', newLabelled: 10 }, window: { days: 365, labelLagDays: 0 },
    study: {
      apiVersion: 'fedlhs.v1', kind: 'Study',
      model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
      training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
      rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
      data: {
        featureSpec: 'cohort/v1', minCellCount: 3,
        cohort: {
          index: { classes: ['wellness'], from: '2000-01-01', to: '2000-12-31' }, eligibility: { minAge: 18 }, lookbackDays: 365,
          features: [{ name: 'age', type: 'age' }, { name: 'female', type: 'sex', value: 'female' }],
          label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 30 },
        },
      },
      aggregation: { strategy: 'fedavg' }, seed: 7,
    },
  });
}

/** A Synthea v1 export: one adult per visit date, with a wellness encounter on that date. */
function syntheaExport(visits: string[]): string {
  const dir = join(tmp('fedlhs-series-ehr-'), 'export');
  mkdirSync(dir);
  const patients = visits.map((_, i) => `p${i},A,B,${i % 2 === 0 ? 'F' : 'M'},1970-01-0${(i % 9) + 1},,white,nonhispanic,999-00-0000,x`);
  const encounters = visits.map((d, i) => `e${i},p${i},${d},162673000,General examination of patient (procedure),wellness,,`);
  writeFileSync(join(dir, 'patients.csv'), `id,first,last,gender,birthdate,deathdate,race,ethnicity,ssn,address\n${patients.join('\n')}\n`);
  writeFileSync(join(dir, 'encounters.csv'), `ID,PATIENT,DATE,CODE,DESCRIPTION,ENCOUNTERCLASS,REASONCODE,REASONDESCRIPTION\n${encounters.join('\n')}\n`);
  writeFileSync(join(dir, 'conditions.csv'), 'PATIENT,ENCOUNTER,START,STOP,CODE,DESCRIPTION\np0,e0,2024-03-10,,44054006,Diabetes mellitus type 2 (disorder)\n');
  writeFileSync(join(dir, 'observations.csv'), 'Patient,Date,Encounter,Code,Description,Value,Units,Type\n');
  writeFileSync(join(dir, 'medications.csv'), 'PATIENT,ENCOUNTER,CODE,DESCRIPTION,START,STOP,COST,DISPENSES,TOTALCOST\n');
  return dir;
}

describe('data-triggered series: moving window (cohort extraction)', () => {
  it('counts patients indexed after the last run\'s index.to and up to a run derived now, through the agent\'s cohort path', async () => {
    const t = cohortTemplate();
    const hash = seriesTemplateHash(t);
    // Run 1 derived on 2024-07-01: index.to = 2024-07-01 − 30 days (horizon) = 2024-06-01.
    const run1 = deriveSeriesRun(t, 1, Date.UTC(2024, 6, 1));
    expect(run1.data.cohort!.index.to).toBe('2024-06-01');
    // 5 in run 1's window, 4 after it, 1 on the cut-off of a run derived on 2024-09-01 (2024-08-02), 2 after that cut-off.
    const dir = syntheaExport(['2024-03-01', '2024-03-02', '2024-03-03', '2024-04-01', '2024-06-01', '2024-06-02', '2024-07-01', '2024-07-02', '2024-07-15', '2024-08-02', '2024-08-03', '2024-08-20']);
    const state = new AgentState(join(tmp('fedlhs-series-ehr-state-'), 'state'));
    states.push(state);
    const json = canonicalManifestJson(run1);
    const mhash = sha256Hex(Buffer.from(json, 'utf8'));
    state.recordManifest({ hash: mhash, studyId: 'st-1', name: 'cohort-lhs', json });
    state.recordSeriesTemplate({ hash, name: 'cohort-lhs', json: canonicalJson(t) });
    state.approveSeriesTemplate(hash, 'op');
    const data = new LocalData({ format: 'synthea-csv', path: dir, keyColumn: '', minCohort: 1 });
    const [target] = dataSeriesTargets(state);
    expect(target).toMatchObject({ name: 'cohort-lhs', run: 1, templateSha256: hash });
    // The last run's own window finds its 5 patients (the same extraction path as readiness).
    expect(await data.labelledCount(run1)).toBe(5);
    expect(await countNewLabelled(target!, data, state, Date.UTC(2024, 8, 1))).toEqual({ count: 5 });
    // Earlier, the derived cut-off is 2024-07-01: 2 patients (2024-06-02, 2024-07-01) → suppressed below minCellCount 3.
    expect(await countNewLabelled(target!, data, state, Date.UTC(2024, 6, 31))).toEqual({ count: 2 });
    // The day of run 1 itself: nothing after its window yet.
    expect(await countNewLabelled(target!, data, state, Date.UTC(2024, 6, 1))).toEqual({ count: 0 });

    const sent: AgentMessage[] = [];
    let now = Date.UTC(2024, 6, 31);
    const reporter = new SeriesDataReporter({ state, data, log: quietLog, send: (m) => void sent.push(m), coordinator: 'c:1', dataPath: dir, intervalMs: 60_000, now: () => now });
    reporter.welcomed();
    reporter.heartbeat();
    await reporter.idle();
    now = Date.UTC(2024, 8, 1);
    reporter.welcomed();
    reporter.heartbeat();
    await reporter.idle();
    expect(sent.map((m) => m.seriesData)).toEqual([
      { seriesName: 'cohort-lhs', templateSha256: hash, afterRun: 1, newLabelled: 0, suppressed: true },
      { seriesName: 'cohort-lhs', templateSha256: hash, afterRun: 1, newLabelled: 5, suppressed: false },
    ]);
    expect(state.readAudit().map((a) => [a.event, a.outcome])).toEqual([['series_data_sent', 'suppressed'], ['series_data_sent', '5']]);
  });
});
