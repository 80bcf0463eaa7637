/**
 * Keeps docker-compose.yml and the Dockerfiles honest without a Docker engine: every service
 * builds a multi-stage Dockerfile whose entry point exists after `tsc -b`, calls only CLI
 * subcommands that exist, is configured only through keys of its app's config schema with
 * values that validate, and is deployed the way deploy/README.md promises (TLS everywhere,
 * its own state volume and read-only data, restart policy, health checks, admin API on the
 * host's loopback only).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { coordinatorConfigSchema, loadCoordinatorConfig } from '@fedlhs/coordinator';
import { agentConfigSchema, loadAgentConfig } from '@fedlhs/node-agent';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface App {
  kind: 'coordinator' | 'agent';
  schemaEnvs: Set<string>;
  /** Validates a full environment the way the app's CLI does; returns the parsed config. */
  load(env: Record<string, string>): { tls: { mode: string } };
  /** Where the app keeps its state: must be a named volume. */
  stateEnv: string;
  /** Variables naming files the app reads: each must be provided by a mount or secret. */
  fileEnvs: string[];
}

function envNames(schema: object): string[] {
  return Object.values(schema).flatMap((v: unknown) => {
    if (typeof v !== 'object' || v === null) return [];
    const env = (v as { env?: unknown }).env;
    return typeof env === 'string' ? [env] : envNames(v);
  });
}

const apps: Record<string, App> = {
  'coordinator/Dockerfile': {
    kind: 'coordinator',
    schemaEnvs: new Set(envNames(coordinatorConfigSchema)),
    load: (env) => loadCoordinatorConfig({ env, args: [] }),
    stateEnv: 'FEDLHS_DATA_DIR',
    fileEnvs: ['FEDLHS_TLS_CERT', 'FEDLHS_TLS_KEY', 'FEDLHS_TLS_CLIENT_CA'],
  },
  'node-agent/Dockerfile': {
    kind: 'agent',
    schemaEnvs: new Set(envNames(agentConfigSchema)),
    load: (env) => loadAgentConfig({ env, args: [] }),
    stateEnv: 'FEDLHS_STATE_DIR',
    fileEnvs: ['FEDLHS_TLS_CA', 'FEDLHS_TLS_CERT', 'FEDLHS_TLS_KEY', 'FEDLHS_DATA_PATH'],
  },
};

// ---- Dockerfile and compose parsing (only the syntax these files use) ----

interface Dockerfile {
  froms: number;
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  healthcheck: boolean;
}

function readDockerfile(path: string): Dockerfile {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n');
  const instr = (name: string): string[] => lines.filter((l) => new RegExp(`^${name}\\s`, 'i').test(l)).map((l) => l.replace(/^\S+\s+/, '').trim());
  const exec = (name: string): string[] => {
    const last = instr(name).at(-1);
    return last === undefined ? [] : (JSON.parse(last) as string[]);
  };
  const env: Record<string, string> = {};
  for (const args of instr('ENV')) for (const m of args.matchAll(/(\w+)=(\S*)/g)) env[m[1]!] = m[2]!;
  return { froms: instr('FROM').length, entrypoint: exec('ENTRYPOINT'), cmd: exec('CMD'), env, healthcheck: instr('HEALTHCHECK').some((h) => !/^NONE\b/i.test(h)) };
}

interface Service {
  build?: { context?: string; dockerfile?: string };
  entrypoint?: string | string[];
  command?: string | string[];
  environment?: Record<string, unknown> | string[];
  env_file?: string | (string | { path: string })[];
  volumes?: (string | { type?: string; source?: string; target: string; read_only?: boolean })[];
  secrets?: (string | { source: string; target?: string })[];
  ports?: (string | number | { target: number; published?: string | number; host_ip?: string })[];
  restart?: string;
  healthcheck?: { test?: unknown; disable?: boolean };
  depends_on?: string[] | Record<string, { condition?: string }>;
}

const compose = parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);

function appOf(name: string, s: Service): { app: App; dockerfile: Dockerfile } {
  const rel = posix.join(s.build?.context ?? '.', s.build?.dockerfile ?? 'Dockerfile');
  const app = apps[rel];
  if (app === undefined) throw new Error(`${name}: builds ${rel}, which is neither coordinator/Dockerfile nor node-agent/Dockerfile`);
  return { app, dockerfile: readDockerfile(join(repoRoot, rel)) };
}

