import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AgentState } from './agent-state.js';
import { chainedLine, GENESIS, parseKeptHead, verifyAuditLog } from './audit-chain.js';
import { auditVerifyLine, verifyAgentAudit } from './audit-cli.js';

const states: AgentState[] = [];
function fresh(): AgentState {
  const s = new AgentState(join(mkdtempSync(join(tmpdir(), 'fedlhs-audit-chain-')), 'state'));
  states.push(s);
  return s;
}
afterEach(() => {
  for (const s of states.splice(0)) s.close();
  vi.restoreAllMocks();
});

/** Three entries: seq 1..3 on lines 1..3. */
function three(s: AgentState): void {
  s.audit({ event: 'enrolled', coordinator: 'c:1' });
  s.audit({ event: 'update_sent', coordinator: 'c:1', studyId: 's1', round: 1, bytes: 4096, sha256: 'a'.repeat(64), metrics: { loss: 0.5, auc: undefined } });
  s.audit({ event: 'evaluation_sent', coordinator: 'c:1', studyId: 's1', round: 1 });
}
const lines = (s: AgentState): string[] => readFileSync(s.auditPath, 'utf8').split('\n').filter((l) => l !== '');
const rewrite = (s: AgentState, ls: readonly string[]): void => writeFileSync(s.auditPath, ls.map((l) => `${l}\n`).join(''));
const verify = (s: AgentState) => verifyAgentAudit(s);

