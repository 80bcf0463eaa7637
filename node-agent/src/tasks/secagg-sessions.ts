import { SecAggClient, type RandomBytes, type RoundContext, type SecAggIdentity, type StudyManifest } from '@fedlhs/core';
import { createModelRuntime } from '@fedlhs/model';
import type { Task__Output } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import type { AgentState } from '../agent-state.js';
import { loadOrCreateIdentityKey } from '../identity-key.js';
import { checkPeerPin } from '../peer-pins.js';
import { secureAggregationMinSurvivors } from '../privacy-budget.js';

/** The manifest's privacy.secureAggregation section. */
export type SecAggSection = NonNullable<NonNullable<StudyManifest['privacy']>['secureAggregation']>;

/** What the secure-aggregation tasks may be given instead of the defaults (tests). */
export interface SecAggOptions {
  /** The number of parameters of the study's model (the masked vector's length); default: built once per manifest. */
  parameterCount?: (manifest: StudyManifest) => Promise<number>;
  /** The byte source of the protocol's keys, seeds and nonces; default Node crypto. */
  random?: RandomBytes;
}

/** An answer as sent: the JSON body and, for the masked input only, the packed vector. */
export interface SentAnswer {
  body: Buffer;
  vector: Buffer;
}

/** One round this clinic takes part in: its protocol client and the answers already sent per task. */
interface Session {
  readonly client: SecAggClient;
  /** taskId → the answer sent: a task re-sent after a transient failure is answered the same again. */
  readonly answers: Map<string, SentAnswer>;
}

/** What starting a round needs of the task's context. */
export interface SessionContext {
  readonly manifest: StudyManifest;
  readonly state: AgentState;
  readonly credential: { readonly nodeId: string };
  readonly config: { readonly coordinator: { readonly address: string } };
  readonly log: Logger;
}

const counts = new WeakMap<StudyManifest, Promise<number>>();

/** Builds the study's model once (no download) to count its parameters. */
async function defaultParameterCount(manifest: StudyManifest): Promise<number> {
  let count = counts.get(manifest);
  if (count === undefined) {
    count = (async () => {
      const runtime = await createModelRuntime({ topology: manifest.model.topology, loss: manifest.training.loss, optimizer: manifest.training.optimizer });
      try {
        return runtime.specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
      } finally {
        runtime.dispose();
      }
    })();
    counts.set(manifest, count);
  }
  return count;
}

/** The round context both ends derive: the manifest's section, the task's round and attempt, the model's size. */
export function roundContext(section: SecAggSection, task: Task__Output, vectorLength: number): RoundContext {
  return {
    studyId: task.studyId, round: task.round, attempt: task.attempt, k: section.neighbours,
    ...(section.threshold === undefined ? {} : { threshold: section.threshold }),
    graph: section.graph, valueBits: section.valueBits, clipRange: section.clipRange, vectorLength,
  };
}

const keyOf = (task: Pick<Task__Output, 'studyId' | 'round' | 'attempt'>): string => `${task.studyId}\u0000${task.round}\u0000${task.attempt}`;

/**
 * The secure-aggregation rounds this process takes part in, one SecAggClient per (study, round,
 * attempt), in memory only: its keys and seeds are never written anywhere, so a restart or a
 * lost control session drops this clinic from the round (the coordinator unmasks around it).
 */
export class SecAggSessions {
  readonly #sessions = new Map<string, Session>();
  readonly #parameterCount: (manifest: StudyManifest) => Promise<number>;
  readonly #random: RandomBytes | undefined;

  constructor(options: SecAggOptions = {}) {
    this.#parameterCount = options.parameterCount ?? defaultParameterCount;
    this.#random = options.random;
  }

  /**
   * Starts a round (stage KEYS): a fresh client signing with the clinic's identity key (created
   * at first need, identity-key.ts), checking neighbours' keys against the pins (peer-pins.ts) and
   * unmasking only inside a survivor set of at least secureAggregationMinSurvivors clinics. Any
   * earlier round of the study is over and discarded.
   */
  async start(task: Task__Output, ctx: SessionContext): Promise<SecAggClient> {
    const { manifest, state, log } = ctx;
    const section = manifest.privacy?.secureAggregation;
    if (section === undefined) throw new Error('the study\'s manifest has no privacy.secureAggregation: this clinic takes part in no secure-aggregation round of it');
    for (const key of [...this.#sessions.keys()]) if (key.startsWith(`${task.studyId}\u0000`)) this.#sessions.delete(key);
    const round = roundContext(section, task, await this.#parameterCount(manifest));
    const key = loadOrCreateIdentityKey(state.dir);
    if (key.created) {
      state.audit({ event: 'secagg_identity_created', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, peer: { nodeId: ctx.credential.nodeId, fingerprint: key.fingerprint }, detail: `this clinic's secure-aggregation identity key was created (${key.path}, fingerprint ${key.fingerprint}); neighbouring clinics pin it at first sight` });
      log.info({ event: 'secagg.identity_created', fingerprint: key.fingerprint }, `secure aggregation: created this clinic's identity key ${key.path} (fingerprint ${key.fingerprint})`);
    }
    const where = { coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, log };
    const identity: SecAggIdentity = {
      privateKey: key.privateKey,
      publicKey: key.publicKey,
      checkPeer: (id, identityKey) => checkPeerPin(state, where, id, identityKey),
    };
    const minSurvivors = secureAggregationMinSurvivors(manifest);
    const client = new SecAggClient(round, ctx.credential.nodeId, identity, { minSurvivors, ...(this.#random === undefined ? {} : { random: this.#random }) });
    this.#sessions.set(keyOf(task), { client, answers: new Map() });
    return client;
  }

  /** The round's client, or undefined (never started here, discarded, or lost with a restart or session). */
  get(task: Task__Output): SecAggClient | undefined {
    return this.#sessions.get(keyOf(task))?.client;
  }

  /** The answer already sent for this task, if any. */
  answered(task: Task__Output): SentAnswer | undefined {
    return this.#sessions.get(keyOf(task))?.answers.get(task.taskId);
  }

  /** Remembers the answer sent for this task. */
  remember(task: Task__Output, answer: SentAnswer): void {
    this.#sessions.get(keyOf(task))?.answers.set(task.taskId, answer);
  }

  /** Ends this clinic's part in the round: its secrets go with the client. */
  discard(task: Pick<Task__Output, 'studyId' | 'round' | 'attempt'>): void {
    this.#sessions.delete(keyOf(task));
  }

  /** The control session ended: every round in progress is lost (the coordinator counts this clinic as dropped). */
  dropAll(log: Logger): void {
    if (this.#sessions.size === 0) return;
    const rounds = [...this.#sessions.keys()].map((k) => k.split('\u0000')).map(([studyId, round, attempt]) => ({ studyId, round: Number(round), attempt: Number(attempt) }));
    this.#sessions.clear();
    log.warn({ event: 'secagg.rounds_dropped', rounds }, `control session lost: this clinic has dropped from ${rounds.length} secure-aggregation round(s) in progress (their keys lived only in memory)`);
  }

  /** Rounds in progress (tests). */
  get size(): number {
    return this.#sessions.size;
  }
}