function list(v: string | string[] | undefined): string[] | undefined {
  return v === undefined ? undefined : typeof v === 'string' ? v.split(/\s+/).filter(Boolean) : v;
}

/** `KEY=VALUE` lines of an env file; commented-out `#FEDLHS_*=` examples count as keys. */
function readEnvFile(path: string): { values: Record<string, string>; keys: string[] } {
  const values: Record<string, string> = {};
  const keys: string[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m === null) continue;
    keys.push(m[2]!);
    if (m[1] === undefined) values[m[2]!] = m[3]!;
  }
  return { values, keys };
}

/** The referenced env files are operator secrets; their committed `.example` twins are checked. */
function envFiles(s: Service): string[] {
  const files = s.env_file === undefined ? [] : typeof s.env_file === 'string' ? [s.env_file] : s.env_file;
  return files.map((f) => join(repoRoot, `${typeof f === 'string' ? f : f.path}.example`));
}

function environment(s: Service): Record<string, string> {
  const e = s.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v ?? '')]));
}

/** Image ENV, then env files, then `environment:`: the precedence Compose applies. */
function effectiveEnv(s: Service, dockerfile: Dockerfile): Record<string, string> {
  const fromFiles = Object.assign({}, ...envFiles(s).map((f) => readEnvFile(f).values)) as Record<string, string>;
  return { ...dockerfile.env, ...fromFiles, ...environment(s) };
}

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
  named: boolean;
}

function mounts(s: Service): Mount[] {
  const volumes = (s.volumes ?? []).map((v): Mount => {
    if (typeof v !== 'string') return { source: v.source ?? '', target: v.target, readOnly: v.read_only === true, named: v.type === 'volume' };
    const [source = '', target = '', mode = ''] = v.split(':');
    return { source, target, readOnly: mode.split(',').includes('ro'), named: !/^[./~]/.test(source) };
  });
  const secrets = (s.secrets ?? []).map((x): Mount => {
    const source = typeof x === 'string' ? x : x.source;
    const target = typeof x === 'string' || x.target === undefined ? source : x.target;
    return { source, target: target.startsWith('/') ? target : `/run/secrets/${target}`, readOnly: true, named: false };
  });
  return [...volumes, ...secrets];
}

function mountFor(ms: Mount[], path: string): Mount | undefined {
  return ms.find((m) => path === m.target || path.startsWith(`${m.target}/`));
}

function ports(s: Service): { hostIp: string; published: string; target: string }[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'object') return { hostIp: p.host_ip ?? '', published: String(p.published ?? ''), target: String(p.target) };
    const parts = String(p).replace(/\/\w+$/, '').split(':');
    const target = parts.pop()!;
    return { hostIp: parts.length === 2 ? parts[0]! : '', published: parts.at(-1) ?? '', target };
  });
}

// ---- what each service runs ----

interface Invocation {
  script: string;
  args: string[];
}

