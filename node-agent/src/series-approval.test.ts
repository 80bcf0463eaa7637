import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { seriesTemplateHash, sha256Hex, validateManifest, verifyManifestJson } from '@fedlhs/core';
import type { AgentMessage, Study__Output } from '@fedlhs/proto';
import { AgentState } from './agent-state.js';
import { checkAnnouncedTemplate, isApproved, runApproval } from './series-approval.js';
import { canonicalJson, runStudy, testTemplate } from './series-test-support.js';
import { StudyTracker, type StudyTrackerOptions } from './studies.js';

/*
 * Series approval at the clinic: an announced template is used only when it checks out against
 * its hash; an approved template covers a run that changes only what the series lets vary; a
 * run changing anything else is NOT_APPROVED naming the field; approvals given while running
 * are picked up, templates included.
 */

const states: AgentState[] = [];
function newState(dir = join(mkdtempSync(join(tmpdir(), 'fedlhs-series-')), 'state')): AgentState {
  const s = new AgentState(dir);
  states.push(s);
  return s;
}
afterEach(() => {
  for (const s of states.splice(0)) s.close();
});

const t = testTemplate();
const hash = seriesTemplateHash(t);
const manifestOf = (study: ReturnType<typeof runStudy>) => verifyManifestJson(study.manifestJson, study.manifestSha256);

/** Records a run as the tracker would, with its template when it checks out. */
function record(state: AgentState, study: ReturnType<typeof runStudy>) {
  const m = manifestOf(study);
  state.recordManifest({ hash: study.manifestSha256, studyId: study.studyId, name: m.name, json: study.manifestJson });
  const check = checkAnnouncedTemplate(study, m);
  if (check.kind === 'ok') state.recordSeriesTemplate({ hash: check.hash, name: check.template.name, json: check.json });
  return { m, check };
}

describe('checkAnnouncedTemplate', () => {
  it('accepts the canonical template the manifest names', () => {
    const study = runStudy(t, 1);
    const check = checkAnnouncedTemplate(study, manifestOf(study));
    expect(check).toMatchObject({ kind: 'ok', hash });
  });

  it('refuses a template whose bytes, hash or name do not check out (the run is then an ordinary study)', () => {
    const m = manifestOf(runStudy(t, 1));
    const json = canonicalJson(t);
    const reasons = [
      checkAnnouncedTemplate({ seriesTemplateJson: json, seriesTemplateSha256: 'c'.repeat(64) }, m),
      checkAnnouncedTemplate({ seriesTemplateJson: json.replace('0 0 1 1 *', '0 0 2 1 *'), seriesTemplateSha256: hash }, m),
      checkAnnouncedTemplate(runStudy(testTemplate('lhs', (x) => (x.description = 'other')), 1, {}), m),
      checkAnnouncedTemplate({ seriesTemplateJson: '', seriesTemplateSha256: '' }, m),
      checkAnnouncedTemplate({ seriesTemplateJson: json, seriesTemplateSha256: hash }, validateManifest({ ...JSON.parse(runStudy(t, 1).manifestJson), series: undefined })),
    ];
    expect(reasons.map((r) => r.kind)).toEqual(['refused', 'refused', 'refused', 'refused', 'refused']);
    expect(reasons.map((r) => (r.kind === 'refused' ? r.reason : ''))).toEqual([
      expect.stringContaining(`the announcement says ${'c'.repeat(64)}`),
      expect.stringContaining('hash to'),
      expect.stringContaining('is not the one the manifest names'),
      expect.stringContaining('carries no series template'),
      expect.stringContaining('the manifest names no series'),
    ]);
  });

  it('refuses a template that is not in canonical form, even with the hash of its bytes', () => {
    const m = validateManifest({ ...JSON.parse(runStudy(t, 1).manifestJson) });
    const spaced = JSON.stringify(JSON.parse(canonicalJson(t)), null, 1);
    const sha = sha256Hex(spaced);
    const named = validateManifest({ ...m, series: { ...m.series!, templateSha256: sha } });
    const check = checkAnnouncedTemplate({ seriesTemplateJson: spaced, seriesTemplateSha256: sha }, named);
    expect(check).toMatchObject({ kind: 'refused', reason: expect.stringContaining('not in its canonical form') });
  });
});

