import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '@fedlhs/service';
import { armFailpoints, beforeTask, parseFailpoints, resetFailpointsForTest, stageBody } from './failpoints.js';

function fakeLog(): { log: Logger; warn: ReturnType<typeof vi.fn> } {
  const warn = vi.fn();
  return { log: { warn } as unknown as Logger, warn };
}

function arm(text: string | undefined): { warn: ReturnType<typeof vi.fn>; audit: ReturnType<typeof vi.fn> } {
  const { log, warn } = fakeLog();
  const audit = vi.fn();
  armFailpoints({ log, state: { audit }, coordinator: 'c:1' }, { FEDLHS_FAILPOINTS: text });
  return { warn, audit };
}

const sharesBody = (): Buffer => Buffer.from(JSON.stringify({
  studyId: 's', round: 1, attempt: 1,
  shares: [{ to: 'n2', ciphertext: Buffer.alloc(60, 7).toString('base64') }, { to: 'n3', ciphertext: Buffer.alloc(60, 9).toString('base64') }],
  selfMaskCommitment: 'AAAA',
}));

afterEach(() => {
  resetFailpointsForTest();
  vi.restoreAllMocks();
});

describe('FEDLHS_FAILPOINTS parsing', () => {
  it('reads task kills and share tampering, and nothing from an unset or blank value', () => {
    const fp = parseFailpoints(' task:TASK_KIND_SECAGG_SHARES=kill; stage:shares=tamper ;');
    expect([...fp.tasks]).toEqual([['TASK_KIND_SECAGG_SHARES', 'kill']]);
    expect([...fp.stages]).toEqual([['shares', 'tamper']]);
    expect(parseFailpoints('task:TASK_KIND_SECAGG_CONSISTENCY=kill').tasks.get('TASK_KIND_SECAGG_CONSISTENCY')).toBe('kill');
    for (const none of [undefined, '', '  ']) {
      const empty = parseFailpoints(none);
      expect(empty.tasks.size + empty.stages.size).toBe(0);
    }
  });

  it.each([
    ['task:TASK_KIND_SECAGG_SHARE=kill', /unknown failpoint "task:TASK_KIND_SECAGG_SHARE"/],
    ['task:TASK_KIND_UNSPECIFIED=kill', /unknown failpoint "task:TASK_KIND_UNSPECIFIED"/],
    ['stage:keys=tamper', /unknown failpoint "stage:keys"/],
    ['shares=tamper', /unknown failpoint "shares"/],
    ['task:TASK_KIND_TRAIN=explode', /unknown action "explode"/],
    ['task:TASK_KIND_TRAIN=tamper', /a task failpoint can only kill/],
    ['stage:shares=kill', /a stage failpoint can only tamper/],
    ['task:TASK_KIND_TRAIN', /is not point=action/],
    ['task:TASK_KIND_TRAIN=kill;task:TASK_KIND_TRAIN=kill', /given twice/],
  ])('refuses %s, naming it', (text, message) => {
    expect(() => parseFailpoints(text)).toThrow(message);
    try {
      parseFailpoints(text);
    } catch (err) {
      expect((err as { code?: string }).code).toBe('CONFIG_INVALID');
      expect((err as Error).message).toMatch(/^FEDLHS_FAILPOINTS: /);
    }
  });
});

describe('armFailpoints', () => {
  it('warns loudly and audits when any failpoint is set', () => {
    const { warn, audit } = arm('task:TASK_KIND_SECAGG_UNMASK=kill');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toEqual({ event: 'agent.failpoints_armed', failpoints: 'task:TASK_KIND_SECAGG_UNMASK=kill' });
    expect(warn.mock.calls[0]![1]).toMatch(/FAULT INJECTION IS ON/);
    expect(audit).toHaveBeenCalledWith(expect.objectContaining({ event: 'failpoints_armed', coordinator: 'c:1', outcome: 'armed' }));
    expect(audit.mock.calls[0]![0].detail).toContain('task:TASK_KIND_SECAGG_UNMASK=kill');
  });

  it('says nothing when none is set', () => {
    const { warn, audit } = arm(undefined);
    expect(warn).not.toHaveBeenCalled();
    expect(audit).not.toHaveBeenCalled();
  });

  it('fails the start on an invalid value, before warning', () => {
    expect(() => arm('task:TASK_KIND_NOPE=kill')).toThrow(/TASK_KIND_NOPE/);
  });
});

describe('beforeTask', () => {
  it('SIGKILLs this process before a task of the armed kind, and only then', () => {
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    arm('task:TASK_KIND_SECAGG_SHARES=kill');
    beforeTask('TASK_KIND_SECAGG_KEYS');
    beforeTask('TASK_KIND_TRAIN');
    expect(kill).not.toHaveBeenCalled();
    beforeTask('TASK_KIND_SECAGG_SHARES');
    expect(kill).toHaveBeenCalledWith(process.pid, 'SIGKILL');
  });

  it('does nothing when no failpoint is armed', () => {
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    arm('');
    beforeTask('TASK_KIND_SECAGG_SHARES');
    expect(kill).not.toHaveBeenCalled();
  });
});

describe('stageBody', () => {
  it('flips one byte in the middle of the first share ciphertext and keeps the rest of the JSON', () => {
    arm('stage:shares=tamper');
    const body = sharesBody();
    const out = stageBody('shares', body);
    const before = JSON.parse(body.toString()) as { shares: { to: string; ciphertext: string }[] };
    const after = JSON.parse(out.toString()) as typeof before;
    expect({ ...after, shares: undefined }).toEqual({ ...before, shares: undefined });
    expect(after.shares[1]).toEqual(before.shares[1]);
    expect(after.shares[0]!.to).toBe('n2');
    const a = Buffer.from(before.shares[0]!.ciphertext, 'base64');
    const b = Buffer.from(after.shares[0]!.ciphertext, 'base64');
    expect(b.length).toBe(a.length);
    const differing = [...a].map((x, i) => (x === b[i] ? -1 : i)).filter((i) => i >= 0);
    expect(differing).toEqual([30]);
  });

  it('leaves other stages and untampered runs alone', () => {
    arm('stage:shares=tamper');
    const body = sharesBody();
    expect(stageBody('keys', body)).toBe(body);
    resetFailpointsForTest();
    arm(undefined);
    expect(stageBody('shares', body)).toBe(body);
  });

  it('throws rather than pass a body it could not tamper with for a tampered one', () => {
    arm('stage:shares=tamper');
    expect(() => stageBody('shares', Buffer.from(JSON.stringify({ shares: [] })))).toThrow(/no shares\[0\]\.ciphertext/);
  });
});
