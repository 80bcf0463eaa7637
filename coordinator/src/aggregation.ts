import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  FedlhsError,
  WeightedSum,
  bundleLength,
  concatTensors,
  splitTensors,
  gaussianNoise,
  type ClientUpdate,
  type Strategy,
  type TensorSpec,
  type UpdateValidation,
} from '@fedlhs/core';
import type { CheckpointStore, StoredModel } from './checkpoints.js';
import { BufferPool } from './blobs/buffer-pool.js';
import { toStorageFault } from './storage-health.js';

const SLICE_BYTES = 4 * 1024 * 1024;

/**
 * DP-FedAvg at the coordinator (issue 14, docs/design/privacy.md): the updates count equally (the
 * sum whose sensitivity is one clinic's clipped change); with central noise every change is
 * clipped to `clipNorm` here too (whatever the clinic did) and Gaussian noise N(0, (z·C)²) from a
 * CSPRNG is added to the sum of the clipped changes before it is averaged. With local or
 * distributed noise the clinics clipped before adding their noise, so the coordinator does not
 * clip what arrives (noise included, its norm is far above C by design).
 */
export interface DpAggregation {
  /** Central noise: the clipping norm C and the noise multiplier z; absent: the clinics add the noise. */
  readonly central?: { readonly clipNorm: number; readonly noiseMultiplier: number } | undefined;
  /** A byte source for tests; Node's crypto randomBytes otherwise. */
  readonly random?: ((bytes: number) => Uint8Array) | undefined;
}

/** Tuning for tests and benchmarks, and differential privacy. */
export interface RoundAggregatorOptions {
  /** Values per slice `finish()` steps and yields (default 1 Mi: 4 MiB of float32). */
  readonly sliceValues?: number;
  /** DP-FedAvg: equal weights; with central noise, clipping and noise here (weighted-mean strategies with stepSlice only). */
  readonly dp?: DpAggregation | undefined;
  /** Buffers for reading updates back in add() (default: the aggregator's own, 16 MiB idle at most). */
  readonly pool?: BufferPool | undefined;
}

/** Median of a non-empty list. */
function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Which bound applies now, or undefined (no bound, or not enough history for an adaptive one). */
export function currentBound(validation: UpdateValidation, history: readonly number[]): number | undefined {
  const b = validation.normBound;
  if (b.type === 'fixed') return b.value;
  if (b.type === 'adaptive' && history.length >= b.minHistory) return b.multiple * median(history.slice(-b.window));
  return undefined;
}

/**
 * One round's aggregation at the coordinator. Every accepted update's distance from the round's
 * base model (‖update − global‖₂, measured by the coordinator while it arrived) is checked
 * against the study's norm bound: the update is rejected or clipped. Strategies whose result
 * depends only on the example-weighted mean get each update added to a float64 running sum as it
 * arrives, and `finish()` streams that mean through the strategy's `stepSlice` one slice at a
 * time (memory: the float64 sum plus a slice or two, whatever the number of clinics).
 * Order-statistic strategies (median, trimmed mean, Krum, Bulyan) necessarily hold every
 * update: their spooled files are kept, up to the study's cap, and read at the end slice by
 * slice through the strategy's `sliceRound` (memory: a slice per update). Either way
 * the new model always comes from the strategy object, never from a shortcut by name, so a
 * wrapping strategy (e.g. central DP noise) runs for FedAvg too.
 */
export class RoundAggregator {
  private readonly sum: WeightedSum;
  private readonly held: { path: string; numExamples: number; scale: number }[] = [];
  private readonly sliceValues: number;
  /** Set by dispose(): an update still arriving then is refused, so nothing is held past it. */
  private disposed = false;
  /** Why the running sum holds part of an update (set by a failed add): later adds and finish throw it. */
  private damage: unknown;
  private readonly dp: DpAggregation | undefined;
  /** Read buffers of add() (the spool and, when clipping, the base), reused across updates. */
  private readonly pool: BufferPool;
  /** Examples of the updates added (with DP the sum's weights are 1 per update, so they are counted here). */
  private examples = 0;

