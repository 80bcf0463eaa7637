/**
 * Sustained update ingest for bench/aggregate.ts (issue 15): several clinics upload a large
 * update each round, one after another or all at once, beside the same number of raw grpc-js
 * uploads made the same way to a server in a process of its own. One upload hides what
 * accumulates over several (external memory that starts a full GC every ~64 MiB, page cache,
 * the spool written and read back), so each round reports the whole batch.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { FederationClient, UpdateChunk } from '@fedlhs/proto';
import { createClients } from '@fedlhs/node-agent';
import { startCoordinator, startStudy, type CoordinatorHandle } from '@fedlhs/simulator';
import { RogueNode, enrolOverProtocol } from '../rogue-node.js';
import { cpuDuring, rawUpload, startRawServer } from './raw-grpc.js';

const MiB = 1048576;
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

/** Streams the update over the agent's channel (node-agent createClients) as the agent does; seconds until the receipt. */
export async function agentUpload(federation: FederationClient, md: grpc.Metadata, header: UpdateChunk['header'], bytes: Buffer, chunkBytes: number): Promise<number> {
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    const call = federation.UploadUpdate(md, (err) => (err === null ? resolve() : reject(err)));
    call.write({ header });
    void (async () => {
      for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
        if (!call.write({ data: bytes.subarray(offset, Math.min(offset + chunkBytes, bytes.length)) })) await new Promise((r) => call.once('drain', r));
      }
      call.end();
    })();
  });
  return (performance.now() - start) / 1000;
}

/** A FedAvg study of one wide dense layer (units² + 2·units + 1 parameters) for `clinics` clinics. */
export function startBenchStudy(c: CoordinatorHandle, units: number, rounds: number, clinics: number): Promise<{ id: string }> {
  const features = Array.from({ length: units }, (_, i) => `f${i}`);
  return startStudy(c, {
    apiVersion: 'fedlhs.v1', kind: 'Study', name: 'bench-ingest',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'bench', layers: [
      { class_name: 'Dense', config: { name: 'wide', units, activation: 'relu', batch_input_shape: [null, units] } },
      { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
    ] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.01 }, localEpochs: 1, batchSize: 8 },
    rounds, clients: { min: clinics, max: clinics, quorum: clinics }, deadlines: { roundSeconds: 3600, evaluationSeconds: 60 },
    data: { featureSpec: 'flat-table/v1', features, label: 'label' }, aggregation: { strategy: 'fedavg' }, seed: 1,
  });
}

export interface SustainedOptions {
  clinics: number;
  /** Rounds of each kind (one after another, all at once), alternating. */
  reps: number;
  units: number;
  chunkBytes: number;
  /** Another coordinator build's dist/main.js. */
  coordinatorMain?: string | undefined;
}

/** One clinic: its node, its own channels to the coordinator and to the raw server. */
interface Clinic {
  node: RogueNode;
  nodeId: string;
  federation: FederationClient;
  raw: grpc.Client;
  close: () => void;
}

/** Runs the uploads one after another or all at once; wall seconds. */
async function batch(fns: (() => Promise<unknown>)[], concurrent: boolean): Promise<number> {
  const start = performance.now();
  if (concurrent) await Promise.all(fns.map((f) => f()));
  else for (const f of fns) await f();
  return (performance.now() - start) / 1000;
}

