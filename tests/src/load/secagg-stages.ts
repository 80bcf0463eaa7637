import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { SecAggClient, bundleLength, payloadDigest, type RoundContext, type SecAggIdentity } from '@fedlhs/core';
import type { FederationClient, StageReceipt__Output, Task__Output } from '@fedlhs/proto';
import type { ClinicCounters } from './clinic.js';
import { clinicUpdate } from './model.js';

/** The manifest's privacy.secureAggregation as the bench sets it, and the model's size. */
export interface SecAggRoundConfig {
  neighbours: number;
  threshold?: number;
  graph: 'ring' | 'random-regular';
  valueBits: number;
  clipRange: number;
  /** Values of the masked vector: the model's parameter count. */
  vectorLength: number;
  /** The clinic's minSurvivors (the agent passes clients.min). */
  minSurvivors: number;
}

/** Deadline of each stage call (the coordinator's stage deadlines are far shorter in a real run). */
const CALL_DEADLINE_MS = 600_000;

/** The stages' task kinds, by the name used in errors. */
const STAGES: Record<string, string> = {
  TASK_KIND_SECAGG_KEYS: 'keys',
  TASK_KIND_SECAGG_SHARES: 'shares',
  TASK_KIND_SECAGG_MASKED_INPUT: 'masked_input',
  TASK_KIND_SECAGG_CONSISTENCY: 'consistency',
  TASK_KIND_SECAGG_UNMASK: 'unmask',
};

/**
 * One job at a time on the worker's event loop (as the load clinic does for its training): 50
 * clinics masking 100k values at once would otherwise hold every heartbeat timer for seconds.
 */
const queue: (() => void)[] = [];
let draining = false;
function drain(): void {
  const job = queue.shift();
  if (job === undefined) {
    draining = false;
    return;
  }
  job();
  setImmediate(drain);
}
/**
 * CPU time of the clinics' protocol work in this worker by step ("shares", "masked_input.mask",
 * …): what the clinics' side costs, and how much of a round the worker's one event loop
 * serialises (real clinics compute in parallel on their own machines).
 */
export const computeMs: Record<string, { n: number; sumMs: number; maxMs: number }> = {};

function cpuJob<T>(label: string, work: () => T): Promise<T> {
  return new Promise((resolve, reject) => {
    queue.push(() => {
      const t0 = performance.now();
      try {
        resolve(work());
      } catch (err) {
        reject(err as Error);
      } finally {
        const ms = performance.now() - t0;
        const c = (computeMs[label] ??= { n: 0, sumMs: 0, maxMs: 0 });
        c.n++;
        c.sumMs += ms;
        c.maxMs = Math.max(c.maxMs, ms);
      }
    });
    if (!draining) {
      draining = true;
      setImmediate(drain);
    }
  });
}

/**
 * A load clinic's side of secure aggregation v2 (proto "Secure aggregation"): the five stage
 * tasks answered through ReportStage with core's SecAggClient, an Ed25519 identity of its own and
 * a pin map that pins every peer's identity key at first sight (refusing a changed one, as the
 * agent does). "Training" is the load clinic's synthetic update (model.ts clinicUpdate), its
 * change from the round model masked. Tasks are taken once (the coordinator does not re-send
 * stage tasks); a refused or failed stage fails the task with the reason and ends the round here.
 */
export class SecAggStageHandler {
  readonly #privateKey: KeyObject;
  readonly #publicKey: Uint8Array;
  readonly #pins = new Map<string, string>();
  readonly #rounds = new Map<string, SecAggClient>();
  readonly #seen = new Set<string>();

  constructor(
    private readonly client: FederationClient,
    private readonly metadata: grpc.Metadata,
    private readonly nodeId: string,
    private readonly config: SecAggRoundConfig,
    private readonly counters: ClinicCounters,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    this.#privateKey = privateKey;
    const x = publicKey.export({ format: 'jwk' }).x;
    if (typeof x !== 'string') throw new Error('Ed25519 public key exported without x');
    this.#publicKey = new Uint8Array(Buffer.from(x, 'base64url'));
  }

  /** Takes a secure-aggregation stage task (true), or leaves any other kind to the clinic (false). */
  onTask(task: Task__Output, fail: (reason: string) => void): boolean {
    const stage = STAGES[task.kind];
    if (stage === undefined) return false;
    if (this.#seen.has(task.taskId)) return true;
    this.#seen.add(task.taskId);
    this.#run(task, stage).then(
      () => {
        if (stage === 'masked_input') this.counters.trainOk++;
      },
      (err: unknown) => {
        this.#rounds.delete(roundKey(task));
        const e = err as Partial<grpc.ServiceError>;
        const what = e.code === undefined ? (err as Error).message : grpc.status[e.code];
        this.counters.errors[`secagg ${stage}: ${what}`] = (this.counters.errors[`secagg ${stage}: ${what}`] ?? 0) + 1;
        fail(`load clinic, secure aggregation ${stage}: ${(err as Error).message}`);
      },
    );
    return true;
  }

