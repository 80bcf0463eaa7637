import * as grpc from '@grpc/grpc-js';
import { bundleLength, payloadChunks, payloadDigest, float32Bytes, type TensorSpec } from '@fedlhs/core';
import {
  loadFedlhsProto, type AgentMessage, type CoordinatorMessage__Output, type EnrolmentClient, type FederationClient, type Task__Output,
} from '@fedlhs/proto';
import { clinicMetrics, clinicUpdate, trainExamplesOf } from './model.js';

/** Counters a clinic keeps; a worker sums them over its clinics. */
export interface ClinicCounters {
  /** Welcomed sessions that ended without the clinic closing them (error, end or coordinator timeout). */
  sessionDrops: number;
  /** Session calls that failed before their Welcome (connection refused or reset, deadline): retried. */
  connectFailures: number;
  reconnects: number;
  trainOk: number;
  evalOk: number;
  /**
   * Largest delay of the coordinator's heartbeats (received − sentUnixMs, one host's clock) since
   * the worker last reported, ms: how late the coordinator's side of the session is.
   */
  heartbeatLagMs: number;
  /** Failed calls and declined tasks by "what: gRPC code". */
  errors: Record<string, number>;
}

export function emptyCounters(): ClinicCounters {
  return { sessionDrops: 0, connectFailures: 0, reconnects: 0, trainOk: 0, evalOk: 0, heartbeatLagMs: 0, errors: {} };
}

/**
 * Hello.capabilities the load clinic advertises by default: with "study-progress" the coordinator
 * sends a small StudyProgress after each commit instead of the whole study record.
 */
export const LOAD_CLINIC_CAPABILITIES: readonly string[] = ['study-progress'];

const AGENT = { agentVersion: 'fedlhs-load/1.0', trainingBackend: 'none', platform: 'load-harness' };
/** Every unary and streaming call gets a deadline (a clinic never waits forever). */
const CALL_DEADLINE_MS = 600_000;
/** One HTTP/2 connection per clinic, as separate agents would have. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 8 * 1024 * 1024 };

const deadline = (): Date => new Date(Date.now() + CALL_DEADLINE_MS);

/**
 * The worker's clinics share one event loop, unlike real agents. When a round's tasks arrive,
 * hundreds of downloads finish in the same loop turn, and their "training" (a perturbation and two
 * digests each) would run back to back, holding every clinic's heartbeat timer for seconds and
 * getting sessions dropped for the harness's own stall. So the CPU work runs one job per loop
 * turn (setImmediate), with timers and I/O in between.
 */
const cpuJobs: (() => void)[] = [];
let cpuDraining = false;
function drainCpuJobs(): void {
  const job = cpuJobs.shift();
  if (job === undefined) {
    cpuDraining = false;
    return;
  }
  job();
  setImmediate(drainCpuJobs);
}
function cpuJob<T>(work: () => T): Promise<T> {
  return new Promise((resolve, reject) => {
    cpuJobs.push(() => {
      try {
        resolve(work());
      } catch (err) {
        reject(err as Error);
      }
    });
    if (!cpuDraining) {
      cpuDraining = true;
      setImmediate(drainCpuJobs);
    }
  });
}