  constructor(
    private readonly strategy: Strategy,
    private readonly specs: readonly TensorSpec[],
    private readonly base: StoredModel,
    private readonly checkpoints: CheckpointStore,
    private readonly heldDir: string,
    private readonly validation: UpdateValidation,
    private readonly maxHeld: number,
    options: RoundAggregatorOptions = {},
  ) {
    this.sum = new WeightedSum(strategy.input === 'weighted-mean' ? bundleLength(specs) : 0);
    this.sliceValues = options.sliceValues ?? SLICE_BYTES / 4;
    this.dp = options.dp;
    this.pool = options.pool ?? new BufferPool({ maxPooledBytes: 4 * SLICE_BYTES });
    if (this.dp !== undefined && (strategy.input !== 'weighted-mean' || strategy.stepSlice === undefined)) {
      throw new FedlhsError('STUDY_FAILED', `differential privacy needs a strategy that averages (fedavg); ${strategy.name} is not one`);
    }
    if (!Number.isSafeInteger(this.sliceValues) || this.sliceValues < 1) {
      throw new FedlhsError('INVALID_ARGUMENT', `sliceValues must be an integer ≥ 1, got ${this.sliceValues}`, { details: { field: 'sliceValues' } });
    }
  }

  get count(): number {
    return this.strategy.input === 'weighted-mean' ? this.sum.count : this.held.length;
  }

  get totalExamples(): number {
    if (this.dp !== undefined) return this.examples;
    return this.strategy.input === 'weighted-mean' ? this.sum.totalWeight : this.held.reduce((s, h) => s + h.numExamples, 0);
  }

  /**
   * Applies the norm bound: returns the factor the update's delta is scaled by (1 = unchanged,
   * < 1 = clipped), or throws NORM_BOUND when the study rejects.
   */
  admit(norm: number, history: readonly number[]): number {
    // Central DP: the change is clipped to C here whatever the clinic did, so the noise's calibration holds.
    const c = this.dp?.central?.clipNorm;
    const dpScale = c === undefined || norm <= c ? 1 : c / norm;
    return Math.min(dpScale, this.admitBound(norm, history));
  }

  private admitBound(norm: number, history: readonly number[]): number {
    const bound = currentBound(this.validation, history);
    if (bound === undefined || norm <= bound) return 1;
    if (this.validation.onExceed === 'clip') return bound / norm;
    throw new FedlhsError(
      'NORM_BOUND',
      `update is too far from the global model: ‖update − global‖ = ${norm.toPrecision(4)} exceeds the study's bound ${bound.toPrecision(4)}`,
      { details: { norm, bound } },
    );
  }

  /** Adds an admitted update (its delta scaled by `scale`). The spool file is consumed. */
  async add(spoolPath: string, numExamples: number, scale: number, key: string): Promise<void> {
    if (this.disposed) throw new FedlhsError('STALE', `the round's aggregation has ended; the update for ${key} is not held`);
    if (this.strategy.input === 'all-updates') {
      if (this.held.length >= this.maxHeld) {
        // Proto "Order of checks" 20: RESOURCE_EXHAUSTED, not a rejection (the update was fine).
        throw new FedlhsError('RESOURCE_LIMIT', `the round already holds ${this.maxHeld} updates, the study's cap for ${this.strategy.name}`, {
          details: { limit: 'heldUpdates', value: this.held.length + 1, max: this.maxHeld },
        });
      }
      const path = join(this.heldDir, `${key}.f32`);
      try {
        mkdirSync(this.heldDir, { recursive: true });
        renameSync(spoolPath, path);
      } catch (err) {
        throw toStorageFault(err, `hold the update ${key}`, this.heldDir) ?? err;
      }
      this.held.push({ path, numExamples, scale });
      return;
    }
    if (this.damage !== undefined) throw this.damage;
    let offset = 0;
    // DP-FedAvg: each clinic's (clipped) update counts once, so one clinic moves the sum by at most C.
    const weight = this.dp === undefined ? numExamples : 1;
    // Pooled reads, each chunk released once added (issue 15: 4 MiB unpooled buffers per slice
    // were a model's size of garbage per update, about one full GC per 64 MiB on the receipt path).
    const pool = this.pool;
    const base = scale === 1 ? undefined : this.checkpoints.read(this.base.path, SLICE_BYTES, { pool });
    try {
      for await (const chunk of this.checkpoints.read(spoolPath, SLICE_BYTES, { pool })) {
        try {
          // Pooled chunks start at a class buffer's offset 0, so they are 4-byte aligned.
          const values = new Float32Array(chunk.buffer, chunk.byteOffset, chunk.byteLength / 4);
          if (base !== undefined) {
            const b = await base.next();
            const g = b.done === true ? undefined : b.value;
            try {
              if (g === undefined || g.length < chunk.length) {
                throw new FedlhsError('DATA_LOSS', `base model ${this.base.path} ends before the update ${key} at byte ${offset * 4 + (g?.length ?? 0)}`);
              }
              const gv = alignedFloats(g, values.length);
              for (let i = 0; i < values.length; i++) values[i] = gv[i]! + scale * (values[i]! - gv[i]!);
            } finally {
              if (g !== undefined) pool.release(g);
            }
          }
          this.sum.addChunk(offset, values, weight);
          offset += values.length;
        } finally {
          pool.release(chunk);
        }
      }
      // A spool shorter than the model (a write the disk cut short) must not count with zeros
      // for its tail (review ring): storage failed, so the round attempt is retried.
      if (offset !== this.sum.length) {
        throw new FedlhsError('STORAGE_FAULT', `the spooled update ${key} holds ${offset} of the model's ${this.sum.length} values: the disk lost part of it`, { details: { kind: 'io_error', op: `add the update ${key}` } });
      }
    } catch (err) {
      // Part of this update may be in the sum already: the round's mean would include a fragment
      // of it, so the sum refuses to be averaged, and every later add and the round's finish
      // throw why: a storage fault (the round attempt is retried once storage is back), else as thrown.
      if (offset > 0) {
        this.sum.discard(`the update ${key} failed after ${offset} values were added: ${(err as Error).message}`);
        this.damage ??= toStorageFault(err, `add the update ${key}`, spoolPath) ?? err;
      }
      throw err;
    } finally {
      await base?.return(undefined);
    }
    this.sum.commit(weight);
    this.examples += numExamples;
  }

