import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { describe, expect, it } from 'vitest';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { enrolAgent, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions, type CoordinatorHandle } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

/** Parses Prometheus text exposition into sample name{labels} → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)/.exec(line);
    if (m === null) throw new Error(`unparseable metrics line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function http(c: CoordinatorHandle, method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${c.adminPort}${path}`, {
    method, headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('monitoring: metrics, health, reflection, roles', () => {
  it('exposes Prometheus metrics after a round, serves gRPC health and reflection, and enforces roles', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    for (const [i, name] of ['m1', 'm2'].entries()) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 120, seed: 70 + i });
      const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
      await enrolAgent(c, o);
      ws.track(startAgent(o));
    }
    const study = await startStudy(c, learnableManifest({ name: 'monitored', rounds: 2, min: 2, max: 2, quorum: 2 }));
    await waitForStudyEnd(c, study.id);

    const text = await (await fetch(`http://127.0.0.1:${c.adminPort}/metrics`)).text();
    const m = parseMetrics(text);
    expect(m.get('fedlhs_rounds_total{outcome="committed"}')).toBe(2);
    expect(m.get('fedlhs_round_duration_seconds_count{outcome="committed"}')).toBe(2);
    expect(m.get('fedlhs_round_participants_count')).toBe(2);
    expect(m.get('fedlhs_round_participants_sum')).toBe(4);
    expect(m.get('fedlhs_update_bytes_received_total')!).toBeGreaterThan(0);
    expect(m.get('fedlhs_model_bytes_sent_total')!).toBeGreaterThan(m.get('fedlhs_update_bytes_received_total')!);
    expect(m.get('fedlhs_connected_nodes')).toBe(2);
    expect(m.get('fedlhs_grpc_requests_total{method="UploadUpdate",code="OK"}')).toBe(4);
    expect(m.get('fedlhs_grpc_requests_total{method="Enrol",code="OK"}')).toBe(2);
    expect(m.get('fedlhs_grpc_request_duration_seconds_count{method="ReportEvaluation",code="OK"}')).toBe(4);
    expect(text).toContain('# TYPE fedlhs_rejected_updates_total counter');
    expect([...m.keys()].some((k) => k.startsWith('fedlhs_coordinator_process_cpu_seconds_total'))).toBe(true);

    // grpc.health.v1 on the gRPC port.
    const health = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
    const healthClient = new health.grpc.health.v1.Health(c.address, grpc.credentials.createInsecure());
    const check = (service: string) => new Promise<{ status: string }>((resolve, reject) =>
      (healthClient as unknown as { Check: (r: unknown, cb: (e: Error | null, v: { status: string }) => void) => void }).Check({ service }, (e, v) => (e === null ? resolve(v) : reject(e))));
    expect((await check('')).status).toBe('SERVING');
    expect((await check('fedlhs.v1.Federation')).status).toBe('SERVING');
    healthClient.close();

    // Server reflection lists the fedlhs services.
    const reflectionProto = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');
    const refl = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true })) as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } };
    const reflClient = new refl.grpc.reflection.v1.ServerReflection(c.address, grpc.credentials.createInsecure()) as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<unknown, { list_services_response?: { service: { name: string }[] } }> ; close: () => void };
    const call = reflClient.ServerReflectionInfo();
    const listed = await new Promise<string[]>((resolve, reject) => {
      call.on('data', (r) => {
        resolve((r.list_services_response?.service ?? []).map((s: { name: string }) => s.name));
        call.end();
      });
      call.on('error', reject);
      call.write({ list_services: '' });
    });
    reflClient.close();
    expect(listed).toEqual(expect.arrayContaining(['fedlhs.v1.Enrolment', 'fedlhs.v1.Federation', 'grpc.health.v1.Health']));

    // Authentication and roles on the admin API.
    const anonymous = await http(c, 'GET', '/api/v1/status');
    expect(anonymous.status).toBe(401);
    expect(anonymous.json).toEqual({ error: { code: 'CREDENTIAL_INVALID', status: 'UNAUTHENTICATED', message: expect.any(String), details: { why: 'missing' } } });
    expect((await http(c, 'GET', '/api/v1/status', 'fot_wrong')).status).toBe(401);
    const created = await http(c, 'POST', '/api/v1/operators', c.adminToken, { name: 'vera', role: 'viewer' });
    expect(created.status).toBe(201);
    const viewer = created.json.token as string;
    expect((await http(c, 'GET', '/api/v1/status', viewer)).status).toBe(200);
    const refused = await http(c, 'POST', '/api/v1/join-tokens', viewer, { site: 'nope' });
    expect(refused.status).toBe(403);
    expect(refused.json).toEqual({ error: { code: 'ROLE_REQUIRED', status: 'PERMISSION_DENIED', message: 'POST /api/v1/join-tokens needs the admin role; vera is a viewer', details: { role: 'admin' } } });
    expect((await http(c, 'GET', '/api/v1/audit', viewer)).status).toBe(403);
    const auditLog = await http(c, 'GET', '/api/v1/audit', c.adminToken);
    expect((auditLog.json.actions as { operator: string; action: string; target: string }[]).map((a) => [a.operator, a.action, a.target])).toEqual(
      expect.arrayContaining([['admin', 'study.start', study.id], ['admin', 'operator.create', 'vera'], ['admin', 'join-token.create', 'm1']]),
    );
    // The timeline shows each round with participants and bytes.
    const detail = await http(c, 'GET', `/api/v1/studies/${study.id}`, viewer);
    expect((detail.json.timeline as { round: number; participants: number; accepted: number; bytesIn: number }[]).map((r) => [r.round, r.participants, r.accepted, r.bytesIn > 0])).toEqual([[1, 2, 2, true], [2, 2, 2, true]]);
  });
});
