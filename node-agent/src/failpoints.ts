import { writeSync } from 'node:fs';
import { FedlhsError } from '@fedlhs/core';
import { TaskKind } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import type { AgentState } from './agent-state.js';

/*
 * Test fault injection: crashes and tampering at exact protocol points, so that integration
 * tests over real processes can show what the federation does when a clinic dies at a given
 * secure-aggregation stage or sends a corrupted share (issue 14: "Test with 30 % of clinics
 * killed at each stage", "a tampered share refused"). NEVER set it in production.
 *
 * FEDLHS_FAILPOINTS is a `;`-separated list of `point=action`:
 *   task:<TASK_KIND_…>=kill   the agent SIGKILLs itself when a task of that kind is about to be
 *                             handled (task-runner.ts): a real crash, nothing answered or flushed.
 *                             Any TaskKind except TASK_KIND_UNSPECIFIED,
 *                             e.g. task:TASK_KIND_SECAGG_SHARES=kill.
 *   stage:shares=tamper       the secure-aggregation shares answer goes out with one byte of its
 *                             first share ciphertext flipped (the JSON stays valid): the neighbour
 *                             it is sealed for must refuse it.
 * Example: FEDLHS_FAILPOINTS="task:TASK_KIND_SECAGG_UNMASK=kill".
 *
 * The value is checked when the agent starts (armFailpoints): an unknown point or action, or one
 * that does not apply to the point, is a start-up error naming it. When any is set the agent
 * logs a loud warning (event agent.failpoints_armed) and audits it (failpoints_armed), so an
 * operator can never mistake a fault-injected run for a normal one.
 */

/** The environment variable holding the failpoints. */
export const FAILPOINTS_ENV = 'FEDLHS_FAILPOINTS';

/** What a failpoint does. */
export type FailpointAction = 'kill' | 'tamper';

/** The parsed failpoints: task kind → action, stage → action, and the text they came from. */
export interface Failpoints {
  readonly text: string;
  readonly tasks: ReadonlyMap<string, 'kill'>;
  readonly stages: ReadonlyMap<string, 'tamper'>;
}

const TASK_KINDS: readonly string[] = Object.values(TaskKind).filter((k) => k !== 'TASK_KIND_UNSPECIFIED');
const TAMPER_STAGES: readonly string[] = ['shares'];
const ACTIONS: readonly string[] = ['kill', 'tamper'];

const invalid = (message: string): FedlhsError => new FedlhsError('CONFIG_INVALID', `${FAILPOINTS_ENV}: ${message}`, { details: { key: FAILPOINTS_ENV } });

/**
 * Parses a FEDLHS_FAILPOINTS value (undefined or blank: none). Throws CONFIG_INVALID naming the
 * first entry that is malformed, names an unknown point or action, or repeats a point.
 */
export function parseFailpoints(text: string | undefined): Failpoints {
  const tasks = new Map<string, 'kill'>();
  const stages = new Map<string, 'tamper'>();
  const value = (text ?? '').trim();
  for (const raw of value === '' ? [] : value.split(';')) {
    const entry = raw.trim();
    if (entry === '') continue; // a trailing ';'
    const eq = entry.indexOf('=');
    if (eq < 0) throw invalid(`"${entry}" is not point=action (e.g. task:TASK_KIND_SECAGG_SHARES=kill)`);
    const point = entry.slice(0, eq).trim();
    const action = entry.slice(eq + 1).trim();
    if (!ACTIONS.includes(action)) throw invalid(`unknown action "${action}" in "${entry}" (known: ${ACTIONS.join(', ')})`);
    if (point.startsWith('task:')) {
      const kind = point.slice('task:'.length);
      if (!TASK_KINDS.includes(kind)) throw invalid(`unknown failpoint "${point}" (task kinds: ${TASK_KINDS.join(', ')})`);
      if (action !== 'kill') throw invalid(`"${entry}": a task failpoint can only kill`);
      if (tasks.has(kind)) throw invalid(`"${point}" is given twice`);
      tasks.set(kind, 'kill');
    } else if (point.startsWith('stage:')) {
      const stage = point.slice('stage:'.length);
      if (!TAMPER_STAGES.includes(stage)) throw invalid(`unknown failpoint "${point}" (stages: ${TAMPER_STAGES.map((s) => `stage:${s}`).join(', ')})`);
      if (action !== 'tamper') throw invalid(`"${entry}": a stage failpoint can only tamper`);
      if (stages.has(stage)) throw invalid(`"${point}" is given twice`);
      stages.set(stage, 'tamper');
    } else {
      throw invalid(`unknown failpoint "${point}" (task:<TASK_KIND_…> or stage:shares)`);
    }
  }
  return { text: value, tasks, stages };
}

