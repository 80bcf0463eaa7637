/**
 * The headline study: incident type 2 diabetes (SNOMED 44054006) within 3 years of an index
 * outpatient (wellness or ambulatory) visit, in adults without diabetes at index — as a declarative cohort/v1 manifest.
 */
export function t2dManifest(options: { rounds: number; clinics: number; quorum: number; seed: number; name?: string }): Record<string, unknown> {
  const latest = (name: string, codes: string[], unit: string, range: [number, number]) => ({ name, type: 'latest', system: 'LOINC', codes, unit, range });
  return {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: options.name ?? 't2d-3y',
    description: 'Incident type 2 diabetes within 3 years after an index outpatient (wellness or ambulatory) visit (adults without diabetes at index).',
    model: {
      format: 'tfjs-layers',
      topology: {
        class_name: 'Sequential',
        config: {
          name: 't2d',
          layers: [
            { class_name: 'Dense', config: { name: 'hidden', units: 16, activation: 'relu', batch_input_shape: [null, 15] } },
            { class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid' } },
          ],
        },
      },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'adam', learningRate: 0.005 }, localEpochs: 1, batchSize: 32 },
    rounds: options.rounds,
    clients: { min: options.clinics, max: options.clinics, quorum: options.quorum },
    deadlines: { roundSeconds: 300, evaluationSeconds: 120, maxRoundAttempts: 3 },
    data: {
      featureSpec: 'cohort/v1',
      cohort: {
        index: { classes: ['outpatient'], from: '2015-01-01', to: '2018-12-31' },
        eligibility: { minAge: 18, maxAge: 90, excludeConditions: [{ system: 'SNOMED', codes: ['44054006', '46635009'] }] },
        lookbackDays: 1095,
        features: [
          { name: 'age', type: 'age' },
          { name: 'female', type: 'sex', value: 'female' },
          latest('bmi', ['39156-5'], 'kg/m2', [10, 80]),
          latest('systolic_bp', ['8480-6'], 'mm[Hg]', [60, 260]),
          latest('diastolic_bp', ['8462-4'], 'mm[Hg]', [30, 160]),
          latest('glucose', ['2339-0', '2345-7'], 'mg/dL', [20, 600]),
          latest('hba1c', ['4548-4'], '%', [3, 20]),
          latest('total_cholesterol', ['2093-3'], 'mg/dL', [50, 500]),
          latest('hdl', ['2085-9'], 'mg/dL', [5, 200]),
          latest('triglycerides', ['2571-8'], 'mg/dL', [10, 3000]),
          { name: 'current_smoker', type: 'latest-coded', system: 'LOINC', codes: ['72166-2'], positive: ['449868002', '428041000124106', '77176002'] },
          { name: 'prediabetes', type: 'condition', system: 'SNOMED', codes: ['15777000'] },
          { name: 'hypertension', type: 'condition', system: 'SNOMED', codes: ['59621000', '38341003'] },
          { name: 'hyperlipidemia', type: 'condition', system: 'SNOMED', codes: ['55822004'] },
          { name: 'visits', type: 'count', kind: 'encounter' },
        ],
        label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 1095 },
      },
      holdoutFraction: 0.3,
      normalization: 'federated-zscore',
      minCellCount: 10,
    },
    aggregation: { strategy: 'fedavg' },
    seed: options.seed,
  };
}