describe('runApproval', () => {
  it('an approved series template covers a run that changes only what the series lets vary', () => {
    const state = newState();
    const study = runStudy(t, 3, { champion: { version: 2, weightsSha256: 'd'.repeat(64) } });
    record(state, study);
    expect(runApproval(state, study.manifestSha256, undefined, true)).toMatchObject({ approved: false, series: { name: 'lhs', hash, approved: false }, detail: expect.stringContaining(`series lhs (template ${hash.slice(0, 12)})`) });
    expect(isApproved(state, study.manifestSha256)).toBe(false);
    state.approveSeriesTemplate(hash, 'operator:test');
    expect(runApproval(state, study.manifestSha256, undefined, true)).toMatchObject({ approved: true, via: 'series', changes: [] });
    expect(isApproved(state, study.manifestSha256)).toBe(true);
    expect(state.isManifestApproved(study.manifestSha256)).toBe(false);
  });

  it('a run that changes a field the series does not let vary is NOT_APPROVED, naming the field and the manifest to approve', () => {
    const state = newState();
    const study = runStudy(t, 2, { change: (m) => ((m.training as Record<string, unknown>).localEpochs = 5) });
    record(state, study);
    state.approveSeriesTemplate(hash, 'operator:test');
    const a = runApproval(state, study.manifestSha256, undefined, true);
    expect(a.approved).toBe(false);
    expect(a.changes.map((c) => c.path)).toEqual(['training.localEpochs']);
    expect(a.detail).toBe(`series lhs approved, but this run changes training.localEpochs: needs approval of manifest ${study.manifestSha256}`);
    expect(isApproved(state, study.manifestSha256)).toBe(false);
    // Approving that manifest itself approves the run.
    state.approve(study.manifestSha256, 'operator:test');
    expect(runApproval(state, study.manifestSha256, undefined, true)).toMatchObject({ approved: true, via: 'manifest' });
  });

  it('a run whose announced template was refused is approved by its manifest hash only', () => {
    const state = newState();
    const study = runStudy(t, 1);
    record(state, study);
    state.approveSeriesTemplate(hash, 'operator:test');
    expect(runApproval(state, study.manifestSha256, undefined, false)).toMatchObject({ approved: false, detail: expect.stringContaining('series template did not check out') });
  });
});

describe('AgentState series templates', () => {
  it('resolves a hash prefix to a manifest or a series template, and says when it is ambiguous', () => {
    const state = newState();
    const study = runStudy(t, 1);
    record(state, study);
    expect(state.resolveApprovable(hash.slice(0, 10))).toMatchObject({ kind: 'series', record: { hash, name: 'lhs' } });
    expect(state.resolveApprovable(study.manifestSha256)).toMatchObject({ kind: 'manifest', record: { hash: study.manifestSha256 } });
    expect(() => state.resolveApprovable('0123456789')).toThrowError(/no manifest with hash 0123456789…, and no series template either/);
    expect(() => state.resolveApprovable('xyz')).toThrowError(/8 to 64 lowercase hex digits/);
    const first = state.approveSeriesTemplate(hash, 'operator:a');
    expect(state.approveSeriesTemplate(hash, 'operator:b')).toEqual(first);
    expect(first.approvedBy).toBe('operator:a');
  });

  it('opens a database of an older agent, keeping its manifests and approvals', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'fedlhs-series-old-')), 'state');
    newState(dir).close();
    // The schema of an agent from before study series.
    const db = new Database(join(dir, 'agent.db'));
    db.exec(`CREATE TABLE manifests (hash TEXT PRIMARY KEY, study_id TEXT NOT NULL, name TEXT NOT NULL, json TEXT NOT NULL,
      first_seen_at INTEGER NOT NULL, approved_at INTEGER, approved_by TEXT)`);
    db.prepare('INSERT INTO manifests (hash, study_id, name, json, first_seen_at, approved_at, approved_by) VALUES (?,?,?,?,?,?,?)').run('e'.repeat(64), 'st-old', 'old', '{}', 1, 2, 'operator:old');
    db.close();
    const state = newState(dir);
    expect(state.getManifest('e'.repeat(64))).toMatchObject({ approvedAt: 2, approvedBy: 'operator:old' });
    expect(isApproved(state, 'e'.repeat(64))).toBe(true);
    expect(state.listSeriesTemplates()).toEqual([]);
    state.recordSeriesTemplate({ hash, name: 'lhs', json: canonicalJson(t) });
    expect(state.listSeriesTemplates().map((r) => r.hash)).toEqual([hash]);
  });
});

