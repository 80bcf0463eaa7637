/**
 * A fedlhs.v1 client built from the .proto contract alone: the generated stubs of @fedlhs/proto,
 * @grpc/grpc-js and Node built-ins, nothing of fedlhs's own code (tests/conformance checks the
 * imports). It does what a third-party agent would, and lets a test send anything, wrong on
 * purpose or not.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import {
  loadFedlhsProto,
  type CoordinatorMessage__Output,
  type AgentMessage,
  type DownloadModelRequest,
  type EnrolResponse__Output,
  type EvaluationReceipt__Output,
  type EvaluationReport,
  type FederationClient,
  type ListStudiesResponse__Output,
  type Metrics,
  type StatisticsReceipt__Output,
  type StatisticsReport,
  type Study__Output,
  type Task__Output,
  type TensorBundleHeader__Output,
  type UploadReceipt__Output,
} from '@fedlhs/proto';

/** The trailers of a failed call, as the protocol defines them. */
export interface CallFailure {
  /** gRPC status name, e.g. "FAILED_PRECONDITION". */
  code: string;
  details: string;
  /** "fedlhs-rejection-reason" */
  reason: string | undefined;
  /** "fedlhs-task-open": "true" / "false" */
  taskOpen: string | undefined;
  /** "fedlhs-error-code" */
  errorCode: string | undefined;
}

const AGENT = { agentVersion: 'conformance/1.0', trainingBackend: 'none', platform: 'conformance' };

/** The training rows a test node declares READY with unless told otherwise (bounds num_examples). */
export const DEFAULT_TRAINING_ROWS = 1000;