describe('agent audit chain', () => {
  it('chains every line (seq, prev, hash) and keeps the head in the database', () => {
    const s = fresh();
    three(s);
    const parsed = lines(s).map((l) => JSON.parse(l) as { seq: number; prev: string; hash: string });
    expect(parsed.map((p) => p.seq)).toEqual([1, 2, 3]);
    expect(parsed[0]!.prev).toBe(GENESIS);
    expect(parsed[1]!.prev).toBe(parsed[0]!.hash);
    expect(s.auditHead()).toEqual({ seq: 3, hash: parsed[2]!.hash });
    const r = verify(s);
    expect(r).toEqual({ ok: true, entries: 3, chained: 3, headSeq: 3, head: parsed[2]!.hash });
    expect(auditVerifyLine(s.auditPath, r)).toBe(`3 entries, chain intact, head 3:${parsed[2]!.hash}`);
    // Readers see the entries as before, without chain fields.
    expect(s.readAudit()[1]).toEqual({ time: expect.any(String), event: 'update_sent', coordinator: 'c:1', studyId: 's1', round: 1, bytes: 4096, sha256: 'a'.repeat(64), metrics: { loss: 0.5 } });
  });

  it('names an edited line', () => {
    const s = fresh();
    three(s);
    const ls = lines(s);
    rewrite(s, [ls[0]!, ls[1]!.replace('"bytes":4096', '"bytes":1'), ls[2]!]);
    expect(verify(s).problem).toMatchObject({ problem: 'edited', line: 2, seq: 2 });
    expect(auditVerifyLine(s.auditPath, verify(s))).toMatch(/audit chain broken \(edited\) at line 2, seq 2: line 2 \(seq 2\) was edited/);
  });

  it('names a removed line and reordered lines', () => {
    const s = fresh();
    three(s);
    const ls = lines(s);
    rewrite(s, [ls[0]!, ls[2]!]);
    expect(verify(s).problem).toMatchObject({ problem: 'removed', line: 2, seq: 3 });
    rewrite(s, [ls[0]!, ls[2]!, ls[1]!]);
    expect(verify(s).problem).toMatchObject({ problem: 'reordered', line: 2, seq: 3 });
  });

  it('names a cut tail (the database head is ahead of the file), and a line appended after the cut says so for good', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const s = fresh();
    three(s);
    const ls = lines(s);
    rewrite(s, ls.slice(0, 2));
    expect(verify(s).problem).toMatchObject({ problem: 'truncated', line: 2, seq: 3 });
    s.audit({ event: 'task_declined', coordinator: 'c:1' });
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/cut, replaced/), { code: 'FEDLHS_AUDIT_CHAIN_GAP' });
    expect(verify(s).problem).toMatchObject({ problem: 'truncated', line: 3, seq: 3 });
  });

  it('accepts a log one line beyond the head only when that line was recorded as pending (a crash mid-append), and settles it', () => {
    const s = fresh();
    three(s);
    const head = s.auditHead()!;
    // As if the agent died after the append and before the head moved: pending recorded, line written.
    const next = chainedLine(s.auditPath, { time: 't', event: 'task_declined', coordinator: 'c:1' }, head);
    const db = new Database(join(s.auditPath, '..', 'agent.db'));
    db.prepare(`INSERT INTO audit_pending (id, seq, hash, created_at) VALUES (1, ?, ?, 0)`).run(next.head.seq, next.head.hash);
    db.close();
    appendFileSync(s.auditPath, next.text);
    expect(verifyAgentAudit(s)).toMatchObject({ ok: true, entries: 4, headSeq: 4 });
    expect(verifyAuditLog(s.auditPath, head).problem).toMatchObject({ problem: 'edited', line: 4, seq: 4 });
    s.audit({ event: 'task_declined', coordinator: 'c:1' });
    expect(s.auditPending()).toBeUndefined();
    expect(s.auditHead()!.seq).toBe(5);
    expect(verifyAgentAudit(s)).toMatchObject({ ok: true, entries: 5, headSeq: 5 });
    const ls = lines(s);
    expect(verifyAuditLog(s.auditPath, { seq: 3, hash: (JSON.parse(ls[2]!) as { hash: string }).hash }).problem).toMatchObject({ problem: 'edited', line: 4, seq: 4 });
  });

  it('refuses a forged line chained onto the end by someone who can write the log but not the database, and keeps refusing it', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const s = fresh();
    three(s);
    appendFileSync(s.auditPath, chainedLine(s.auditPath, { time: 't', event: 'update_sent', coordinator: 'c:1', bytes: 1 }, s.auditHead()).text);
    expect(verifyAgentAudit(s).problem).toMatchObject({ problem: 'edited', line: 4, seq: 4 });
    s.audit({ event: 'task_declined', coordinator: 'c:1' });
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/outside the agent/), { code: 'FEDLHS_AUDIT_CHAIN_GAP' });
    expect(JSON.parse(lines(s)[4]!)).toMatchObject({ seq: 5, gap: { headSeq: 3, fileSeq: 4 } });
    expect(verifyAgentAudit(s).problem).toMatchObject({ problem: 'truncated', line: 5, seq: 5 });
  });

  it('starts the chain on a legacy log with the SHA-256 of its lines, loudly once, and detects a changed legacy line', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const s = fresh();
    const legacy = [JSON.stringify({ time: 't0', event: 'enrolled', coordinator: 'c:1' }), JSON.stringify({ time: 't1', event: 'update_sent', coordinator: 'c:1', bytes: 10 })];
    rewrite(s, legacy);
    expect(verify(s)).toMatchObject({ ok: true, entries: 2, chained: 0 });
    s.audit({ event: 'evaluation_sent', coordinator: 'c:1' });
    s.audit({ event: 'evaluation_sent', coordinator: 'c:1' });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/chain started at line 3; the 2 earlier line\(s\) are covered/), { code: 'FEDLHS_AUDIT_CHAIN_STARTED' });
    const first = JSON.parse(lines(s)[2]!) as { seq: number; legacy: { lines: number; sha256: string } };
    expect(first).toMatchObject({ seq: 1, legacy: { lines: 2 } });
    expect(verify(s)).toMatchObject({ ok: true, entries: 4, chained: 2 });
    expect(s.readAudit().map((e) => e.event)).toEqual(['enrolled', 'update_sent', 'evaluation_sent', 'evaluation_sent']);
    const ls = lines(s);
    rewrite(s, [ls[0]!, ls[1]!.replace('"bytes":10', '"bytes":11'), ...ls.slice(2)]);
    expect(verify(s).problem).toMatchObject({ problem: 'legacy_changed', line: 3, seq: 1 });
  });

  it('names a line without chain fields inserted after the chain started', () => {
    const s = fresh();
    three(s);
    appendFileSync(s.auditPath, `${JSON.stringify({ time: 'x', event: 'update_sent', coordinator: 'c:1' })}\n`);
    expect(verify(s).problem).toMatchObject({ problem: 'unchained', line: 4 });
  });

  it('names a missing log when the database has a head', () => {
    const s = fresh();
    three(s);
    writeFileSync(s.auditPath, '');
    expect(verify(s).problem).toMatchObject({ problem: 'truncated', seq: 1 });
  });

  it('after a torn last line, chains the next line to the database head and says so; verify names the torn line first', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const s = fresh();
    three(s);
    const head = s.auditHead()!;
    appendFileSync(s.auditPath, '{"time":"2026-01-01T00:00:00Z","event":"upd');
    s.audit({ event: 'task_declined', coordinator: 'c:1' });
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/torn/), { code: 'FEDLHS_AUDIT_CHAIN_GAP' });
    const last = JSON.parse(lines(s)[4]!) as { seq: number; prev: string; gap: unknown };
    expect(last).toMatchObject({ seq: 4, prev: head.hash, gap: { headSeq: 3, headHash: head.hash, fileSeq: null, torn: true } });
    expect(s.auditHead()!.seq).toBe(4);
    expect(verify(s).problem).toMatchObject({ problem: 'edited', line: 4 });
    expect(verify(s).problem!.message).toMatch(/line 4 is not a JSON object/);
    // A head that disagrees with an earlier line is named only after the scan: the torn line comes first.
    expect(verifyAuditLog(s.auditPath, { seq: 1, hash: 'f'.repeat(64) }).problem).toMatchObject({ problem: 'edited', line: 4 });
  });

  it('with a kept head (--head), names a cut tail whose database head was rewritten, and a rewritten line', () => {
    const s = fresh();
    three(s);
    const r = verify(s);
    expect(auditVerifyLine(s.auditPath, r)).toContain(`head 3:${r.head}`);
    const kept = parseKeptHead(`3:${r.head}`);
    expect(verifyAuditLog(s.auditPath, s.auditHead(), kept).ok).toBe(true);
    // Cut the last line and set the database head to the line before (no hashing needed).
    const ls = lines(s);
    rewrite(s, ls.slice(0, 2));
    const db = new Database(join(s.auditPath, '..', 'agent.db'));
    db.prepare(`UPDATE audit_head SET seq = 2, hash = ?`).run((JSON.parse(ls[1]!) as { hash: string }).hash);
    db.close();
    expect(verify(s).ok).toBe(true);
    const cut = verifyAuditLog(s.auditPath, s.auditHead(), kept);
    expect(cut.problem).toMatchObject({ problem: 'truncated', seq: 3 });
    expect(cut.problem!.message).toContain(`the kept head 3:${r.head}`);
    // The next real line takes seq 3 again: not the kept entry.
    s.audit({ event: 'task_declined', coordinator: 'c:1' });
    expect(verifyAuditLog(s.auditPath, s.auditHead(), kept).problem).toMatchObject({ problem: 'edited', line: 3, seq: 3 });
    expect(() => parseKeptHead('3:abc')).toThrow(/<seq>:<hash>/);
  });

  it('verify reads the log and the head together: appends by the running agent meanwhile are not mistaken for forged lines', () => {
    const s = fresh();
    three(s);
    const agent = new AgentState(join(s.auditPath, '..'));
    states.push(agent);
    const r = verifyAgentAudit(s, undefined, () => {
      agent.audit({ event: 'task_declined', coordinator: 'c:1' });
      agent.audit({ event: 'task_declined', coordinator: 'c:1' });
    });
    expect(r).toMatchObject({ ok: true, entries: 5, headSeq: 5 });
  });
});