describe('StudyTracker with series', () => {
  function makeTracker() {
    const state = newState();
    const sent: AgentMessage[] = [];
    const warnings: Record<string, unknown>[] = [];
    let checks = 0;
    const log = { info: () => undefined, warn: (o: Record<string, unknown>) => void warnings.push(o), error: () => undefined, debug: () => undefined };
    const options = {
      config: { autoApprove: false, coordinator: { address: 'coordinator:1' } }, state, credential: { credential: 'x' }, clients: {},
      data: { check: async () => { checks++; return { ok: true, data: { train: { rows: 50 }, holdout: { rows: 50 } }, report: undefined, warnings: [] }; } },
      log, send: (m: AgentMessage) => void sent.push(m),
    } as unknown as StudyTrackerOptions;
    const readiness = () => sent.map((m) => m.readiness).flatMap((r) => (r === undefined || r === null ? [] : [r])).map((r) => ({ readiness: r.readiness, detail: r.detail }));
    return { state, tracker: new StudyTracker(options), readiness, warnings, checks: () => checks };
  }

  it('a clinic that approved the series is not asked again; approving the template while running is picked up', async () => {
    const { state, tracker, readiness, checks } = makeTracker();
    const run1 = runStudy(t, 1);
    await tracker.onStudy(run1 as unknown as Study__Output);
    expect(readiness()).toEqual([{ readiness: 'READINESS_NOT_APPROVED', detail: expect.stringContaining(`series lhs (template ${hash.slice(0, 12)})`) }]);
    expect(state.getSeriesTemplate(hash)?.name).toBe('lhs');
    state.approveSeriesTemplate(hash, 'operator:test');
    tracker.recheckApprovals();
    await new Promise((r) => setImmediate(r));
    expect(readiness()[1]).toEqual({ readiness: 'READINESS_READY', detail: '' });
    // The next run: approved at once, through the series.
    await tracker.onStudy(runStudy(t, 2, { champion: { version: 1, weightsSha256: 'd'.repeat(64) } }) as unknown as Study__Output);
    expect(readiness()[2]).toEqual({ readiness: 'READINESS_READY', detail: '' });
    expect(checks()).toBe(2);
  });

  it('a run changing a non-varying field is not trained on until its manifest is approved', async () => {
    const { state, tracker, readiness } = makeTracker();
    await tracker.onStudy(runStudy(t, 1) as unknown as Study__Output);
    state.approveSeriesTemplate(hash, 'operator:test');
    const changed = runStudy(t, 2, { change: (m) => ((m.training as Record<string, unknown>).localEpochs = 5) });
    await tracker.onStudy(changed as unknown as Study__Output);
    expect(readiness().at(-1)).toEqual({ readiness: 'READINESS_NOT_APPROVED', detail: `series lhs approved, but this run changes training.localEpochs: needs approval of manifest ${changed.manifestSha256}` });
    expect(tracker.approval(changed.studyId, changed.manifestSha256).approved).toBe(false);
  });

  it('a template hash mismatch is refused loudly, audited, and the run waits for approval of its manifest', async () => {
    const { state, tracker, readiness, warnings } = makeTracker();
    state.recordSeriesTemplate({ hash, name: 'lhs', json: canonicalJson(t) });
    state.approveSeriesTemplate(hash, 'operator:test');
    const bad = runStudy(t, 1, { templateJson: canonicalJson(t).replace('0 0 1 1 *', '0 0 2 1 *'), templateSha256: hash });
    await tracker.onStudy(bad as unknown as Study__Output);
    expect(readiness()).toEqual([{ readiness: 'READINESS_NOT_APPROVED', detail: expect.stringContaining('series template did not check out') }]);
    expect(warnings.map((w) => w.event)).toEqual(['series.template_refused', 'study.awaiting_approval']);
    expect(state.readAudit().filter((a) => a.event === 'series_template_refused')).toHaveLength(1);
    expect(tracker.approval(bad.studyId, bad.manifestSha256).approved).toBe(false);
  });

  it('a run announced without its template is covered once a later announcement of it carries a template that checks out', async () => {
    const { state, tracker, readiness } = makeTracker();
    state.recordSeriesTemplate({ hash, name: 'lhs', json: canonicalJson(t) });
    state.approveSeriesTemplate(hash, 'operator:test');
    const good = runStudy(t, 1);
    await tracker.onStudy({ ...good, seriesTemplateJson: '', seriesTemplateSha256: '' } as unknown as Study__Output);
    expect(readiness().at(-1)?.readiness).toBe('READINESS_NOT_APPROVED');
    await tracker.onStudy(good as unknown as Study__Output);
    await new Promise((r) => setImmediate(r));
    expect(readiness().at(-1)).toEqual({ readiness: 'READINESS_READY', detail: '' });
  });
});