  /**
   * The new global model as consecutive float32 slices, after the strategy's server step.
   * For a weighted-mean strategy with `stepSlice` the round is opened here and the slices are
   * stepped lazily as the result is iterated; the strategy's state changes when the last slice
   * has been taken (iterate it once, to the end, before reading `exportState`).
   */
  async finish(round: number): Promise<Iterable<Float32Array> | AsyncIterable<Float32Array>> {
    if (this.damage !== undefined) throw this.damage;
    if (this.strategy.input === 'weighted-mean') {
      if (this.sum.count === 0) throw new FedlhsError('INVALID_STATE', 'no contributions to average');
      if (this.strategy.stepSlice !== undefined) return this.stepSlices(round);
    } else if (this.strategy.sliceRound !== undefined) {
      return this.orderStatisticSlices();
    }
    const base = await this.checkpoints.readAll(this.base.path);
    const global = splitTensors(this.specs, base);
    let updates: ClientUpdate[];
    if (this.strategy.input === 'weighted-mean') {
      // A weighted-mean strategy without stepSlice: one pre-averaged update, the whole model at once.
      updates = [{ weights: splitTensors(this.specs, this.sum.mean()), numExamples: this.sum.totalWeight }];
    } else {
      updates = [];
      for (const h of this.held) {
        const values = await this.checkpoints.readAll(h.path);
        // A clipped update keeps only `scale` of its distance from the global model.
        if (h.scale !== 1) for (let i = 0; i < values.length; i++) values[i] = base[i]! + h.scale * (values[i]! - base[i]!);
        updates.push({ weights: splitTensors(this.specs, values), numExamples: h.numExamples });
      }
    }
    return [concatTensors(this.strategy.aggregate(global, updates, round))];
  }

  /**
   * An order-statistic strategy's result slice by slice (`strategy.sliceRound`), reading the held
   * files in step: one pass for the strategies that need one (Krum's distances), one over the
   * updates the result is made of. Memory: a slice per held update, whatever the model size.
   * Clipping as in the whole-model path (base + scale · (update − base), per value).
   */
  private orderStatisticSlices(): AsyncIterable<Float32Array> {
    const { sliceValues, checkpoints, held } = this;
    const basePath = this.base.path;
    const length = bundleLength(this.specs);
    const slices = this.strategy.sliceRound!(length, held.map((h) => h.numExamples));
    async function* pass(which: readonly number[]): AsyncGenerator<[number, Float32Array[]]> {
      const base = which.some((k) => held[k]!.scale !== 1) ? checkpoints.read(basePath, sliceValues * 4) : undefined;
      const readers = which.map((k) => checkpoints.read(held[k]!.path, sliceValues * 4));
      try {
        for (let offset = 0; offset < length; offset += sliceValues) {
          const len = Math.min(sliceValues, length - offset);
          const g = base === undefined ? undefined : await readSlice(base, basePath, offset, len);
          const values: Float32Array[] = [];
          for (const [r, k] of which.entries()) {
            const h = held[k]!;
            let v = await readSlice(readers[r]!, h.path, offset, len);
            if (g !== undefined && h.scale !== 1) {
              v = v.slice();
              for (let i = 0; i < len; i++) v[i] = g[i]! + h.scale * (v[i]! - g[i]!);
            }
            values.push(v);
          }
          yield [offset, values];
        }
      } finally {
        await base?.return(undefined);
        for (const r of readers) await r.return(undefined);
      }
    }
    return (async function* () {
      if (slices.needsScan) for await (const [offset, values] of pass(held.map((_, k) => k))) slices.scan(offset, values);
      for await (const [offset, values] of pass(slices.reads())) yield slices.combine(offset, values);
    })();
  }