/** The sustained-ingest part: prints a line per round and a summary per kind. */
export async function sustainedIngest(o: SustainedOptions): Promise<void> {
  const loadAtStart = load();
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-bench-'));
  const c = await startCoordinator({
    dataDir: join(dir, 'coordinator'), heartbeatIntervalMs: 5000, env: { FEDLHS_LOG_LEVEL: 'info' },
    ...(o.coordinatorMain === undefined ? {} : { main: o.coordinatorMain }),
  });
  const rawServer = await startRawServer();
  const plaintext = { mode: 'plaintext' as const, ca: '', cert: '', key: '', serverName: '' };
  const clinics: Clinic[] = [];
  try {
    for (let k = 0; k < o.clinics; k++) {
      const token = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: `bench-${k}`, ttlSeconds: 600 })).body.token;
      const creds = await enrolOverProtocol(c.address, token, `bench-${k}`);
      const node = new RogueNode(c.address, creds.nodeId, creds.nodeCredential);
      await node.connect();
      const agent = createClients(c.address, plaintext);
      const rawChannel = createClients(rawServer.address, plaintext);
      const raw = new grpc.Client(rawServer.address, grpc.credentials.createInsecure(), { channelOverride: rawChannel.federation.getChannel() });
      clinics.push({ node, nodeId: creds.nodeId, federation: agent.federation, raw, close: () => (raw.close(), rawChannel.close(), agent.close(), node.close()) });
    }
    // A round more than measured, so every measured round has a next one to wait for (below).
    const study = await startBenchStudy(c, o.units, 2 * o.reps + 1, o.clinics);
    const rows: { concurrent: boolean; ours: number; raw: number; oursCpu: number; rawCpu: number }[] = [];
    let bytes = 0;
    for (let round = 1; round <= 2 * o.reps; round++) {
      const concurrent = round % 2 === 0;
      // Every clinic's own payload (distinct bytes: a replay would be refused), hashed before the clock starts.
      const uploads: { clinic: Clinic; header: UpdateChunk['header']; payload: Buffer }[] = [];
      for (const [k, clinic] of clinics.entries()) {
        const task = await clinic.node.trainTask(round, study.id);
        const model = await clinic.node.download(task.taskId);
        const weights = Float32Array.from(model.weights, (v) => v * (0.99 - 0.001 * k));
        const payload = Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength);
        bytes = payload.length;
        uploads.push({
          clinic, payload,
          header: {
            taskId: task.taskId, studyId: study.id, round, nodeId: clinic.nodeId, baseModelSha256: task.modelSha256, numExamples: 10 + k,
            trainMetrics: { numExamples: 10 + k, loss: 0.5, accuracy: 0.7 },
            weights: { tensors: model.specs.map((s) => ({ name: s.name, shape: [...s.shape], dtype: 'DTYPE_FLOAT32' })), totalBytes: bytes, sha256: createHash('sha256').update(payload).digest(), chunkSize: o.chunkBytes },
          },
        });
      }
      const measureRaw = (): Promise<{ result: number; user: number; system: number }> =>
        cpuDuring(rawServer.pid, () => batch(uploads.map((u) => () => rawUpload(u.clinic.raw, bytes, o.chunkBytes)), concurrent));
      const measureOurs = (): Promise<{ result: number; user: number; system: number }> =>
        cpuDuring(c.proc.pid, () => batch(uploads.map((u) => () => agentUpload(u.clinic.federation, u.clinic.node.metadata(), u.header, u.payload, o.chunkBytes)), concurrent));
      // Alternating order over the pairs of rounds: neither side always runs first.
      const rawFirst = Math.ceil(round / 2) % 2 === 1;
      const raw = rawFirst ? await measureRaw() : undefined;
      const ours = await measureOurs();
      // After ours, raw waits until the round is aggregated and the next one open (its tasks
      // handed out), not to share the machine with the coordinator's work after the receipts.
      if (raw === undefined) await Promise.all(clinics.map((k) => k.node.trainTask(round + 1, study.id)));
      const rawAfter = raw ?? (await measureRaw());
      const total = (bytes * o.clinics) / MiB;
      rows.push({ concurrent, ours: total / ours.result, raw: total / rawAfter.result, oursCpu: (ours.user + ours.system) / o.clinics, rawCpu: (rawAfter.user + rawAfter.system) / o.clinics });
    }
    const fmt = (x: number): string => x.toFixed(1).padStart(7);
    say(`\nsustained ingest: ${o.clinics} clinics × ${(bytes / MiB).toFixed(0)} MiB per round in ${o.chunkBytes / MiB} MiB chunks, each clinic on its own channel; load average ${loadAtStart} at the start, ${load()} at the end:`);
    rows.forEach((r, i) => say(`  round ${i + 1} ${r.concurrent ? 'all at once  ' : 'one by one   '} coordinator ${fmt(r.ours)} MiB/s (${r.oursCpu.toFixed(0)} ms CPU/upload)   raw ${fmt(r.raw)} MiB/s (${r.rawCpu.toFixed(0)} ms CPU/upload)   → ratio ${(r.ours / r.raw).toFixed(2)}`));
    for (const concurrent of [false, true]) {
      const of = rows.filter((r) => r.concurrent === concurrent);
      const ratios = of.map((r) => r.ours / r.raw);
      say(`  ${concurrent ? 'all at once' : 'one by one '}: ratio ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}, coordinator CPU/upload ${Math.min(...of.map((r) => r.oursCpu)).toFixed(0)}–${Math.max(...of.map((r) => r.oursCpu)).toFixed(0)} ms, raw ${Math.min(...of.map((r) => r.rawCpu)).toFixed(0)}–${Math.max(...of.map((r) => r.rawCpu)).toFixed(0)} ms`);
    }
  } finally {
    for (const k of clinics) k.close();
    rawServer.stop();
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
