import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Coordinator, type InitialModelBuilder } from '../coordinator.js';
import { SqliteStore } from '../sqlite-store.js';
import { LogSink } from '../test-support.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const MANIFEST = JSON.stringify({
  apiVersion: 'fedlhs.v1', kind: 'Study', name: 'restart',
  model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
  training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
  rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 600, evaluationSeconds: 600 },
  data: { featureSpec: 'flat-table/v1', features: ['x0', 'x1'] },
  aggregation: { strategy: 'fedavg' },
});

const buildInitialModel: InitialModelBuilder = async () => ({ specs: [{ name: 'out/kernel', shape: [2, 1] }, { name: 'out/bias', shape: [1] }], weights: new Float32Array([0.1, 0.2, 0.3]) });

function coordinator(dataDir: string, sink: LogSink): Coordinator {
  return Coordinator.create({ dataDir, logger: pino({ level: 'info' }, sink), heartbeatIntervalMs: 1000, selectionGraceMs: 0, chunkBytes: 1024, maxHeldUpdateBytes: 1 << 20, buildInitialModel });
}

describe('releases at coordinator start', () => {
  it('releases a COMPLETED study that has no release when the coordinator starts, and gives a STOPPED one none', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'fedlhs-release-start-')), 'data');
    dirs.push(join(dataDir, '..'));
    const first = coordinator(dataDir, new LogSink());
    await first.start();
    const completed = await first.startStudy(MANIFEST, 'test');
    const stopped = await first.startStudy(MANIFEST.replace('"restart"', '"stopped"'), 'test');
    await first.shutdown();
    // As if the coordinator had stopped between the study's end and its release.
    const store = new SqliteStore(join(dataDir, 'coordinator.db'));
    await store.setStudyState(completed.id, 'COMPLETED', null, 5);
    await store.setStudyState(stopped.id, 'STOPPED', 'operator', 5);
    await store.close();

    const sink = new LogSink();
    const second = coordinator(dataDir, sink);
    const made = new Promise<{ studyId: string; version: number }>((resolve) => second.events.on('change', (e: { kind: string; studyId: string; version: number }) => e.kind === 'release' && resolve(e)));
    try {
      await second.start();
      expect(await made).toMatchObject({ studyId: completed.id, version: 1 });
      const release = await second.store.releaseOfStudy(completed.id);
      expect(release).toMatchObject({ studyName: 'restart', version: 1, round: 0 });
      // Only the initial model was committed: released, and said loudly.
      expect(sink.lines.find((l) => l['event'] === 'release.selection_fallback')).toMatchObject({ level: 40, round: 0 });
      expect(await second.ensureReleases()).toEqual({ released: 1, failed: 0 });
      expect(await second.store.releaseOfStudy(stopped.id)).toBeUndefined();
      expect((await second.releases.list({})).map((r) => r.studyId)).toEqual([completed.id]);
    } finally {
      await second.shutdown();
    }
  });
});