/** Where the armed failpoints are audited. */
export type FailpointAudit = Pick<AgentState, 'audit'>;

let armed: Failpoints | undefined;

/**
 * Reads and checks FEDLHS_FAILPOINTS at agent start (throws CONFIG_INVALID naming what is
 * wrong) and, when any is set, warns loudly and audits it. Returns the failpoints armed.
 */
export function armFailpoints(o: { log: Logger; state: FailpointAudit; coordinator: string }, env: NodeJS.ProcessEnv = process.env): Failpoints {
  const fp = parseFailpoints(env[FAILPOINTS_ENV]);
  armed = fp;
  if (fp.tasks.size + fp.stages.size > 0) {
    o.log.warn({ event: 'agent.failpoints_armed', failpoints: fp.text }, `!!! FAULT INJECTION IS ON (${FAILPOINTS_ENV}="${fp.text}"): this agent will crash or corrupt its answers on purpose. Tests only. !!!`);
    o.state.audit({ event: 'failpoints_armed', coordinator: o.coordinator, outcome: 'armed', detail: `${FAILPOINTS_ENV}="${fp.text}": fault injection for tests; this agent crashes or corrupts answers on purpose` });
  }
  return fp;
}

/** The armed failpoints; read from the environment if the agent did not arm them (a test harness), loudly. */
function current(): Failpoints {
  if (armed === undefined) {
    armed = parseFailpoints(process.env[FAILPOINTS_ENV]);
    if (armed.text !== '') say(`failpoints "${armed.text}" read without armFailpoints: they were neither logged nor audited at start`);
  }
  return armed;
}

/** One line straight to stderr (synchronously: the next thing may be SIGKILL). */
function say(text: string): void {
  writeSync(2, `fedlhs-agent: FAILPOINT: ${text}\n`);
}

/** With `task:<kind>=kill` armed, the process SIGKILLs itself now: a real crash, nothing flushed. */
export function beforeTask(kind: string): void {
  if (current().tasks.get(kind) !== 'kill') return;
  say(`task:${kind}=kill: SIGKILL`);
  process.kill(process.pid, 'SIGKILL');
}

/**
 * With `stage:<stage>=tamper` armed, the answer body with one byte flipped in the middle of its
 * first share ciphertext (shares[0].ciphertext, base64), the JSON otherwise the same; else the
 * body unchanged. A body without a share ciphertext throws: a failpoint that cannot apply must
 * not pass for one that did.
 */
export function stageBody(stage: string, body: Buffer): Buffer {
  if (current().stages.get(stage) !== 'tamper') return body;
  const message = JSON.parse(body.toString('utf8')) as { shares?: { to?: unknown; ciphertext?: unknown }[] };
  const first = Array.isArray(message.shares) ? message.shares[0] : undefined;
  if (first === undefined || typeof first.ciphertext !== 'string') throw new FedlhsError('INTERNAL', `failpoint stage:${stage}=tamper: the answer has no shares[0].ciphertext to tamper with`);
  const bytes = Buffer.from(first.ciphertext, 'base64');
  if (bytes.length === 0) throw new FedlhsError('INTERNAL', `failpoint stage:${stage}=tamper: shares[0].ciphertext is empty`);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = bytes[at]! ^ 0xff;
  first.ciphertext = bytes.toString('base64');
  say(`stage:${stage}=tamper: flipped byte ${at} of the share ciphertext for ${String(first.to)}`);
  return Buffer.from(JSON.stringify(message), 'utf8');
}

/** Forgets the armed failpoints (unit tests). */
export function resetFailpointsForTest(): void {
  armed = undefined;
}
