import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEART_FEATURES, heartManifest, prepareHeartData } from './heart.js';
import { validateManifest } from '@fedlhs/core';

const dataDir = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'heart-disease');

describe('Fed-Heart-Disease preparation (real data in ../shared)', () => {
  it('needs the shared data', () => {
    expect(existsSync(join(dataDir, 'flamby_heart_split.csv')), `missing ${dataDir}: the real heart-disease files must be beside the checkout in ../shared`).toBe(true);
  });

  it("reproduces FLamby's 740 rows, 13 features and per-site train/test split", () => {
    const sites = prepareHeartData(dataDir, mkdtempSync(join(tmpdir(), 'fedlhs-heart-')));
    expect(sites.map((s) => [s.site, s.train, s.test])).toEqual([
      ['cleveland', 199, 104],
      ['hungary', 172, 89],
      ['switzerland', 30, 16],
      ['va', 85, 45],
    ]);
    const header = readFileSync(sites[0]!.path, 'utf8').split('\n')[0]!.split(',');
    expect(header).toEqual(['record_id', ...HEART_FEATURES, 'label', 'set']);
    expect(HEART_FEATURES).toHaveLength(13);
    const swiss = readFileSync(sites[2]!.path, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const test = swiss.filter((r) => r.at(-1) === 'test');
    expect(test.filter((r) => r.at(-2) === '1')).toHaveLength(15);
  });

  it('expresses the FLamby protocol as a valid manifest', () => {
    const m = validateManifest(heartManifest(0));
    expect(m.training).toMatchObject({ localSteps: 100, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.001 } });
    expect(m.rounds).toBe(15);
    expect(m.data.normalization).toBe('local-zscore');
  });
});
