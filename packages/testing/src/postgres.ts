import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, appendFileSync, chmodSync, chownSync, constants, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { once } from 'node:events';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

/**
 * A throwaway PostgreSQL server for tests (design §3): Debian's binaries (or `FEDLHS_PG_BIN`'s),
 * run as the `postgres` user through `runuser` when we are root, in a temp dir under /tmp, on a
 * Unix socket only, with fsync off. The vitest globalSetup (`tests/setup/postgres.ts`) runs a
 * broker that starts one server per test run on the first request, so runs without a PostgreSQL
 * suite never pay for it. A suite checks {@link testPostgresUnavailable} once, then takes a schema
 * ({@link createTestSchema}) or a database ({@link createTestDatabase}) of its own.
 */

/** Where a pg client connects; passes as-is to `new pg.Client(...)` / `new pg.Pool(...)`. */
export interface PostgresConnection {
  /** Host name, or the directory of the Unix socket. */
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** Server options sent at connect, e.g. `-c search_path=<schema>`. */
  options?: string;
}

export type TestPostgresErrorCode = 'POSTGRES_UNAVAILABLE' | 'POSTGRES_START_FAILED' | 'POSTGRES_NOT_PROVIDED';

/** Why a test could not have PostgreSQL; `POSTGRES_UNAVAILABLE` says what to install. */
export class TestPostgresError extends Error {
  override readonly name = 'TestPostgresError';
  constructor(
    readonly code: TestPostgresErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Names what to install; ends every `POSTGRES_UNAVAILABLE` message. */
export const POSTGRES_INSTALL_HINT =
  "Install Debian's postgresql package (apt-get install postgresql) or set FEDLHS_PG_BIN to a directory with initdb, pg_ctl and postgres (PostgreSQL 13 or later). FEDLHS_TEST_POSTGRES_URL=postgres://... uses a server you run instead.";

const TOOLS = ['initdb', 'pg_ctl', 'postgres'] as const;
const SUPERUSER = 'fedlhs';
const execFileAsync = promisify(execFile);

const isExecutable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
const missingTools = (dir: string): string[] => TOOLS.filter((t) => !isExecutable(join(dir, t)));

/**
 * The directory holding initdb, pg_ctl and postgres: `FEDLHS_PG_BIN`, else the highest
 * `<debianRoot>/<version>/bin`, else the directory `initdb` on PATH resolves to.
 */
export function findPostgresBinaries(env: NodeJS.ProcessEnv = process.env, debianRoot = '/usr/lib/postgresql'): string {
  const explicit = env.FEDLHS_PG_BIN;
  if (explicit) {
    const missing = missingTools(explicit);
    if (missing.length === 0) return explicit;
    throw new TestPostgresError('POSTGRES_UNAVAILABLE', `This suite needs PostgreSQL, and FEDLHS_PG_BIN=${explicit} has no ${missing.join(', ')}. ${POSTGRES_INSTALL_HINT}`);
  }
  let versions: string[] = [];
  try {
    versions = readdirSync(debianRoot).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // no Debian packages
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const dir = join(debianRoot, v, 'bin');
    if (missingTools(dir).length === 0) return dir;
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (!isExecutable(join(dir, 'initdb'))) continue;
    const real = dirname(realpathSync(join(dir, 'initdb')));
    if (missingTools(real).length === 0) return real;
  }
  throw new TestPostgresError('POSTGRES_UNAVAILABLE', `This suite needs PostgreSQL, and no PostgreSQL server binaries were found (looked in ${debianRoot}/*/bin and on PATH). ${POSTGRES_INSTALL_HINT}`);
}

/** A server started by {@link startTestPostgres}; `connection` is the superuser on database `postgres`. */
export interface TestPostgresServer {
  readonly connection: PostgresConnection;
  /** Temp directory with `data/`, `server.log` and the socket; removed by `stop()`. */
  readonly dir: string;
  readonly version: number;
  /** Stops the server (`-m immediate`) and removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

export interface StartTestPostgresOptions {
  /** Reads `FEDLHS_PG_BIN` and `PATH` from here. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Keep fsync, synchronous commit and full-page writes on, e.g. for benchmarks. Default false. */
  durable?: boolean;
}

/** As root, the unprivileged account that runs the server: `postgres`, else `nobody`. */
function serverAccount(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entries = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  for (const name of ['postgres', 'nobody']) {
    const e = entries.find((f) => f[0] === name);
    if (e) return { name, uid: Number(e[2]), gid: Number(e[3]) };
  }
  throw new TestPostgresError('POSTGRES_START_FAILED', 'Running as root, and neither a postgres nor a nobody user exists to run the PostgreSQL server as.');
}

/** Starts a throwaway server. Ready for queries when the promise resolves. */
export async function startTestPostgres(options: StartTestPostgresOptions = {}): Promise<TestPostgresServer> {
  const bin = findPostgresBinaries(options.env ?? process.env);
  const account = serverAccount();
  const runAs = (tool: string, args: string[]): [string, string[]] =>
    account ? ['runuser', ['-u', account.name, '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  const versionText = (await execFileAsync(join(bin, 'postgres'), ['--version'])).stdout;
  const version = Number(/(\d+)(\.\d+)?/.exec(versionText)?.[1]);
  if (!(version >= 13)) {
    throw new TestPostgresError('POSTGRES_UNAVAILABLE', `This suite needs PostgreSQL 13 or later; ${bin} has ${versionText.trim()}. ${POSTGRES_INSTALL_HINT}`);
  }
  // The socket path must stay under 108 bytes, so /tmp rather than a possibly deep TMPDIR.
  const dir = mkdtempSync('/tmp/fedlhs-pg-');
  chmodSync(dir, 0o755);
  if (account) chownSync(dir, account.uid, account.gid);
  const data = join(dir, 'data');
  const run = async (what: string, tool: string, args: string[]): Promise<void> => {
    const [file, argv] = runAs(tool, args);
    try {
      await execFileAsync(file, argv, { cwd: dir });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      let log = '';
      try {
        log = readFileSync(join(dir, 'server.log'), 'utf8').split('\n').slice(-20).join('\n');
      } catch {
        // no log yet
      }
      throw new TestPostgresError('POSTGRES_START_FAILED', `${what} failed for the test PostgreSQL server in ${dir}: ${(e.stderr || e.stdout || String(err)).trim()}${log ? `\nserver.log:\n${log}` : ''}`, { cause: err });
    }
  };
  const stopSync = (): void => {
    const [file, argv] = runAs('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    spawnSync(file, argv, { cwd: '/', stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  // Backstop for a runner that exits without its teardown; `stop()` removes it.
  process.once('exit', stopSync);
  try {
    await run('initdb', 'initdb', ['-D', data, '-U', SUPERUSER, '--auth=trust', '--no-sync', '-E', 'UTF8', '--no-locale']);
    const conf = [`listen_addresses = ''`, `unix_socket_directories = '${dir}'`];
    if (!options.durable) conf.push('fsync = off', 'synchronous_commit = off', 'full_page_writes = off');
    appendFileSync(join(data, 'postgresql.conf'), `\n# fedlhs test server\n${conf.join('\n')}\n`);
    await run('pg_ctl start', 'pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '300', 'start']);
  } catch (err) {
    process.removeListener('exit', stopSync);
    stopSync();
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    connection: { host: dir, port: 5432, user: SUPERUSER, database: 'postgres' },
    dir,
    version,
    stop: () =>
      (stopped ??= (async () => {
        process.removeListener('exit', stopSync);
        try {
          await run('pg_ctl stop', 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      })()),
  };
}

/**
 * A `postgres://` URL for `connection`, e.g. for a child process's `--store-url`. A socket
 * directory goes in `?host=` with the user beside it (`postgres:///db?host=/tmp/x&user=u`), since
 * a URL cannot carry a user without a host name.
 */
export function postgresUrl(connection: PostgresConnection): string {
  const q = new URLSearchParams();
  const socket = connection.host.startsWith('/');
  let authority = '';
  if (socket) {
    q.set('host', connection.host);
    q.set('user', connection.user);
    if (connection.password) q.set('password', connection.password);
    if (connection.port !== 5432) q.set('port', String(connection.port));
  } else {
    const password = connection.password ? `:${encodeURIComponent(connection.password)}` : '';
    authority = `${encodeURIComponent(connection.user)}${password}@${connection.host}:${connection.port}`;
  }
  if (connection.options) q.set('options', connection.options);
  const qs = q.toString().replace(/\+/g, '%20');
  return `postgres://${authority}/${encodeURIComponent(connection.database)}${qs ? `?${qs}` : ''}`;
}

function parsePostgresUrl(url: string): PostgresConnection {
  // `postgres://user@/db?host=/dir` is valid for libpq but not for WHATWG URL: give it a host name.
  const u = new URL(url.replace(/^([a-z]+:\/\/[^/@]*@)\//i, '$1localhost/'));
  const p = u.searchParams;
  const c: PostgresConnection = {
    host: p.get('host') ?? (u.hostname || 'localhost'),
    port: Number(p.get('port') ?? (u.port || 5432)),
    user: decodeURIComponent(u.username) || (p.get('user') ?? 'postgres'),
    database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
  };
  const password = u.password ? decodeURIComponent(u.password) : p.get('password');
  if (password) c.password = password;
  return c;
}

/** Env var the globalSetup sets for test workers: the broker's Unix socket. */
export const POSTGRES_BROKER_ENV = 'FEDLHS_TEST_POSTGRES_BROKER';

/** Owns the run's server in the vitest main process; starts it on the first worker's request. */
export interface PostgresBroker {
  /** Variables for the test workers' environment. */
  readonly env: Record<string, string>;
  /** Stops the server if one was started and closes the broker. */
  close(): Promise<void>;
}

type BrokerReply = { ok: true; connection: PostgresConnection } | { ok: false; code: TestPostgresErrorCode; message: string };

/** Starts the broker (not the server). Used by the vitest globalSetup. */
export async function createPostgresBroker(options: StartTestPostgresOptions = {}): Promise<PostgresBroker> {
  if ((options.env ?? process.env).FEDLHS_TEST_POSTGRES_URL) return { env: {}, close: async () => {} };
  const dir = mkdtempSync('/tmp/fedlhs-pgbroker-');
  const socket = join(dir, 'broker.sock');
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir); // a runner interrupted before its teardown
  let server: Promise<TestPostgresServer> | undefined;
  const http = createServer((req, res) => {
    // One start per run, failures included: every suite then reports the same reason at once.
    server ??= startTestPostgres(options);
    server.then(
      (s): BrokerReply => ({ ok: true, connection: s.connection }),
      (err: unknown): BrokerReply => ({
        ok: false,
        code: err instanceof TestPostgresError ? err.code : 'POSTGRES_START_FAILED',
        message: err instanceof Error ? err.message : String(err),
      }),
    ).then((reply) => res.end(JSON.stringify(reply)));
    req.resume();
  });
  http.listen(socket);
  await once(http, 'listening');
  return {
    env: { [POSTGRES_BROKER_ENV]: socket },
    close: async () => {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      try {
        await (await server?.catch(() => undefined))?.stop();
      } finally {
        process.removeListener('exit', removeDir);
        removeDir();
      }
    },
  };
}

const acquired = new Map<string, Promise<PostgresConnection>>();

/**
 * The run's shared server, started on first use: `FEDLHS_TEST_POSTGRES_URL` if set, else the
 * globalSetup's broker. Rejects with a {@link TestPostgresError} naming what to install when
 * there are no PostgreSQL binaries.
 */
export function acquireTestPostgres(env: NodeJS.ProcessEnv = process.env): Promise<PostgresConnection> {
  const url = env.FEDLHS_TEST_POSTGRES_URL;
  if (url) return Promise.resolve(parsePostgresUrl(url));
  const socket = env[POSTGRES_BROKER_ENV];
  if (!socket) {
    return Promise.reject(new TestPostgresError('POSTGRES_NOT_PROVIDED', `This suite needs PostgreSQL and ${POSTGRES_BROKER_ENV} is not set: run it through the root vitest.config.ts (globalSetup tests/setup/postgres.ts) or set FEDLHS_TEST_POSTGRES_URL.`));
  }
  let p = acquired.get(socket);
  if (!p) {
    p = new Promise<PostgresConnection>((resolve, reject) => {
      const req = request({ socketPath: socket, path: '/server', method: 'POST', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const reply = JSON.parse(Buffer.concat(chunks).toString('utf8')) as BrokerReply;
          if (reply.ok) resolve(reply.connection);
          else reject(new TestPostgresError(reply.code, reply.message));
        });
        res.on('error', reject);
      });
      req.on('error', (err) => reject(new TestPostgresError('POSTGRES_NOT_PROVIDED', `The test PostgreSQL broker at ${socket} did not answer: ${err.message}`, { cause: err })));
      req.end();
    });
    acquired.set(socket, p);
  }
  return p;
}

/**
 * Undefined once the run's server is up (starting it if needed), else the reason there is none: a
 * {@link TestPostgresError} whose message names what to install. A suite needing PostgreSQL awaits
 * this at top level and, when it is set, registers one test that throws it instead of its body:
 * that fails visibly where a throwing `beforeAll` would report its tests as skipped.
 */
export async function testPostgresUnavailable(env: NodeJS.ProcessEnv = process.env): Promise<TestPostgresError | undefined> {
  try {
    await acquireTestPostgres(env);
    return undefined;
  } catch (err) {
    if (err instanceof TestPostgresError) return err;
    throw err;
  }
}

let counter = 0;
const uniqueName = (prefix: string): string => {
  if (!/^[a-z_][a-z0-9_]{0,30}$/.test(prefix)) throw new Error(`test PostgreSQL name prefix must match [a-z_][a-z0-9_]{0,30}, got ${JSON.stringify(prefix)}`);
  return `${prefix}_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
};

async function admin(base: PostgresConnection, sql: string): Promise<void> {
  const client = new pg.Client(base);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A schema or database of one's own on the run's server. */
export interface TestPostgresScope {
  /** The schema or database name. */
  readonly name: string;
  /** Connects into the scope: `search_path` set to the schema, or the database. */
  readonly connection: PostgresConnection;
  /** The same as a URL. */
  readonly url: string;
  /** Drops the scope; close pools into it first. Idempotent. */
  drop(): Promise<void>;
}

const scope = (name: string, connection: PostgresConnection, dropSql: string, base: PostgresConnection): TestPostgresScope => {
  let dropped: Promise<void> | undefined;
  return { name, connection, url: postgresUrl(connection), drop: () => (dropped ??= admin(base, dropSql)) };
};

/**
 * A fresh schema (~1 ms) on the run's shared server, starting the server if this is the first
 * suite to ask. Call in `beforeAll`, drop in `afterAll`.
 */
export async function createTestSchema(prefix = 't', env: NodeJS.ProcessEnv = process.env): Promise<TestPostgresScope> {
  const name = uniqueName(prefix);
  const base = await acquireTestPostgres(env);
  await admin(base, `CREATE SCHEMA "${name}"`);
  return scope(name, { ...base, options: `-c search_path=${name}` }, `DROP SCHEMA IF EXISTS "${name}" CASCADE`, base);
}

/** A fresh database (130–230 ms), for a child process or anything a schema cannot isolate. */
export async function createTestDatabase(prefix = 'db', env: NodeJS.ProcessEnv = process.env): Promise<TestPostgresScope> {
  const name = uniqueName(prefix);
  const base = await acquireTestPostgres(env);
  await admin(base, `CREATE DATABASE "${name}"`);
  return scope(name, { ...base, database: name }, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`, base);
}