  /** The weighted mean, slice by slice, through `strategy.stepSlice`, bracketed by begin/endRound. */
  private stepSlices(round: number): AsyncIterable<Float32Array> {
    const { strategy, sum, sliceValues, checkpoints, dp } = this;
    const basePath = this.base.path;
    // Central DP: N(0, (z·C)²) on the sum of the m clipped changes is N(0, (z·C/m)²) on their mean
    // (sum of the updates = m·global + sum of the changes, so the noise may go on either).
    const noiseStd = dp?.central === undefined ? 0 : (dp.central.noiseMultiplier * dp.central.clipNorm) / sum.count;
    strategy.beginRound?.(round, this.specs.map((s) => s.shape));
    const empty = new Float32Array(0);
    return (async function* () {
      // The checkpoint this round started from, read in step with the slices through the
      // checkpoint store: a file, or a blob locator (PostgreSQL blobs).
      const base = strategy.readsGlobal === false ? undefined : checkpoints.read(basePath, sliceValues * 4);
      try {
        for (let offset = 0; offset < sum.length; offset += sliceValues) {
          const len = Math.min(sliceValues, sum.length - offset);
          const global = base === undefined ? empty : await readSlice(base, basePath, offset, len);
          const mean = sum.meanSlice(offset, len);
          if (noiseStd > 0) {
            const noise = dp?.random === undefined ? gaussianNoise(len, noiseStd) : gaussianNoise(len, noiseStd, dp.random);
            for (let i = 0; i < len; i++) mean[i] = mean[i]! + noise[i]!;
          }
          const next = strategy.stepSlice!(offset, global, mean, round);
          if (next.length !== len) {
            throw new FedlhsError('INTERNAL', `${strategy.name}: stepSlice returned ${next.length} values for a slice of ${len}`);
          }
          yield next;
        }
        strategy.endRound?.();
      } finally {
        await base?.return(undefined);
      }
    })();
  }

  /**
   * Deletes the held update files, at the end of the round attempt (committed or not). An
   * update added later is refused (STALE), so none is left behind. A failure to delete (a
   * read-only disk) throws; the study runner removes what is left once storage is back
   * (CheckpointStore.clearHeld), and start-up removes every study's held updates.
   */
  dispose(): void {
    this.disposed = true;
    this.held.length = 0;
    rmSync(this.heldDir, { recursive: true, force: true });
  }
}

/** The next `len` values (from `offset`) of a base model read in slices; DATA_LOSS if it ends first. */
async function readSlice(base: AsyncGenerator<Buffer>, path: string, offset: number, len: number): Promise<Float32Array> {
  const next = await base.next();
  const chunk = next.done === true ? Buffer.alloc(0) : next.value;
  if (chunk.length < len * 4) throw new FedlhsError('DATA_LOSS', `base model ${path} ends at byte ${offset * 4 + chunk.length}, the model needs ${(offset + len) * 4}`);
  // A copy when the chunk is not 4-byte aligned (a Float32Array view needs that).
  if (chunk.byteOffset % 4 === 0) return new Float32Array(chunk.buffer, chunk.byteOffset, len);
  const out = new Float32Array(len);
  new Uint8Array(out.buffer).set(chunk.subarray(0, len * 4));
  return out;
}

/**
 * The first `len` values of a chunk as a Float32Array: a view when it is 4-byte aligned, else a
 * copy (a blob store's buffer may start anywhere).
 */
function alignedFloats(chunk: Buffer, len: number): Float32Array {
  if (chunk.byteOffset % 4 === 0) return new Float32Array(chunk.buffer, chunk.byteOffset, len);
  const out = new Float32Array(len);
  new Uint8Array(out.buffer).set(chunk.subarray(0, len * 4));
  return out;
}
