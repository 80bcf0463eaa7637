/**
 * Load benchmark: N protocol-level clinics in W worker processes against one coordinator.
 *
 *   npm run bench:load -- --clinics 1000 --workers 2 --rounds 3 [--heartbeat-ms 5000]
 *     [--features 100 --hidden 96] [--store sqlite|postgres] [--keep]
 *
 * --store postgres runs the coordinator on PostgreSQL: the server at FEDLHS_STORE_URL if set
 * (its database is migrated and written to), else a throwaway durable server (fsync on) started
 * from the PostgreSQL binaries @fedlhs/testing finds, stopped afterwards.
 *
 * Prints figures and ratios measured in one run (never asserted) and writes them to
 * artifacts/bench/load-<store>-<N>-<hb>.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'npm run bench:load -- [--clinics 100] [--workers N] [--rounds 3] [--heartbeat-ms 5000] [--features 100] [--hidden 96] [--store sqlite|postgres] [--keep]\n' +
      '  --store postgres: FEDLHS_STORE_URL if set, else a throwaway PostgreSQL server (needs PostgreSQL server binaries)\n',
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
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`\ngit HEAD ${gitHead}, store ${store}\n${summary(r)}\n\n${TABLE_HEADER}\n${tableRow(r)}\n`);
  const out = join(repoRoot, 'artifacts', 'bench');
  mkdirSync(out, { recursive: true });
  const file = join(out, `load-${store}-${clinics}-${heartbeatMs}.json`);
  const { detail: _detail, commits, ...figures } = r;
  writeFileSync(file, `${JSON.stringify({ started, machine: { cpus: (await import('node:os')).cpus().length, loadavg: (await import('node:os')).loadavg() }, ...figures, medianRoundSeconds: medianRoundSeconds(r), commits, nodeIds: undefined, gitHead }, null, 2)}\n`);
  process.stdout.write(`\nwrote ${file}\n`);
} finally {
  await server?.stop();
  if (!values.keep) rmSync(dataDir, { recursive: true, force: true });
  else process.stdout.write(`coordinator data kept in ${dataDir}\n`);
}
