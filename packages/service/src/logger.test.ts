import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, logDrops, logProcessWarnings, type Logger } from './logger.js';

const dirs: string[] = [];
const loggers: Logger[] = [];
afterEach(() => {
  for (const l of loggers.splice(0)) (l as unknown as Record<symbol, { end(): void }>)[pino.symbols.streamSym]?.end();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fileLogger(maxBufferBytes: number, dropSummaryMs: number): { logger: Logger; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-logger-'));
  dirs.push(dir);
  const path = join(dir, 'log.jsonl');
  const logger = createLogger({ app: 'test', level: 'info', pretty: 'false', maxBufferBytes, dropSummaryMs, destination: path });
  loggers.push(logger);
  return { logger, path };
}

const lines = (path: string): Record<string, unknown>[] =>
  readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('createLogger: bounded pipeline', () => {
  it('drops and counts what a slow destination cannot take, instead of buffering it', async () => {
    const max = 256 * 1024;
    const { logger, path } = fileLogger(max, 50);
    const child = logger.child({ component: 'flood' });
    const payload = 'x'.repeat(1000);
    const total = 100_000; // ~110 MB of JSON, written without yielding: the destination gets nothing meanwhile
    const heapBefore = process.memoryUsage().heapUsed;
    let maxBuffered = 0;
    for (let i = 0; i < total; i++) {
      child.info({ event: 'test.flood', i, payload }, 'flood');
      if (i % 1000 === 0) maxBuffered = Math.max(maxBuffered, logDrops(child)!.bufferedBytes);
    }
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    const drops = logDrops(child)!;
    expect(maxBuffered).toBeLessThanOrEqual(max);
    expect(drops.bufferedBytes).toBeLessThanOrEqual(max);
    // Unbounded, the buffer alone would hold ~110 MB.
    expect(heapGrowth).toBeLessThan(48 * 1024 * 1024);
    expect(drops.dropped).toBeGreaterThan(total * 0.9);

    // Once the destination catches up, one summary reports every dropped line.
    await until('the log.dropped summary', () => lines(path).some((l) => l.event === 'log.dropped'));
    const written = lines(path);
    const summaries = written.filter((l) => l.event === 'log.dropped');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ level: 40, dropped: drops.dropped, droppedTotal: drops.dropped, maxBufferBytes: max });
    expect(written.filter((l) => l.event === 'test.flood').length + drops.dropped).toBe(total);
  });

  it('writes one summary per interval, for every line dropped in it', async () => {
    const { logger, path } = fileLogger(64 * 1024, 300);
    const payload = 'y'.repeat(1000);
    const start = Date.now();
    // Three bursts in one turn of the event loop, so all fall in one summary interval whatever
    // the machine's load: each overflows the buffer.
    for (let burst = 0; burst < 3; burst++) {
      for (let i = 0; i < 2000; i++) logger.info({ event: 'test.flood', burst, i, payload }, 'flood');
    }
    const droppedInBursts = logDrops(logger)!.dropped;
    expect(droppedInBursts).toBeGreaterThan(0);
    await until('the log.dropped summary', () => lines(path).some((l) => l.event === 'log.dropped'));
    // The summary waited for its interval (a lower bound, which load cannot break).
    expect(Date.now() - start).toBeGreaterThanOrEqual(300);
    // A line written after the summary reaching the file means everything before it did.
    logger.info({ event: 'test.after' }, 'after');
    await until('the line after the summary', () => lines(path).some((l) => l.event === 'test.after'));
    const summaries = lines(path).filter((l) => l.event === 'log.dropped');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ dropped: droppedInBursts, droppedTotal: droppedInBursts });
    expect(logDrops(logger)!.dropped).toBe(droppedInBursts);
  });

  it('drops nothing when the destination keeps up', async () => {
    const { logger, path } = fileLogger(1024 * 1024, 50);
    for (let i = 0; i < 100; i++) logger.info({ event: 'test.line', i }, 'line');
    await until('every line', () => lines(path).length === 100);
    expect(logDrops(logger)!.dropped).toBe(0);
  });

  it('refuses a buffer too small to hold a line', () => {
    expect(() => createLogger({ app: 'test', level: 'info', pretty: 'false', maxBufferBytes: 10 })).toThrowErrorMatchingInlineSnapshot(
      `[FedlhsError: log.maxBufferBytes must be an integer of at least 4096, got 10]`,
    );
    expect(() => createLogger({ app: 'test', level: 'info', pretty: 'false', maxBufferBytes: 10 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', details: { key: 'log.maxBufferBytes' } }));
  });
});

describe('logProcessWarnings', () => {
  it('copies process warnings into the log as warn process.warning, until removed', async () => {
    const records: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
    const remove = logProcessWarnings(logger);
    const emitted = new Promise<void>((resolve) => process.once('warning', () => setImmediate(resolve)));
    process.emitWarning('the audit log was cut', { code: 'FEDLHS_TEST_WARNING' });
    await emitted;
    remove();
    expect(records).toEqual([expect.objectContaining({ level: 40, event: 'process.warning', code: 'FEDLHS_TEST_WARNING', warning: 'Warning', msg: 'the audit log was cut' })]);
    const after = new Promise<void>((resolve) => process.once('warning', () => setImmediate(resolve)));
    process.emitWarning('not logged', { code: 'FEDLHS_TEST_WARNING' });
    await after;
    expect(records).toHaveLength(1);
  });
});
