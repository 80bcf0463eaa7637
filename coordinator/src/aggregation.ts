import { renameSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  FedlhsError,
  WeightedSum,
  bundleLength,
  concatTensors,
  splitTensors,
  type ClientUpdate,
  type Strategy,
  type TensorSpec,
  type UpdateValidation,
} from '@fedlhs/core';
import type { CheckpointStore, StoredModel } from './checkpoints.js';

const SLICE_BYTES = 4 * 1024 * 1024;

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
 * against the study's norm bound: the update is rejected or clipped. Strategies whose result depends only on the example-weighted mean get
 * each update added to a float64 running sum as it arrives (memory O(model) whatever the number
 * of clinics); order-statistic strategies (median, trimmed mean, Krum, Bulyan) necessarily hold
 * every update: their spooled files are kept, up to the study's cap, and read at the end.
 */
export class RoundAggregator {
  private readonly sum: WeightedSum;
  private readonly held: { path: string; numExamples: number; scale: number }[] = [];

  constructor(
    private readonly strategy: Strategy,
    private readonly specs: readonly TensorSpec[],
    private readonly base: StoredModel,
    private readonly checkpoints: CheckpointStore,
    private readonly heldDir: string,
    private readonly validation: UpdateValidation,
    private readonly maxHeld: number,
  ) {
    this.sum = new WeightedSum(strategy.input === 'weighted-mean' ? bundleLength(specs) : 0);
  }

  get count(): number {
    return this.strategy.input === 'weighted-mean' ? this.sum.count : this.held.length;
  }

  get totalExamples(): number {
    return this.strategy.input === 'weighted-mean' ? this.sum.totalWeight : this.held.reduce((s, h) => s + h.numExamples, 0);
  }

  /**
   * Applies the norm bound: returns the factor the update's delta is scaled by (1 = unchanged,
   * < 1 = clipped), or throws INVALID_ARGUMENT with reason NORM_BOUND when the study rejects.
   */
  admit(norm: number, history: readonly number[]): number {
    const bound = currentBound(this.validation, history);
    if (bound === undefined || norm <= bound) return 1;
    if (this.validation.onExceed === 'clip') return bound / norm;
    throw new FedlhsError(
      'INVALID_ARGUMENT',
      `update is too far from the global model: ‖update − global‖ = ${norm.toPrecision(4)} exceeds the study's bound ${bound.toPrecision(4)}`,
      { reason: 'NORM_BOUND' },
    );
  }

  /** Adds an admitted update (its delta scaled by `scale`). The spool file is consumed. */
  async add(spoolPath: string, numExamples: number, scale: number, key: string): Promise<void> {
    if (this.strategy.input === 'all-updates') {
      if (this.held.length >= this.maxHeld) {
        throw new FedlhsError('FAILED_PRECONDITION', `the round already holds ${this.maxHeld} updates, the study's cap for ${this.strategy.name}`, { reason: 'STALE' });
      }
      mkdirSync(this.heldDir, { recursive: true });
      const path = join(this.heldDir, `${key}.f32`);
      renameSync(spoolPath, path);
      this.held.push({ path, numExamples, scale });
      return;
    }
    let offset = 0;
    const base = scale === 1 ? undefined : this.checkpoints.read(this.base.path, SLICE_BYTES);
    for await (const chunk of this.checkpoints.read(spoolPath, SLICE_BYTES)) {
      // read() allocates each chunk unpooled, so it is 4-byte aligned.
      const values = new Float32Array(chunk.buffer, chunk.byteOffset, chunk.byteLength / 4);
      if (base !== undefined) {
        const b = (await base.next()).value as Buffer;
        const g = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
        for (let i = 0; i < values.length; i++) values[i] = g[i]! + scale * (values[i]! - g[i]!);
      }
      this.sum.addChunk(offset, values, numExamples);
      offset += values.length;
    }
    await base?.return(undefined);
    this.sum.commit(numExamples);
  }

  /** The new global model as consecutive float32 slices, after the strategy's server step. */
  async finish(round: number): Promise<Iterable<Float32Array>> {
    const name = this.strategy.name;
    if (this.strategy.input === 'weighted-mean' && (name === 'fedavg' || name === 'fedprox')) {
      // Plain FedAvg: the mean is the model; stream it out slice by slice.
      const sum = this.sum;
      return (function* () {
        for (let offset = 0; offset < sum.length; offset += SLICE_BYTES / 4) yield sum.meanSlice(offset, Math.min(SLICE_BYTES / 4, sum.length - offset));
      })();
    }
    const base = await this.checkpoints.readAll(this.base.path);
    const global = splitTensors(this.specs, base);
    let updates: ClientUpdate[];
    if (this.strategy.input === 'weighted-mean') {
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

  /** Deletes held update files. */
  dispose(): void {
    rmSync(this.heldDir, { recursive: true, force: true });
  }
}