function trailer(md: grpc.Metadata | undefined, key: string): string | undefined {
  const v = md?.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

/** The protocol's view of a failed call. */
export function failureOf(err: unknown): CallFailure {
  const e = err as grpc.ServiceError;
  if (typeof e?.code !== 'number') throw err;
  return {
    code: grpc.status[e.code],
    details: e.details,
    reason: trailer(e.metadata, 'fedlhs-rejection-reason'),
    taskOpen: trailer(e.metadata, 'fedlhs-task-open'),
    errorCode: trailer(e.metadata, 'fedlhs-error-code'),
  };
}

/** Resolves with the failure of a call expected to fail; rejects if it succeeds. */
export async function failure(p: Promise<unknown>): Promise<CallFailure> {
  try {
    await p;
  } catch (err) {
    return failureOf(err);
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** SHA-256 of bytes, 32 raw bytes (common.proto: digests). */
export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** Float32 values as the wire's little-endian bytes (a copy). */
export function float32Le(values: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  const out = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => out.writeFloatLE(v, i * 4));
  return out;
}

/** Wire bytes back to float32 values (a copy). */
export function fromFloat32Le(bytes: Buffer): Float32Array {
  const out = new Float32Array(bytes.length / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
  else for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** Enrolment.Enrol over plaintext gRPC. */
export function enrol(address: string, joinToken: string, siteName: string): Promise<EnrolResponse__Output> {
  const client = new (loadFedlhsProto().fedlhs.v1.Enrolment)(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.Enrol({ joinToken, siteName, agent: AGENT }, (err, r) => {
      client.close();
      if (err === null && r !== undefined) resolve(r);
      else reject(err ?? new Error('empty EnrolResponse'));
    });
  });
}

/** A downloaded model: its header and payload. */
export interface Download {
  header: TensorBundleHeader__Output;
  payload: Buffer;
  chunkLengths: number[];
}

/** An upload as sent: the header fields and the data chunks, each of which may be wrong. */
export interface UploadSpec {
  taskId: string;
  studyId: string;
  round: number;
  nodeId: string;
  baseModelSha256: Buffer;
  numExamples: number;
  trainMetrics?: Metrics | undefined;
  tensors: { name: string; shape: number[]; dtype?: 'DTYPE_FLOAT32' | 'DTYPE_UNSPECIFIED' }[];
  totalBytes: number;
  sha256: Buffer;
  chunkSize: number;
  chunks: Buffer[];
  /** Send a data message before the header (a framing error). */
  dataFirst?: boolean;
}

export interface SessionOptions {
  /** Hello.capabilities. */
  capabilities?: string[];
  /** Answer READY to each running study announced with a new manifest hash (default true). */
  ready?: boolean;
  /**
   * StudyReadiness.training_rows sent with READY: the most an update's num_examples may claim
   * (default DEFAULT_TRAINING_ROWS; 0 states none).
   */
  trainingRows?: number;
  /** Send a heartbeat every Welcome.heartbeat_interval_ms (default true); false plays a silent agent. */
  heartbeats?: boolean;
}

/** One node speaking fedlhs.v1. */
export class ConformanceClient {
  readonly client: FederationClient;
  private session: grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly waiters: { match: (m: CoordinatorMessage__Output) => boolean; resolve: (m: CoordinatorMessage__Output) => void }[] = [];
  /** Every message the coordinator sent on the current session, in order. */
  readonly received: CoordinatorMessage__Output[] = [];
  /** The latest view of each study, from announcements and progress messages. */
  readonly studies = new Map<string, Study__Output>();
  sessionError: grpc.ServiceError | undefined;

  constructor(address: string, readonly nodeId: string, readonly credential: string) {
    this.client = new (loadFedlhsProto().fedlhs.v1.Federation)(address, grpc.credentials.createInsecure());
  }

  /** Call metadata: `authorization` as given, or the canonical "Bearer <credential>". */
  metadata(authorization: string = `Bearer ${this.credential}`): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('authorization', authorization);
    return md;
  }

  /** Opens the Session; resolves with the Welcome. */
  openSession(options: SessionOptions = {}): Promise<CoordinatorMessage__Output> {
    const call = this.client.Session(this.metadata());
    this.session = call;
    const answered = new Set<string>();
    call.on('error', (err: grpc.ServiceError) => {
      this.sessionError = err;
      for (const resolve of this.endWaiters.splice(0)) resolve(err);
    });
    call.on('data', (m: CoordinatorMessage__Output) => {
      this.received.push(m);
      const study = m.study?.study;
      if (study) {
        this.studies.set(study.studyId, study);
        const key = `${study.studyId}:${study.manifestSha256}`;
        if ((options.ready ?? true) && study.state === 'STUDY_STATE_RUNNING' && !answered.has(key)) {
          answered.add(key);
          call.write({
            readiness: { studyId: study.studyId, manifestSha256: study.manifestSha256, readiness: 'READINESS_READY', detail: '', trainingRows: options.trainingRows ?? DEFAULT_TRAINING_ROWS },
          });
        }
      }
      if (m.progress) {
        const known = this.studies.get(m.progress.studyId);
        if (known !== undefined) {
          this.studies.set(known.studyId, {
            ...known, state: m.progress.state, lastCommittedRound: m.progress.lastCommittedRound,
            parametersJson: m.progress.parametersJson === '' ? known.parametersJson : m.progress.parametersJson,
          });
        }
      }
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        if (this.waiters[i]!.match(m)) this.waiters.splice(i, 1)[0]!.resolve(m);
      }
    });
    const welcome = this.next((m) => m.welcome != null);
    call.write({ hello: { agent: AGENT, activeTaskIds: [], capabilities: options.capabilities ?? [] } });
    if (options.heartbeats === false) return welcome;
    return welcome.then((m) => {
      // At the interval the coordinator asks for (Welcome.heartbeat_interval_ms).
      this.heartbeat = setInterval(() => call.write({ heartbeat: { sentUnixMs: Date.now() } }), Number(m.welcome!.heartbeatIntervalMs));
      return m;
    });
  }

  private readonly endWaiters: ((err: grpc.ServiceError) => void)[] = [];

  /** The status the coordinator ended the Session with (resolves when it does). */
  sessionEnd(): Promise<grpc.ServiceError> {
    return this.sessionError !== undefined ? Promise.resolve(this.sessionError) : new Promise((resolve) => this.endWaiters.push(resolve));
  }

  /** The first message received so far that matches, or the next one to come. */
  next(match: (m: CoordinatorMessage__Output) => boolean): Promise<CoordinatorMessage__Output> {
    const seen = this.received.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** The next message that matches and arrives after this call. */
  upcoming(match: (m: CoordinatorMessage__Output) => boolean): Promise<CoordinatorMessage__Output> {
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** The task of this kind and round (of this study, if given). */
  async task(kind: Task__Output['kind'], round: number, studyId?: string): Promise<Task__Output> {
    const m = await this.next((x) => x.task != null && x.task.kind === kind && x.task.round === round && (studyId === undefined || x.task.studyId === studyId));
    return m.task!;
  }

  send(message: AgentMessage): void {
    this.session?.write(message);
  }

  listStudies(authorization?: string): Promise<ListStudiesResponse__Output> {
    return new Promise((resolve, reject) => {
      this.client.ListStudies({ includeEnded: true }, this.metadata(authorization), (err, r) => (err === null && r !== undefined ? resolve(r) : reject(err)));
    });
  }

  async download(request: DownloadModelRequest): Promise<Download> {
    const call = this.client.DownloadModel(request, this.metadata());
    let header: TensorBundleHeader__Output | undefined;
    const parts: Buffer[] = [];
    for await (const m of call as AsyncIterable<{ header?: TensorBundleHeader__Output | null; data?: Buffer }>) {
      if (m.header) header = m.header;
      if (m.data) parts.push(m.data);
    }
    if (header === undefined) throw new Error('DownloadModel sent no header');
    return { header, payload: Buffer.concat(parts), chunkLengths: parts.map((p) => p.length) };
  }

  /** An upload that echoes a download's tensors and sends `values` truthfully in `chunkSize` chunks (0: one chunk). */
  uploadOf(task: Task__Output, model: Download, values: Float32Array, chunkSize = 0, numExamples = 50): UploadSpec {
    const payload = float32Le(values);
    const chunks: Buffer[] = [];
    if (chunkSize === 0) chunks.push(payload);
    else for (let o = 0; o < payload.length; o += chunkSize) chunks.push(payload.subarray(o, Math.min(o + chunkSize, payload.length)));
    return {
      taskId: task.taskId, studyId: task.studyId, round: task.round, nodeId: this.nodeId, baseModelSha256: task.modelSha256, numExamples,
      tensors: model.header.tensors.map((t) => ({ name: t.name, shape: [...t.shape], dtype: 'DTYPE_FLOAT32' as const })),
      totalBytes: payload.length, sha256: sha256(payload), chunkSize, chunks,
    };
  }

  upload(u: UploadSpec): Promise<UploadReceipt__Output> {
    return new Promise((resolve, reject) => {
      const call = this.client.UploadUpdate(this.metadata(), (err, r) => (err === null && r !== undefined ? resolve(r) : reject(err)));
      if (u.dataFirst === true) call.write({ data: u.chunks[0] ?? Buffer.alloc(4) });
      call.write({
        header: {
          taskId: u.taskId, studyId: u.studyId, round: u.round, nodeId: u.nodeId, baseModelSha256: u.baseModelSha256, numExamples: u.numExamples,
          ...(u.trainMetrics === undefined ? {} : { trainMetrics: u.trainMetrics }),
          weights: { tensors: u.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype ?? 'DTYPE_FLOAT32' })), totalBytes: u.totalBytes, sha256: u.sha256, chunkSize: u.chunkSize },
        },
      });
      void (async () => {
        for (const chunk of u.chunks) {
          if (!call.write({ data: chunk })) await new Promise((r) => call.once('drain', r));
        }
        call.end();
      })();
    });
  }

  reportStatistics(report: StatisticsReport): Promise<StatisticsReceipt__Output> {
    return new Promise((resolve, reject) => {
      this.client.ReportStatistics(report, this.metadata(), (err, r) => (err === null && r !== undefined ? resolve(r) : reject(err)));
    });
  }

  reportEvaluation(report: EvaluationReport): Promise<EvaluationReceipt__Output> {
    return new Promise((resolve, reject) => {
      this.client.ReportEvaluation(report, this.metadata(), (err, r) => (err === null && r !== undefined ? resolve(r) : reject(err)));
    });
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.session?.cancel();
    this.client.close();
  }
}
