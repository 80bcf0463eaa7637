import { describe, expect, it } from 'vitest';
import { cohortSpecSchema, describeIndex, encounterClassMatches } from './cohort-spec.js';

const base = {
  eligibility: {},
  lookbackDays: 365,
  features: [{ name: 'age', type: 'age' }],
  label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 365 },
};

describe('cohort index event', () => {
  it('accepts classes, codes, or the older encounterClass shorthand, and re-parses its own output unchanged', () => {
    const legacy = cohortSpecSchema.parse({ ...base, index: { encounterClass: 'wellness', from: '2015-01-01', to: '2018-12-31' } });
    expect(legacy.index).toEqual({ classes: ['wellness'], codes: [], from: '2015-01-01', to: '2018-12-31' });
    const both = cohortSpecSchema.parse({ ...base, index: { classes: ['outpatient'], codes: [{ system: 'OMOP', codes: ['9202'] }], from: '2015-01-01', to: '2018-12-31' } });
    // The canonical manifest a clinic receives is validated again there: it must parse to itself.
    expect(cohortSpecSchema.parse(JSON.parse(JSON.stringify(both)))).toEqual(both);
    expect(cohortSpecSchema.parse(JSON.parse(JSON.stringify(legacy)))).toEqual(legacy);
    expect(describeIndex(both.index)).toBe('first encounter with class outpatient, or OMOP 9202 in 2015-01-01..2018-12-31');
  });

  it('refuses an index with neither classes nor codes, and unknown classes', () => {
    expect(() => cohortSpecSchema.parse({ ...base, index: { from: '2015-01-01', to: '2018-12-31' } })).toThrowError(/declare the index encounter by classes and\/or codes/);
    expect(() => cohortSpecSchema.parse({ ...base, index: { classes: ['checkup'], from: '2015-01-01', to: '2018-12-31' } })).toThrowError(/classes/);
  });

  it("matches 'outpatient' to wellness and ambulatory visits only", () => {
    expect(['wellness', 'ambulatory', 'emergency', 'inpatient', undefined].map((c) => encounterClassMatches('outpatient', c))).toEqual([true, true, false, false, false]);
    expect(encounterClassMatches('wellness', 'ambulatory')).toBe(false);
    expect(encounterClassMatches('ambulatory', 'wellness')).toBe(false);
  });
});