const nodeCall = /\bnode\s+(\/app\/[\w./-]+\.js)((?:[ \t]+[^\s;&|`"'()]+)*)/g;

function invocationsIn(text: string): Invocation[] {
  return [...text.matchAll(nodeCall)].map((m) => ({ script: m[1]!, args: m[2]!.trim().split(/\s+/).filter(Boolean) }));
}

/** With a shell entry point, the `node /app/...` calls in its script; otherwise ENTRYPOINT + CMD. */
function invocations(s: Service, dockerfile: Dockerfile): Invocation[] {
  const entrypoint = list(s.entrypoint);
  if (entrypoint !== undefined && /(^|\/)(ba)?sh$/.test(entrypoint[0] ?? '')) return invocationsIn(entrypoint.join('\n'));
  const argv = [...(entrypoint ?? dockerfile.entrypoint), ...(list(s.command) ?? (entrypoint === undefined ? dockerfile.cmd : []))];
  if (argv[0] !== 'node' || argv[1] === undefined) throw new Error(`runs ${JSON.stringify(argv)}, not node <script>`);
  return [{ script: argv[1], args: argv.slice(2) }];
}

const helpCache = new Map<string, string[]>();

/** Subcommand names listed under "Commands:" in `--help` (never runs `serve` or `run`). */
function subcommands(script: string, path: string[]): string[] {
  const key = [script, ...path].join(' ');
  if (!helpCache.has(key)) {
    const help = execFileSync(process.execPath, [script, ...path, '--help'], { encoding: 'utf8', timeout: 20_000 });
    const section = help.split(/^Commands:$/m)[1] ?? '';
    helpCache.set(key, [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!));
  }
  return helpCache.get(key)!;
}

function checkInvocation(where: string, call: Invocation): void {
  const local = join(repoRoot, posix.relative('/app', call.script));
  expect(existsSync(local), `${where}: ${call.script} maps to ${local}, which does not exist after tsc -b`).toBe(true);
  const [first, second] = call.args;
  expect(first, `${where}: node ${call.script} is called without a subcommand`).toMatch(/^[a-z]/);
  expect(subcommands(local, []), `${where}: "${first}" is not a subcommand of ${call.script}`).toContain(first);
  // A second bare word is a nested subcommand only where the first has its own Commands list.
  const nested = second !== undefined && /^[a-z][\w-]*$/.test(second) ? subcommands(local, [first!]) : [];
  if (nested.length > 0) expect(nested, `${where}: "${first} ${second}" is not a subcommand of ${call.script}`).toContain(second);
}

// ---- the checks ----

const coordinatorEntry = services.find(([name, s]) => appOf(name, s).app.kind === 'coordinator');
const agentEntries = services.filter(([name, s]) => appOf(name, s).app.kind === 'agent');

describe('docker-compose.yml', () => {
  it('has one coordinator and at least three clinic agents', () => {
    expect(services.filter(([name, s]) => appOf(name, s).app.kind === 'coordinator').map(([n]) => n), 'coordinator services').toHaveLength(1);
    expect(agentEntries.length, `agent services: ${agentEntries.map(([n]) => n).join(', ')}`).toBeGreaterThanOrEqual(3);
  });

  describe.each(services)('service %s', (name, s) => {
    const { app, dockerfile } = appOf(name, s);
    const env = effectiveEnv(s, dockerfile);

    it('builds a multi-stage Dockerfile whose entry point and subcommands exist', () => {
      expect(dockerfile.froms, `${name}: ${s.build?.dockerfile} FROM lines`).toBeGreaterThanOrEqual(2);
      expect(dockerfile.entrypoint.slice(0, 1), `${name}: image ENTRYPOINT`).toEqual(['node']);
      checkInvocation(`${name} (image ENTRYPOINT)`, { script: dockerfile.entrypoint[1]!, args: dockerfile.cmd });
      const calls = invocations(s, dockerfile);
      expect(calls.length, `${name}: no node /app/... call found in what the service runs`).toBeGreaterThan(0);
      for (const call of calls) checkInvocation(name, call);
    });

    it('sets only variables of its config schema, and the full set validates', () => {
      const sources: [string, string[]][] = [
        ['environment:', Object.keys(environment(s))],
        [`${s.build?.dockerfile} ENV`, Object.keys(dockerfile.env).filter((k) => k.startsWith('FEDLHS_'))],
        ...envFiles(s).map((f): [string, string[]] => {
          expect(existsSync(f), `${name}: env_file example ${f} is missing`).toBe(true);
          return [f, readEnvFile(f).keys];
        }),
      ];
      for (const [source, keys] of sources) {
        for (const key of keys) expect(app.schemaEnvs.has(key), `${name}: ${key} (${source}) is not an env of the ${app.kind} config schema`).toBe(true);
      }
      // Compose lets environment: win silently over an env file; a key in both is a mistake.
      for (const f of envFiles(s)) {
        for (const key of readEnvFile(f).keys) expect(Object.keys(environment(s)), `${name}: ${key} is set in both ${f} and environment:`).not.toContain(key);
      }
      expect(() => app.load(env), `${name}: its environment does not validate`).not.toThrow();
      expect(app.load(env).tls.mode, `${name}: FEDLHS_TLS_MODE`).toBe('tls');
    });

    it('gets its state from a named volume and every file it reads from a mount or secret', () => {
      const ms = mounts(s);
      const state = env[app.stateEnv];
      expect(state, `${name}: ${app.stateEnv} is not set`).toBeDefined();
      expect(mountFor(ms, state!)?.named, `${name}: ${app.stateEnv}=${state} is not on a named volume`).toBe(true);
      for (const key of app.fileEnvs.filter((k) => (env[k] ?? '') !== '')) {
        const m = mountFor(ms, env[key]!);
        expect(m, `${name}: ${key}=${env[key]} is not provided by any volume or secret`).toBeDefined();
        expect(m!.readOnly, `${name}: ${key}=${env[key]} is mounted writable`).toBe(true);
      }
    });

    it('restarts by policy and has a health check', () => {
      expect(['always', 'unless-stopped', 'on-failure'], `${name}: restart`).toContain(s.restart?.split(':')[0]);
      const own = s.healthcheck !== undefined && s.healthcheck.disable !== true && s.healthcheck.test !== undefined;
      expect(own || (s.healthcheck?.disable !== true && dockerfile.healthcheck), `${name}: no health check in compose or its Dockerfile`).toBe(true);
    });
  });

  it('publishes gRPC and keeps the coordinator admin API on the host loopback', () => {
    const [name, s] = coordinatorEntry!;
    const config = loadCoordinatorConfig({ env: effectiveEnv(s, appOf(name, s).dockerfile), args: [] });
    const published = ports(s);
    expect(published.map((p) => p.target), `${name}: gRPC port ${config.grpc.port} is not published`).toContain(String(config.grpc.port));
    for (const p of published.filter((x) => x.target === String(config.admin.port))) {
      expect(p.hostIp, `${name}: admin port ${p.target} must be published on 127.0.0.1 only`).toBe('127.0.0.1');
      // Inside the container, a loopback-bound admin API is unreachable through the mapping.
      expect(config.admin.host, `${name}: FEDLHS_ADMIN_HOST must be 0.0.0.0 for the published admin port`).toBe('0.0.0.0');
    }
  });

  describe.each(agentEntries)('agent %s', (name, s) => {
    const env = effectiveEnv(s, appOf(name, s).dockerfile);

    it('dials the coordinator service, waits for it to be healthy and publishes no port', () => {
      const [coordinatorName, c] = coordinatorEntry!;
      const grpcPort = loadCoordinatorConfig({ env: effectiveEnv(c, appOf(coordinatorName, c).dockerfile), args: [] }).grpc.port;
      expect(env.FEDLHS_COORDINATOR, `${name}: FEDLHS_COORDINATOR`).toBe(`${coordinatorName}:${grpcPort}`);
      const deps = s.depends_on;
      const condition = Array.isArray(deps) || deps === undefined ? undefined : deps[coordinatorName]?.condition;
      expect(condition, `${name}: depends_on ${coordinatorName} condition`).toBe('service_healthy');
      expect(s.ports ?? [], `${name}: ports`).toEqual([]);
      // The dev certificate must cover the name the agent checks.
      const serverName = env.FEDLHS_TLS_SERVER_NAME || coordinatorName;
      expect(readFileSync(join(repoRoot, 'deploy/tls/make-dev-certs.sh'), 'utf8'), `${name}: server name ${serverName} not in the dev certificate SAN`).toContain(`DNS:${serverName}`);
    });

    it('has its own state volume and its own read-only data mount', () => {
      const own = (svcName: string, svc: Service): { state: string; data: string } => {
        const e = effectiveEnv(svc, appOf(svcName, svc).dockerfile);
        const ms = mounts(svc);
        return { state: mountFor(ms, e.FEDLHS_STATE_DIR ?? '')?.source ?? '', data: mountFor(ms, e.FEDLHS_DATA_PATH ?? '')?.source ?? '' };
      };
      const mine = own(name, s);
      expect(mine.data, `${name}: FEDLHS_DATA_PATH is not on a mount`).not.toBe('');
      for (const [other, o] of agentEntries.filter(([n]) => n !== name)) {
        const theirs = own(other, o);
        expect(theirs.state, `${name} and ${other} share the state volume ${mine.state}`).not.toBe(mine.state);
        expect(theirs.data, `${name} and ${other} share the data mount ${mine.data}`).not.toBe(mine.data);
      }
    });
  });
});

describe('deploy/README.md', () => {
  it('uses only CLI subcommands that exist', () => {
    const calls = invocationsIn(readFileSync(join(repoRoot, 'deploy/README.md'), 'utf8'));
    expect(calls.length, 'deploy/README.md: no node /app/... commands found').toBeGreaterThan(0);
    for (const call of calls) checkInvocation(`deploy/README.md (${call.script} ${call.args.join(' ')})`, call);
  });
});
