import type { TaskTally } from '@fedlhs/core';
import type { TaskStateName } from '../store.js';
import type { LiveTask, PhaseCounters } from './phase.js';

/** An open task counts as online while its node is connected or its result is being accepted. */
const live = (t: LiveTask): boolean => t.online || t.accepting;

/**
 * One phase's counters, kept exact by the engine on every change of one of its tasks (state,
 * node online/offline, result in flight): O(1) per event, never a recount over the tasks.
 * Every mutation goes through a method here, so `openOnline + openOffline` is always the number
 * of ASSIGNED tasks and `accepted + ended + open` the number assigned.
 */
export class PhaseCounterSet implements PhaseCounters {
  assigned = 0;
  accepted = 0;
  ended = 0;
  failed = 0;
  openOnline = 0;
  openOffline = 0;
  inflight = 0;
  readonly failuresByDetail = new Map<string, number>();

  /** A task was assigned (state ASSIGNED, `online` as its node is now). */
  add(t: LiveTask): void {
    this.assigned++;
    if (live(t)) this.openOnline++;
    else this.openOffline++;
  }

  /** The task's node went online or offline. */
  setOnline(t: LiveTask, online: boolean): void {
    if (t.online === online) return;
    const before = live(t);
    t.online = online;
    this.moved(t, before);
  }

  /** A result for the task is being accepted (or that ended, `false`). */
  setAccepting(t: LiveTask, accepting: boolean): void {
    if (t.accepting === accepting) return;
    const before = live(t);
    t.accepting = accepting;
    if (accepting) this.inflight++;
    else this.inflight--;
    this.moved(t, before);
  }

  /** The task left ASSIGNED for `to` (guard: it was ASSIGNED; returns false and changes nothing otherwise). */
  end(t: LiveTask, to: Exclude<TaskStateName, 'ASSIGNED'>, detail: string | null): boolean {
    if (t.state !== 'ASSIGNED') return false;
    if (live(t)) this.openOnline--;
    else this.openOffline--;
    t.state = to;
    t.detail = detail;
    if (to === 'ACCEPTED') this.accepted++;
    else if (to !== 'CANCELLED') {
      this.ended++;
      if (to === 'FAILED') {
        this.failed++;
        const key = detail ?? '';
        this.failuresByDetail.set(key, (this.failuresByDetail.get(key) ?? 0) + 1);
      }
    }
    return true;
  }

  /** The tally core's decideClose reads. */
  tally(): TaskTally {
    return { accepted: this.accepted, outstanding: this.openOnline, disconnected: this.openOffline, ended: this.ended };
  }

  /**
   * True while every task that ended FAILED with one identical detail and every open task is
   * still worked on by an online clinic: the phase is lost, but waiting for the rest (at most
   * until the deadline) tells a deterministic failure from a chance one.
   */
  mayFailAlike(): boolean {
    const open = this.openOnline + this.openOffline;
    return this.ended > 0 && open > 0 && this.failed === this.ended && this.failuresByDetail.size === 1 && this.openOffline === 0;
  }

  private moved(t: LiveTask, before: boolean): void {
    if (t.state !== 'ASSIGNED') return;
    const after = live(t);
    if (before === after) return;
    if (after) {
      this.openOffline--;
      this.openOnline++;
    } else {
      this.openOnline--;
      this.openOffline++;
    }
  }
}
