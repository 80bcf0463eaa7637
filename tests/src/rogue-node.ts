import * as grpc from '@grpc/grpc-js';
import { DEFAULT_TRAINING_ROWS, float32Le, sha256 } from './conformance-client.js';
import {
  loadFedlhsProto, type AgentMessage, type EnrolResponse__Output, type CoordinatorMessage__Output, type FederationClient, type StatisticsReceipt__Output, type StatisticsReport, type Task__Output, type UpdateChunk, type UploadReceipt__Output,
} from '@fedlhs/proto';

/** `Enrol` over plaintext gRPC through the generated stubs only, as a third-party agent would call it. */
export function enrolOverProtocol(address: string, joinToken: string, siteName: string): Promise<EnrolResponse__Output> {
  const client = new (loadFedlhsProto().fedlhs.v1.Enrolment)(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.Enrol({ joinToken, siteName, agent: { agentVersion: 'rogue/1.0', trainingBackend: 'none', platform: 'test' } }, (err, r) => {
      client.close();
      if (err === null) resolve(r!);
      else reject(err);
    });
  });
}

/** Name and shape of one tensor (common.proto TensorSpec, without the dtype). */
export interface TensorSpec {
  name: string;
  shape: number[];
}

const MIB = 1024 * 1024;
const elements = (specs: readonly TensorSpec[]): number => specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);

/** What a hand-written upload may contain; anything can be wrong on purpose. */
export interface RawUpload {
  taskId: string;
  studyId: string;
  round: number;
  nodeId: string;
  baseModelSha256: Buffer;
  numExamples: number;
  specs: readonly TensorSpec[];
  weights: Float32Array;
  /** Digest to announce (default: the true one). */
  sha256?: Buffer;
  /** UpdateHeader.train_metrics (default: plausible ones over num_examples; null: none). */
  trainMetrics?: { numExamples: number; loss: number; accuracy: number } | null;
}

/** How a rogue node answers study announcements (default: READY, no detail). */
export interface RogueOptions {
  readiness?: { readiness: 'READINESS_READY' | 'READINESS_NOT_APPROVED' | 'READINESS_COHORT_TOO_SMALL' | 'READINESS_DATA_ERROR'; detail: string };
  /** StudyReadiness.training_rows sent with READY, the bound of num_examples (default 1000; 0 states none). */
  trainingRows?: number;
}

/**
 * A minimal third-party node written against the .proto alone (the generated stubs and the
 * conformance client's byte helpers, no fedlhs code), used to send what the real agent never
 * would: wrong shapes, NaNs, bad digests, replays, made-up failures.
 */
export class RogueNode {
  readonly client: FederationClient;
  private session: grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly taskWaiters: { kind: Task__Output['kind']; round: number; studyId: string | undefined; resolve: (t: Task__Output) => void }[] = [];
  readonly tasks: Task__Output[] = [];
  sessionError: grpc.ServiceError | undefined;

