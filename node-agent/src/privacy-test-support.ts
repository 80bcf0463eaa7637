import { validateManifest, type StudyManifest } from '@fedlhs/core';

/** A small valid study manifest for the privacy tests, with `privacy` (and any change) applied. */
export function dpManifest(privacy: unknown, extra: (m: Record<string, unknown>) => void = () => undefined): StudyManifest {
  const m: Record<string, unknown> = {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: 'readmit-30d',
    model: {
      format: 'tfjs-layers',
      topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid', batch_input_shape: [null, 3] } }] } },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
    rounds: 4,
    clients: { min: 4, max: 4, quorum: 2 },
    deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
    data: { featureSpec: 'flat-table/v1', features: ['age', 'bmi', 'los'], label: 'readmitted', holdoutFraction: 0.25 },
    aggregation: { strategy: 'fedavg' },
    ...(privacy === undefined ? {} : { privacy }),
  };
  extra(m);
  return validateManifest(m);
}
