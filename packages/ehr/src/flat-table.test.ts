import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFlatTable, splitDataset } from './flat-table.js';

function csv(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-ehr-'));
  const path = join(dir, 'data.csv');
  writeFileSync(path, text);
  return path;
}

describe('readFlatTable', () => {
  it('keeps requested columns in order and counts skipped rows by reason', async () => {
    const path = csv('id,b,a,y,extra\np1,2,1,0,x\np2,,3,1,x\np3,4,abc,1,x\np4,5,6,2,x\np5,7,8,1,x\n');
    const data = await readFlatTable(path, { features: ['a', 'b'], label: 'y', keyColumn: 'id' });
    expect(data.rows).toBe(2);
    expect(Array.from(data.x)).toEqual([1, 2, 8, 7]);
    expect(Array.from(data.y)).toEqual([0, 1]);
    expect(data.keys).toEqual(['p1', 'p5']);
    expect(data.skipped).toEqual({ missing_feature: 1, non_numeric_feature: 1, label_not_binary: 1 });
  });

  it('names missing columns', async () => {
    const path = csv('a,y\n1,0\n');
    await expect(readFlatTable(path, { features: ['a', 'b'], label: 'y' })).rejects.toThrowError(/missing column\(s\) "b"/);
  });

  it('rejects an empty file', async () => {
    await expect(readFlatTable(csv(''), { features: ['a'], label: 'y' })).rejects.toThrowError(/no header row/);
  });
});

describe('splitDataset', () => {
  it('is deterministic, disjoint and near the requested fraction', async () => {
    const rows = Array.from({ length: 1000 }, (_, i) => `${i},${i % 2}`).join('\n');
    const data = await readFlatTable(csv(`a,y\n${rows}\n`), { features: ['a'], label: 'y' });
    const s1 = splitDataset(data, 7, 0.2);
    const s2 = splitDataset(data, 7, 0.2);
    expect(s1.holdout.keys).toEqual(s2.holdout.keys);
    expect(s1.train.rows + s1.holdout.rows).toBe(1000);
    expect(new Set([...s1.train.keys, ...s1.holdout.keys]).size).toBe(1000);
    expect(s1.holdout.rows).toBeGreaterThan(150);
    expect(s1.holdout.rows).toBeLessThan(250);
    const other = splitDataset(data, 8, 0.2);
    expect(other.holdout.keys).not.toEqual(s1.holdout.keys);
  });
});
