import * as grpc from '@grpc/grpc-js';
import { loadFedlhsProto, type FederationClient } from '@fedlhs/proto';

/**
 * Bytes on the wire as a clinic sees them: the serialized protobuf size of every message of the
 * Federation service it sends (request serializer) and receives (response deserializer), by
 * category. gRPC adds 5 bytes of length prefix per message (and HTTP/2 frame headers) on top;
 * `messages` counts them so the prefix can be added. Enrolment (once per clinic) is not counted.
 */
export interface WireBytes {
  /** Bytes sent by category ("session.heartbeat", "upload", "stage-report.SECAGG_MASKED_INPUT", …). */
  up: Record<string, number>;
  /** Bytes received by category ("session.task.TRAIN", "download.TRAIN", "download.EVALUATE", …). */
  down: Record<string, number>;
  /** Messages, both directions, by "up <category>" / "down <category>". */
  messages: Record<string, number>;
  /**
   * When tasks arrived and their receipts came back, by "<round> <task kind>" (Date.now(), one
   * host's clock): where a round's time goes, stage by stage.
   */
  timeline: Record<string, TaskTiming>;
}

/** Arrivals of one kind of task of one round at the clinics, and their receipts. */
export interface TaskTiming {
  tasks: number;
  firstTaskMs: number;
  lastTaskMs: number;
  receipts: number;
  firstReceiptMs: number;
  lastReceiptMs: number;
  /** Task arrival to its receipt at one clinic (the clinic's work plus its report's round trip), summed and largest. */
  workSumMs: number;
  workMaxMs: number;
}

export function emptyWireBytes(): WireBytes {
  return { up: {}, down: {}, messages: {}, timeline: {} };
}

function emptyTiming(): TaskTiming {
  return { tasks: 0, firstTaskMs: Infinity, lastTaskMs: -Infinity, receipts: 0, firstReceiptMs: Infinity, lastReceiptMs: -Infinity, workSumMs: 0, workMaxMs: 0 };
}

/** JSON turns ±Infinity into null: read it back as `otherwise`. */
const finite = (v: number | null, otherwise: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : otherwise);

/** Adds `b` into `into` (the worker's and the bench's sums). */
export function addWireBytes(into: WireBytes, b: WireBytes): WireBytes {
  for (const side of ['up', 'down', 'messages'] as const) for (const [k, v] of Object.entries(b[side])) into[side][k] = (into[side][k] ?? 0) + v;
  for (const [k, t] of Object.entries(b.timeline)) {
    const x = (into.timeline[k] ??= emptyTiming());
    x.tasks += t.tasks;
    x.receipts += t.receipts;
    x.firstTaskMs = Math.min(x.firstTaskMs, finite(t.firstTaskMs, Infinity));
    x.lastTaskMs = Math.max(x.lastTaskMs, finite(t.lastTaskMs, -Infinity));
    x.firstReceiptMs = Math.min(x.firstReceiptMs, finite(t.firstReceiptMs, Infinity));
    x.lastReceiptMs = Math.max(x.lastReceiptMs, finite(t.lastReceiptMs, -Infinity));
    x.workSumMs += t.workSumMs;
    x.workMaxMs = Math.max(x.workMaxMs, t.workMaxMs);
  }
  return into;
}

/** The sum of a side's categories, optionally only those `keep` accepts. */
export function totalBytes(side: Record<string, number>, keep: (category: string) => boolean = () => true): number {
  return Object.entries(side).reduce((n, [k, v]) => (keep(k) ? n + v : n), 0);
}

type Serialize = (value: unknown) => Buffer;
type Deserialize = (bytes: Buffer) => unknown;
interface MethodDef {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: Serialize;
  requestDeserialize: Deserialize;
  responseSerialize: Serialize;
  responseDeserialize: Deserialize;
  originalName?: string;
}

const kindName = (kind: unknown): string => String(kind).replace(/^TASK_KIND_/, '');

