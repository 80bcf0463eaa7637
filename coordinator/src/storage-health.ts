import { randomBytes } from 'node:crypto';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FedlhsError, isFedlhsError, type ErrorDetails } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CoordinatorMetrics } from './metrics.js';

/** What kind of storage fault (STORAGE_FAULT `details.kind`). */
export type StorageFaultKind = ErrorDetails['STORAGE_FAULT']['kind'];

// Node fs error codes that mean the storage, not the caller, failed. EACCES/EPERM count: the
// coordinator created its data directory, so a write it may not do there is the directory's
// fault (a read-only bind mount shows up as either, depending on the layer that refuses).
const FS_KINDS: Readonly<Record<string, StorageFaultKind>> = {
  ENOSPC: 'disk_full', EDQUOT: 'disk_full', EFBIG: 'disk_full',
  EROFS: 'read_only', EACCES: 'read_only', EPERM: 'read_only',
  EIO: 'io_error', ENXIO: 'io_error', ESTALE: 'io_error', EUCLEAN: 'io_error',
  EMFILE: 'unavailable', ENFILE: 'unavailable',
};

/** SQLite result codes (extended codes start with these) and what kind of fault they mean. */
function sqliteKind(code: string): StorageFaultKind | undefined {
  if (code.startsWith('SQLITE_FULL')) return 'disk_full';
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_AUTH')) return 'read_only';
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB')) return 'io_error';
  if (/^SQLITE_(CANTOPEN|BUSY|LOCKED|NOMEM|PROTOCOL)/.test(code)) return 'unavailable';
  return undefined;
}

/** PostgreSQL SQLSTATEs: disk full, read-only transaction / hot standby, server going away. */
function postgresKind(code: string): StorageFaultKind | undefined {
  if (code === '53100') return 'disk_full';
  if (code === '25006') return 'read_only';
  if (code === '58030') return 'io_error';
  if (/^(08|57P0[1-4]|53300|53400)/.test(code)) return 'unavailable';
  return undefined;
}

const STORE_UNAVAILABLE_WHY: Readonly<Record<string, StorageFaultKind>> = { disk_full: 'disk_full', read_only: 'read_only', connection: 'unavailable' };

/**
 * The kind of storage fault `err` is (looking through `cause`s), or undefined when it is not one:
 * STORAGE_FAULT itself, STORE_UNAVAILABLE of a store that is out of space, read-only or
 * unreachable (not one that was closed at shutdown), SQLite and PostgreSQL result codes, and the
 * Node fs codes of a full, read-only or failing disk.
 */
export function storageFaultKind(err: unknown): StorageFaultKind | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (isFedlhsError(e, 'STORAGE_FAULT')) return (e.details as ErrorDetails['STORAGE_FAULT'] | undefined)?.kind ?? 'io_error';
    if (isFedlhsError(e, 'STORE_UNAVAILABLE')) {
      const why = (e.details as { why?: string } | undefined)?.why;
      if (why !== undefined && STORE_UNAVAILABLE_WHY[why] !== undefined) return STORE_UNAVAILABLE_WHY[why];
      continue; // its cause says (a closed store has none that counts)
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    const kind = code.startsWith('SQLITE_') ? sqliteKind(code) : /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('E') ? postgresKind(code) : FS_KINDS[code];
    if (kind !== undefined) return kind;
  }
  return undefined;
}

const KIND_TEXT: Readonly<Record<StorageFaultKind, string>> = {
  disk_full: 'disk full', read_only: 'read-only storage', io_error: 'I/O error', unavailable: 'storage unavailable',
};

/**
 * `err` as a STORAGE_FAULT naming what failed (`op`) and where, or undefined when `err` is not a
 * storage fault. A STORAGE_FAULT is returned unchanged.
 */
export function toStorageFault(err: unknown, op: string, where?: string): FedlhsError | undefined {
  if (isFedlhsError(err, 'STORAGE_FAULT')) return err;
  const kind = storageFaultKind(err);
  if (kind === undefined) return undefined;
  const message = err instanceof Error ? err.message : String(err);
  return new FedlhsError('STORAGE_FAULT', `${KIND_TEXT[kind]} at ${where ?? 'the data directory'}: could not ${op} (${message})`, { details: { kind, op }, cause: err });
}

