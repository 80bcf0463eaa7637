import { describe, expect, it } from 'vitest';
import { parseManifest } from '@fedlhs/core';
import { featureNeeds, modelCardOf } from './model-card.js';

const cohortManifest = (release?: unknown) => parseManifest(JSON.stringify({
  apiVersion: 'fedlhs.v1', kind: 'Study', name: 'diabetes',
  model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { units: 1, activation: 'sigmoid', batch_input_shape: [null, 4] } }] } } },
  training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 8 },
  rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
  data: {
    featureSpec: 'cohort/v1',
    cohort: {
      index: { classes: ['outpatient'], from: '2015-01-01', to: '2018-12-31' },
      eligibility: { minAge: 40, maxAge: 80, excludeConditions: [{ system: 'SNOMED', codes: ['44054006'] }] },
      lookbackDays: 365,
      features: [
        { name: 'age', type: 'age' },
        { name: 'female', type: 'sex', value: 'female' },
        { name: 'hba1c', type: 'latest', system: 'LOINC', codes: ['4548-4'], unit: '%', range: [3, 20] },
        { name: 'visits', type: 'count', kind: 'encounter' },
      ],
      label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 1825 },
    },
  },
  aggregation: { strategy: 'fedavg' }, updateValidation: {},
  ...(release === undefined ? {} : { release }),
}));

describe('model card', () => {
  it('says per cohort feature what it needs: code system, codes, unit, range, lookback', () => {
    const needs = featureNeeds(cohortManifest());
    expect(needs).toHaveLength(4);
    expect(needs[2]).toBe('hba1c: latest value of LOINC 4548-4 in the 365 days before the index day, in %; values outside [3, 20] % count as missing');
    expect(needs[3]).toMatch(/^visits: number of encounter events in the 365 days/);
  });

  it('fills every field the manifest leaves out, and always names the sites and the selection warnings', () => {
    const card = modelCardOf(cohortManifest(), { sites: 4, sitesThatTrained: 3, warnings: ['no round had a validation AUC'] });
    expect(card.outcome).toBe('onset of a condition SNOMED 44054006 within 1825 days after the index day');
    expect(card.population).toMatch(/^patients aged 40 to 80 with a first encounter with class outpatient in 2015-01-01..2018-12-31.*excluding patients with SNOMED 44054006/);
    expect(card.intendedUse).toMatch(/Decision support.*"diabetes"/);
    expect(card.limitations).toEqual([expect.stringMatching(/3 site\(s\) \(4 took part\)/), 'no round had a validation AUC']);
  });

  it('keeps the operator\'s words first', () => {
    const card = modelCardOf(cohortManifest({ modelCard: { intendedUse: 'Screening reminder.', limitations: ['Not for children.'] } }), { sites: 1, sitesThatTrained: 1, warnings: [] });
    expect(card.intendedUse).toBe('Screening reminder.');
    expect(card.limitations[0]).toBe('Not for children.');
    expect(card.limitations).toHaveLength(2);
  });
});
