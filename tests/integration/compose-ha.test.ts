/**
 * deploy/docker-compose.ha.yml (active/standby coordinators, issue 15), checked without a Docker
 * engine: every coordinator and agent is configured only with keys of its app's config schema,
 * and the full environment validates (with what the entry point exports from secrets); both
 * coordinators run with ha.enabled on the same PostgreSQL with PostgreSQL blobs, and every agent
 * is given both coordinators' advertised addresses.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { coordinatorConfigSchema, loadCoordinatorConfig } from '@fedlhs/coordinator';
import { agentConfigSchema, loadAgentConfig } from '@fedlhs/node-agent';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const file = join(repoRoot, 'deploy', 'docker-compose.ha.yml');

interface Service {
  build?: { dockerfile?: string };
  entrypoint?: string[];
  environment?: Record<string, unknown>;
  env_file?: string[];
  secrets?: string[];
  depends_on?: Record<string, { condition?: string }>;
  restart?: string;
  healthcheck?: { test?: unknown };
}

function envNames(schema: object): string[] {
  return Object.values(schema).flatMap((v: unknown) => {
    if (typeof v !== 'object' || v === null) return [];
    const env = (v as { env?: unknown }).env;
    return typeof env === 'string' ? [env] : envNames(v);
  });
}

const compose = parse(readFileSync(file, 'utf8'), { merge: true }) as { services: Record<string, Service>; secrets: Record<string, { file: string }> };
const services = Object.entries(compose.services);
const coordinators = services.filter(([, s]) => s.build?.dockerfile === 'coordinator/Dockerfile');
const agents = services.filter(([, s]) => s.build?.dockerfile === 'node-agent/Dockerfile');
const env = (s: Service): Record<string, string> => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v ?? '')]));
/** What the coordinators' entry point exports from secrets before `serve`. */
const exported = (s: Service): Record<string, string> => {
  const script = (s.entrypoint ?? []).join('\n');
  return Object.fromEntries([...script.matchAll(/export (FEDLHS_[A-Z_]+)=/g)].map((m) => [m[1]!, m[1] === 'FEDLHS_STORE_URL' ? 'postgres://fedlhs:secret@postgres:5432/fedlhs' : 'fat_secret']));
};
/** `KEY=VALUE` lines of an env file's committed example. */
const envFile = (path: string): Record<string, string> => Object.fromEntries(
  readFileSync(join(dirname(file), `${path}.example`), 'utf8').split('\n').map((l) => /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(l.trim())).filter((m) => m !== null).map((m) => [m![1]!, m![2]!]),
);

describe('deploy/docker-compose.ha.yml', () => {
  it('has two coordinators, PostgreSQL and at least three agents', () => {
    expect(coordinators.map(([n]) => n)).toEqual(['coordinator-a', 'coordinator-b']);
    expect(compose.services.postgres).toBeDefined();
    expect(agents.length).toBeGreaterThanOrEqual(3);
  });

  it.each(coordinators)('%s: schema keys only, validates, ha.enabled on PostgreSQL with PostgreSQL blobs, release key and admin token shared', (name, s) => {
    const schema = new Set(envNames(coordinatorConfigSchema));
    for (const key of [...Object.keys(env(s)), ...Object.keys(exported(s))]) expect(schema.has(key), `${name}: ${key}`).toBe(true);
    const config = loadCoordinatorConfig({ env: { ...env(s), ...exported(s) }, args: [] });
    expect(config.ha.enabled).toBe(true);
    expect(config.store.kind).toBe('postgres');
    expect(config.blobs.store).toBe('postgres');
    expect(config.tls.mode).toBe('tls');
    expect(config.ha.advertiseAddress).toBe(`${name}:${config.grpc.port}`);
    expect(s.secrets).toEqual(expect.arrayContaining(['release_key', 'admin_token', 'postgres_password']));
    expect(s.depends_on?.postgres?.condition).toBe('service_healthy');
    expect(s.restart).toBe('unless-stopped');
    // The entry point runs the coordinator's real CLI (present after tsc -b).
    expect((s.entrypoint ?? []).join('\n')).toContain('exec node /app/coordinator/dist/main.js serve');
    expect(existsSync(join(repoRoot, 'coordinator', 'dist', 'main.js'))).toBe(true);
    // A standby's /healthz (503 {"status":"standby"}) must count as healthy.
    expect(JSON.stringify(s.healthcheck?.test)).toContain("'standby'");
  });

  it.each(agents)('%s: schema keys only, validates, and is given both coordinators', (name, s) => {
    const schema = new Set(envNames(agentConfigSchema));
    for (const key of Object.keys(env(s))) expect(schema.has(key), `${name}: ${key}`).toBe(true);
    const fromFiles = Object.assign({}, ...(s.env_file ?? []).map((f) => envFile(f))) as Record<string, string>;
    const config = loadAgentConfig({ env: { ...fromFiles, ...env(s) }, args: [] });
    const advertised = coordinators.map(([, c]) => loadCoordinatorConfig({ env: { ...env(c), ...exported(c) }, args: [] }).ha.advertiseAddress);
    expect(config.coordinator.address).toBe(advertised.join(','));
    expect(Object.keys(s.depends_on ?? {}).sort()).toEqual(['coordinator-a', 'coordinator-b']);
  });

  it('names a file for every secret', () => {
    for (const [name, secret] of Object.entries(compose.secrets)) expect(secret.file, name).toMatch(/^\.\//);
  });
});
