import * as grpc from '@grpc/grpc-js';
import { readFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadFedlhsProto, type ModelChunk__Output } from '@fedlhs/proto';
import { repoRoot, startStudy, type CoordinatorHandle } from '@fedlhs/simulator';
import { enrolOverProtocol, RogueNode } from '../rogue-node.js';
import { metricValue, startAttackCoordinator } from '../download-attack.js';

const MiB = 1048576;
// Dense 2000→2000 (+ bias) then Dense 2000→1: 4 004 001 float32 parameters, about 16 MiB.
const INPUTS = 2000;
const HIDDEN = 2000;
const PARAMS = INPUTS * HIDDEN + HIDDEN + HIDDEN + 1;
const MODEL_BYTES = PARAMS * 4;

/** Resident set size of a process, from /proc (Linux). */
function rss(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;
  } catch {
    return 0;
  }
}

const manifest = (features: string[]) => ({
  apiVersion: 'fedlhs.v1', kind: 'Study', name: 'bench-downloads',
  model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'bench', layers: [
    { class_name: 'Dense', config: { name: 'wide', units: HIDDEN, activation: 'relu', batch_input_shape: [null, INPUTS] } },
    { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
  ] } } },
  training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.001 }, localEpochs: 1, batchSize: 8 },
  rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 3600, evaluationSeconds: 3600 },
  data: { featureSpec: 'flat-table/v1', features, label: 'label', holdoutFraction: 0.5 }, aggregation: { strategy: 'fedavg' }, seed: 1,
});

/**
 * Opens `n` DownloadModel streams (one connection each, as n clinics would) for round 0, reads
 * each header and then stops reading. Resolves once every stream has its header, with a
 * function that resumes all streams and resolves with the bytes each received.
 */
async function stalledDownloads(c: CoordinatorHandle, credential: string, studyId: string, n: number): Promise<() => Promise<number[]>> {
  const Federation = loadFedlhsProto().fedlhs.v1.Federation;
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${credential}`);
  const streams = await Promise.all(Array.from({ length: n }, async (_, i) => {
    // A distinct channel option gives each stream its own channel and HTTP/2 connection.
    const client = new Federation(c.address, grpc.credentials.createInsecure(), { 'fedlhs.bench.stream': i });
    const call = client.DownloadModel({ committed: { studyId, round: 0 } }, md);
    await new Promise<void>((resolve, reject) => {
      call.once('data', () => {
        call.pause();
        resolve();
      });
      call.once('error', reject);
    });
    return { client, call };
  }));
  return async () => Promise.all(streams.map(async ({ client, call }) => {
    let bytes = 0;
    call.on('data', (m: ModelChunk__Output) => (bytes += m.data?.length ?? 0));
    call.resume();
    await new Promise<void>((resolve, reject) => {
      call.once('end', resolve);
      call.once('error', reject);
    });
    client.close();
    return bytes;
  }));
}

/** `--env KEY=VALUE` arguments (repeatable): extra coordinator environment, e.g. FEDLHS_TRANSFER_INFLIGHT_BYTES. */
function envArgs(): Record<string, string> {
  const env: Record<string, string> = {};
  process.argv.forEach((a, i) => {
    if (a !== '--env') return;
    const [k, ...v] = (process.argv[i + 1] ?? '').split('=');
    if (k) env[k] = v.join('=');
  });
  return env;
}

/** The coordinator's JS heap and external (Buffer) memory from /metrics, in MiB. */
async function heapAndExternal(c: CoordinatorHandle): Promise<string> {
  const [heap, external] = await Promise.all(['nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes'].map((m) => metricValue(c, `fedlhs_coordinator_${m}`)));
  const [open, sent] = await Promise.all([metricValue(c, 'fedlhs_download_streams'), metricValue(c, 'fedlhs_model_bytes_sent_total')]);
  return `heap ${((heap ?? 0) / MiB).toFixed(0)} MiB, external ${((external ?? 0) / MiB).toFixed(0)} MiB, ${open} streams open, ${((sent ?? 0) / MiB).toFixed(0)} MiB sent`;
}

/**
 * Coordinator RSS growth per concurrent stalled download, for each count in `counts` ("1,16,64").
 * `--env KEY=VALUE` passes extra environment to the coordinator.
 */
export async function downloadConcurrency(counts: string): Promise<void> {
  const say = (s: string): void => void process.stdout.write(`${s}\n`);
  const extraEnv = envArgs();
  say(`model: Dense ${INPUTS}→${HIDDEN}→1, ${PARAMS.toLocaleString()} float32 parameters = ${(MODEL_BYTES / MiB).toFixed(1)} MiB; 1 MiB chunks`);
  const rows: string[] = [];
  for (const n of counts.split(',').map(Number)) {
    const root = join(repoRoot, 'bench-run', `downloads-${n}`);
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    // FEDLHS_COORDINATOR_MAIN=/path/to/other/coordinator/dist/main.js measures another build.
    const c = await startAttackCoordinator({ dataDir: root, env: { FEDLHS_LIMITS_DOWNLOAD_STREAMS_PER_NODE: String(Math.max(2, n)), ...extraEnv } });
    try {
      const token = await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: 'bench', ttlSeconds: 600 });
      const { nodeCredential, nodeId } = await enrolOverProtocol(c.address, token.body.token, 'bench');
      // A node may download a study model only once it has a task in the study: take one first.
      const node = new RogueNode(c.address, nodeId, nodeCredential);
      await node.connect();
      const study = await startStudy(c, manifest(Array.from({ length: INPUTS }, (_, i) => `f${i}`)));
      await node.trainTask(1, study.id);
      // Warm up once (lazy module loads, first allocations, what the coordinator keeps per model
      // being served: its in-memory copy and shared frames), then take the baseline.
      await (await stalledDownloads(c, nodeCredential, study.id, 1))();
      const before = rss(c.proc.pid);
      const memBefore = await heapAndExternal(c);
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, rss(c.proc.pid))), 20);
      const resume = await stalledDownloads(c, nodeCredential, study.id, n);
      // Give the coordinator time to push what it will into the stalled streams.
      await new Promise((r) => setTimeout(r, 3000));
      const stalledPeak = peak;
      const memStalled = await heapAndExternal(c);
      const received = await resume();
      node.close();
      clearInterval(sampler);
      if (received.some((b) => b !== MODEL_BYTES)) throw new Error(`incomplete downloads: ${received.join(',')}`);
      const growth = stalledPeak - before;
      rows.push(`  ${String(n).padStart(3)} streams  RSS ${(before / MiB).toFixed(0)} → ${(stalledPeak / MiB).toFixed(0)} MiB  growth ${(growth / MiB).toFixed(1)} MiB = ${(growth / MODEL_BYTES).toFixed(2)} × model = ${(growth / n / MiB).toFixed(2)} MiB per stream`);
      say(rows.at(-1)!);
      say(`      before: ${memBefore}; stalled: ${memStalled}`);
    } finally {
      await c.stop();
    }
  }
  say('\ncoordinator RSS growth with stalled concurrent downloads:');
  for (const r of rows) say(r);
}
