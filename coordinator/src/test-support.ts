// In-process test doubles shared by the coordinator's unit tests (excluded from the build).
import { Writable } from 'node:stream';
import type { AgentInfo__Output, CoordinatorMessage, Task } from '@fedlhs/proto';
import type { NodeSession, ReadinessEntry } from './sessions.js';

/** Log lines as objects, with a wait on the first one that matches (tests wait on events, never on time). */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  private waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const text of chunk.toString('utf8').split('\n')) {
      if (text === '') continue;
      const line = JSON.parse(text) as Record<string, unknown>;
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
    }
    done();
  }
  waitFor(match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const seen = this.lines.find(match);
    return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => this.waiters.push({ match, resolve }));
  }
}

/** A node's control stream, in process: records the tasks the coordinator sends. */
export class FakeSession implements NodeSession {
  private static next = 1;
  readonly id = FakeSession.next++;
  readonly agent = { agentVersion: 'test/1', trainingBackend: 'cpu', platform: 'test' } as AgentInfo__Output;
  readonly connectedAt = Date.now();
  lastHeardAt = Date.now();
  readonly readiness = new Map<string, ReadinessEntry>();
  readonly progress = new Map();
  readonly tasks: Task[] = [];
  private waiters: { match: (t: Task) => boolean; resolve: (t: Task) => void }[] = [];
  constructor(readonly nodeId: string, readonly siteName: string) {}
  send(message: CoordinatorMessage): void {
    const task = message.task;
    if (task == null) return;
    this.tasks.push(task);
    this.waiters = this.waiters.filter((w) => (w.match(task) ? (w.resolve(task), false) : true));
  }
  close(): void {}
  /** The first task that matches, received or the next to come. */
  waitForTask(match: (t: Task) => boolean): Promise<Task> {
    const seen = this.tasks.find(match);
    return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => this.waiters.push({ match, resolve }));
  }
  /** The first task of a kind. */
  task(kind: 'TASK_KIND_STATISTICS' | 'TASK_KIND_TRAIN' | 'TASK_KIND_EVALUATE'): Promise<Task> {
    return this.waitForTask((t) => t.kind === kind);
  }
  /** The TRAIN task of a round attempt. */
  trainTask(attempt = 1): Promise<Task> {
    return this.waitForTask((t) => t.kind === 'TASK_KIND_TRAIN' && t.attempt === attempt);
  }
}

/** A clock the test moves (engine/study-runner.ts EngineClock): timers fire when `advance` passes them. */
export class ManualClock {
  private timers: { at: number; fn: () => void }[] = [];
  constructor(private t: number) {}
  now(): number {
    return this.t;
  }
  setTimer(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + Math.max(0, ms), fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }
  /** Moves time on and fires every timer due by then, in time order. */
  advance(ms: number): void {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.fn();
  }
  /** Timers waiting (tests assert that a phase waits on its deadline). */
  get pending(): number {
    return this.timers.length;
  }
}
