import { describe, expect, it } from 'vitest';
import { openFhirResources } from './resource-source.js';
import { ALL, collect, day } from './test-support.js';

const patient = { resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01', gender: 'female' };
const encounter = {
  resourceType: 'Encounter', subject: { reference: 'Patient/p1' }, period: { start: '2019-05-01T09:00:00Z' },
  class: { code: 'AMB' }, type: [{ coding: [{ system: 'http://snomed.info/sct', code: '162673000' }] }],
};
const glucose = {
  resourceType: 'Observation', subject: { reference: 'Patient/p1' }, effectiveDateTime: '2019-04-01',
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] }, valueQuantity: { value: 5.5, unit: 'mmol/L', code: 'mmol/L' },
};
const bp = {
  resourceType: 'Observation', subject: { reference: 'Patient/p1' }, effectiveDateTime: '2019-04-01',
  code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
  component: [
    { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 130, code: 'mm[Hg]' } },
    { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 85, code: 'mm[Hg]' } },
  ],
};

describe('openFhirResources', () => {
  it('maps in-memory resources with the bulk reader\'s converters', async () => {
    const src = openFhirResources([patient, encounter, glucose, bp]);
    expect(src.format).toBe('fhir-ndjson');
    expect(await collect(src.patients())).toEqual([{ id: 'p1', birthDay: day('1960-01-01'), sex: 'female', deathDay: undefined, race: undefined, ethnicity: undefined }]);
    const events = await collect(src.events(ALL));
    expect(events.map((e) => [e.kind, e.code, e.value])).toEqual([
      ['encounter', '162673000', undefined], ['observation', '2345-7', 5.5], ['observation', '8480-6', 130], ['observation', '8462-4', 85],
    ]);
    expect(events[0]!.encounterClass).toBe('wellness');
    expect(await collect(src.events(new Set(['observation'])))).toHaveLength(3);
  });

  it('counts what it cannot map by type and reason; lists other resource types as unread', async () => {
    const src = openFhirResources([
      { ...patient, id: 'p2', birthDate: 'yesterday' }, patient, { ...glucose, subject: undefined }, { resourceType: 'Procedure' }, { resourceType: 'Procedure' }, 'text', {},
    ]);
    expect(await collect(src.patients())).toHaveLength(1);
    expect(src.skipped).toMatchObject({ 'Observation: missing subject': 1, 'not a resource (not a JSON object)': 1, 'resource without resourceType': 1 });
    expect(Object.keys(src.patientLosses)).toEqual([expect.stringMatching(/^Patient: invalid birthDate/)]);
    expect((await src.inventory()).unread).toEqual(['2 Procedure resources']);
  });

  it('skips planned and cancelled encounters (a prefetch search returns them) and counts them by status', async () => {
    const src = openFhirResources([
      patient, encounter, { ...encounter, status: 'planned', period: { start: '2031-01-01' } }, { ...encounter, status: 'cancelled', period: { start: '2024-01-01' } },
    ]);
    expect((await collect(src.events(ALL))).map((e) => e.day)).toEqual([day('2019-05-01')]);
    expect(src.skipped).toEqual({ 'Encounter: status cancelled (not a visit that took place)': 1, 'Encounter: status planned (not a visit that took place)': 1 });
  });

  it('inventory: the types searched for count as present even when nothing was found', async () => {
    const found = await openFhirResources([patient, encounter]).inventory();
    expect(found.files).toEqual({ encounter: ['Encounter resources'], condition: [], observation: [], medication: [] });
    const searched = await openFhirResources([patient], { present: ['Encounter', 'Condition', 'Observation'], label: 'prefetch' }).inventory();
    expect(searched.files).toEqual({ encounter: ['Encounter prefetch'], condition: ['Condition prefetch'], observation: ['Observation prefetch'], medication: [] });
    expect(searched.expected.medication).toBe('MedicationRequest prefetch');
  });
});