/** Enrols a clinic with a join token through the Enrolment service. */
export function enrolClinic(address: string, joinToken: string, siteName: string): Promise<{ nodeId: string; credential: string }> {
  const proto = loadFedlhsProto();
  const client: EnrolmentClient = new proto.fedlhs.v1.Enrolment(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  return new Promise((resolve, reject) => {
    client.Enrol({ joinToken, siteName, agent: AGENT }, { deadline: deadline() }, (err, r) => {
      client.close();
      if (err === null && r !== undefined) resolve({ nodeId: r.nodeId, credential: r.nodeCredential });
      else reject(err ?? new Error('empty EnrolResponse'));
    });
  });
}

/**
 * What a benchmark may add to a load clinic (the secure-aggregation bench): its own Federation
 * client (e.g. one that counts bytes) and a handler for task kinds the clinic does not know,
 * which returns true when it takes the task (and calls `fail` if the task fails).
 */
export interface LoadClinicExtension {
  client?: FederationClient;
  onTask?(task: Task__Output, fail: (reason: string) => void): boolean;
}

/**
 * A lean protocol-level clinic for load: it speaks fedlhs.v1 through the generated stubs only,
 * answers READY to every running study, "trains" by adding a deterministic perturbation to the
 * downloaded model and reports fixed plausible metrics. No TF.js: the harness measures the
 * coordinator, not the clinic.
 */
export class LoadClinic {
  private readonly client: FederationClient;
  private session: grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private readonly activeTasks = new Set<string>();
  private readonly doneTasks = new Set<string>();
  private readonly metadata = new grpc.Metadata();
  /** True while a session is open and welcomed. */
  welcomed = false;

  constructor(
    address: string,
    readonly nodeId: string,
    credential: string,
    private readonly counters: ClinicCounters,
    private readonly onWelcome: () => void,
    private readonly capabilities: readonly string[] = LOAD_CLINIC_CAPABILITIES,
    /** Called when a session call fails before its Welcome (the clinic retries it). */
    private readonly onConnectFailed: () => void = () => undefined,
    private readonly extension: LoadClinicExtension = {},
  ) {
    const proto = loadFedlhsProto();
    this.client = extension.client ?? new proto.fedlhs.v1.Federation(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.metadata.set('authorization', `Bearer ${credential}`);
  }

  /** Opens (or reopens) the control session. */
  connect(): void {
    const call = this.client.Session(this.metadata);
    this.session = call;
    let ended = false;
    let welcomed = false;
    const drop = (why: string): void => {
      if (ended) return;
      ended = true;
      clearInterval(this.heartbeat);
      this.welcomed = false;
      if (this.closing) return;
      if (welcomed) {
        this.counters.sessionDrops++;
        this.count(`session: ${why}`);
      } else {
        // Never established (e.g. the listen backlog overflowed): not a dropped session, but counted.
        this.counters.connectFailures++;
        this.count(`connect: ${why}`);
        this.onConnectFailed();
      }
      // Jittered, so a mass drop does not come back as a thundering herd.
      this.reconnectTimer = setTimeout(() => {
        this.counters.reconnects++;
        this.connect();
      }, 500 + Math.random() * 1500);
    };
    call.on('error', (err: grpc.ServiceError) => drop(grpc.status[err.code] ?? String(err.code)));
    call.on('end', () => drop('ended by coordinator'));
    call.on('data', (m: CoordinatorMessage__Output) => {
      if (m.welcome) {
        this.welcomed = true;
        welcomed = true;
        const interval = m.welcome.heartbeatIntervalMs > 0 ? m.welcome.heartbeatIntervalMs : 5000;
        this.heartbeat = setInterval(() => call.write({ heartbeat: { sentUnixMs: Date.now() } }), interval);
        this.onWelcome();
      }
      if (m.heartbeat) this.counters.heartbeatLagMs = Math.max(this.counters.heartbeatLagMs, Date.now() - Number(m.heartbeat.sentUnixMs));
      const study = m.study?.study;
      if (study && study.state === 'STUDY_STATE_RUNNING') {
        call.write({ readiness: { studyId: study.studyId, manifestSha256: study.manifestSha256, readiness: 'READINESS_READY', detail: '', trainingRows: trainExamplesOf(this.nodeId) } });
      }
      // StudyProgress changes neither the manifest nor this clinic's readiness: nothing to answer.
      if (m.task) this.onTask(m.task);
    });
    call.write({ hello: { agent: AGENT, activeTaskIds: [...this.activeTasks], capabilities: [...this.capabilities] } });
  }

  private onTask(task: Task__Output): void {
    // A task is re-sent after a reconnection: work on it once.
    if (this.activeTasks.has(task.taskId) || this.doneTasks.has(task.taskId)) return;
    if (task.kind === 'TASK_KIND_TRAIN') this.run(task, 'train', () => this.train(task));
    else if (task.kind === 'TASK_KIND_EVALUATE') this.run(task, 'evaluate', () => this.evaluate(task));
    else if (this.extension.onTask?.(task, (reason) => this.session?.write({ taskUpdate: { taskId: task.taskId, state: 'TASK_STATE_FAILED', reason } })) === true) return;
    else {
      this.count(`declined: ${task.kind}`);
      this.session?.write({ taskUpdate: { taskId: task.taskId, state: 'TASK_STATE_DECLINED', reason: 'the load clinic only trains and evaluates' } });
    }
  }

  private run(task: Task__Output, what: string, work: () => Promise<void>): void {
    this.activeTasks.add(task.taskId);
    work().then(
      () => {
        this.activeTasks.delete(task.taskId);
        this.doneTasks.add(task.taskId);
        if (what === 'train') this.counters.trainOk++;
        else this.counters.evalOk++;
      },
      (err: unknown) => {
        this.activeTasks.delete(task.taskId);
        this.doneTasks.add(task.taskId);
        const e = err as Partial<grpc.ServiceError>;
        this.count(`${what}: ${e.code === undefined ? (err as Error).message : grpc.status[e.code]}`);
        if (!this.closing) this.session?.write({ taskUpdate: { taskId: task.taskId, state: 'TASK_STATE_FAILED', reason: `load clinic: ${String((err as Error).message)}` } });
      },
    );
  }

  private async train(task: Task__Output): Promise<void> {
    const { specs, weights } = await this.download(task);
    const { update, digest } = await cpuJob(() => {
      const u = clinicUpdate(this.nodeId, task.round, weights);
      return { update: u, digest: payloadDigest(u) };
    });
    await this.upload(task, specs, update, digest);
  }

  private async download(task: Task__Output): Promise<{ specs: TensorSpec[]; weights: Float32Array }> {
    const call = this.client.DownloadModel({ taskId: task.taskId }, this.metadata, { deadline: deadline() });
    let specs: TensorSpec[] = [];
    let digest: Buffer | undefined;
    const parts: Buffer[] = [];
    for await (const m of call) {
      if (m.header) {
        specs = m.header.tensors.map((t: { name: string; shape: number[] }) => ({ name: t.name, shape: t.shape }));
        digest = m.header.sha256;
      }
      if (m.data) parts.push(m.data);
    }
    return cpuJob(() => {
      const bytes = Buffer.concat(parts);
      const weights = new Float32Array(bundleLength(specs));
      if (bytes.length !== weights.byteLength) throw new Error(`downloaded ${bytes.length} bytes, the header's tensors need ${weights.byteLength}`);
      new Uint8Array(weights.buffer).set(bytes);
      const actual = payloadDigest(weights);
      if (digest === undefined || !actual.equals(digest) || !actual.equals(task.modelSha256)) throw new Error('downloaded model does not match its digest');
      return { specs, weights };
    });
  }

  private upload(task: Task__Output, specs: readonly TensorSpec[], weights: Float32Array, sha256: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const call = this.client.UploadUpdate(this.metadata, { deadline: deadline() }, (err) => (err === null ? resolve() : reject(err)));
      const bytes = float32Bytes(weights);
      const numExamples = trainExamplesOf(this.nodeId);
      call.write({
        header: {
          taskId: task.taskId, studyId: task.studyId, round: task.round, nodeId: this.nodeId, baseModelSha256: task.modelSha256, numExamples,
          trainMetrics: { numExamples, loss: 0.5, accuracy: 0.7 },
          weights: { tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape], dtype: 'DTYPE_FLOAT32' })), totalBytes: bytes.length, sha256, chunkSize: 1024 * 1024 },
        },
      });
      void (async () => {
        for (const chunk of payloadChunks(bytes)) {
          if (!call.write({ data: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) })) await new Promise((r) => call.once('drain', r));
        }
        call.end();
      })();
    });
  }

  private evaluate(task: Task__Output): Promise<void> {
    const metrics = clinicMetrics(this.nodeId, task.round);
    return new Promise((resolve, reject) => {
      this.client.ReportEvaluation({ taskId: task.taskId, studyId: task.studyId, round: task.round, metrics }, this.metadata, { deadline: deadline() }, (err) =>
        err === null ? resolve() : reject(err),
      );
    });
  }

  private count(key: string): void {
    this.counters.errors[key] = (this.counters.errors[key] ?? 0) + 1;
  }

  /**
   * Cuts the session from the clinic's side as a network fault would (counted as a drop, then
   * reconnected); for checking that drops are seen.
   */
  cutSession(): void {
    this.session?.cancel();
  }

  /** Stops heartbeating on the current session (the coordinator's watchdog should drop it). */
  silence(): void {
    clearInterval(this.heartbeat);
  }

  /** Ends the session on purpose (not counted as a drop) and closes the channel. */
  close(): void {
    this.closing = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    this.session?.cancel();
    this.client.close();
  }
}
