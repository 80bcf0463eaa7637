/**
 * Readiness-flood attack (issue 11): several enrolled rogue nodes send readiness messages with
 * large details, for many study ids, as fast as the transport takes them, reconnecting whenever
 * the coordinator ends their session, while an operator polls GET /api/v1/status. Prints the
 * coordinator's peak RSS (VmHWM), the status API's latencies and how the sessions ended.
 *
 *   npx tsc -b tests && node tests/dist/bench/attack-readiness.js [main.js] [--nodes 4] [--seconds 10] [--detail-chars 1048576] [--studies 64]
 *
 * main.js: the coordinator build to attack (default this checkout's; the code before the fix:
 * /work/before/coordinator/dist/main.js). The attack is bounded (nodes × studies × detail at
 * most is what an unbounded coordinator keeps) so that it cannot take the machine down.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { coordinatorMain, startStudy } from '@fedlhs/simulator';
import { learnableManifest } from '@fedlhs/testing';
import { enrolOverProtocol } from '../rogue-node.js';
import { RogueSession, startCoordinatorFrom } from '../rogue-session.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const main = args[0] !== undefined && !args[0].startsWith('--') ? args[0] : coordinatorMain;
const NODES = opt('nodes', 4);
const SECONDS = opt('seconds', 10);
const DETAIL = opt('detail-chars', 1024 * 1024);
const STUDIES = opt('studies', 64);
const MiB = 1048576;

/** Peak and current resident set size of a process, from /proc (Linux). */
function memory(pid: number): { peak: number; now: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { peak: kib('VmHWM'), now: kib('VmRSS') };
  } catch {
    return { peak: 0, now: 0 };
  }
}

const dir = mkdtempSync(join(tmpdir(), 'fedlhs-attack-readiness-'));
const c = await startCoordinatorFrom(main, { dataDir: join(dir, 'coordinator'), env: { FEDLHS_LOG_LEVEL: 'info' } });
try {
  const study = await startStudy(c, learnableManifest({ name: 'attacked', min: 2, max: 2, quorum: 2 }));
  const creds = [];
  for (let n = 0; n < NODES; n++) {
    const token = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: `rogue-${n}`, ttlSeconds: 600 })).body.token;
    creds.push(await enrolOverProtocol(c.address, token, `rogue-${n}`));
  }
  const baseline = memory(c.proc.pid).now;
  const until = Date.now() + SECONDS * 1000;
  const detail = 'D'.repeat(Math.max(0, DETAIL - 16));
  const endings: Record<string, number> = {};
  let sent = 0;
  let sessions = 0;

  const attacker = async (credential: string): Promise<void> => {
    while (Date.now() < until) {
      const s = new RogueSession(c.address, credential);
      sessions++;
      const welcomed = await Promise.race([s.welcomed.then(() => true), s.ended.then(() => false)]);
      if (welcomed) {
        sent += await s.flood((i) => ({
          readiness: { studyId: i % 2 === 0 ? study.id : `fake-study-${i % STUDIES}`, manifestSha256: study.manifestSha256, readiness: i % 4 < 2 ? 'READINESS_READY' : 'READINESS_DATA_ERROR', detail: `${i} ${detail}`, trainingRows: 1 },
        }), { ms: until - Date.now() });
      }
      s.close();
      const end = await s.ended;
      const name = grpc.status[end.code] ?? String(end.code);
      endings[name] = (endings[name] ?? 0) + 1;
    }
  };

  const latencies: number[] = [];
  let statusFailures = 0;
  let largestStatus = 0;
  const poller = async (): Promise<void> => {
    while (Date.now() < until) {
      const t0 = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${c.adminPort}/api/v1/status`, { headers: { authorization: `Bearer ${c.adminToken}` }, signal: AbortSignal.timeout(30_000) });
        const body = await res.arrayBuffer();
        largestStatus = Math.max(largestStatus, body.byteLength);
        if (!res.ok) statusFailures++;
      } catch {
        statusFailures++;
      }
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  await Promise.all([...creds.map((x) => attacker(x.nodeCredential)), poller()]);
  const mem = memory(c.proc.pid);
  const alive = mem.now > 0;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
  console.log(JSON.stringify({
    coordinator: main, nodes: NODES, seconds: SECONDS, detailChars: DETAIL, studyIds: STUDIES,
    messagesSent: sent, sessionsOpened: sessions, sessionEndings: endings,
    baselineRssMiB: Math.round(baseline / MiB), peakRssMiB: Math.round(mem.peak / MiB), endRssMiB: Math.round(mem.now / MiB), coordinatorAlive: alive,
    status: { polls: latencies.length, failures: statusFailures, p50Ms: pct(0.5), maxMs: Math.round(latencies.at(-1) ?? 0), largestBodyKiB: Math.round(largestStatus / 1024) },
    refusedLogLines: { invalid: c.proc.events('session.message_invalid').length, rateLimited: c.proc.events('session.rate_limited').length, unknownStudy: c.proc.events('session.readiness_refused').length },
  }, null, 1));
} finally {
  await c.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
