/**
 * Secure aggregation beside plain FedAvg over real processes (issue 14, "Performance of
 * privacy"): one coordinator process and N `fedlhs-agent run` processes (the built
 * node-agent/dist/main.js, enrolled with `fedlhs-agent enrol`, flat-table CSV exports from the
 * learnable generator, auto-approve), and the same study run twice on them in one invocation:
 * plain FedAvg, then with privacy.secureAggregation (SecAgg+ v2, threshold majority).
 *
 *   npm run bench:secagg -- --agents --clinics 10,50 [--rounds 3] [--features 100] [--hidden 1000]
 *     [--rows 300] [--value-bits 16] [--neighbours k] [--clip-range 1] [--order plain-first|secagg-first] [--tag t]
 *
 * Round time is the coordinator's round record (start to commit, evaluation included), median
 * over rounds 2..; bytes are the payloads the agents logged (model downloads, updates, stage
 * answers; not the stage tasks coming down nor protobuf framing); CPU from /proc of the
 * coordinator and of every agent. Ratios are measured in one run on a shared machine, never
 * asserted. Writes artifacts/bench/secagg-agents-<N>[-<tag>].json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { writeLearnableCsv, type ManagedProcess } from '@fedlhs/testing';
import { enrolAgent, repoRoot, startAgent, startCoordinator, startStudy, type AgentOptions, type CoordinatorHandle, type StudyDetail } from '@fedlhs/simulator';
import { loadManifest, loadModelParameters } from '../load/model.js';
import { studyEnded } from '../load/orchestrator.js';
import { cpuSeconds, rssMiB } from '../load/probes.js';
import { agentBytes, agentTable, laterRounds, median, roundSteps, warnings, type AgentModeFigures } from './secagg-agents-figures.js';

interface Options {
  sizes: number[];
  rounds: number;
  features: number;
  hidden: number;
  rows: number;
  valueBits: number;
  neighbours: number | undefined;
  clipRange: number;
  order: 'plain-first' | 'secagg-first';
  heartbeatMs: number;
  enrolConcurrency: number;
  warmupRounds: number;
  /** Write each mode's study lines of the agents and the coordinator to artifacts/bench (JSONL). */
  keepLogs: boolean;
  tag: string | undefined;
}

function positive(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

function nonNegative(name: string, text: string | undefined): number {
  return text === '0' ? 0 : positive(name, text);
}

function parse(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      clinics: { type: 'string', default: '10,50' }, rounds: { type: 'string', default: '3' },
      features: { type: 'string', default: '100' }, hidden: { type: 'string', default: '1000' }, rows: { type: 'string', default: '300' },
      'value-bits': { type: 'string', default: '16' }, neighbours: { type: 'string' }, 'clip-range': { type: 'string', default: '1' },
      order: { type: 'string', default: 'plain-first' }, 'heartbeat-ms': { type: 'string', default: '5000' },
      'enrol-concurrency': { type: 'string', default: '4' }, 'warmup-rounds': { type: 'string', default: '1' }, 'keep-logs': { type: 'boolean', default: false }, tag: { type: 'string' }, help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('npm run bench:secagg -- --agents [--clinics 10,50] [--rounds 3] [--features 100] [--hidden 1000] [--rows 300] [--value-bits 16] [--neighbours k] [--clip-range 1] [--order plain-first|secagg-first] [--heartbeat-ms 5000] [--enrol-concurrency 4] [--warmup-rounds 1] [--keep-logs] [--tag t]\n' +
      '  --warmup-rounds: a plain study run first and not reported (0: none), so that neither mode pays the agents\' model-runtime start-up\n');
    return undefined;
  }
  const sizes = String(values.clinics).split(',').map((x) => positive('clinics', x.trim()));
  for (const n of sizes) if (n < 4) throw new Error(`--clinics: ${n} clinics are too few for secure aggregation (neighbours must be below clients.min)`);
  const clipRange = Number(values['clip-range']);
  if (!(clipRange > 0 && clipRange <= 1e6)) throw new Error(`--clip-range must be a number in (0, 1e6], got ${JSON.stringify(values['clip-range'])}`);
  if (values.order !== 'plain-first' && values.order !== 'secagg-first') throw new Error(`--order must be plain-first or secagg-first, got ${JSON.stringify(values.order)}`);
  if (values.tag !== undefined && !/^[A-Za-z0-9_.-]+$/.test(values.tag)) throw new Error(`--tag must be letters, digits, '.', '_' or '-', got ${JSON.stringify(values.tag)}`);
  return {
    sizes, rounds: positive('rounds', values.rounds), features: positive('features', values.features), hidden: positive('hidden', values.hidden),
    rows: positive('rows', values.rows), valueBits: positive('value-bits', values['value-bits']),
    neighbours: values.neighbours === undefined ? undefined : positive('neighbours', values.neighbours), clipRange, order: values.order,
    heartbeatMs: positive('heartbeat-ms', values['heartbeat-ms']), enrolConcurrency: positive('enrol-concurrency', values['enrol-concurrency']), tag: values.tag,
    warmupRounds: nonNegative('warmup-rounds', values['warmup-rounds']), keepLogs: values['keep-logs'],
  };
}

