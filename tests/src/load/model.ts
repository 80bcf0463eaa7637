import { createHash } from 'node:crypto';
import { mulberry32 } from '@fedlhs/core';

/**
 * What every load clinic derives from its node id alone, so the orchestrator can recompute the
 * expected global model and metrics without asking the clinics: example counts, the update's
 * perturbation and the evaluation metrics.
 */
function seedOf(nodeId: string, salt: number): number {
  return createHash('sha256').update(`${nodeId}/${salt}`).digest().readUInt32LE(0);
}

/** Training examples the clinic claims (50-199). */
export function trainExamplesOf(nodeId: string): number {
  return 50 + (seedOf(nodeId, 0) % 150);
}

/** Hold-out examples the clinic claims for evaluation (a third of its training examples). */
export function evalExamplesOf(nodeId: string): number {
  return Math.ceil(trainExamplesOf(nodeId) / 3);
}

/**
 * The clinic's "trained" model: base + δ(nodeId, round), δ in ±1e-3, as float32. δ comes from two
 * generators with independent 32-bit seeds: with one, two of 10 000 clinics share a seed (and so
 * send identical updates, refused as REPLAYED) in about 1 % of rounds (birthday bound).
 */
export function clinicUpdate(nodeId: string, round: number, base: Float32Array): Float32Array {
  const a = mulberry32(seedOf(nodeId, round));
  const b = mulberry32(seedOf(nodeId, -1 - round));
  return Float32Array.from(base, (v) => v + (a() + b() - 1) * 1e-3);
}

/** Plausible, deterministic hold-out metrics of a clinic for a round. */
export function clinicMetrics(nodeId: string, round: number): { numExamples: number; loss: number; accuracy: number; auc: number } {
  const u = (seedOf(nodeId, 1000 + round) % 1000) / 1000;
  return { numExamples: evalExamplesOf(nodeId), loss: 0.45 + 0.1 * u, accuracy: 0.7 + 0.1 * u, auc: 0.75 + 0.1 * u };
}

/**
 * The expected FedAvg of the clinics' updates (example-weighted mean in float64 of their
 * float32 weights, rounded to float32), for checking a committed model.
 */
export function expectedMean(nodeIds: readonly string[], round: number, base: Float32Array): Float32Array {
  const sum = new Float64Array(base.length);
  let total = 0;
  for (const id of nodeIds) {
    const n = trainExamplesOf(id);
    const w = clinicUpdate(id, round, base);
    for (let i = 0; i < w.length; i++) sum[i] = sum[i]! + n * w[i]!;
    total += n;
  }
  return Float32Array.from(sum, (v) => v / total);
}

/** The example-weighted mean of the clinics' evaluation metrics of a round. */
export function expectedGlobalMetrics(nodeIds: readonly string[], round: number): { loss: number; accuracy: number } {
  let n = 0;
  let loss = 0;
  let accuracy = 0;
  for (const id of nodeIds) {
    const m = clinicMetrics(id, round);
    n += m.numExamples;
    loss += m.numExamples * m.loss;
    accuracy += m.numExamples * m.accuracy;
  }
  return { loss: loss / n, accuracy: accuracy / n };
}

/** Options of the load study's model: Dense(features → hidden, relu) → Dense(1, sigmoid). */
export interface LoadManifestOptions {
  clinics: number;
  rounds: number;
  features: number;
  hidden: number;
}

/** Parameter count of the load model. */
export function loadModelParameters(o: Pick<LoadManifestOptions, 'features' | 'hidden'>): number {
  return o.features * o.hidden + o.hidden + o.hidden + 1;
}

/** A study manifest in which every one of `clinics` clinics takes part in every round. */
export function loadManifest(o: LoadManifestOptions): Record<string, unknown> {
  const features = Array.from({ length: o.features }, (_, i) => `x${i + 1}`);
  return {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: `load-${o.clinics}`,
    description: 'Load harness: protocol-level clinics, no training.',
    model: {
      format: 'tfjs-layers',
      topology: {
        class_name: 'Sequential',
        config: {
          name: 'load',
          layers: [
            { class_name: 'Dense', config: { name: 'hidden', units: o.hidden, activation: 'relu', batch_input_shape: [null, o.features] } },
            { class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid' } },
          ],
        },
      },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
    rounds: o.rounds,
    clients: { min: o.clinics, max: o.clinics, quorum: o.clinics },
    // Generous: the harness measures how long rounds take, it must not cut them short.
    deadlines: { roundSeconds: 3600, evaluationSeconds: 1800, maxRoundAttempts: 1 },
    data: { featureSpec: 'flat-table/v1', features, label: 'label', holdoutFraction: 0.25 },
    aggregation: { strategy: 'fedavg' },
    seed: 7,
  };
}
