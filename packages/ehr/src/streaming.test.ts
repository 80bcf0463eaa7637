import { once } from 'node:events';
import { createWriteStream, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { openSyntheaCsv } from './synthea.js';

const ROWS = 200_000;

// Heap readings only mean "retained" right after a full collection; expose gc for this file.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function writeObservations(path: string): Promise<void> {
  const out = createWriteStream(path);
  out.write('DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE\n');
  for (let start = 0; start < ROWS; start += 10_000) {
    let chunk = '';
    for (let i = start; i < start + 10_000; i++) {
      chunk += `2019-03-${String((i % 28) + 1).padStart(2, '0')},p${i % 5000},e${i},lab,2339-0,Glucose,${(70 + (i % 90)).toFixed(1)},mg/dL,numeric\n`;
    }
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

describe('streaming', () => {
  it('reads a large observations.csv with retained heap far below the file size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-stream-'));
    writeFileSync(join(dir, 'patients.csv'), 'Id,BIRTHDATE,GENDER\np0,1980-01-01,F\n');
    const path = join(dir, 'observations.csv');
    await writeObservations(path);
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(10_000_000);
    expect(size).toBeLessThan(15_000_000);

    const source = openSyntheaCsv(dir);
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peak = 0;
    let count = 0;
    let sum = 0;
    for await (const event of source.events(new Set(['observation']))) {
      count++;
      sum += event.value ?? 0;
      if (count % 20_000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
      }
    }
    expect(count).toBe(ROWS);
    let expected = 0;
    for (let i = 0; i < ROWS; i++) expected += 70 + (i % 90);
    expect(sum).toBeCloseTo(expected, 3);
    expect(source.skipped).toEqual({});
    // Holding the file as text alone would retain `size` bytes; parsed rows several times more.
    // Measured: about 1 MB retained for a 12.5 MB file.
    expect(peak).toBeLessThan(size / 5);
  });
});
