/**
 * Issue 15: model downloads served from shared frames, and a stalled download's memory given
 * back. A real coordinator process (port 0); grpc-js clients that read the model in full and a
 * raw HTTP/2 stream that stops reading (download-attack.ts).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFedlhsProto, type ModelChunk__Output } from '@fedlhs/proto';
import type { CoordinatorHandle } from '@fedlhs/tests';
import { connect, metricValue, rawDownload, rogues, startAttackCoordinator, studyWithParticipants, wideManifest, wideModelBytes, type Rogue } from '../src/download-attack.js';

/** Downloads a committed model with grpc-js; resolves with the header's digest and the payload's. */
async function download(c: CoordinatorHandle, credential: string, studyId: string): Promise<{ announced: string; actual: string; bytes: number }> {
  const Federation = loadFedlhsProto().fedlhs.v1.Federation;
  // A channel of its own per download, as separate clinics would have.
  const client = new Federation(c.address, grpc.credentials.createInsecure(), { 'fedlhs.test.channel': Math.random() });
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${credential}`);
  try {
    const call = client.DownloadModel({ committed: { studyId, round: 0 } }, md);
    const hash = createHash('sha256');
    let announced = '';
    let bytes = 0;
    for await (const m of call as AsyncIterable<ModelChunk__Output>) {
      if (m.header) announced = Buffer.from(m.header.sha256).toString('hex');
      if (m.data) {
        hash.update(m.data);
        bytes += m.data.length;
      }
    }
    return { announced, actual: hash.digest('hex'), bytes };
  } finally {
    client.close();
  }
}

describe('model downloads from shared frames', () => {
  let dir: string;
  let c: CoordinatorHandle;
  let nodes: Rogue[];
  let studyId: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlhs-it-'));
    c = await startAttackCoordinator({ dataDir: dir, env: { FEDLHS_LIMITS_DOWNLOAD_STREAMS_PER_NODE: '8', FEDLHS_TRANSFER_DOWNLOAD_IDLE_SECONDS: '1' } });
    nodes = await rogues(c, 2);
    // 4 MiB: several chunks, far more than one HTTP/2 window.
    studyId = await studyWithParticipants(c, wideManifest('frames', 1000, 2), nodes);
  }, 120_000);

  afterAll(async () => {
    for (const r of nodes ?? []) r.node.close();
    await c?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('concurrent downloads of one model each get its exact bytes (the digest the header announces)', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => download(c, nodes[i % 2]!.credential, studyId)));
    for (const r of results) {
      expect(r.bytes).toBe(wideModelBytes(1000));
      expect(r.actual).toBe(r.announced);
    }
  });

  it('a download whose client stops reading is reset after the idle bound: its slot comes back, the stream ends unread', async () => {
    const session = connect(c);
    try {
      const stalled = await rawDownload(session, nodes[0]!.credential, { committed: { studyId, round: 0 } }, 64 * 1024);
      expect(stalled.refusal()).toBeUndefined();
      await c.proc.waitForEvent('download.stalled', { nodeId: nodes[0]!.nodeId, reset: true }, 60_000);
      // Ended by the coordinator (RST_STREAM: no trailers) while the client reads nothing; before,
      // the status waited behind the queued chunk and the stream stayed open with it.
      const ended = await stalled.ended;
      expect(ended.code).toBe(-1);
      await expect.poll(() => metricValue(c, 'fedlhs_download_streams'), { timeout: 10_000 }).toBe(0);
      // Downloads go on as before.
      const after = await download(c, nodes[1]!.credential, studyId);
      expect(after.actual).toBe(after.announced);
    } finally {
      session.destroy();
    }
  });
});