/**
 * A Federation client whose serializers count into `bytes`. One per clinic: the categories of
 * DownloadModel come from the kind of the task it was asked for (a clinic downloads one model at
 * a time in these runs: its training or masked-input download ends before it reports, and the
 * evaluation task of a round comes after the round's commit).
 */
export function meteredFederationClient(address: string, options: grpc.ChannelOptions, bytes: WireBytes): FederationClient {
  const proto = loadFedlhsProto();
  const service = (proto.fedlhs.v1.Federation as unknown as { service: Record<string, MethodDef> }).service;
  const taskKinds = new Map<string, string>();
  /** taskId → its timeline key and arrival. */
  const arrivals = new Map<string, { key: string; at: number }>();
  let downloadKind = 'unknown';
  const timing = (key: string): TaskTiming => (bytes.timeline[key] ??= emptyTiming());
  const receipt = (value: unknown): void => {
    const a = arrivals.get(String((value as { taskId?: unknown }).taskId));
    if (a === undefined) return;
    const now = Date.now();
    const t = timing(a.key);
    t.receipts++;
    t.firstReceiptMs = Math.min(t.firstReceiptMs, now);
    t.lastReceiptMs = Math.max(t.lastReceiptMs, now);
    t.workSumMs += now - a.at;
    t.workMaxMs = Math.max(t.workMaxMs, now - a.at);
  };
  const add = (side: 'up' | 'down', category: string, n: number): void => {
    bytes[side][category] = (bytes[side][category] ?? 0) + n;
    const m = `${side} ${category}`;
    bytes.messages[m] = (bytes.messages[m] ?? 0) + 1;
  };
  const upCategory = (method: string, value: unknown): string => {
    const v = value as Record<string, unknown>;
    if (method === 'Session') return `session.${String(v.kind ?? Object.keys(v)[0])}`;
    if (method === 'DownloadModel') {
      downloadKind = taskKinds.get(String(v.taskId)) ?? 'unknown';
      return `download-request.${downloadKind}`;
    }
    if (method === 'ReportStage') return `stage-report.${taskKinds.get(String(v.taskId)) ?? 'unknown'}`;
    if (method === 'UploadUpdate') return 'upload';
    if (method === 'ReportEvaluation') return 'evaluation-report';
    return method;
  };
  const downCategory = (method: string, value: unknown): string => {
    const v = value as Record<string, unknown>;
    if (method === 'Session') {
      const kind = String(v.kind);
      if (kind === 'task') {
        const task = v.task as { taskId: string; kind: string; round: number };
        taskKinds.set(task.taskId, kindName(task.kind));
        if (!arrivals.has(task.taskId)) {
          const key = `${task.round} ${kindName(task.kind)}`;
          const now = Date.now();
          arrivals.set(task.taskId, { key, at: now });
          const t = timing(key);
          t.tasks++;
          t.firstTaskMs = Math.min(t.firstTaskMs, now);
          t.lastTaskMs = Math.max(t.lastTaskMs, now);
        }
        return `session.task.${kindName(task.kind)}`;
      }
      return `session.${kind}`;
    }
    if (method === 'DownloadModel') return `download.${downloadKind}`;
    if (method === 'ReportStage' || method === 'UploadUpdate' || method === 'ReportEvaluation') receipt(value);
    if (method === 'ReportStage') return 'stage-receipt';
    if (method === 'UploadUpdate') return 'upload-receipt';
    if (method === 'ReportEvaluation') return 'evaluation-receipt';
    return method;
  };
  const metered: Record<string, MethodDef> = {};
  for (const [name, def] of Object.entries(service)) {
    metered[name] = {
      ...def,
      requestSerialize: (value) => {
        const out = def.requestSerialize(value);
        add('up', upCategory(name, value), out.length);
        return out;
      },
      responseDeserialize: (buf) => {
        const value = def.responseDeserialize(buf);
        add('down', downCategory(name, value), buf.length);
        return value;
      },
    };
  }
  const Client = grpc.makeGenericClientConstructor(metered as unknown as grpc.ServiceDefinition, 'Federation');
  return new Client(address, grpc.credentials.createInsecure(), options) as unknown as FederationClient;
}
