/**
 * Load benchmark: N protocol-level clinics in W worker processes against one coordinator.
 *
 *   npm run bench:load -- --clinics 1000 --workers 2 --rounds 3 [--heartbeat-ms 5000]
 *     [--features 100 --hidden 96] [--store sqlite|postgres] [--pin] [--cpu-prof] [--tag t] [--keep]
 *
 * --store postgres runs the coordinator on PostgreSQL: the server at FEDLHS_STORE_URL if set
 * (its database is migrated and written to), else a throwaway durable server (fsync on) started
 * from the PostgreSQL binaries @fedlhs/testing finds, stopped afterwards.
 *
 * --pin puts the coordinator on CPU 0 and the clinics on the others (taskset; design §7, for a
 * 2-core machine). --cpu-prof writes a V8 CPU profile of the coordinator next to the JSON.
 *
 * Prints figures and ratios measured in one run (never asserted) and writes them to
 * artifacts/bench/load-<store>-<N>-<hb>[-<tag>].json. The "× vs N=1000" column compares with
 * load-<store>-1000-<hb>.json when that file exists.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '@fedlhs/simulator';
import { postgresUrl, startTestPostgres, type TestPostgresServer } from '@fedlhs/testing';
import { runLoad } from '../load/orchestrator.js';
import { TABLE_HEADER, medianRoundSeconds, summary, tableRow } from '../load/report.js';

const { values } = parseArgs({
  options: {
    clinics: { type: 'string', default: '100' },
    workers: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    'heartbeat-ms': { type: 'string', default: '5000' },
    features: { type: 'string', default: '100' },
    hidden: { type: 'string', default: '96' },
    keep: { type: 'boolean', default: false },
    store: { type: 'string', default: 'sqlite' },
    pin: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    tag: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'npm run bench:load -- [--clinics 100] [--workers N] [--rounds 3] [--heartbeat-ms 5000] [--features 100] [--hidden 96] [--store sqlite|postgres] [--pin] [--cpu-prof] [--tag t] [--keep]\n' +
      '  --workers: default ceil(N / 1250)\n' +
      '  --store postgres: FEDLHS_STORE_URL if set, else a throwaway PostgreSQL server (needs PostgreSQL server binaries)\n' +
      '  --pin: coordinator on CPU 0, clinic workers on the other CPUs (taskset)\n' +
      '  --cpu-prof: V8 CPU profile of the coordinator, written to artifacts/bench/<run>.cpuprofile-dir/\n' +
      '  --tag: appended to the JSON file name (load-<store>-<N>-<hb>-<tag>.json)\n' +
      'Needs N + 1024 open files for the coordinator (raised up to the hard limit automatically).\n',
  );
  process.exit(0);
}
if (values.store !== 'sqlite' && values.store !== 'postgres') throw new Error(`--store must be sqlite or postgres, got ${JSON.stringify(values.store)}`);
const store: 'sqlite' | 'postgres' = values.store;

function positive(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

const clinics = positive('clinics', values.clinics);
const workers = values.workers === undefined ? Math.max(1, Math.ceil(clinics / 1250)) : positive('workers', values.workers);
const rounds = positive('rounds', values.rounds);
const heartbeatMs = positive('heartbeat-ms', values['heartbeat-ms']);
if (values.tag !== undefined && !/^[A-Za-z0-9_.-]+$/.test(values.tag)) throw new Error(`--tag must be letters, digits, '.', '_' or '-', got ${JSON.stringify(values.tag)}`);
const out = join(repoRoot, 'artifacts', 'bench');
const base = `load-${store}-${clinics}-${heartbeatMs}${values.tag === undefined ? '' : `-${values.tag}`}`;
const cpuProfileDir = values['cpu-prof'] ? join(out, `${base}.cpuprofile-dir`) : undefined;
const dataDir = mkdtempSync(join(tmpdir(), 'fedlhs-load-'));
const started = new Date().toISOString();
// The tree moves while benchmarks run: record which commit the figures are for.
const gitHead = (() => {
  try {
    return execFileSync('git', ['-C', repoRoot, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
})();
// The coordinator runs from its dist/, which may be newer than HEAD (uncommitted work): say when
// it was last built (the newest file in it).
const coordinatorBuiltAt = (() => {
  try {
    const dist = join(repoRoot, 'coordinator', 'dist');
    const newest = readdirSync(dist, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.js'))
      .reduce((t, f) => Math.max(t, statSync(join(dist, f)).mtimeMs), 0);
    return new Date(newest).toISOString();
  } catch {
    return 'unknown';
  }
})();
let server: TestPostgresServer | undefined;
let storeUrl: string | undefined;
if (store === 'postgres') {
  storeUrl = process.env.FEDLHS_STORE_URL;
  if (!storeUrl) {
    // Durable: fsync and synchronous commit on, as in production, unlike the test servers.
    server = await startTestPostgres({ durable: true });
    storeUrl = postgresUrl(server.connection);
    process.stderr.write(`started a throwaway PostgreSQL ${server.version} server in ${server.dir}\n`);
  }
}
try {
  const r = await runLoad({
    store, ...(storeUrl === undefined ? {} : { storeUrl }),
    clinics, workers, rounds, heartbeatMs, dataDir, features: positive('features', values.features), hidden: positive('hidden', values.hidden),
    pin: values.pin, ...(cpuProfileDir === undefined ? {} : { cpuProfileDir }),
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  // Growth: CPU per clinic per round against the N = 1000 run of the same store and heartbeat.
  const referenceFile = join(out, `load-${store}-1000-${heartbeatMs}.json`);
  const cpuAt1000 = existsSync(referenceFile) ? (JSON.parse(readFileSync(referenceFile, 'utf8')) as { cpuMsPerClinicRound?: number }).cpuMsPerClinicRound : undefined;
  process.stdout.write(`\ngit HEAD ${gitHead} (coordinator dist built ${coordinatorBuiltAt}), store ${store}\n${summary(r)}\n\n${TABLE_HEADER}\n${tableRow(r, clinics === 1000 ? r.cpuMsPerClinicRound : cpuAt1000)}\n`);
  mkdirSync(out, { recursive: true });
  const file = join(out, `${base}.json`);
  const { detail: _detail, commits, nodeIds: _nodeIds, models: _models, ...figures } = r;
  writeFileSync(file, `${JSON.stringify({ started, machine: { cpus: cpus().length }, ...figures, medianRoundSeconds: medianRoundSeconds(r), commits, gitHead, coordinatorBuiltAt }, null, 2)}\n`);
  process.stdout.write(`\nwrote ${file}\n`);
} finally {
  await server?.stop();
  if (!values.keep) rmSync(dataDir, { recursive: true, force: true });
  else process.stdout.write(`coordinator data kept in ${dataDir}\n`);
}