  async #run(task: Task__Output, stage: string): Promise<void> {
    const key = roundKey(task);
    if (stage === 'keys') {
      // A new round of the study: any earlier one is over.
      for (const k of [...this.#rounds.keys()]) if (k.startsWith(`${task.studyId}\u0000`)) this.#rounds.delete(k);
      const client = new SecAggClient(this.#context(task), this.nodeId, this.#identity(), { minSurvivors: this.config.minSurvivors });
      this.#rounds.set(key, client);
      await this.#report(task, await cpuJob('keys', () => client.keys()));
      return;
    }
    const client = this.#rounds.get(key);
    if (client === undefined) throw new Error(`no keys for round ${task.round} attempt ${task.attempt} here: this clinic has dropped from the round`);
    const request = JSON.parse(Buffer.from(task.payload).toString('utf8')) as unknown;
    if (stage === 'shares') await this.#report(task, await cpuJob('shares', () => client.shares(request)));
    else if (stage === 'masked_input') {
      const base = await this.#download(task);
      const delta = await cpuJob('masked_input.train', () => {
        const trained = clinicUpdate(this.nodeId, task.round, base);
        // The model change, clipped to the protocol's range (never reached: δ is within ±1e-3).
        const clip = this.config.clipRange;
        // A plain loop: Float64Array.from with a callback costs as much as the "training" itself.
        const delta = new Float64Array(trained.length);
        for (let i = 0; i < delta.length; i++) delta[i] = Math.min(clip, Math.max(-clip, trained[i]! - base[i]!));
        return delta;
      });
      const { message, vector } = await cpuJob('masked_input.mask', () => client.maskedInput(request, delta));
      await this.#report(task, message, vector);
    } else if (stage === 'consistency') await this.#report(task, await cpuJob('consistency', () => client.consistency(request)));
    else {
      await this.#report(task, await cpuJob('unmask', () => client.unmask(request)));
      this.#rounds.delete(key);
    }
  }

  #context(task: Task__Output): RoundContext {
    const c = this.config;
    return {
      studyId: task.studyId, round: task.round, attempt: task.attempt, k: c.neighbours, graph: c.graph, valueBits: c.valueBits, clipRange: c.clipRange,
      vectorLength: c.vectorLength, ...(c.threshold === undefined ? {} : { threshold: c.threshold }),
    };
  }

  /** Ed25519 identity with a pin-at-first-sight map (a changed key is refused naming the peer). */
  #identity(): SecAggIdentity {
    return {
      privateKey: this.#privateKey,
      publicKey: this.#publicKey,
      checkPeer: (id, identityKey) => {
        const seen = Buffer.from(identityKey).toString('hex');
        const pinned = this.#pins.get(id);
        if (pinned === undefined) this.#pins.set(id, seen);
        else if (pinned !== seen) throw new Error(`peer ${id} presents identity key ${seen.slice(0, 16)}…, pinned ${pinned.slice(0, 16)}…`);
      },
    };
  }

  async #download(task: Task__Output): Promise<Float32Array> {
    const call = this.client.DownloadModel({ taskId: task.taskId }, this.metadata, { deadline: new Date(Date.now() + CALL_DEADLINE_MS) });
    let length = -1;
    let digest: Buffer | undefined;
    const parts: Buffer[] = [];
    for await (const m of call) {
      if (m.header) {
        length = bundleLength(m.header.tensors.map((t: { name: string; shape: number[] }) => ({ name: t.name, shape: t.shape })));
        digest = m.header.sha256;
      }
      if (m.data) parts.push(m.data);
    }
    return cpuJob('masked_input.download-check', () => {
      const bytes = Buffer.concat(parts);
      if (length < 0 || bytes.length !== length * 4) throw new Error(`downloaded ${bytes.length} bytes, the header's tensors need ${length * 4}`);
      const weights = new Float32Array(length);
      new Uint8Array(weights.buffer).set(bytes);
      const actual = payloadDigest(weights);
      if (digest === undefined || !actual.equals(digest) || !actual.equals(task.modelSha256)) throw new Error('downloaded model does not match its digest');
      return weights;
    });
  }

  #report(task: Task__Output, message: object, vector?: Uint8Array): Promise<StageReceipt__Output> {
    const request = {
      taskId: task.taskId, studyId: task.studyId, round: task.round, body: Buffer.from(JSON.stringify(message), 'utf8'),
      ...(vector === undefined ? {} : { vector: Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength) }),
    };
    return new Promise((resolve, reject) => {
      this.client.ReportStage(request, this.metadata, { deadline: new Date(Date.now() + CALL_DEADLINE_MS) }, (err, r) => (err === null && r !== undefined ? resolve(r) : reject(err ?? new Error('empty StageReceipt'))));
    });
  }
}

function roundKey(task: Pick<Task__Output, 'studyId' | 'round' | 'attempt'>): string {
  return `${task.studyId}\u0000${task.round}\u0000${task.attempt}`;
}
