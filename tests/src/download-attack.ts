/**
 * The download-stall attack of issue 11, at the protocol level: rogue nodes that take part in a
 * study and then open DownloadModel streams they stop reading. Shared by
 * tests/integration/download-limits.test.ts and the bench tests/src/bench/attack-downloads.ts.
 * The streams are raw HTTP/2 (node:http2, gRPC framing by hand): a client that stops reading
 * stops HTTP/2 flow control, whatever a gRPC library would buffer.
 */
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManagedProcess } from '@fedlhs/testing';
import { coordinatorMain, startStudy, type CoordinatorHandle } from '@fedlhs/simulator';
import { loadFedlhsProto } from '@fedlhs/proto';
import { RogueNode, enrolOverProtocol } from './rogue-node.js';

const MiB = 1048576;

/** Resident set size of a process, from /proc (Linux). */
export function rssOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;
  } catch {
    return 0;
  }
}

export interface AttackCoordinatorOptions {
  dataDir: string;
  /** The coordinator entry point; default this checkout's (FEDLHS_COORDINATOR_MAIN overrides, e.g. a build of older code). */
  main?: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts `<main> serve` on port 0 like the simulator's startCoordinator, from any build. */
export async function startAttackCoordinator(o: AttackCoordinatorOptions): Promise<CoordinatorHandle> {
  const main = o.main ?? process.env.FEDLHS_COORDINATOR_MAIN ?? coordinatorMain;
  const proc = new ManagedProcess({
    name: 'coordinator',
    command: process.execPath,
    args: [main, 'serve'],
    env: {
      FEDLHS_DATA_DIR: o.dataDir, FEDLHS_GRPC_HOST: '127.0.0.1', FEDLHS_GRPC_PORT: '0', FEDLHS_ADMIN_PORT: '0',
      FEDLHS_HEARTBEAT_INTERVAL_MS: '5000', FEDLHS_SELECTION_GRACE_MS: '300', FEDLHS_LOG_LEVEL: 'info', FEDLHS_TLS_MODE: 'plaintext', FEDLHS_BACKEND: 'cpu',
      ...o.env,
    },
  });
  const ready = await proc.waitForEvent('coordinator.ready', undefined, 60_000);
  const adminPort = ready.adminPort as number;
  const adminToken = readFileSync(join(o.dataDir, 'admin-token'), 'utf8').trim();
  return {
    proc, grpcPort: ready.grpcPort as number, adminPort, adminToken, dataDir: o.dataDir, address: `127.0.0.1:${ready.grpcPort as number}`,
    async admin<T>(method: 'GET' | 'POST', path: string, body?: unknown) {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
        method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as T };
    },
    stop: (signal: NodeJS.Signals = 'SIGTERM') => proc.stop(signal),
  };
}

/** A study of one wide Dense layer: `inputs`² float32 parameters (+ a little), about inputs² × 4 bytes. */
export function wideManifest(name: string, inputs: number, nodes: number, seed = 1): unknown {
  return {
    apiVersion: 'fedlhs.v1', kind: 'Study', name,
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'wide', layers: [
      { class_name: 'Dense', config: { name: 'wide', units: inputs, activation: 'relu', batch_input_shape: [null, inputs] } },
      { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
    ] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.001 }, localEpochs: 1, batchSize: 8 },
    rounds: 1, clients: { min: nodes, max: nodes, quorum: nodes }, deadlines: { roundSeconds: 3600, evaluationSeconds: 3600 },
    data: { featureSpec: 'flat-table/v1', features: Array.from({ length: inputs }, (_, i) => `f${i}`), label: 'label', holdoutFraction: 0.5 }, aggregation: { strategy: 'fedavg' }, seed,
  };
}

/** Bytes of `wideManifest(…, inputs)`'s model. */
export const wideModelBytes = (inputs: number): number => (inputs * inputs + inputs + inputs + 1) * 4;

/** An enrolled rogue node with its credential and (once connected) control session. */
export interface Rogue {
  nodeId: string;
  credential: string;
  node: RogueNode;
}

/** Enrols `n` rogue nodes over the protocol and opens their sessions (READY for every study). */
export async function rogues(c: CoordinatorHandle, n: number, prefix = 'rogue'): Promise<Rogue[]> {
  const out: Rogue[] = [];
  for (let i = 0; i < n; i++) {
    const t = await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: `${prefix}-${i}`, ttlSeconds: 600 });
    const e = await enrolOverProtocol(c.address, t.body.token, `${prefix}-${i}`);
    const node = new RogueNode(c.address, e.nodeId, e.nodeCredential);
    await node.connect();
    out.push({ nodeId: e.nodeId, credential: e.nodeCredential, node });
  }
  return out;
}

