import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { heartHtml, heartSummary, repoRoot, runHeartBenchmark } from '@fedlhs/tests';

const execFileAsync = promisify(execFile);
const dataDir = join(repoRoot, '..', 'shared', 'data', 'heart-disease');
const out = mkdtempSync(join(tmpdir(), 'fedlhs-heart-'));
afterAll(() => {
  if (process.env.FEDLHS_KEEP_TEST_DIRS !== '1') rmSync(out, { recursive: true, force: true });
});

describe('Fed-Heart-Disease (real four-hospital data, FLamby protocol)', () => {
  it('runs FedAvg through the coordinator and four hospital agents and reports it beside pooled, local and published figures', async () => {
    expect(existsSync(dataDir), `the real heart-disease data must be at ${dataDir} (../shared beside the checkout)`).toBe(true);
    // One seed, FedAvg only (the runner's default): the full five-strategy, five-seed table is `fedlhs-simulate heart`.
    const report = await runHeartBenchmark({ dataDir, out, seeds: [0], log: () => undefined });
    const summary = new Map(heartSummary(report).map((s) => [s.method, s]));
    expect([...summary.keys()]).toEqual(['fedavg', 'pooled', 'local cleveland', 'local hungary', 'local switzerland', 'local va']);
    expect(report.strategies).toEqual([{ strategy: 'fedavg', parameters: {}, clientLearningRate: 0.001 }]);
    expect([report.rounds, report.localSteps, report.batchSize]).toEqual([15, 100, 4]);
    const fedavg = report.accuracy.find((a) => a.method === 'fedavg')!;
    expect(Object.keys(fedavg.perSite)).toEqual(['cleveland', 'hungary', 'switzerland', 'va']);
    // FLamby: FedAvg 0.685 ± 0.025 (its seeds range 0.643–0.720), pooled 0.735. With tfjs' default
    // initialisation FedAvg averaged 0.63 here; PyTorch's nn.Linear initialisation brings it to FLamby's range.
    expect(summary.get('fedavg')!.mean).toBeGreaterThan(0.62);
    expect(summary.get('pooled')!.mean).toBeGreaterThan(0.7);
    expect(summary.get('fedavg')!.published?.mean).toBeCloseTo(0.685, 3);
    const html = heartHtml(report);
    expect(html).toContain('Andras Janosi');
    expect(html).toContain('Robert Detrano');
    expect(html).toContain('client SGD lr 0.001');
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('the heart command refuses a bad strategy option before starting anything (exit code 2)', async () => {
    const main = join(repoRoot, 'simulator', 'dist', 'main.js');
    const err = await execFileAsync(process.execPath, [main, 'heart', '--strategy', 'fedadam', '--strategy-param', 'beta2=1', '--out', join(out, 'refused')]).then(
      () => undefined,
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toContain('fedlhs-simulate: fedadam: beta2 must be in [0, 1), got 1');
    expect(existsSync(join(out, 'refused'))).toBe(false);
  });
});
