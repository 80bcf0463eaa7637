import { applyNormalization, combineStats, computeClinicStats, normalizationFrom, type Normalization, type StudyManifest } from '@fedlhs/core';
import type { Dataset } from '@fedlhs/ehr';
import { createModelRuntime } from '@fedlhs/model';

/** Rows of a dataset as a matrix with labels. */
export interface Matrix {
  x: Float32Array;
  y: Float32Array;
  rows: number;
}

/** A copy of `data` scaled with `normalization` (missing → mean). */
export function normalized(data: Matrix, names: readonly string[], normalization: Normalization | undefined): Matrix {
  return { x: applyNormalization(Float32Array.from(data.x), names, normalization), y: data.y, rows: data.rows };
}

/** Z-score parameters from one or more training sets, computed exactly as clinics do. */
export function zscoreFrom(sets: readonly Matrix[], names: readonly string[]): Normalization {
  return normalizationFrom(combineStats(sets.map((s) => computeClinicStats(s.x, s.y, names, 0))));
}

/** Row-wise concatenation. */
export function concat(sets: readonly Matrix[], width: number): Matrix {
  const rows = sets.reduce((s, m) => s + m.rows, 0);
  const x = new Float32Array(rows * width);
  const y = new Float32Array(rows);
  let r = 0;
  for (const m of sets) {
    x.set(m.x, r * width);
    y.set(m.y, r);
    r += m.rows;
  }
  return { x, y, rows };
}

export function asMatrix(d: Dataset): Matrix {
  return { x: d.x, y: d.y, rows: d.rows };
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  seed: number;
  optimizer?: StudyManifest['training']['optimizer'];
}

/**
 * Trains the study's model centrally on `train` (the pooled or local baseline) and returns a
 * scorer. Same topology, loss and batch size as the federated study; the caller picks epochs.
 */
export async function trainCentral(manifest: StudyManifest, train: Matrix, options: TrainOptions): Promise<{ predict: (x: Float32Array) => Promise<Float32Array>; dispose: () => void }> {
  const runtime = await createModelRuntime({ topology: manifest.model.topology, loss: manifest.training.loss, optimizer: options.optimizer ?? manifest.training.optimizer, seed: options.seed });
  await runtime.fit(train.x, train.y, { epochs: options.epochs, batchSize: options.batchSize, shuffleSeed: options.seed });
  return { predict: (x) => runtime.predict(x), dispose: () => runtime.dispose() };
}

/** A scorer for fixed weights (the federated model). */
export async function withWeights(manifest: StudyManifest, weights: Float32Array): Promise<{ predict: (x: Float32Array) => Promise<Float32Array>; dispose: () => void }> {
  const runtime = await createModelRuntime({ topology: manifest.model.topology, loss: manifest.training.loss, optimizer: manifest.training.optimizer });
  runtime.setWeights(weights);
  return { predict: (x) => runtime.predict(x), dispose: () => runtime.dispose() };
}