/** Runs `fn`; a storage fault it throws becomes STORAGE_FAULT (op, where), anything else passes unchanged. */
export async function asStorageFault<T>(op: string, where: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toStorageFault(err, op, where) ?? err;
  }
}

/** One writability check: resolves if the storage it checks accepts a durable write. */
export interface StorageProbe {
  /** Where, for messages ("data directory /var/lib/fedlhs", "store"). */
  readonly name: string;
  run(): Promise<void>;
}

/**
 * A probe of directories: in each, a tiny file is written, fsynced and removed (what every
 * checkpoint, spool and blob write needs: a new block, a durable write, a directory entry).
 */
export function directoryProbe(name: string, dirs: () => readonly string[]): StorageProbe {
  return {
    name,
    async run() {
      for (const dir of dirs()) {
        const path = join(dir, `.fedlhs-probe-${process.pid}-${randomBytes(3).toString('hex')}`);
        await asStorageFault('write a probe file', dir, async () => {
          await mkdir(dir, { recursive: true });
          const file = await open(path, 'wx', 0o600);
          try {
            await file.write(PROBE_BYTES);
            await file.sync();
          } finally {
            await file.close();
          }
          await unlink(path);
        }).catch(async (err: unknown) => {
          await unlink(path).catch(() => undefined);
          throw err;
        });
      }
    },
  };
}
// One page's worth: on a full file system a write of a few bytes may still fit a partial block.
const PROBE_BYTES = Buffer.alloc(4096, 0x5a);

/** What health reports about storage. */
export interface StorageStatus {
  healthy: boolean;
  /** The fault's kind while unhealthy, else null. */
  kind: StorageFaultKind | null;
  /** When the current fault began (ms since epoch), else null. */
  since: number | null;
  /** The fault's message (what failed and where), else null. */
  detail: string | null;
  /** Faults met since start (including ones already recovered). */
  faults: number;
}

/** The coordinator's health: 'degraded' while storage is faulty (the process serves reads). */
export interface CoordinatorHealth {
  status: 'ok' | 'degraded';
  storage: StorageStatus;
}

export interface StorageHealthOptions {
  probes: readonly StorageProbe[];
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  metrics?: Pick<CoordinatorMetrics, 'storageHealthy' | 'storageFaults'>;
  /** Probe period while healthy (default 10 s; 0: probe only after a fault). */
  intervalMs?: number;
  /** Probe period during a fault (default 1 s). */
  faultIntervalMs?: number;
  now?: () => number;
  /** Timers (tests inject a clock they move); returns a cancel function. */
  setTimer?: (ms: number, fn: () => void) => () => void;
}

export const DEFAULT_PROBE_INTERVAL_MS = 10_000;
export const DEFAULT_FAULT_PROBE_INTERVAL_MS = 1_000;

/**
 * Storage health (issue 11): whoever meets a storage fault reports it here; while faulty the
 * coordinator is 'degraded', the probes (a small durable write in the data directory, a store
 * write) run every `faultIntervalMs`, and the first round of probes that all pass ends the fault
 * (`storage.recovered`) and releases everyone waiting in {@link whenHealthy} — study runners
 * wait there instead of spending their round attempts on a disk that is full. While healthy the
 * probes run every `intervalMs`, so a fault is seen even when nothing is being written.
 */
export class StorageHealth {
  private fault: { kind: StorageFaultKind; since: number; detail: string } | undefined;
  private faults = 0;
  private waiters: (() => void)[] = [];
  private cancelTimer: (() => void) | undefined;
  private probing: Promise<boolean> | undefined;
  /** Periodic probing while healthy (start()); probing during a fault runs unless stopped. */
  private started = false;
  private stopped = false;
  private readonly listeners = new Set<(status: StorageStatus) => void>();
  private readonly now: () => number;
  private readonly setTimer: (ms: number, fn: () => void) => () => void;

  constructor(private readonly opts: StorageHealthOptions) {
    this.now = opts.now ?? Date.now;
    this.setTimer = opts.setTimer ?? ((ms, fn) => {
      const t = setTimeout(fn, ms);
      t.unref();
      return () => clearTimeout(t);
    });
    opts.metrics?.storageHealthy.set(1);
  }

