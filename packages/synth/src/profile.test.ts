import { describe, expect, it } from 'vitest';
import { defaultClinics, validateProfile, type ClinicProfile } from './profile.js';
import { RISK_COEFFICIENTS, logistic, riskLogit, sampleState, type Demographics } from './physiology.js';
import { createIdFactory, createRng } from './rng.js';

describe('defaultClinics', () => {
  it('is a network of two large, one medium and two small clinics that differ', () => {
    const clinics = defaultClinics();
    expect(clinics.map((c) => c.name)).toEqual(['clinic-large-1', 'clinic-large-2', 'clinic-medium', 'clinic-small-1', 'clinic-small-2']);
    const sizes = clinics.map((c) => c.patients);
    expect(sizes[0]).toBeGreaterThanOrEqual(4000);
    expect(sizes[1]).toBeLessThanOrEqual(6000);
    expect(sizes[2]).toBeGreaterThanOrEqual(900);
    expect(sizes[2]).toBeLessThanOrEqual(1100);
    for (const n of sizes.slice(3)) expect(n >= 120 && n <= 300).toBe(true);
    expect(new Set(clinics.map((c) => c.units.glucose)).size).toBe(2);
    expect(new Set(clinics.map((c) => c.coding.glucoseCode)).size).toBe(2);
    expect(new Set(clinics.map((c) => c.seed)).size).toBe(5);
    for (const c of clinics) expect(() => validateProfile(c)).not.toThrow();
  });

  it('is a function of its arguments', () => {
    expect(defaultClinics(5, 7)).toEqual(defaultClinics(5, 7));
    expect(defaultClinics(5, 7)).not.toEqual(defaultClinics(5, 8));
    const many = defaultClinics(12, 3);
    expect(new Set(many.map((c) => c.name)).size).toBe(12);
  });
});

describe('validateProfile', () => {
  const base = defaultClinics(1)[0]!;
  it('throws an exact message for an invalid profile', () => {
    const bad: ClinicProfile = { ...base, patients: 10 };
    expect(() => validateProfile(bad)).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: clinic profile 'clinic-large-1': patients must be an integer in 50..20000]`);
    expect(() => validateProfile({ ...base, labOrderRate: 1.5 })).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: clinic profile 'clinic-large-1': labOrderRate must be in 0..1]`);
    expect(() => validateProfile({ ...base, ethnicityMix: {} })).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: clinic profile 'clinic-large-1': ethnicityMix must have non-negative weights, at least one positive]`);
    expect(() => validateProfile(bad)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => defaultClinics(0)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: 'defaultClinics: count must be an integer in 1..100' }));
  });
});

describe('physiology', () => {
  const rng = createRng(11);
  const people = Array.from({ length: 20_000 }, () => {
    const d: Demographics = { ageYears: 18 + 60 * rng.next(), female: rng.bernoulli(0.5), ethnicity: 'nonhispanic', race: 'white' };
    return { d, s: sampleState(rng, d) };
  });
  const mean = (f: (p: (typeof people)[number]) => number): number => people.reduce((sum, p) => sum + f(p), 0) / people.length;

  it('gives adult values in plausible ranges', () => {
    expect(mean((p) => p.s.bmi)).toBeGreaterThan(25);
    expect(mean((p) => p.s.bmi)).toBeLessThan(31);
    expect(mean((p) => p.s.fastingGlucose)).toBeGreaterThan(88);
    expect(mean((p) => p.s.fastingGlucose)).toBeLessThan(102);
    expect(mean((p) => p.s.hba1c)).toBeGreaterThan(5.2);
    expect(mean((p) => p.s.hba1c)).toBeLessThan(5.8);
    expect(mean((p) => p.s.hdl)).toBeGreaterThan(42);
    expect(mean((p) => p.s.hdl)).toBeLessThan(60);
    expect(mean((p) => p.s.sbp)).toBeGreaterThan(115);
    expect(mean((p) => p.s.sbp)).toBeLessThan(135);
    expect(mean((p) => (p.s.smoking === 'current' ? 1 : 0))).toBeGreaterThan(0.08);
  });

  it('raises risk with glycaemia and insulin resistance, not with anything label-shaped', () => {
    const p = people[0]!;
    const higher = { ...p.s, glycemia: p.s.glycemia + 1 };
    expect(riskLogit(higher, p.d) - riskLogit(p.s, p.d)).toBeCloseTo(RISK_COEFFICIENTS.glycemia, 10);
    const mid = mean((q) => logistic(riskLogit(q.s, q.d)));
    expect(mid).toBeGreaterThan(0.06);
    expect(mid).toBeLessThan(0.18);
  });
});

describe('ids', () => {
  it('are UUID-like and unique even across many draws', () => {
    const next = createIdFactory(createRng(1), 1);
    const ids = Array.from({ length: 50_000 }, next);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids.slice(0, 100)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
