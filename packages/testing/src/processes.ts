import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** A parsed pino JSON log line. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface ManagedProcessOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Fields a line must carry (compared with ===), or a predicate over the line. */
export type EventMatch = Record<string, unknown> | ((l: LogLine) => boolean);

function eventPredicate(name: string, match: EventMatch | undefined): (l: LogLine) => boolean {
  if (match === undefined) return (l) => l.event === name;
  if (typeof match === 'function') return (l) => l.event === name && match(l);
  const fields = Object.entries(match);
  return (l) => l.event === name && fields.every(([k, v]) => l[k] === v);
}

function describeEvent(name: string, match: EventMatch | undefined): string {
  return `event ${name}${match === undefined ? '' : typeof match === 'function' ? ' (matching)' : ` ${JSON.stringify(match)}`}`;
}

/**
 * A child process whose JSON log lines are collected and can be awaited. Tests wait for
 * what a process says it did, never for a fixed time.
 */
export class ManagedProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiters: { predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly options: ManagedProcessOptions) {
    this.child = spawn(options.command, options.args, {
      env: { ...process.env, FEDLHS_LOG_PRETTY: 'false', ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
    createInterface({ input: this.child.stdout }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text, level: 30, raw: true };
      }
      this.lines.push(line);
      for (const w of [...this.waiters]) {
        if (w.predicate(line)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
      if (process.env.FEDLHS_TEST_ECHO === '1') process.stderr.write(`[${options.name}] ${text}\n`);
    });
    createInterface({ input: this.child.stderr }).on('line', (text) => {
      this.stderr.push(text);
      if (process.env.FEDLHS_TEST_ECHO === '1') process.stderr.write(`[${options.name}:err] ${text}\n`);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log line (already seen or future) matching `predicate`. */
  waitFor(predicate: (l: LogLine) => boolean, timeoutMs = 120_000, what = 'log line'): Promise<LogLine> {
    const seen = this.lines.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return this.waitForNext(predicate, timeoutMs, what);
  }

  /** Like waitFor, but only lines logged from now on count. */
  waitForNext(predicate: (l: LogLine) => boolean, timeoutMs = 120_000, what = 'log line'): Promise<LogLine> {
    return new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.findIndex((w) => w.resolve === done);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.options.name}: timed out after ${timeoutMs} ms waiting for ${what}; last lines:\n${this.tail(15)}`));
      }, timeoutMs);
      const done = (l: LogLine): void => {
        clearTimeout(timer);
        resolve(l);
      };
      this.waiters.push({ predicate, resolve: done });
      this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.options.name} exited (code ${code}, signal ${signal}) while waiting for ${what}; last lines:\n${this.tail(15)}`));
      }, () => undefined);
    });
  }

  /**
   * Resolves with the first line (already seen or future) whose stable `event` key is `name`
   * (packages/service/src/events.ts) and whose fields equal those of `match`, or satisfy it
   * when it is a predicate. Tests wait on events, never on message prose.
   */
  waitForEvent(name: string, match?: EventMatch, timeoutMs?: number): Promise<LogLine> {
    return this.waitFor(eventPredicate(name, match), timeoutMs, describeEvent(name, match));
  }

  /** Like waitForEvent, but only lines logged from now on count. */
  waitForNextEvent(name: string, match?: EventMatch, timeoutMs?: number): Promise<LogLine> {
    return this.waitForNext(eventPredicate(name, match), timeoutMs, describeEvent(name, match));
  }

  /** The lines already logged with event `name` (and matching `match`). */
  events(name: string, match?: EventMatch): LogLine[] {
    return this.lines.filter(eventPredicate(name, match));
  }

  /** @deprecated Matches message prose; wait with waitForEvent. */
  waitForMsg(msg: string | RegExp, timeoutMs?: number): Promise<LogLine> {
    const test = (l: LogLine): boolean => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg ?? '')));
    return this.waitFor(test, timeoutMs, `"${String(msg)}"`);
  }

  tail(n: number): string {
    return [...this.lines.slice(-n).map((l) => JSON.stringify(l)), ...this.stderr.slice(-5)].join('\n');
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.kill(signal);
    await this.exited;
  }
}