/** Starts a study for `nodes` and waits until each has its round-1 TRAIN task: they took part in it. */
export async function studyWithParticipants(c: CoordinatorHandle, manifest: unknown, nodes: readonly Rogue[]): Promise<string> {
  const study = await startStudy(c, manifest);
  await Promise.all(nodes.map((r) => r.node.trainTask(1, study.id)));
  return study.id;
}

/** How a raw download ended, or that it is still open. */
export interface RawDownload {
  /** Resolves with the gRPC status (code and message) once the stream ends. */
  readonly ended: Promise<{ code: number; message: string; bytes: number }>;
  /** Bytes received so far (DATA frames, gRPC framing included). */
  readonly bytes: () => number;
  /** The status of a stream answered at once (trailers-only, e.g. refused), else undefined while it runs. */
  readonly refusal: () => { code: number; message: string } | undefined;
  resume(): void;
  close(): void;
}

/**
 * Opens DownloadModel over raw HTTP/2 on `session`. With `stallAfterBytes` the stream stops reading
 * once that many bytes have arrived (0: at the response headers); resolves once it has stalled
 * (or ended, e.g. refused).
 */
export async function rawDownload(
  session: http2.ClientHttp2Session, credential: string, request: { committed: { studyId: string; round: number } } | { taskId: string }, stallAfterBytes = 0,
  /** Stop waiting for `stallAfterBytes` after this long (a coordinator that sends nothing more); default: wait. */
  giveUpMs?: number,
): Promise<RawDownload> {
  const body = loadFedlhsProto().fedlhs.v1.Federation.service.DownloadModel.requestSerialize(request);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  const stream = session.request({ ':method': 'POST', ':path': '/fedlhs.v1.Federation/DownloadModel', 'content-type': 'application/grpc', te: 'trailers', authorization: `Bearer ${credential}` });
  stream.end(frame);
  let bytes = 0;
  let headers: http2.IncomingHttpHeaders = {};
  let refusal: { code: number; message: string } | undefined;
  const ended = new Promise<{ code: number; message: string; bytes: number }>((resolve) => {
    const finish = (h: http2.IncomingHttpHeaders): void => {
      resolve({ code: Number(h['grpc-status'] ?? -1), message: decodeURIComponent(String(h['grpc-message'] ?? '')), bytes });
    };
    stream.on('trailers', (t) => finish(t));
    stream.on('close', () => finish({ ...headers, 'grpc-status': headers['grpc-status'] ?? String(-1) }));
    stream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => {
    let stalled = false;
    const stall = (): void => {
      if (stalled) return;
      stalled = true;
      stream.pause();
      resolve();
    };
    stream.on('response', (h) => {
      headers = h;
      if (h['grpc-status'] !== undefined) refusal = { code: Number(h['grpc-status']), message: decodeURIComponent(String(h['grpc-message'] ?? '')) };
      if (refusal !== undefined || stallAfterBytes === 0) stall();
    });
    stream.on('data', (d: Buffer) => {
      bytes += d.length;
      if (bytes >= stallAfterBytes) stall();
    });
    void ended.then(stall);
    if (giveUpMs !== undefined) setTimeout(stall, giveUpMs).unref();
  });
  return { ended, bytes: () => bytes, refusal: () => refusal, resume: () => stream.resume(), close: () => stream.close(http2.constants.NGHTTP2_CANCEL) };
}

/** One HTTP/2 connection to the coordinator (as one rogue node). */
export function connect(c: CoordinatorHandle): http2.ClientHttp2Session {
  const s = http2.connect(`http://${c.address}`);
  s.on('error', () => undefined);
  return s;
}

/** A coordinator metric's value from /metrics (0 when absent). */
export async function metricValue(c: CoordinatorHandle, name: string, labels = ''): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${c.adminPort}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } });
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name}${labels === '' ? ' ' : `{${labels}} `}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

export const MIB = MiB;

/** Enrols a node over the protocol without a session: it takes part in nothing. */
export async function enrolOnly(c: CoordinatorHandle, site: string): Promise<{ nodeId: string; credential: string }> {
  const t = await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site, ttlSeconds: 600 });
  const e = await enrolOverProtocol(c.address, t.body.token, site);
  return { nodeId: e.nodeId, credential: e.nodeCredential };
}
