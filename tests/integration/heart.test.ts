import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { heartHtml, heartSummary, repoRoot, runHeartBenchmark } from '@fedlhs/tests';

const dataDir = join(repoRoot, '..', 'shared', 'data', 'heart-disease');
const out = mkdtempSync(join(tmpdir(), 'fedlhs-heart-'));
afterAll(() => {
  if (process.env.FEDLHS_KEEP_TEST_DIRS !== '1') rmSync(out, { recursive: true, force: true });
});

describe('Fed-Heart-Disease (real four-hospital data, FLamby protocol)', () => {
  it('runs FedAvg through the coordinator and four hospital agents and reports it beside pooled, local and published figures', async () => {
    expect(existsSync(dataDir), `the real heart-disease data must be at ${dataDir} (../shared beside the checkout)`).toBe(true);
    const report = await runHeartBenchmark({ dataDir, out, seeds: [0], log: () => undefined });
    const summary = new Map(heartSummary(report).map((s) => [s.method, s]));
    expect([...summary.keys()].sort()).toEqual(['fedavg', 'local cleveland', 'local hungary', 'local switzerland', 'local va', 'pooled']);
    const fedavg = report.accuracy.find((a) => a.method === 'fedavg')!;
    expect(Object.keys(fedavg.perSite)).toEqual(['cleveland', 'hungary', 'switzerland', 'va']);
    // FLamby: FedAvg 0.685 ± 0.025, pooled 0.735. A working federation is far above chance here.
    expect(summary.get('fedavg')!.mean).toBeGreaterThan(0.6);
    expect(summary.get('pooled')!.mean).toBeGreaterThan(0.65);
    expect(summary.get('fedavg')!.published).toBe(0.685);
    const html = heartHtml(report);
    expect(html).toContain('Andras Janosi');
    expect(html).toContain('Robert Detrano');
    expect(html).not.toMatch(/https?:\/\//);
  });
});
