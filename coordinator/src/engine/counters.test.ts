import { describe, expect, it } from 'vitest';
import { PhaseCounterSet } from './counters.js';
import type { LiveTask } from './phase.js';

const task = (id: string, online = true): LiveTask => ({ id, nodeId: id, siteName: id, kind: 'TRAIN', phase: 'training', state: 'ASSIGNED', detail: null, accepting: false, online, model: undefined });

describe('phase counters', () => {
  it('stay exact through online/offline, in-flight results and ends, without a recount', () => {
    const c = new PhaseCounterSet();
    const [a, b, d] = [task('a'), task('b'), task('d', false)];
    for (const t of [a, b, d]) c.add(t);
    expect(c.tally()).toEqual({ accepted: 0, outstanding: 2, disconnected: 1, ended: 0 });
    c.setOnline(a, false);
    c.setOnline(a, false); // repeated events change nothing
    expect(c.tally()).toEqual({ accepted: 0, outstanding: 1, disconnected: 2, ended: 0 });
    // An offline node's upload in flight counts as outstanding until it is in.
    c.setAccepting(a, true);
    expect([c.openOnline, c.openOffline, c.inflight]).toEqual([2, 1, 1]);
    expect(c.end(a, 'ACCEPTED', null)).toBe(true);
    expect(c.end(a, 'ACCEPTED', null)).toBe(false); // no double count
    c.setAccepting(a, false);
    expect([c.accepted, c.openOnline, c.openOffline, c.inflight]).toEqual([1, 1, 1, 0]);
    c.end(b, 'FAILED', 'fit: x');
    c.end(d, 'DECLINED', 'busy');
    expect(c.tally()).toEqual({ accepted: 1, outstanding: 0, disconnected: 0, ended: 2 });
    expect([c.failed, [...c.failuresByDetail]]).toEqual([1, [['fit: x', 1]]]);
  });

  it('say when a phase may be failing alike: every end a FAILED with one detail, the rest online', () => {
    const c = new PhaseCounterSet();
    const ts = ['a', 'b', 'c'].map((id) => task(id));
    for (const t of ts) c.add(t);
    c.end(ts[0]!, 'FAILED', 'same');
    expect(c.mayFailAlike()).toBe(true);
    c.setOnline(ts[2]!, false);
    expect(c.mayFailAlike()).toBe(false);
    c.setOnline(ts[2]!, true);
    c.end(ts[1]!, 'FAILED', 'other');
    expect(c.mayFailAlike()).toBe(false);
  });
});