interface Cluster {
  c: CoordinatorHandle;
  agents: { options: AgentOptions; proc: ManagedProcess }[];
}

const log = (line: string): void => void process.stderr.write(`[secagg-agents ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** Runs `job(i)` for i < count, at most `concurrency` at a time (enrolment starts a Node process each). */
async function pool<T>(count: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await job(i);
    }
  }));
  return out;
}

async function startCluster(dir: string, n: number, o: Options): Promise<Cluster> {
  // Info level everywhere: debug lines from 50 agents would cost CPU the rounds need.
  const c = await startCoordinator({ dataDir: join(dir, 'coordinator'), heartbeatIntervalMs: o.heartbeatMs, selectionGraceMs: 300, env: { FEDLHS_LOG_LEVEL: 'info' } });
  const cluster: Cluster = { c, agents: [] };
  try {
    const t0 = performance.now();
    const options = await pool(n, o.enrolConcurrency, async (i) => {
      const name = `clinic-${String(i).padStart(2, '0')}`;
      const home = join(dir, name);
      mkdirSync(home, { recursive: true });
      writeLearnableCsv(join(home, 'data.csv'), { rows: o.rows, seed: 500 + i, features: o.features });
      const a: AgentOptions = { name, stateDir: join(home, 'state'), dataPath: join(home, 'data.csv'), coordinator: c.address, autoApprove: true, env: { FEDLHS_LOG_LEVEL: 'info' } };
      await enrolAgent(c, a);
      return a;
    });
    log(`N=${n}: enrolled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const a of options) cluster.agents.push({ options: a, proc: startAgent(a) });
    await Promise.all(cluster.agents.map((a) => a.proc.waitForEvent('agent.connected', undefined, 60_000 + 3000 * n)));
    log(`N=${n}: ${n} agents connected after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return cluster;
  } catch (err) {
    await stopCluster(cluster);
    throw err;
  }
}

async function stopCluster(cluster: Cluster): Promise<void> {
  await Promise.all(cluster.agents.map((a) => a.proc.stop()));
  await cluster.c.stop();
}

type Timeline = { round: number; attempt: number; state: string; durationMs: number | null; accepted: number; reason: string | null };

async function runMode(cluster: Cluster, n: number, o: Options, secagg: { neighbours: number } | undefined, label?: string): Promise<AgentModeFigures> {
  const mode = label ?? (secagg === undefined ? 'plain' : 'secagg');
  const { c, agents } = cluster;
  const base = loadManifest({ clinics: n, rounds: o.rounds, features: o.features, hidden: o.hidden });
  const manifest = {
    ...base, name: `secagg-agents-${n}-${mode}`, description: `secagg bench over real agents: ${mode}`,
    ...(secagg === undefined ? {} : { privacy: { secureAggregation: { neighbours: secagg.neighbours, graph: 'random-regular', valueBits: o.valueBits, clipRange: o.clipRange } } }),
  };
  const marks = { coordinator: c.proc.lines.length, agents: agents.map((a) => a.proc.lines.length) };
  const loadStart = loadavg();
  const cpu0 = cpuSeconds(c.proc.pid);
  const agentCpu0 = agents.reduce((s, a) => s + cpuSeconds(a.proc.pid), 0);
  const t0 = performance.now();
  const study = await startStudy(c, manifest);
  log(`N=${n} ${mode}: study ${study.id} started`);
  await studyEnded(c, study.id, 300_000 + 30_000 * n * o.rounds);
  const studySeconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(c.proc.pid);
  const agentCpu1 = agents.reduce((s, a) => s + cpuSeconds(a.proc.pid), 0);
  const loadEnd = loadavg();
  // Every agent fetches the final model once the study ends: after that line its study lines are all in.
  let missingFinal = 0;
  await Promise.all(agents.map((a) => a.proc.waitFor((l) => l.studyId === study.id && (l.event === 'final_model.saved' || l.event === 'final_model.failed'), 60_000, `final model of ${study.id}`).catch(() => void missingFinal++)));
  const detail = (await c.admin<StudyDetail & { timeline: Timeline[]; reason?: string }>('GET', `/api/v1/studies/${study.id}`)).body;
  const committed = detail.timeline.filter((x) => x.round >= 1 && x.state === 'COMMITTED');
  const roundSeconds = committed.map((x) => (x.durationMs ?? Number.NaN) / 1000);
  const bytes = agentBytes(agents.map((a) => a.proc.lines), study.id, n, o.rounds);
  const agentWarnings: Record<string, number> = {};
  agents.forEach((a, i) => {
    for (const [k, v] of Object.entries(warnings(a.proc.lines, study.id, marks.agents[i]!))) agentWarnings[k] = (agentWarnings[k] ?? 0) + v;
  });
  const f: AgentModeFigures = {
    studyId: study.id, studyState: detail.state, committed: committed.length, accepted: committed.map((x) => x.accepted),
    failures: [
      ...(detail.state === 'COMPLETED' ? [] : [`study ${detail.state}: ${String(detail.reason ?? 'no reason given')}`]),
      ...detail.timeline.filter((x) => x.state === 'FAILED').map((x) => `round ${x.round} attempt ${x.attempt}: ${x.reason ?? 'no reason given'}`),
    ],
    roundSeconds, medianRoundSeconds: median(laterRounds(roundSeconds)), studySeconds,
    upBytes: bytes.up, downBytes: bytes.down, byCategory: bytes.byCategory,
    coordinatorCpuMsPerClinicRound: ((cpu1 - cpu0) * 1000) / n / o.rounds,
    agentCpuMsPerClinicRound: ((agentCpu1 - agentCpu0) * 1000) / n / o.rounds,
    coordinatorRssMiB: rssMiB(c.proc.pid).current,
    steps: roundSteps(c.proc.lines.slice(marks.coordinator), study.id),
    agentWarnings, coordinatorWarnings: warnings(c.proc.lines, study.id, marks.coordinator),
    agentsWithoutFinalLine: missingFinal, loadAverage: { start: loadStart, end: loadEnd },
  };
  if (o.keepLogs) {
    const lines = [
      ...c.proc.lines.slice(marks.coordinator).filter((l) => l.studyId === study.id).map((l) => ({ process: 'coordinator', ...l })),
      ...agents.flatMap((a, i) => a.proc.lines.slice(marks.agents[i]).filter((l) => l.studyId === study.id).map((l) => ({ process: a.options.name, ...l }))),
    ];
    writeFileSync(join(repoRoot, 'artifacts', 'bench', `secagg-agents-${n}-${mode}${o.tag === undefined ? '' : `-${o.tag}`}.lines.jsonl`), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  }
  log(`N=${n} ${mode}: ${detail.state} in ${studySeconds.toFixed(1)} s, rounds ${roundSeconds.map((s) => s.toFixed(2)).join('/')} s${f.failures.length === 0 ? '' : `; FAILURES: ${f.failures.join('; ')}`}`);
  return f;
}

/** The `--agents` mode of bench:secagg (argv without `--agents`). */
export async function runAgentsBench(argv: string[]): Promise<void> {
  const o = parse(argv);
  if (o === undefined) return;
  const parameters = loadModelParameters({ features: o.features, hidden: o.hidden });
  const out = join(repoRoot, 'artifacts', 'bench');
  mkdirSync(out, { recursive: true });
  const started = new Date().toISOString();
  for (const n of o.sizes) {
    const neighbours = o.neighbours ?? (n <= 10 ? n - 2 : 10);
    if (neighbours >= n) throw new Error(`--neighbours ${neighbours} must be below N = ${n}`);
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-secagg-agents-'));
    const cluster = await startCluster(dir, n, o);
    let plain: AgentModeFigures;
    let secure: AgentModeFigures;
    try {
      // The first study of a run pays each agent's model-runtime start-up (~90 ms CPU per clinic-round here).
      if (o.warmupRounds > 0) await runMode(cluster, n, { ...o, rounds: o.warmupRounds }, undefined, 'warmup');
      if (o.order === 'plain-first') {
        plain = await runMode(cluster, n, o, undefined);
        secure = await runMode(cluster, n, o, { neighbours });
      } else {
        secure = await runMode(cluster, n, o, { neighbours });
        plain = await runMode(cluster, n, o, undefined);
      }
    } finally {
      await stopCluster(cluster);
      rmSync(dir, { recursive: true, force: true });
    }
    const shape = {
      clinics: n, parameters, features: o.features, hidden: o.hidden, rowsPerClinic: o.rows, rounds: o.rounds, neighbours, threshold: 'majority', valueBits: o.valueBits,
      clipRange: o.clipRange, order: o.order, heartbeatMs: o.heartbeatMs, warmupRounds: o.warmupRounds,
    };
    process.stdout.write(`\n${agentTable(shape, plain, secure)}\n`);
    const file = join(out, `secagg-agents-${n}${o.tag === undefined ? '' : `-${o.tag}`}.json`);
    writeFileSync(file, `${JSON.stringify({
      started, machine: { cpus: cpus().length, loadAverage: loadavg() }, ...shape, plain, secagg: secure,
      ratio: {
        bytes: (secure.upBytes + secure.downBytes) / (plain.upBytes + plain.downBytes), up: secure.upBytes / plain.upBytes, down: secure.downBytes / plain.downBytes,
        roundTime: secure.medianRoundSeconds / plain.medianRoundSeconds, coordinatorCpu: secure.coordinatorCpuMsPerClinicRound / plain.coordinatorCpuMsPerClinicRound,
        agentCpu: secure.agentCpuMsPerClinicRound / plain.agentCpuMsPerClinicRound,
      },
    }, null, 2)}\n`);
    process.stdout.write(`wrote ${file}\n`);
    // A round without every clinic compares unlike things: the figures are kept, the run fails.
    const wrong = [plain, secure].flatMap((f) => [...f.failures, ...(f.committed === o.rounds && f.accepted.every((a) => a === n) ? [] : [`${f.studyId}: ${f.committed} of ${o.rounds} rounds committed, accepted ${f.accepted.join(',')} of ${n}`])]);
    if (wrong.length > 0) throw new Error(`N=${n}: the comparison is not like for like (figures in ${file}): ${wrong.join('; ')}`);
  }
}
