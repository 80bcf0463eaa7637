import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach } from 'vitest';
import type { ManagedProcess } from '@fedlhs/testing';
import type { CoordinatorHandle } from '@fedlhs/tests';

const execFileAsync = promisify(execFile);

/**
 * Per-test workspace: a temp directory and every process started in the test, all stopped
 * (and checked to be stopped) after the test, so no test leaks a server or an agent.
 */
export function useWorkspace(): { dir: () => string; track: <T extends ManagedProcess | CoordinatorHandle>(p: T) => T } {
  let dir: string | undefined;
  const procs: ManagedProcess[] = [];
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.stop('SIGKILL')));
    if (dir !== undefined && process.env.FEDLHS_KEEP_TEST_DIRS !== '1') rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return {
    dir: () => (dir ??= mkdtempSync(join(tmpdir(), 'fedlhs-it-'))),
    track: <T extends ManagedProcess | CoordinatorHandle>(p: T): T => {
      procs.push('proc' in p ? p.proc : p);
      return p;
    },
  };
}

/** Runs a CLI entry point to completion: its exit code and everything it printed. */
export async function runCli(main: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileAsync(process.execPath, [main, ...args], { env: { ...process.env, FEDLHS_LOG_PRETTY: 'false', ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
