/**
 * Agent memory by stage (not part of the test run): what one clinic's TRAIN task does with the
 * transfer benchmark's ~1 GiB model (Dense 8192→32768→1, SGD), in this process, with the peak
 * resident set of each stage (Linux VmHWM, reset between stages) as a multiple of the model.
 * The stages are the agent's own: build the runtime, receive the round's model and load it,
 * train, read the trained weights back and hash/stream them as the upload does.
 * Usage: node --expose-gc tests/dist/bench/agent-memory.js [--units 16384] [--optimizer sgd]
 * [--model <module>] (another build of @fedlhs/model, e.g. an older one, for a before/after table)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { float32Bytes, mulberry32, payloadChunks } from '@fedlhs/core';
import type * as ModelModule from '@fedlhs/model';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const UNITS = Number(arg('--units', '16384'));
const OPTIMIZER = arg('--optimizer', 'sgd') as 'sgd' | 'adam';
const INPUTS = UNITS / 2;
const HIDDEN = UNITS * 2;
const ROWS = 32;
const MODEL_BYTES = (INPUTS * HIDDEN + 2 * HIDDEN + 1) * 4;
const MiB = 1048576;

/** Current and peak resident set (bytes) of this process, from /proc. */
function status(): { rss: number; hwm: number } {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

const rows: string[] = [];
/** Runs one stage: collects garbage first, resets the peak, reports the peak during `fn`. */
async function stage<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  (globalThis as { gc?: () => void }).gc?.();
  writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
  const out = await fn();
  const { rss, hwm } = status();
  const line = `  ${name.padEnd(34)} peak ${(hwm / MODEL_BYTES).toFixed(2)} × model   after ${(rss / MODEL_BYTES).toFixed(2)} ×`;
  rows.push(line);
  process.stdout.write(`${line}\n`);
  return out;
}

async function main(): Promise<void> {
  const { createModelRuntime, initBackend } = (await import(arg('--model', '@fedlhs/model'))) as typeof ModelModule;
  if ((globalThis as { gc?: () => void }).gc === undefined) process.stdout.write('(run with --expose-gc for stage-accurate figures)\n');
  await initBackend('cpu');
  process.stdout.write(`model ${(MODEL_BYTES / MiB).toFixed(0)} MiB, optimizer ${OPTIMIZER}; baseline RSS ${(status().rss / MODEL_BYTES).toFixed(2)} × model\n`);
  const features = INPUTS;
  const random = mulberry32(7);
  const x = Float32Array.from({ length: ROWS * features }, () => Number(random().toFixed(2)));
  const y = Float32Array.from({ length: ROWS }, (_, i) => i % 2);
  const topology = { class_name: 'Sequential', config: { name: 'bench', layers: [
    { class_name: 'Dense', config: { name: 'wide', units: HIDDEN, activation: 'relu', batch_input_shape: [null, INPUTS] } },
    { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
  ] } };
  const runtime = await stage('build runtime', () => createModelRuntime({ topology, loss: 'binaryCrossentropy', optimizer: { name: OPTIMIZER, learningRate: 0.001 }, seed: 1 }));
  // The download: one preallocated array filled chunk by chunk (transfer.ts downloadModel).
  let received: Float32Array | undefined = await stage('download into one array', () => {
    const w = new Float32Array(MODEL_BYTES / 4);
    for (let i = 0; i < w.length; i += 997) w[i] = (i % 13) / 1000;
    return w;
  });
  await stage('setWeights (load the round model)', () => runtime.setWeights(received!));
  received = undefined;
  await stage('fit (1 epoch, 1 batch)', () => runtime.fit(x, y, { epochs: 1, batchSize: ROWS, shuffleSeed: 1 }));
  let trained: Float32Array | undefined = await stage('getWeights (trained)', () => runtime.getWeights());
  await stage('evaluate', () => runtime.evaluate(x, y));
  await stage('hash + chunk (upload)', () => {
    const bytes = float32Bytes(trained!);
    createHash('sha256').update(bytes).digest();
    let n = 0;
    for (const c of payloadChunks(bytes, MiB)) n += Buffer.from(c.buffer, c.byteOffset, c.byteLength).length;
    return n;
  });
  trained = undefined;
  runtime.dispose();
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
