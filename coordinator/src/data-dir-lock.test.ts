import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { FedlhsError } from '@fedlhs/core';
import { DataDirLock } from './data-dir-lock.js';
import { Coordinator } from './coordinator.js';

const dirs: string[] = [];
const locks: DataDirLock[] = [];
afterEach(() => {
  for (const l of locks.splice(0)) l.release();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'fedlhs-lock-'));
  dirs.push(d);
  return d;
};

function refusal(f: () => unknown): FedlhsError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected the lock to be refused');
}

describe('DataDirLock', () => {
  it('refuses a second holder, naming the directory and the PID that holds it, until the first releases it', () => {
    const dir = tempDir();
    const first = DataDirLock.acquire(dir);
    locks.push(first);
    const holder = JSON.parse(readFileSync(join(dir, 'coordinator.pid'), 'utf8')) as { pid: number };
    expect(holder.pid).toBe(process.pid);
    const err = refusal(() => DataDirLock.acquire(dir));
    expect([err.code, err.status, err.reason]).toEqual(['DATA_DIR_LOCKED', 'FAILED_PRECONDITION', undefined]);
    expect(err.message).toMatch(new RegExp(`^data directory ${dir} is in use by another coordinator \\(PID ${process.pid} on .+, since \\d{4}-.+\\); stop it first`));
    first.release();
    expect(existsSync(join(dir, 'coordinator.pid'))).toBe(false);
    // The lock file stays (a process may still be waiting on it); the lock is free again.
    expect(existsSync(join(dir, 'coordinator.lock'))).toBe(true);
    locks.push(DataDirLock.acquire(dir));
  });

  it('takes over from a holder that did not shut down cleanly, with a warning', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'coordinator.pid'), JSON.stringify({ pid: 999_999, host: 'old-host', startedAt: '2026-01-01T00:00:00.000Z' }));
    const warnings: unknown[][] = [];
    locks.push(DataDirLock.acquire(dir, { warn: (...args: unknown[]) => void warnings.push(args) } as never));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![0]).toMatchObject({ event: 'data-dir.lock-taken-over', previous: { pid: 999_999, host: 'old-host' } });
    expect(warnings[0]![1]).toContain('(PID 999999 on old-host) did not shut down cleanly');
  });

  it('keeps a second Coordinator off a data directory in use, and lets it in after shutdown', async () => {
    const dir = tempDir();
    const opts = {
      dataDir: dir, logger: pino({ level: 'silent' }), heartbeatIntervalMs: 600_000, selectionGraceMs: 0, chunkBytes: 1 << 20, maxHeldUpdateBytes: 1 << 20,
      buildInitialModel: async () => ({ specs: [], weights: new Float32Array(0) }),
    };
    const first = Coordinator.create(opts);
    expect(refusal(() => Coordinator.create(opts)).message).toContain(`data directory ${dir} is in use by another coordinator (PID ${process.pid}`);
    await first.shutdown();
    const second = Coordinator.create(opts);
    await second.shutdown();
  });
});
