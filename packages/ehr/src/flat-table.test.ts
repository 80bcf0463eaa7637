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
  it('keeps requested columns in order, keeps missing and non-numeric cells as missing per feature, and skips rows without a 0/1 label', async () => {
    const path = csv('id,b,a,y,extra\np1,2,1,0,x\np2,,3,1,x\np3,4,abc,1,x\np4,5,6,2,x\np5,7,8,1,x\np6,NA,?,0,x\np7,1,1,,x\n');
    const data = await readFlatTable(path, { features: ['a', 'b'], label: 'y', keyColumn: 'id' });
    expect(data.rows).toBe(5);
    expect(Array.from(data.x)).toEqual([1, 2, 3, NaN, NaN, 4, 8, 7, NaN, NaN]);
    expect(Array.from(data.y)).toEqual([0, 1, 1, 1, 0]);
    expect(data.keys).toEqual(['p1', 'p2', 'p3', 'p5', 'p6']);
    expect(data.skipped).toEqual({ label_not_binary: 1, label_missing: 1 });
    expect(data.gaps).toEqual({ missing: { b: 2, a: 1 }, nonNumeric: { a: 1 } });
  });

  it('for scoring (labels none) keeps rows without a label, and reads a table without the label column', async () => {
    const withLabel = csv('id,a,y\np1,1,0\np2,2,\np3,3,2\np4,4,1\n');
    const data = await readFlatTable(withLabel, { features: ['a'], label: 'y', keyColumn: 'id', labels: 'none' });
    expect(data.keys).toEqual(['p1', 'p2', 'p4']);
    expect(Array.from(data.y)).toEqual([0, NaN, 1]);
    expect(data.skipped).toEqual({ label_not_binary: 1 });
    const noLabel = await readFlatTable(csv('id,a\np1,1\np2,2\n'), { features: ['a'], label: 'y', keyColumn: 'id', labels: 'none' });
    expect(noLabel.keys).toEqual(['p1', 'p2']);
    expect(Array.from(noLabel.y)).toEqual([NaN, NaN]);
    await expect(readFlatTable(csv('id,a\np1,1\n'), { features: ['a'], label: 'y', keyColumn: 'id' })).rejects.toThrow('missing column(s) "y"');
  });

  it('reads a Latin-1 file when told, and counts rows with bytes invalid in UTF-8 otherwise', async () => {
    const bytes = Buffer.concat([Buffer.from('id,a,y,note\np1,1,0,Jos'), Buffer.from([0xe9]), Buffer.from('\np2,2,1,ok\n')]);
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-ehr-'));
    const path = join(dir, 'latin1.csv');
    writeFileSync(path, bytes);
    const latin1 = await readFlatTable(path, { features: ['a'], label: 'y', encoding: 'latin1' });
    expect(latin1.rows).toBe(2);
    const utf8 = await readFlatTable(path, { features: ['a'], label: 'y' });
    expect(utf8.rows).toBe(1);
    expect(utf8.skipped).toEqual({ 'bytes_not_valid_utf8 (if the file is Latin-1, set data.encoding to latin1)': 1 });
  });

  it('names missing columns', async () => {
    const path = csv('a,y\n1,0\n');
    await expect(readFlatTable(path, { features: ['a', 'b'], label: 'y' })).rejects.toThrowError(/missing column\(s\) "b"/);
    await expect(readFlatTable(path, { features: ['a', 'b'], label: 'y' })).rejects.toMatchObject({ code: 'FEATURE_SPEC_UNSUPPORTED', details: { missing: ['b'] } });
  });

  it('rejects an empty file', async () => {
    await expect(readFlatTable(csv(''), { features: ['a'], label: 'y' })).rejects.toThrowError(/no header row/);
    await expect(readFlatTable(csv(''), { features: ['a'], label: 'y' })).rejects.toMatchObject({ code: 'DATA_INVALID', status: 'FAILED_PRECONDITION' });
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
