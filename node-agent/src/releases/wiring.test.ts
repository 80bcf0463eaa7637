// The release code through the real generated gRPC client (proto-loader camelCase fields,
// bytes as Buffers, a server stream) against a minimal in-process server, and the study
// tracker's trigger for a completed study.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RELEASE_FILES, type ReleaseFileName } from '@fedlhs/core';
import { loadFedlhsProto } from '@fedlhs/proto';
import { AgentState } from '../agent-state.js';
import { loadAgentConfig } from '../config.js';
import { createClients, type Clients } from '../connection.js';
import { StudyTracker } from '../studies.js';
import { ReleaseFetcher } from './fetch.js';
import { listKept } from './local-releases.js';
import { buildRelease, listed, releaseKeyPair } from './test-support.js';

const cleanup: (() => void)[] = [];
afterEach(() => cleanup.splice(0).forEach((f) => f()));

const silent = pino({ level: 'silent' });

async function serve(handlers: grpc.UntypedServiceImplementation): Promise<Clients> {
  const server = new grpc.Server();
  server.addService(loadFedlhsProto().fedlhs.v1.Federation.service, handlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err))));
  const clients = createClients(`127.0.0.1:${port}`, { mode: 'plaintext', ca: '', cert: '', key: '', serverName: '' });
  cleanup.push(() => {
    clients.close();
    server.forceShutdown();
  });
  return clients;
}

describe('releases over gRPC', () => {
  it('lists, downloads in chunks, verifies and keeps a release through the generated client', async () => {
    const key = releaseKeyPair();
    const r = buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey });
    const requests: unknown[] = [];
    const clients = await serve({
      ListReleases: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        requests.push(call.request);
        cb(null, { releases: [listed(r, ['champion'])] });
      },
      DownloadReleaseFile: (call: grpc.ServerWritableStream<{ studyName: string; version: number; fileName: string }, unknown>) => {
        requests.push(call.request);
        const bytes = Buffer.from(r.files[call.request.fileName as ReleaseFileName]);
        for (let i = 0; i < bytes.length; i += 64) call.write({ data: bytes.subarray(i, i + 64) });
        call.end();
      },
    });
    const stateDir = mkdtempSync(join(tmpdir(), 'fedlhs-wire-'));
    const state = new AgentState(stateDir);
    state.recordManifest({ hash: r.manifestSha256, studyId: r.predicate.studyId, name: 'sepsis', json: Buffer.from(r.files['manifest.json']).toString() });
    state.approve(r.manifestSha256, 'operator:test');
    const fetcher = new ReleaseFetcher({ stateDir, state, client: clients.federation, credential: 'cred', releaseKey: key.pinned, coordinator: 'c', log: silent });
    const summary = await fetcher.check();
    expect(summary.refused).toEqual([]);
    expect(summary.kept).toEqual([{ studyName: 'sepsis', version: 1 }]);
    expect(listKept(stateDir)[0]?.kept.aliases).toEqual(['champion']);
    expect(requests[0]).toEqual({ studyName: '' });
    expect(requests.slice(1)).toEqual(RELEASE_FILES.map((fileName) => ({ studyName: 'sepsis', version: 1, fileName })));
  });
});

describe('StudyTracker', () => {
  it('asks for a release check when a study is announced COMPLETED', async () => {
    const completed: string[] = [];
    const stateDir = mkdtempSync(join(tmpdir(), 'fedlhs-wire-'));
    const tracker = new StudyTracker({
      config: loadAgentConfig({ args: ['--state-dir', stateDir] }), state: new AgentState(stateDir), credential: { nodeId: 'n', siteName: 's', coordinator: 'c', credential: 'x', enrolledAt: '' },
      clients: {} as Clients, data: {} as never, log: silent, send: () => undefined, onStudyCompleted: (s) => completed.push(s.studyId),
    });
    const study = { studyId: 'st-1', manifestJson: '{}', manifestSha256: 'a'.repeat(64), lastCommittedRound: 2, parametersJson: '', seriesTemplateJson: '', seriesTemplateSha256: '' };
    await tracker.onStudy({ ...study, state: 'STUDY_STATE_STOPPED' });
    await tracker.onStudy({ ...study, state: 'STUDY_STATE_COMPLETED' });
    expect(completed).toEqual(['st-1']);
  });
});
