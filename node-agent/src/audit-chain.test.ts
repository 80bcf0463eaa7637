import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AgentState } from './agent-state.js';
import { GENESIS, verifyAuditLog } from './audit-chain.js';
import { auditVerifyLine } from './audit-cli.js';

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
const verify = (s: AgentState) => verifyAuditLog(s.auditPath, s.auditHead());

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
    expect(r).toEqual({ ok: true, entries: 3, chained: 3, head: parsed[2]!.hash });
    expect(auditVerifyLine(s.auditPath, r)).toBe(`3 entries, chain intact, head ${parsed[2]!.hash}`);
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
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/cut or replaced/), { code: 'FEDLHS_AUDIT_CHAIN_GAP' });
    expect(verify(s).problem).toMatchObject({ problem: 'truncated', line: 3, seq: 3 });
  });

  it('tolerates a log one line ahead of the head (a crash between the append and the database update), no more', () => {
    const s = fresh();
    three(s);
    const ls = lines(s);
    // As if seq 3 was appended but the head update that goes with it was lost: the head at seq 2.
    const head2 = JSON.parse(ls[1]!) as { hash: string };
    expect(verifyAuditLog(s.auditPath, { seq: 2, hash: head2.hash }).ok).toBe(true);
    const head1 = JSON.parse(ls[0]!) as { hash: string };
    expect(verifyAuditLog(s.auditPath, { seq: 1, hash: head1.hash }).problem).toMatchObject({ problem: 'edited', seq: 3 });
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
});