  get healthy(): boolean {
    return this.fault === undefined;
  }

  status(): StorageStatus {
    const f = this.fault;
    return { healthy: f === undefined, kind: f?.kind ?? null, since: f?.since ?? null, detail: f?.detail ?? null, faults: this.faults };
  }

  health(): CoordinatorHealth {
    return { status: this.healthy ? 'ok' : 'degraded', storage: this.status() };
  }

  /** Starts the periodic probes. */
  start(): void {
    this.started = true;
    this.schedule();
  }

  /** Stops probing and releases the waiters (they re-check why they waited: a halted runner stops). */
  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Records `err` if it is a storage fault (returns it as STORAGE_FAULT, naming `op`), else
   * returns undefined and changes nothing. The first fault of an episode logs `storage.fault`
   * (error) and sets fedlhs_storage_healthy 0; every fault counts in fedlhs_storage_faults_total.
   */
  report(err: unknown, op: string, where?: string): FedlhsError | undefined {
    const fault = toStorageFault(err, op, where);
    if (fault === undefined) return undefined;
    const kind = (fault.details as ErrorDetails['STORAGE_FAULT']).kind;
    this.faults++;
    this.opts.metrics?.storageFaults.inc({ kind });
    if (this.fault === undefined) {
      this.fault = { kind, since: this.now(), detail: fault.message };
      this.opts.metrics?.storageHealthy.set(0);
      this.opts.log.error(
        { event: 'storage.fault', kind, op: (fault.details as ErrorDetails['STORAGE_FAULT']).op, detail: fault.message, err: fault },
        `storage fault (${kind}): ${fault.message}; writes fail until storage recovers (probing every ${this.faultInterval} ms)`,
      );
      // Probe at the fault's pace from now (a report during a fault leaves the timer alone, so
      // a stream of failing writes cannot keep postponing the probe).
      if (this.probing === undefined) this.schedule();
      this.changed();
    }
    return fault;
  }

  /** Resolves once storage is healthy (at once if it is), or when `signal` aborts or probing stops. */
  whenHealthy(signal?: AbortSignal): Promise<void> {
    if (this.fault === undefined || signal?.aborted === true || this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        signal?.removeEventListener('abort', done);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.push(done);
    });
  }

  /** Runs every probe now; true if all passed. A failure is reported (a fault begins or goes on). */
  probe(): Promise<boolean> {
    this.probing ??= this.runProbes().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private get faultInterval(): number {
    return this.opts.faultIntervalMs ?? DEFAULT_FAULT_PROBE_INTERVAL_MS;
  }

  private async runProbes(): Promise<boolean> {
    for (const p of this.opts.probes) {
      try {
        await p.run();
      } catch (err) {
        // A probe that fails for a reason that is not storage (a bug) must not pin the
        // coordinator degraded forever, nor hide: it is logged and counts as passed.
        if (this.report(err, `pass the ${p.name} write probe`) === undefined) {
          this.opts.log.warn({ event: 'storage.probe_failed', probe: p.name, err }, `storage probe ${p.name} failed: ${(err as Error).message}`);
          continue;
        }
        return false;
      }
    }
    if (this.fault !== undefined) {
      const { kind, since } = this.fault;
      this.fault = undefined;
      this.opts.metrics?.storageHealthy.set(1);
      this.opts.log.info({ event: 'storage.recovered', kind, faultMs: this.now() - since }, `storage recovered after ${this.now() - since} ms (${kind})`);
      for (const w of this.waiters.splice(0)) w();
      this.changed();
    }
    return true;
  }

  /** Calls `listener` whenever a fault begins or ends; returns a function that removes it. */
  onChange(listener: (status: StorageStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    const status = this.status();
    for (const l of [...this.listeners]) {
      try {
        l(status);
      } catch (err) {
        this.opts.log.error({ event: 'storage.probe_failed', err }, 'a storage health listener threw');
      }
    }
  }

  private schedule(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.stopped || (this.fault === undefined && !this.started)) return;
    const ms = this.fault === undefined ? (this.opts.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS) : this.faultInterval;
    if (ms <= 0) return;
    this.cancelTimer = this.setTimer(ms, () => {
      this.cancelTimer = undefined;
      void this.probe().finally(() => this.schedule());
    });
  }
}
