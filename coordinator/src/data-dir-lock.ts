import { readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FedlhsError } from '@fedlhs/core';
import { writeFileAtomic, type Logger } from '@fedlhs/service';

/** Who holds a data directory, as written to `coordinator.pid` beside the lock. */
export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

/**
 * Exclusive use of a coordinator data directory, so two coordinators never write one database
 * and one set of checkpoints. The lock is an exclusive SQLite lock held for the life of the
 * process on `<dataDir>/coordinator.lock` (an empty database file): the operating system
 * releases it when the process ends in any way, SIGKILL and power loss included, so a lock is
 * never stale and no PID has to be trusted (PIDs are reused, and every container's coordinator
 * is PID 1). `<dataDir>/coordinator.pid` says who holds it, for the error a second coordinator
 * prints; it is removed at a clean shutdown, and one left behind by a crash is only reported.
 * The lock file itself is never deleted: a process could still be waiting on the old file.
 */
export class DataDirLock {
  private constructor(private readonly db: Database.Database, private readonly pidPath: string) {}

  /** Takes the directory's lock, or throws FAILED_PRECONDITION naming the directory and its holder. */
  static acquire(dataDir: string, log?: Pick<Logger, 'warn'>): DataDirLock {
    const lockPath = join(dataDir, 'coordinator.lock');
    const pidPath = join(dataDir, 'coordinator.pid');
    const db = new Database(lockPath);
    try {
      db.pragma('busy_timeout = 0');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' && (err as { code?: string }).code !== 'SQLITE_LOCKED') throw err;
      const holder = readHolder(pidPath);
      const who = holder === undefined ? 'another process (its PID is not recorded)' : `another coordinator (PID ${holder.pid} on ${holder.host}, since ${holder.startedAt})`;
      throw new FedlhsError(
        'DATA_DIR_LOCKED',
        `data directory ${dataDir} is in use by ${who}; stop it first, or give this coordinator its own --data-dir (two coordinators on one data directory would both write its database and checkpoints)`,
        { cause: err },
      );
    }
    const previous = readHolder(pidPath);
    if (previous !== undefined) {
      log?.warn(
        { event: 'data-dir.lock-taken-over', dataDir, previous },
        `the coordinator that last used ${dataDir} (PID ${previous.pid} on ${previous.host}) did not shut down cleanly; it is gone, taking the data directory over`,
      );
    }
    const me: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
    writeFileAtomic(pidPath, `${JSON.stringify(me)}\n`, 0o644);
    return new DataDirLock(db, pidPath);
  }

  /** Releases the lock (idempotent). */
  release(): void {
    if (!this.db.open) return;
    rmSync(this.pidPath, { force: true });
    this.db.close();
  }
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    return typeof value.pid === 'number' ? { pid: value.pid, host: String(value.host ?? 'unknown host'), startedAt: String(value.startedAt ?? 'unknown time') } : undefined;
  } catch {
    return undefined;
  }
}