  constructor(address: string, readonly nodeId: string, private readonly credential: string, private readonly options: RogueOptions = {}) {
    const proto = loadFedlhsProto();
    this.client = new proto.fedlhs.v1.Federation(address, grpc.credentials.createInsecure());
  }

  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${this.credential}`);
    return md;
  }

  /** Opens the session, declares READY for every announced study and declines EVALUATE tasks. */
  connect(): Promise<void> {
    const call = this.client.Session(this.metadata());
    this.session = call;
    call.on('error', (err: grpc.ServiceError) => {
      this.sessionError = err;
    });
    return new Promise((resolve) => {
      call.on('data', (m: CoordinatorMessage__Output) => {
        if (m.welcome) resolve();
        if (m.study?.study && m.study.study.state === 'STUDY_STATE_RUNNING') {
          const r = this.options.readiness ?? { readiness: 'READINESS_READY', detail: '' };
          const trainingRows = r.readiness === 'READINESS_READY' ? (this.options.trainingRows ?? DEFAULT_TRAINING_ROWS) : 0;
          call.write({ readiness: { studyId: m.study.study.studyId, manifestSha256: m.study.study.manifestSha256, readiness: r.readiness, detail: r.detail, trainingRows } });
        }
        if (m.task) {
          if (m.task.kind === 'TASK_KIND_EVALUATE') {
            call.write({ taskUpdate: { taskId: m.task.taskId, state: 'TASK_STATE_DECLINED', reason: 'rogue does not evaluate' } });
            return;
          }
          this.tasks.push(m.task);
          const i = this.taskWaiters.findIndex((w) => w.kind === m.task!.kind && w.round === m.task!.round && (w.studyId === undefined || w.studyId === m.task!.studyId));
          if (i >= 0) this.taskWaiters.splice(i, 1)[0]!.resolve(m.task);
        }
      });
      call.write({ hello: { agent: { agentVersion: 'rogue/1.0', trainingBackend: 'none', platform: 'test' }, activeTaskIds: [] } });
      this.heartbeat = setInterval(() => call.write({ heartbeat: { sentUnixMs: Date.now() } }), 200);
    });
  }

  /** The TRAIN task of `round` (of `studyId`, if given), already received or the next to come. */
  trainTask(round: number, studyId?: string): Promise<Task__Output> {
    return this.task('TASK_KIND_TRAIN', round, studyId);
  }

  /** The STATISTICS task of `round` (of `studyId`, if given), already received or the next to come. */
  statisticsTask(round: number, studyId?: string): Promise<Task__Output> {
    return this.task('TASK_KIND_STATISTICS', round, studyId);
  }

  private task(kind: Task__Output['kind'], round: number, studyId: string | undefined): Promise<Task__Output> {
    const seen = this.tasks.find((t) => t.round === round && t.kind === kind && (studyId === undefined || t.studyId === studyId));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.taskWaiters.push({ kind, round, studyId, resolve }));
  }

  /** Declines a task on the session (as an agent that will not do it). */
  decline(taskId: string, reason = 'rogue declines'): void {
    this.session?.write({ taskUpdate: { taskId, state: 'TASK_STATE_DECLINED', reason } });
  }

  /** Reports a task FAILED with a reason on the session (as an agent whose training threw). */
  fail(taskId: string, reason: string): void {
    this.session?.write({ taskUpdate: { taskId, state: 'TASK_STATE_FAILED', reason } });
  }

  /** Sends a hand-written statistics report; anything in it can be wrong on purpose. */
  reportStatistics(report: StatisticsReport): Promise<StatisticsReceipt__Output> {
    return new Promise((resolve, reject) => {
      this.client.ReportStatistics(report, this.metadata(), (err, receipt) => (err === null ? resolve(receipt!) : reject(err)));
    });
  }

  async download(taskId: string): Promise<{ specs: TensorSpec[]; weights: Float32Array }> {
    const call = this.client.DownloadModel({ taskId }, this.metadata());
    let specs: TensorSpec[] = [];
    const parts: Buffer[] = [];
    for await (const m of call) {
      if (m.header) specs = m.header.tensors.map((t: { name: string; shape: number[] }) => ({ name: t.name, shape: t.shape }));
      if (m.data) parts.push(m.data);
    }
    const bytes = Buffer.concat(parts);
    const weights = new Float32Array(elements(specs));
    new Uint8Array(weights.buffer).set(bytes);
    return { specs, weights };
  }

  upload(u: RawUpload): Promise<UploadReceipt__Output> {
    return new Promise((resolve, reject) => {
      const call = this.client.UploadUpdate(this.metadata(), (err, receipt) => (err === null ? resolve(receipt!) : reject(err)));
      const bytes = float32Le(u.weights);
      call.write({
        header: {
          taskId: u.taskId, studyId: u.studyId, round: u.round, nodeId: u.nodeId, baseModelSha256: u.baseModelSha256, numExamples: u.numExamples,
          ...(u.trainMetrics === null ? {} : { trainMetrics: u.trainMetrics ?? { numExamples: u.numExamples, loss: 0.5, accuracy: 0.7 } }),
          weights: { tensors: u.specs.map((s) => ({ name: s.name, shape: [...s.shape], dtype: 'DTYPE_FLOAT32' })), totalBytes: bytes.length, sha256: u.sha256 ?? sha256(bytes), chunkSize: MIB },
        },
      });
      // 1 MiB views, waiting for the transport to drain, as a real agent does.
      void (async () => {
        for (let offset = 0; offset < bytes.length; offset += MIB) {
          if (!call.write({ data: bytes.subarray(offset, Math.min(offset + MIB, bytes.length)) })) await new Promise((r) => call.once('drain', r));
        }
        call.end();
      })();
    });
  }

  /**
   * An upload sent in steps, to stop, cancel or finish it at a moment the test picks: the header
   * and the first `bytes` bytes of the payload now; `rest()` sends the remainder and ends the
   * stream, `cancel()` cancels the call; neither is required (a call left open plays a frozen
   * uploader). `result` is the call's outcome; `deadline` is the client's own deadline.
   */
  partialUpload(u: RawUpload, bytes: number, options: { deadline?: Date } = {}): { result: Promise<UploadReceipt__Output>; rest: () => Promise<void>; cancel: () => void } {
    const payload = float32Le(u.weights);
    let call!: grpc.ClientWritableStream<UpdateChunk>;
    const result = new Promise<UploadReceipt__Output>((resolve, reject) => {
      call = this.client.UploadUpdate(this.metadata(), options.deadline === undefined ? {} : { deadline: options.deadline }, (err, receipt) => (err === null ? resolve(receipt!) : reject(err)));
    });
    call.write({
      header: {
        taskId: u.taskId, studyId: u.studyId, round: u.round, nodeId: u.nodeId, baseModelSha256: u.baseModelSha256, numExamples: u.numExamples,
        weights: { tensors: u.specs.map((s) => ({ name: s.name, shape: [...s.shape], dtype: 'DTYPE_FLOAT32' })), totalBytes: payload.length, sha256: u.sha256 ?? sha256(payload), chunkSize: MIB },
      },
    });
    if (bytes > 0) call.write({ data: payload.subarray(0, bytes) });
    return {
      result,
      rest: async () => {
        // Each message must be a whole chunk but the last (TensorBundleHeader.chunk_size): the rest is one more chunk only when it is the end.
        if (bytes < payload.length) call.write({ data: payload.subarray(bytes) });
        call.end();
      },
      cancel: () => call.cancel(),
    };
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.session?.cancel();
    this.client.close();
  }
}

/** Resolves with the gRPC error of a call expected to fail (and fails the test if it succeeds). */
export async function rejection(p: Promise<unknown>): Promise<{ code: string; details: string; reason: string | undefined }> {
  try {
    await p;
  } catch (err) {
    const e = err as grpc.ServiceError;
    const reason = e.metadata?.get('fedlhs-rejection-reason')[0];
    return { code: grpc.status[e.code], details: e.details, reason: typeof reason === 'string' ? reason : undefined };
  }
  throw new Error('expected the call to be rejected, but it succeeded');
}
