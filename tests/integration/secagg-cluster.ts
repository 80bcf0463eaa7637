import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { learnableManifest, writeLearnableCsv, type LogLine, type ManagedProcess } from '@fedlhs/testing';
import { enrolAgent, startAgent, startCoordinator, type AgentOptions, type CoordinatorHandle } from '@fedlhs/tests';
import type { useWorkspace } from './helpers.js';

/*
 * A coordinator and real agent processes for the secure-aggregation dropout and tamper tests
 * (secagg-dropout.test.ts): clinics enrolled and started in parallel, some with FEDLHS_FAILPOINTS
 * (node-agent/src/failpoints.ts), and waits that, when they run out, say where every process was.
 */

/** One clinic of the cluster. */
export interface Clinic {
  name: string;
  nodeId: string;
  options: AgentOptions;
  proc: ManagedProcess;
  /** Its FEDLHS_FAILPOINTS ('' for none). */
  failpoints: string;
}

export interface Cluster {
  c: CoordinatorHandle;
  clinics: Clinic[];
  /** Where everyone is: the last secure-aggregation lines of the coordinator and how each clinic ended, for failure messages. */
  state(): string;
}

type Workspace = ReturnType<typeof useWorkspace>;

/**
 * Starts a coordinator and `n` clinics (tiny data, auto-approve); clinic i gets the failpoints
 * `failpoints(i)` returns. Enrols and starts them in parallel and waits until every one is
 * connected (or, for one whose failpoints the agent refuses at start, until it exits).
 */
export async function startCluster(ws: Workspace, n: number, failpoints: (i: number) => string, rows = 160): Promise<Cluster> {
  const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator'), selectionGraceMs: 3000 }));
  const clinics = await Promise.all(Array.from({ length: n }, async (_, i): Promise<Clinic> => {
    const name = `clinic-${String(i).padStart(2, '0')}`;
    const dir = join(ws.dir(), name);
    mkdirSync(dir, { recursive: true });
    writeLearnableCsv(join(dir, 'data.csv'), { rows, seed: 300 + i });
    const fp = failpoints(i);
    const options: AgentOptions = {
      name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true,
      env: fp === '' ? {} : { FEDLHS_FAILPOINTS: fp },
    };
    const nodeId = await enrolAgent(c, options);
    const proc = ws.track(startAgent(options));
    return { name, nodeId, options, proc, failpoints: fp };
  }));
  const cluster: Cluster = {
    c, clinics,
    state: () => [
      'coordinator (secure-aggregation and round lines):',
      ...c.proc.lines.filter((l) => /^(secagg|round|study)\./.test(String(l.event))).slice(-20).map((l) => `  ${JSON.stringify(l)}`),
      ...clinics.map((k) => `${k.name} ${k.nodeId}${k.failpoints === '' ? '' : ` [${k.failpoints}]`}: ${describeClinic(k)}`),
    ].join('\n'),
  };
  await within(90_000, 'every clinic connected', cluster, Promise.all(clinics.map((k) => k.proc.waitForEvent('agent.connected', undefined, 90_000))));
  return cluster;
}

/** Whether a process exited, and how (ManagedProcess keeps no exit status of its own). */
const exits = new WeakMap<ManagedProcess, { code: number | null; signal: NodeJS.Signals | null }>();

function describeClinic(k: Clinic): string {
  const exit = exits.get(k.proc);
  const last = k.proc.lines.filter((l) => l.event !== undefined).slice(-3).map((l) => `${String(l.event)}${l.stage === undefined ? '' : `(${String(l.stage)})`}`);
  const readiness = k.proc.events('readiness.sent').at(-1);
  return `${exit === undefined ? 'running' : `exited code ${exit.code} signal ${exit.signal}`}; last events ${last.join(', ') || 'none'}${readiness === undefined ? '' : `; readiness ${String(readiness.readiness)} ${String(readiness.detail ?? '')}`}${k.proc.stderr.length === 0 ? '' : `; stderr: ${k.proc.stderr.slice(-2).join(' | ')}`}`;
}

/** Waits for `work`, at most `ms`; when the time runs out the error says where everyone was. */
export async function within<T>(ms: number, what: string, cluster: Pick<Cluster, 'state'>, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}\n${cluster.state()}`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } catch (err) {
    if ((err as Error).message.startsWith('timed out after')) throw err;
    throw new Error(`${(err as Error).message}\n--- while waiting for ${what}:\n${cluster.state()}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until the clinic's process exits and returns how. */
export async function exitOf(k: Clinic): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const e = await k.proc.exited;
  exits.set(k.proc, e);
  return e;
}

/** Records how every clinic that has exited ended (for state()); call before reporting. */
export function noteExits(cluster: Cluster): void {
  for (const k of cluster.clinics) void k.proc.exited.then((e) => exits.set(k.proc, e));
}

/**
 * A 1-round secure-aggregation study over exactly `n` clinics (min = max: every clinic started is
 * in the round), each the neighbour of `neighbours` others, threshold `threshold`. One attempt:
 * a round that fails ends the study at once with its reason (a retry would wait for clinics
 * that are dead).
 */
export function secaggManifest(name: string, n: number, neighbours: number, threshold: number, quorum: number): Record<string, unknown> {
  return {
    ...learnableManifest({ name, rounds: 1, min: n, max: n, quorum, roundSeconds: 120, maxRoundAttempts: 1 }),
    privacy: { secureAggregation: { neighbours, threshold, graph: 'ring', valueBits: 20, clipRange: 1 } },
  };
}

/** The agent's audit log (one JSON object a line). */
export function auditOf(k: Clinic): Record<string, unknown>[] {
  return readFileSync(join(k.options.stateDir, 'audit.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The coordinator's lines with event `name` for a study. */
export function coordinatorEvents(c: CoordinatorHandle, name: string, studyId: string): LogLine[] {
  return c.proc.lines.filter((l) => l.event === name && (l.studyId === undefined || l.studyId === studyId));
}
