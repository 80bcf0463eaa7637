import { mulberry32 } from '@fedlhs/core';
import { writeFileSync } from 'node:fs';

export { mulberry32 };

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

export interface LearnableDataOptions {
  rows: number;
  seed: number;
  /** Feature count (default 6). */
  features?: number;
  /** Shift of the feature distribution for this clinic (non-IID), default 0. */
  shift?: number;
}

/** Feature names of the learnable data set. */
export function learnableFeatures(n = 6): string[] {
  return Array.from({ length: n }, (_, i) => `x${i + 1}`);
}

/**
 * Writes a CSV whose label follows a fixed logistic model of the features, so a model can
 * learn it (the best achievable AUC is about 0.9) and hold-out metrics improve over rounds.
 * All clinics share the true coefficients; `shift` moves only their feature distribution.
 */
export function writeLearnableCsv(path: string, options: LearnableDataOptions): void {
  const d = options.features ?? 6;
  const random = mulberry32(options.seed);
  const truth = mulberry32(12345);
  const coef = Array.from({ length: d }, () => (truth() - 0.5) * 3);
  const lines = [['record_id', ...learnableFeatures(d), 'label'].join(',')];
  for (let i = 0; i < options.rows; i++) {
    const x = Array.from({ length: d }, () => gaussian(random) + (options.shift ?? 0));
    const z = x.reduce((s, v, j) => s + v * coef[j]!, 0) - 0.3;
    const y = random() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    lines.push([`r${options.seed}-${i}`, ...x.map((v) => v.toFixed(4)), y].join(','));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** A study manifest for the learnable data set (JSON-ready object). */
export function learnableManifest(overrides: { name?: string; rounds?: number; min?: number; max?: number; quorum?: number; roundSeconds?: number; evaluationSeconds?: number; features?: number; maxRoundAttempts?: number } = {}): Record<string, unknown> {
  const d = overrides.features ?? 6;
  return {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: overrides.name ?? 'learnable',
    description: 'Logistic-style toy task for tests and the demo.',
    model: {
      format: 'tfjs-layers',
      topology: {
        class_name: 'Sequential',
        config: {
          name: 'learnable',
          layers: [
            { class_name: 'Dense', config: { name: 'hidden', units: 8, activation: 'relu', batch_input_shape: [null, d] } },
            { class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid' } },
          ],
        },
      },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
    rounds: overrides.rounds ?? 3,
    clients: { min: overrides.min ?? 3, max: overrides.max ?? 3, quorum: overrides.quorum ?? 2 },
    deadlines: { roundSeconds: overrides.roundSeconds ?? 60, evaluationSeconds: overrides.evaluationSeconds ?? 30, maxRoundAttempts: overrides.maxRoundAttempts ?? 3 },
    data: { featureSpec: 'flat-table/v1', features: learnableFeatures(d), label: 'label', holdoutFraction: 0.25 },
    aggregation: { strategy: 'fedavg' },
    seed: 7,
  };
}
