/**
 * The download-stall attack of issue 11 as a rerunnable measurement (not part of the test run).
 * Rogue nodes that took part in studies open DownloadModel streams (raw HTTP/2), read a little
 * more than one chunk and stop reading, over models in rotation; reports the coordinator's peak
 * RSS, how many streams were accepted or refused (a stream that gets no data for 2 s counts as open), and whether a participant can still download
 * the model in full while the attack holds.
 *
 *   npx tsc -b && node tests/dist/bench/attack-downloads.js [--streams 150] [--nodes 5] [--studies 3]
 *       [--inputs 1900] [--coordinator /path/to/coordinator/dist/main.js] [--env KEY=VALUE ...]
 *
 * `--coordinator /work/before/coordinator/dist/main.js` measures an older build; `--env
 * FEDLHS_LIMITS_DOWNLOAD_STREAMS_PER_NODE=64` lifts a bound to measure the cost per stream alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIB, connect, metricValue, rawDownload, rogues, rssOf, startAttackCoordinator, studyWithParticipants, wideManifest, wideModelBytes } from '../download-attack.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] ?? fallback : fallback;
}
const STREAMS = Number(arg('streams', '150'));
const NODES = Number(arg('nodes', '5'));
const STUDIES = Number(arg('studies', '3'));
const INPUTS = Number(arg('inputs', '1900'));
const env: NodeJS.ProcessEnv = {};
process.argv.forEach((a, i) => {
  if (a === '--env') {
    const [k, ...v] = (process.argv[i + 1] ?? '').split('=');
    if (k) env[k] = v.join('=');
  }
});

async function main(): Promise<void> {
  const say = (s: string): void => void process.stdout.write(`${s}\n`);
  const model = wideModelBytes(INPUTS);
  const main = arg('coordinator', '');
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-bench-downloads-'));
  const c = await startAttackCoordinator({ dataDir: dir, ...(main === '' ? {} : { main }), env });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssOf(c.proc.pid))), 20);
  const exited = c.proc.exited.then((e) => `coordinator exited (code ${e.code}, signal ${e.signal})`);
  try {
    say(`coordinator ${main === '' ? '(this checkout)' : main}; model ${(model / MIB).toFixed(1)} MiB (Dense ${INPUTS}→${INPUTS}→1), ${STUDIES} studies, ${NODES} rogue nodes, ${STREAMS} streams`);
    const nodes = await rogues(c, NODES);
    say('rogue nodes enrolled and online');
    const honest = (await rogues(c, 1, 'honest'))[0]!;
    const studies: string[] = [];
    for (let k = 0; k < STUDIES; k++) studies.push(await studyWithParticipants(c, wideManifest(`attack-${k}`, INPUTS, NODES + 1, k + 1), [...nodes, honest]));
    say('studies started; every node has its task');
    const conns = nodes.map(() => connect(c));
    const before = rssOf(c.proc.pid);
    peak = before;
    const outcome = new Map<string, number>();
    const count = (k: string): void => void outcome.set(k, (outcome.get(k) ?? 0) + 1);
    const attack = (async () => {
      for (let i = 0; i < STREAMS; i++) {
        const k = i % NODES;
        const d = await rawDownload(conns[k]!, nodes[k]!.credential, { committed: { studyId: studies[i % STUDIES]!, round: 0 } }, MIB + 64 * 1024, 2000);
        const r = d.refusal();
        count(r === undefined ? 'open' : `refused ${r.code}`);
        if (process.env.BENCH_VERBOSE === '1') say(`stream ${i}: ${r === undefined ? `open, ${d.bytes()} bytes` : `refused ${r.code}`}, RSS ${(rssOf(c.proc.pid) / MIB).toFixed(0)} MiB`);
      }
    })();
    const end = await Promise.race([attack.then(() => undefined), exited]);
    if (end !== undefined) throw new Error(end);
    const stalledPeak = peak;
    // A participant downloads while the attack holds (nothing here reads the rogue streams).
    const conn = connect(c);
    const started = Date.now();
    // Read in full, giving up after 30 s without the end (older code: the budget is held by the stalled streams).
    const legit = await rawDownload(conn, honest.credential, { committed: { studyId: studies[0]!, round: 0 } }, Number.MAX_SAFE_INTEGER, 30_000);
    const legitEnd = await Promise.race([legit.ended, Promise.resolve(undefined)]);
    say(`streams: ${[...outcome].map(([k, v]) => `${v} ${k}`).join(', ')}`);
    say(`coordinator RSS: ${(before / MIB).toFixed(0)} MiB before, peak ${(stalledPeak / MIB).toFixed(0)} MiB during the attack (+${((stalledPeak - before) / MIB).toFixed(0)} MiB)`);
    say(`/metrics: fedlhs_download_streams ${await metricValue(c, 'fedlhs_download_streams')}, inflight bytes ${await metricValue(c, 'fedlhs_download_inflight_bytes')}, refused per_node ${await metricValue(c, 'fedlhs_download_streams_refused_total', 'reason="per_node"')} total ${await metricValue(c, 'fedlhs_download_streams_refused_total', 'reason="total"')}`);
    say(legitEnd === undefined
      ? `a participant's download of the ${(model / MIB).toFixed(1)} MiB model did NOT finish within 30 s (${(legit.bytes() / MIB).toFixed(1)} MiB received): downloads are starved`
      : `a participant's download ended with status ${legitEnd.code} after ${Date.now() - started} ms (${(legitEnd.bytes / MIB).toFixed(1)} MiB)`);
    conn.destroy();
    for (const s of conns) s.destroy();
    for (const r of [...nodes, honest]) r.node.close();
  } finally {
    clearInterval(sampler);
    await c.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
